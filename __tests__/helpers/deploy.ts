import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/demo/sandbox.js';
import { runDeploy, type RunOptions } from '../../src/deploy.js';
import { memoryLogger } from '../../src/io/log.js';
import type { DeployResult } from '../../src/execute/result.js';
import { parseSettings } from '../../src/settings/parse.js';
import type { Settings } from '../../src/settings/types.js';

export { freePort };

/** Host fields the deploy helpers need (the harness hosts and the demo sandbox both have them). */
export interface HostLike {
  readonly name?: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly privateKey: string;
  readonly knownHostsLine: string;
}

const APP = join(process.cwd(), 'examples', 'app', 'server.js');

/** The releases this test file made: removed after its last test, so runs leave nothing in the temp directory. */
const made: string[] = [];
afterAll(async () => {
  await Promise.all(made.splice(0).map(d => rm(d, { recursive: true, force: true })));
});

/** A release of the sample app: server.js, VERSION and, to break it on purpose, FAULT. */
export async function makeRelease(
  version: string,
  fault?: string,
  extra: Record<string, string> = {}
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `dg-artifact-${version}-`));
  made.push(dir);
  await copyFile(APP, join(dir, 'server.js'));
  await writeFile(join(dir, 'VERSION'), `${version}\n`);
  if (fault) await writeFile(join(dir, 'FAULT'), `${fault}\n`);
  for (const [name, content] of Object.entries(extra)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}

/** Settings for a deploy to one test host, from inputs plus a YAML body, as the action parses them. */
export function settingsFor(
  host: HostLike,
  inputs: Record<string, string>,
  yaml = 'version: 1',
  env: Record<string, string> = {}
): Settings {
  return parseSettings({
    input: n =>
      ({
        host: host.host,
        'host-name': host.name ?? 'test-host',
        port: String(host.port),
        user: host.user,
        'known-hosts': host.knownHostsLine,
        'ssh-key': host.privateKey,
        'lock-wait': '0s',
        'connect-timeout': '5s',
        ...inputs
      })[n],
    env,
    configText: yaml,
    configPath: 'test.yml',
    now: new Date(),
    onSecret: () => {}
  });
}

/**
 * The YAML of a `command` service running the sample app with a pidfile, plus its health check.
 * `extra` is appended (more top-level keys); the stability window is off unless asked for.
 */
export function commandServiceYaml(
  appPort: number,
  runDir: string,
  extra = '',
  opts: {
    window?: string;
    appEnv?: string;
    preDeploy?: string;
    checks?: readonly string[];
    rollback?: 'auto' | 'off';
  } = {}
): string {
  return [
    'version: 1',
    'service:',
    '  manager: command',
    `  start: ${opts.appEnv ? `${opts.appEnv} ` : ''}PORT=${appPort} nohup node server.js > ${runDir}/app.log 2>&1 & echo $! > ${runDir}/app.pid`,
    `  pidfile: ${runDir}/app.pid`,
    '  stop-grace: 3s',
    '  settle: 500ms',
    '  start-timeout: 10s',
    'checks:',
    `  - { name: health, type: http, url: "http://127.0.0.1:${appPort}/health", timeout: 1s, retries: 3, interval: 300ms }`,
    ...(opts.checks ?? []).map(c => `  - ${c}`),
    `post-deploy: { stability-window: ${opts.window ?? '0s'}, rollback: ${opts.rollback ?? 'auto'} }`,
    ...(opts.preDeploy ? [`pre-deploy: ${opts.preDeploy}`] : []),
    extra
  ].join('\n');
}

export async function deployQuiet(
  settings: Settings,
  opts: Omit<RunOptions, 'log'> = {}
): Promise<{ result: DeployResult; log: string[] }> {
  const log = memoryLogger();
  const result = await runDeploy(settings, { ...opts, log });
  return { result, log: log.lines };
}

/** GET a URL's body on a fresh connection (a pooled one may point at a process since replaced). */
export function get(url: string): Promise<string> {
  return new Promise(resolve => {
    const req = httpGet(url, { agent: false, timeout: 3000 }, res => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body.trim()));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', err => resolve(`unreachable: ${err.message}`));
  });
}

/** Kills the sample app whose pid the `command` service wrote (tests end with nothing running). */
export function killPidfile(pidfile: string): void {
  const pid = Number(existsSync(pidfile) ? readFileSync(pidfile, 'utf8').trim() : 0);
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/**
 * A bundled entry point (`dist/<name>/index.cjs`) in a subprocess. Async on purpose: the servers
 * it talks to (HTTP checks, the fake GitHub API) live in this process and must keep answering.
 */
export function runBundle(
  entry: string,
  args: readonly string[],
  opts: { readonly cwd?: string; readonly env: Record<string, string>; readonly prefix?: readonly string[] }
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // `prefix` runs node under another program (strace, to see how files are opened).
  const [command, ...rest] = [...(opts.prefix ?? []), process.execPath];
  return new Promise((resolve, reject) => {
    const child = spawn(command!, [...rest, join(process.cwd(), 'dist', entry, 'index.cjs'), ...args], {
      cwd: opts.cwd,
      env: opts.env,
      timeout: 120_000
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', code => resolve({ code, stdout, stderr }));
  });
}

/** Reads the runner's `name<<delimiter` output file format. */
export function parseOutputs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /^([^<\n]+)<<(\S+)\n([\s\S]*?)\n\2$/gm;
  for (const m of text.matchAll(re)) out[m[1]!] = m[3]!;
  return out;
}

/**
 * An action entry (`dist/<entry>/index.cjs`) as the runner runs it: inputs as INPUT_* variables,
 * fresh GITHUB_OUTPUT/STATE/STEP_SUMMARY files in `dir`, and the GITHUB_* context given in `env`.
 */
export async function runActionEntry(
  entry: string,
  inputs: Record<string, string>,
  opts: { readonly dir: string; readonly env: Record<string, string> }
) {
  const files = join(opts.dir, `gh-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(files, { recursive: true });
  const paths = {
    output: join(files, 'output'),
    state: join(files, 'state'),
    summary: join(files, 'summary')
  };
  for (const p of Object.values(paths)) writeFileSync(p, '');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    GITHUB_ACTIONS: 'true',
    GITHUB_OUTPUT: paths.output,
    GITHUB_STATE: paths.state,
    GITHUB_STEP_SUMMARY: paths.summary,
    GITHUB_REF: 'refs/heads/main',
    GITHUB_ACTOR: 'octocat',
    GITHUB_SERVER_URL: 'https://github.com',
    // As on a runner: the run's files (record, SARIF) go under it, and the test's dir is removed.
    RUNNER_TEMP: files,
    ...opts.env
  };
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
  const r = await runBundle(entry, [], { env });
  return {
    code: r.code,
    stdout: r.stdout,
    stderr: r.stderr,
    outputs: parseOutputs(readFileSync(paths.output, 'utf8')),
    state: readFileSync(paths.state, 'utf8'),
    summary: readFileSync(paths.summary, 'utf8')
  };
}
