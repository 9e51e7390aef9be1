/**
 * Getting the gitleaks binary, with no license key: the `gitleaks-path` input, a `gitleaks` on
 * PATH, the runner's tool cache, or the pinned official release archive, downloaded and checked
 * against its pinned SHA-256 before anything in it is unpacked.
 */
import { createHash, randomUUID } from 'node:crypto';
import { constants as fsConstants, createReadStream } from 'node:fs';
import { access, rm, stat } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { SecretScanError } from '../errors.js';
import { runProcess } from '../io/process.js';

export const GITLEAKS_VERSION = '8.28.0';

/**
 * Pinned SHA-256 of each release archive of gitleaks 8.28.0 (`gitleaks_8.28.0_checksums.txt`),
 * keyed `<node platform>-<node arch>`. A platform missing here cannot be downloaded: its runners
 * install gitleaks themselves and pass `gitleaks-path`.
 */
export const GITLEAKS_SHA256: Readonly<Record<string, string>> = Object.freeze({
  'linux-x64': 'a65b5253807a68ac0cafa4414031fd740aeb55f54fb7e55f386acb52e6a840eb',
  'linux-arm64': 'eff65261156100e5d94a6b3dec313d532fddfe19ae1590bf7a2b4f2699128356',
  'darwin-x64': 'edf5a507008b0d2ef4959575772772770586409c1f6f74dabf19cbe7ec341ced',
  'darwin-arm64': 'd942f3ad147250c9edbaab3fed9e482f98d3b59ba10ae97b8d75647e3ade492c',
  'win32-x64': 'da6458e8864af553807de1c46a7a8eac0880bd6b99ba56288e87e86a45af884f'
});

export interface Engine {
  readonly path: string;
  readonly version: string;
  readonly source: 'input' | 'path' | 'cache' | 'download';
}

export interface EnsureGitleaksOptions {
  /** The `gitleaks-path` input: must exist and be executable, else a clear error. */
  inputPath?: string;
  /** Where PATH is read from (default: process.env). */
  env?: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  arch?: string;
  /** Base URL of the release assets (default: the official gitleaks release of GITLEAKS_VERSION). */
  downloadBase?: string;
  /** Override of GITLEAKS_SHA256, for tests only. */
  sha256?: Readonly<Record<string, string>>;
  log?: { info(m: string): void; warn(m: string): void };
}

const TOOL = 'gitleaks';
const PHASE = 'pre-deploy';
const HINT_PATH =
  'Install gitleaks on the runner and pass its path as the `gitleaks-path` input (or put it on PATH).';
const VERSION_TIMEOUT_MS = 10_000;

/** Node's platform and arch names to the ones in gitleaks' release asset names. */
const OS_NAMES: Partial<Record<NodeJS.Platform, string>> = {
  linux: 'linux',
  darwin: 'darwin',
  win32: 'windows'
};
const ARCH_NAMES: Record<string, string> = { x64: 'x64', arm64: 'arm64' };
/** The release archives deployguard knows how to fetch (windows: x64 only). */
const SUPPORTED = new Set(['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64', 'win32-x64']);

export function defaultDownloadBase(version: string = GITLEAKS_VERSION): string {
  return `https://github.com/gitleaks/gitleaks/releases/download/v${version}/`;
}

/** The release asset name for a node platform/arch, or undefined when gitleaks has none we fetch. */
export function gitleaksAsset(
  platform: NodeJS.Platform,
  arch: string,
  version: string = GITLEAKS_VERSION
): string | undefined {
  const osName = OS_NAMES[platform];
  const archName = ARCH_NAMES[arch];
  if (!osName || !archName || !SUPPORTED.has(`${platform}-${arch}`)) return undefined;
  return `gitleaks_${version}_${osName}_${archName}.${platform === 'win32' ? 'zip' : 'tar.gz'}`;
}

export async function ensureGitleaks(opts: EnsureGitleaksOptions = {}): Promise<Engine> {
  const env = opts.env ?? process.env;
  const platform = opts.platform ?? process.platform;
  const arch = opts.arch ?? process.arch;
  const log = opts.log ?? { info: () => {}, warn: () => {} };

  // 1. The input: the user said which binary to use, so anything wrong with it is an error.
  if (opts.inputPath !== undefined && opts.inputPath.trim() !== '') {
    const p = path.resolve(opts.inputPath.trim());
    const problem = await notExecutable(p);
    if (problem) {
      throw new SecretScanError(
        `gitleaks-path ${p} ${problem}`,
        PHASE,
        'Point `gitleaks-path` at the gitleaks executable itself (chmod +x it if needed), or leave the input empty so deployguard finds or downloads gitleaks.'
      );
    }
    const probe = await probeVersion(p, env);
    if (!probe.ok) {
      throw new SecretScanError(
        `gitleaks-path ${p} is not gitleaks: \`${path.basename(p)} version\` ${probe.detail}`,
        PHASE,
        'Point `gitleaks-path` at a gitleaks 8.x binary, or leave it empty so deployguard downloads the pinned release.'
      );
    }
    log.info(`gitleaks ${probe.version} from gitleaks-path: ${p}`);
    return { path: p, version: probe.version, source: 'input' };
  }

  // 2. PATH. A `gitleaks` there that is not gitleaks is reported and passed over.
  const onPath = await findOnPath(env);
  if (onPath) {
    const probe = await probeVersion(onPath, env);
    if (probe.ok) {
      log.info(`gitleaks ${probe.version} found on PATH: ${onPath}`);
      if (!/^v?8\./.test(probe.version) && probe.version !== 'unknown') {
        log.warn(
          `the gitleaks on PATH (${onPath}) is version ${probe.version}; deployguard is made for gitleaks 8.x (pinned ${GITLEAKS_VERSION})`
        );
      }
      return { path: onPath, version: probe.version, source: 'path' };
    }
    log.warn(
      `${onPath} is on PATH as \`gitleaks\` but is not gitleaks (\`gitleaks version\` ${probe.detail}); ignoring it`
    );
  }

  // 3. The tool cache, then 4. the pinned download.
  ensureToolCacheEnv();
  const tc = await toolCache();
  const binName = platform === 'win32' ? 'gitleaks.exe' : 'gitleaks';
  const cachedDir = toStderr(() => tc.find(TOOL, GITLEAKS_VERSION, arch));
  if (cachedDir) {
    const cachedBin = path.join(cachedDir, binName);
    const problem = await notExecutable(cachedBin, platform);
    if (!problem) {
      log.info(`gitleaks ${GITLEAKS_VERSION} from the tool cache: ${cachedBin}`);
      return { path: cachedBin, version: GITLEAKS_VERSION, source: 'cache' };
    }
    log.warn(`the tool cache entry ${cachedDir} is broken (${cachedBin} ${problem}); downloading again`);
  }

  return download({
    platform,
    arch,
    binName,
    base: opts.downloadBase ?? defaultDownloadBase(),
    pins: opts.sha256 ?? GITLEAKS_SHA256,
    log
  });
}

async function download(o: {
  platform: NodeJS.Platform;
  arch: string;
  binName: string;
  base: string;
  pins: Readonly<Record<string, string>>;
  log: { info(m: string): void; warn(m: string): void };
}): Promise<Engine> {
  const key = `${o.platform}-${o.arch}`;
  const asset = gitleaksAsset(o.platform, o.arch);
  if (!asset) {
    throw new SecretScanError(
      `deployguard cannot download gitleaks for ${o.platform}/${o.arch}: the pinned release ${GITLEAKS_VERSION} has no archive it supports for this platform`,
      PHASE,
      HINT_PATH
    );
  }
  const expected = o.pins[key]?.trim().toLowerCase();
  if (!expected || !/^[0-9a-f]{64}$/.test(expected)) {
    throw new SecretScanError(
      `no pinned checksum for ${key}; deployguard will not download gitleaks ${GITLEAKS_VERSION} (${asset}) without one`,
      PHASE,
      HINT_PATH
    );
  }

  const tc = await toolCache();
  const url = new URL(asset, o.base.endsWith('/') ? o.base : `${o.base}/`).toString();
  const work = path.join(process.env.RUNNER_TEMP!, `deployguard-gitleaks-${randomUUID()}`);
  const archive = path.join(work, asset);
  try {
    o.log.info(`downloading gitleaks ${GITLEAKS_VERSION} from ${url}`);
    try {
      await toStderr(() => tc.downloadTool(url, archive));
    } catch (err) {
      const status = err instanceof tc.HTTPError ? err.httpStatusCode : undefined;
      const reason = status !== undefined ? `the server answered HTTP ${status}` : errorText(err);
      throw new SecretScanError(
        `could not download gitleaks ${GITLEAKS_VERSION} from ${url}: ${reason}`,
        PHASE,
        'If this runner has no internet access (an offline or locked-down self-hosted runner), install gitleaks on it and pass its path as the `gitleaks-path` input.'
      );
    }

    // Checked before extraction: nothing from an unverified archive is ever unpacked or run.
    const actual = await sha256File(archive);
    if (actual !== expected) {
      await rm(work, { recursive: true, force: true });
      throw new SecretScanError(
        `refused the download of ${url}: its SHA-256 is ${actual}, but the pinned SHA-256 of ${asset} (gitleaks ${GITLEAKS_VERSION}, ${key}) is ${expected}. ` +
          'The file was deleted; nothing was extracted or cached.',
        PHASE,
        'The archive was changed at the source or on the way. Do not work around this check: install a gitleaks you trust and pass its path as `gitleaks-path`.'
      );
    }

    const extracted = path.join(work, 'extracted');
    await toStderr(() =>
      asset.endsWith('.zip') ? tc.extractZip(archive, extracted) : tc.extractTar(archive, extracted)
    );
    const problem = await notExecutable(path.join(extracted, o.binName), o.platform);
    if (problem) {
      throw new SecretScanError(
        `the gitleaks archive ${asset} from ${url} has no usable ${o.binName} at its top level (${problem})`,
        PHASE,
        HINT_PATH
      );
    }
    const cached = await toStderr(() => tc.cacheDir(extracted, TOOL, GITLEAKS_VERSION, o.arch));
    const bin = path.join(cached, o.binName);
    o.log.info(`gitleaks ${GITLEAKS_VERSION} verified (sha256 ${actual}) and cached: ${bin}`);
    return { path: bin, version: GITLEAKS_VERSION, source: 'download' };
  } finally {
    await rm(work, { recursive: true, force: true }).catch(() => {});
  }
}

/**
 * @actions/tool-cache reads RUNNER_TOOL_CACHE and RUNNER_TEMP at each call. The runner sets both;
 * outside Actions (the CLI) both default to folders in the user's cache, never replacing a value.
 */
function ensureToolCacheEnv(): void {
  const cacheHome = () => process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  if (!process.env.RUNNER_TOOL_CACHE) {
    process.env.RUNNER_TOOL_CACHE = path.join(cacheHome(), 'deployguard', 'tool-cache');
  }
  if (!process.env.RUNNER_TEMP) {
    process.env.RUNNER_TEMP = path.join(cacheHome(), 'deployguard', 'temp');
  }
}

/**
 * tool-cache writes `::debug::` lines and echoes the commands it runs (tar, unzip) to stdout. In
 * Actions that is the log; in the CLI stdout may be `--json`, so there it goes to stderr instead.
 */
function toStderr<T>(fn: () => T): T {
  if (process.env.GITHUB_ACTIONS === 'true') return fn();
  const own = Object.getOwnPropertyDescriptor(process.stdout, 'write');
  const toErr = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;
  Object.defineProperty(process.stdout, 'write', { value: toErr, configurable: true, writable: true });
  const restore = () => {
    if (own) Object.defineProperty(process.stdout, 'write', own);
    else delete (process.stdout as { write?: unknown }).write;
  };
  let result: T;
  try {
    result = fn();
  } catch (err) {
    restore();
    throw err;
  }
  if (result instanceof Promise) return result.finally(restore) as T;
  restore();
  return result;
}

/** Why `p` cannot be run, or undefined when it can. */
async function notExecutable(
  p: string,
  platform: NodeJS.Platform = process.platform
): Promise<string | undefined> {
  let st;
  try {
    st = await stat(p);
  } catch {
    return 'does not exist';
  }
  if (!st.isFile()) return 'is not a file';
  if (platform === 'win32' || process.platform === 'win32') return undefined;
  try {
    await access(p, fsConstants.X_OK);
  } catch {
    return 'is not executable';
  }
  return undefined;
}

/** The first executable `gitleaks` in env.PATH (searched here: no `which`). */
async function findOnPath(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const isWin = process.platform === 'win32';
  const pathVar = (isWin ? (env.Path ?? env.PATH) : env.PATH) ?? '';
  const exts = isWin ? ['', ...(env.PATHEXT ?? '.EXE;.CMD;.BAT;.COM').split(';').filter(Boolean)] : [''];
  for (const dir of pathVar.split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = path.resolve(dir, `gitleaks${ext}`);
      if (!(await notExecutable(candidate))) return candidate;
    }
  }
  return undefined;
}

type Probe = { ok: true; version: string } | { ok: false; detail: string };

/**
 * Runs `<bin> version`. gitleaks 8 prints its version and nothing else (a build without
 * version flags prints "version is set by build process"); anything else is not gitleaks.
 */
async function probeVersion(bin: string, env: NodeJS.ProcessEnv): Promise<Probe> {
  const r = await runProcess(bin, ['version'], {
    env,
    timeoutMs: VERSION_TIMEOUT_MS,
    maxOutputBytes: 1024 * 1024
  });
  const code =
    r.outcome === 'timeout' ? 'timeout' : r.outcome === 'error' ? (r.error?.code ?? 1) : (r.code ?? 1);
  const result = { code, out: r.stdout.toString('utf8'), err: r.stderr.toString('utf8') };
  const out = result.out.trim();
  if (result.code !== 0) {
    const why =
      result.code === 'timeout'
        ? `did not finish in ${VERSION_TIMEOUT_MS / 1000} s`
        : `failed (${result.code})`;
    return { ok: false, detail: `${why}${summary(result.err || out)}` };
  }
  const m = /^v?(\d+\.\d+\.\d+[0-9A-Za-z.+-]*)$/.exec(out);
  if (m) return { ok: true, version: m[1]! };
  if (out === 'version is set by build process') return { ok: true, version: 'unknown' };
  return {
    ok: false,
    detail: `printed ${out ? JSON.stringify(truncate(out)) : 'nothing'} instead of a version`
  };
}

function summary(text: string): string {
  const t = text.trim();
  return t ? `: ${truncate(t)}` : '';
}

function truncate(text: string, max = 200): string {
  const one = text.replace(/\s+/g, ' ');
  return one.length > max ? `${one.slice(0, max)}…` : one;
}

function errorText(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    return err.errors.map(e => errorText(e)).join('; ');
  }
  if (err instanceof Error) return err.message || ((err as NodeJS.ErrnoException).code ?? err.name);
  return String(err);
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Loaded only when no gitleaks is given or on PATH: most runs never need it. */
function toolCache(): Promise<typeof import('@actions/tool-cache')> {
  return import('@actions/tool-cache');
}
