/**
 * Getting gitleaks: the input, PATH, the tool cache and the pinned download, against a real HTTP
 * server on 127.0.0.1 serving an archive built here with the system tar (a script named
 * `gitleaks`), its tampered twin, and a closed port. No mocks, and nothing leaves the machine.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import * as tc from '@actions/tool-cache';
import {
  ensureGitleaks,
  gitleaksAsset,
  GITLEAKS_SHA256,
  GITLEAKS_VERSION,
  type EnsureGitleaksOptions
} from '../../src/scan/acquire.js';
import { SecretScanError } from '../../src/errors.js';

const ASSET = `gitleaks_${GITLEAKS_VERSION}_linux_x64.tar.gz`;
const PLATFORM = { platform: 'linux', arch: 'x64' } as const;

let root: string;
let good: Buffer;
let goodSha: string;
let tampered: Buffer;
let server: Server;
let base: string;
let requests: string[] = [];
/** A PATH with nothing on it: node_modules/.bin (on PATH under npm) may hold a `gitleaks`. */
let emptyPathEnv: NodeJS.ProcessEnv;
const saved: Record<string, string | undefined> = {};
const RETRY_HOOKS = ['TEST_DOWNLOAD_TOOL_RETRY_MIN_SECONDS', 'TEST_DOWNLOAD_TOOL_RETRY_MAX_SECONDS'];

function script(file: string, body: string, mode = 0o755): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, mode);
  return file;
}

function files(dir: string): string[] {
  let out: string[] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    out = out.concat(e.isDirectory() ? files(p) : [p]);
  }
  return out;
}

function logs() {
  const lines: string[] = [];
  return { lines, info: (m: string) => lines.push(m), warn: (m: string) => lines.push(`warning: ${m}`) };
}

async function failure(opts: EnsureGitleaksOptions): Promise<SecretScanError> {
  try {
    const engine = await ensureGitleaks(opts);
    throw new Error(`expected a failure, got ${JSON.stringify(engine)}`);
  } catch (err) {
    if (!(err instanceof SecretScanError)) throw err;
    expect(err.phase).toBe('pre-deploy');
    return err;
  }
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'dg-gitleaks-'));
  const emptyBin = path.join(root, 'empty-bin');
  mkdirSync(emptyBin);
  emptyPathEnv = { PATH: emptyBin };

  // The "release": a gzipped tar, made by the system tar, with an executable `gitleaks` at its top.
  const src = path.join(root, 'release');
  script(
    path.join(src, 'gitleaks'),
    `if [ "$1" = version ]; then echo ${GITLEAKS_VERSION}; exit 0; fi\necho "fake gitleaks: $*"; exit 0`
  );
  writeFileSync(path.join(src, 'LICENSE'), 'MIT\n');
  const archive = path.join(root, ASSET);
  execFileSync('tar', ['-czf', archive, '-C', src, 'gitleaks', 'LICENSE']);
  good = readFileSync(archive);
  goodSha = sha256(good);
  tampered = Buffer.from(good);
  const i = Math.floor(tampered.length / 2);
  tampered[i] = tampered[i]! ^ 0xff;

  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const body =
      req.url === `/good/${ASSET}` ? good : req.url === `/tampered/${ASSET}` ? tampered : undefined;
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': body.length }).end(body);
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  for (const k of ['RUNNER_TOOL_CACHE', 'RUNNER_TEMP', 'XDG_CACHE_HOME']) saved[k] = process.env[k];
  // tool-cache retries a failed download 3 times, 10-20 s apart; its own test hooks make that 0 s.
  for (const k of RETRY_HOOKS) (globalThis as Record<string, unknown>)[k] = 0;
});

afterAll(async () => {
  await new Promise(resolve => server.close(resolve));
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  for (const k of RETRY_HOOKS) delete (globalThis as Record<string, unknown>)[k];
  rmSync(root, { recursive: true, force: true });
});

let cacheDir: string;
let tempDir: string;
beforeEach(() => {
  requests = [];
  const dir = mkdtempSync(path.join(root, 'run-'));
  cacheDir = path.join(dir, 'tool-cache');
  tempDir = path.join(dir, 'temp');
  process.env.RUNNER_TOOL_CACHE = cacheDir;
  process.env.RUNNER_TEMP = tempDir;
});

describe('pins', () => {
  test('every supported platform has a 64-hex SHA-256 and an official asset name', () => {
    expect(Object.keys(GITLEAKS_SHA256).sort()).toEqual(
      ['darwin-arm64', 'darwin-x64', 'linux-arm64', 'linux-x64', 'win32-x64'].sort()
    );
    for (const digest of Object.values(GITLEAKS_SHA256)) expect(digest).toMatch(/^[0-9a-f]{64}$/);
    expect(gitleaksAsset('linux', 'x64')).toBe('gitleaks_8.28.0_linux_x64.tar.gz');
    expect(gitleaksAsset('linux', 'arm64')).toBe('gitleaks_8.28.0_linux_arm64.tar.gz');
    expect(gitleaksAsset('darwin', 'arm64')).toBe('gitleaks_8.28.0_darwin_arm64.tar.gz');
    expect(gitleaksAsset('win32', 'x64')).toBe('gitleaks_8.28.0_windows_x64.zip');
    expect(gitleaksAsset('win32', 'arm64')).toBeUndefined();
    expect(gitleaksAsset('freebsd', 'x64')).toBeUndefined();
  });
});

describe('download', () => {
  test('a good archive is verified, extracted, cached and runs; the second call is a cache hit', async () => {
    const log = logs();
    const first = await ensureGitleaks({
      ...PLATFORM,
      env: emptyPathEnv,
      downloadBase: `${base}/good/`,
      sha256: { 'linux-x64': goodSha },
      log
    });
    expect(first.source).toBe('download');
    expect(first.version).toBe(GITLEAKS_VERSION);
    expect(first.path).toBe(path.join(cacheDir, 'gitleaks', GITLEAKS_VERSION, 'x64', 'gitleaks'));
    expect(execFileSync(first.path, ['version'], { encoding: 'utf8' }).trim()).toBe(GITLEAKS_VERSION);
    expect(tc.find('gitleaks', GITLEAKS_VERSION, 'x64')).toBe(path.dirname(first.path));
    expect(requests).toEqual([`/good/${ASSET}`]);
    expect(log.lines.join('\n')).toContain(goodSha);
    // The archive and the extraction folder are gone; only the tool cache keeps the binary.
    expect(files(tempDir)).toEqual([]);

    const second = await ensureGitleaks({
      ...PLATFORM,
      env: emptyPathEnv,
      downloadBase: `${base}/good/`,
      sha256: { 'linux-x64': goodSha }
    });
    expect(second).toEqual({ path: first.path, version: GITLEAKS_VERSION, source: 'cache' });
    expect(requests).toHaveLength(1);
  });

  test("outside Actions, tool-cache's ::debug:: lines and tar echo stay off stdout (the CLI's --json)", async () => {
    const wasActions = process.env.GITHUB_ACTIONS;
    delete process.env.GITHUB_ACTIONS;
    const own = Object.getOwnPropertyDescriptor(process.stdout, 'write');
    const seen: string[] = [];
    const record = ((chunk: unknown) => {
      seen.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    Object.defineProperty(process.stdout, 'write', { value: record, configurable: true, writable: true });
    try {
      const engine = await ensureGitleaks({
        ...PLATFORM,
        env: emptyPathEnv,
        downloadBase: `${base}/good/`,
        sha256: { 'linux-x64': goodSha }
      });
      expect(engine.source).toBe('download');
      // The recorder is back in place afterwards, and it saw none of tool-cache's output.
      expect(process.stdout.write).toBe(record);
    } finally {
      if (own) Object.defineProperty(process.stdout, 'write', own);
      else delete (process.stdout as { write?: unknown }).write;
      if (wasActions !== undefined) process.env.GITHUB_ACTIONS = wasActions;
    }
    expect(seen).toEqual([]);
  });

  test('a tampered archive (one byte changed) is refused before extraction, deleted, and nothing is cached', async () => {
    const err = await failure({
      ...PLATFORM,
      env: emptyPathEnv,
      downloadBase: `${base}/tampered`,
      sha256: { 'linux-x64': goodSha }
    });
    const url = `${base}/tampered/${ASSET}`;
    expect(err.message).toContain('refused the download');
    expect(err.message).toContain(url);
    expect(err.message).toContain(`is ${sha256(tampered)}`);
    expect(err.message).toContain(`is ${goodSha}`);
    expect(err.message).toContain('nothing was extracted or cached');
    expect(err.hint).toContain('gitleaks-path');
    expect(requests).toEqual([`/tampered/${ASSET}`]);
    expect(tc.find('gitleaks', GITLEAKS_VERSION, 'x64')).toBe('');
    expect(files(cacheDir)).toEqual([]);
    expect(files(tempDir)).toEqual([]);
  });

  test('a server that is down: a clear error naming the URL and suggesting gitleaks-path', async () => {
    const closed = createServer();
    await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise(resolve => closed.close(resolve));

    const downBase = `http://127.0.0.1:${port}/releases/`;
    const err = await failure({
      ...PLATFORM,
      env: emptyPathEnv,
      downloadBase: downBase,
      sha256: { 'linux-x64': goodSha }
    });
    expect(err.message).toContain(`could not download gitleaks ${GITLEAKS_VERSION} from ${downBase}${ASSET}`);
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect(err.hint).toMatch(/no internet access/);
    expect(err.hint).toContain('gitleaks-path');
    expect(files(cacheDir)).toEqual([]);
    expect(files(tempDir)).toEqual([]);
  });

  test('a missing asset (HTTP 404) names the URL and the status', async () => {
    const err = await failure({
      ...PLATFORM,
      env: emptyPathEnv,
      downloadBase: `${base}/nothing-here/`,
      sha256: { 'linux-x64': goodSha }
    });
    expect(err.message).toContain(`${base}/nothing-here/${ASSET}`);
    expect(err.message).toContain('HTTP 404');
  });

  test('no pinned checksum for the platform: no download at all', async () => {
    const err = await failure({ ...PLATFORM, env: emptyPathEnv, downloadBase: `${base}/good/`, sha256: {} });
    expect(err.message).toContain('no pinned checksum for linux-x64');
    expect(err.hint).toContain('gitleaks-path');
    expect(requests).toEqual([]);
  });

  test('an unsupported platform or arch: install gitleaks and pass gitleaks-path', async () => {
    for (const [platform, arch] of [
      ['freebsd', 'x64'],
      ['linux', 'ia32'],
      ['win32', 'arm64']
    ] as const) {
      const err = await failure({ platform, arch, env: emptyPathEnv, downloadBase: `${base}/good/` });
      expect(err.message).toContain(`cannot download gitleaks for ${platform}/${arch}`);
      expect(err.hint).toMatch(/Install gitleaks .*`gitleaks-path`/);
    }
    expect(requests).toEqual([]);
  });

  test('outside Actions, the tool cache and temp folders get defaults; values already set are kept', async () => {
    delete process.env.RUNNER_TOOL_CACHE;
    delete process.env.RUNNER_TEMP;
    process.env.XDG_CACHE_HOME = path.join(root, 'xdg');
    await failure({ platform: 'freebsd', arch: 'x64', env: emptyPathEnv });
    expect(process.env.RUNNER_TOOL_CACHE).toBe(path.join(root, 'xdg', 'deployguard', 'tool-cache'));
    expect(process.env.RUNNER_TEMP).toBe(path.join(root, 'xdg', 'deployguard', 'temp'));

    process.env.RUNNER_TOOL_CACHE = cacheDir;
    process.env.RUNNER_TEMP = tempDir;
    await failure({ platform: 'freebsd', arch: 'x64', env: emptyPathEnv });
    expect(process.env.RUNNER_TOOL_CACHE).toBe(cacheDir);
    expect(process.env.RUNNER_TEMP).toBe(tempDir);
  });
});

describe('PATH', () => {
  test('a gitleaks on PATH is used and its version reported; nothing is downloaded', async () => {
    const bin = path.join(root, 'path-bin');
    script(path.join(bin, 'gitleaks'), 'if [ "$1" = version ]; then echo 8.27.1; exit 0; fi; exit 2');
    const log = logs();
    const engine = await ensureGitleaks({
      ...PLATFORM,
      env: { PATH: [emptyPathEnv.PATH, path.join(root, 'nonexistent'), bin].join(path.delimiter) },
      downloadBase: `${base}/good/`,
      sha256: { 'linux-x64': goodSha },
      log
    });
    expect(engine).toEqual({ path: path.join(bin, 'gitleaks'), version: '8.27.1', source: 'path' });
    expect(log.lines).toEqual([`gitleaks 8.27.1 found on PATH: ${path.join(bin, 'gitleaks')}`]);
    expect(requests).toEqual([]);
  });

  test('a non-executable gitleaks on PATH is skipped for the next one', async () => {
    const first = path.join(root, 'path-noexec');
    const second = path.join(root, 'path-second');
    script(path.join(first, 'gitleaks'), 'echo 1.0.0', 0o644);
    script(path.join(second, 'gitleaks'), 'echo v8.28.0');
    const engine = await ensureGitleaks({ ...PLATFORM, env: { PATH: `${first}:${second}` } });
    expect(engine).toEqual({ path: path.join(second, 'gitleaks'), version: '8.28.0', source: 'path' });
  });

  test('a `gitleaks` on PATH that is not gitleaks is reported and passed over for the download', async () => {
    const bin = path.join(root, 'path-impostor');
    script(path.join(bin, 'gitleaks'), 'echo "hello from something else"');
    const log = logs();
    const engine = await ensureGitleaks({
      ...PLATFORM,
      env: { PATH: bin },
      downloadBase: `${base}/good/`,
      sha256: { 'linux-x64': goodSha },
      log
    });
    expect(engine.source).toBe('download');
    expect(log.lines[0]).toBe(
      `warning: ${path.join(bin, 'gitleaks')} is on PATH as \`gitleaks\` but is not gitleaks ` +
        '(`gitleaks version` printed "hello from something else" instead of a version); ignoring it'
    );
  });
});

describe('gitleaks-path input', () => {
  test('an executable gitleaks is used as is, with its version', async () => {
    const p = script(path.join(root, 'input', 'my-gitleaks'), 'echo 8.28.0');
    const engine = await ensureGitleaks({ ...PLATFORM, inputPath: p, env: emptyPathEnv });
    expect(engine).toEqual({ path: p, version: '8.28.0', source: 'input' });
    expect(requests).toEqual([]);
  });

  test('a missing path is a clear error', async () => {
    const p = path.join(root, 'input', 'no-such-gitleaks');
    const err = await failure({ ...PLATFORM, inputPath: p, env: emptyPathEnv });
    expect(err.message).toBe(`gitleaks-path ${p} does not exist`);
    expect(err.hint).toContain('gitleaks-path');
  });

  test('a file that is not executable is a clear error', async () => {
    const p = script(path.join(root, 'input', 'noexec-gitleaks'), 'echo 8.28.0', 0o644);
    const err = await failure({ ...PLATFORM, inputPath: p, env: emptyPathEnv });
    expect(err.message).toBe(`gitleaks-path ${p} is not executable`);
    expect(err.hint).toContain('chmod +x');
  });

  test('a directory is a clear error', async () => {
    const err = await failure({ ...PLATFORM, inputPath: root, env: emptyPathEnv });
    expect(err.message).toBe(`gitleaks-path ${root} is not a file`);
  });

  test('an executable that is not gitleaks is a clear error', async () => {
    const p = script(path.join(root, 'input', 'not-gitleaks'), 'echo oops >&2; exit 3');
    const err = await failure({ ...PLATFORM, inputPath: p, env: emptyPathEnv });
    expect(err.message).toBe(`gitleaks-path ${p} is not gitleaks: \`not-gitleaks version\` failed (3): oops`);
  });
});
