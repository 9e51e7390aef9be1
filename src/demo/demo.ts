import { existsSync, realpathSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { runDeploy } from '../deploy.js';
import type { Logger } from '../io/log.js';
import { processEnv, runChecked } from '../io/process.js';
import { verdictLine } from '../report/summary.js';
import { parseSettings } from '../settings/parse.js';
import { freePort, SSHD, startSandbox, type Sandbox } from './sandbox.js';

/** Finds examples/app whether we run from the bundle (dist/cli) or from the sources. */
function sampleApp(): string {
  const candidates = [
    // Joined from parts so the bundler does not copy the sample app into dist/ as an asset.
    // The real path: an installed `deployguard` is a symlink in the prefix's bin/.
    resolve(dirname(realpathSync(process.argv[1] ?? '.')), ...['..', '..', 'examples', 'app']),
    resolve(process.cwd(), ...['examples', 'app'])
  ];
  const found = candidates.find(c => existsSync(join(c, 'server.js')));
  if (!found)
    throw new Error(
      `examples/app/server.js not found (looked in ${candidates.join(', ')}); run the demo from the repository`
    );
  return found;
}

async function buildRelease(root: string, version: string, fault?: string): Promise<string> {
  const dir = join(root, `artifact-${version}`);
  await mkdir(dir, { recursive: true });
  await copyFile(join(sampleApp(), 'server.js'), join(dir, 'server.js'));
  await writeFile(join(dir, 'VERSION'), `${version}\n`);
  if (fault) await writeFile(join(dir, 'FAULT'), `${fault}\n`);
  return dir;
}

async function ensureSshd(log: Logger): Promise<void> {
  if (existsSync(SSHD)) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`The demo needs OpenSSH's server. Run: sudo apt-get install -y openssh-server`);
  }
  log.info('Installing openssh-server (the demo runs a throw-away sshd on loopback)…');
  // apt-get's progress is shown as it comes; it may take a few minutes on a slow mirror.
  const shown = {
    timeoutMs: 15 * 60_000,
    overflow: 'tail' as const,
    maxOutputBytes: 64 * 1024,
    onOutput: (chunk: Buffer, stream: 'stdout' | 'stderr') => void process[stream].write(chunk)
  };
  await runChecked('apt-get', ['update', '-q'], shown);
  await runChecked('apt-get', ['install', '-y', '-q', 'openssh-server'], {
    ...shown,
    env: processEnv(process.env, { set: { DEBIAN_FRONTEND: 'noninteractive' } })
  });
}

async function fetchText(url: string): Promise<string> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
    return (await r.text()).trim();
  } catch (err) {
    return `unreachable (${(err as Error).message})`;
  }
}

/**
 * The built-in demo: a sandbox sshd on loopback, a sample app deployed as v1 (healthy), then as
 * v2 with a deliberate fault. v2 fails its health check, deployguard rolls back on its own, and
 * v1 is shown to still answer. Returns the exit code.
 */
export async function runDemo(log: Logger): Promise<number> {
  await ensureSshd(log);
  const work = await mkdtemp(join(tmpdir(), 'deployguard-demo-'));
  let sandbox: Sandbox | undefined;
  const home = join(work, 'home');
  const pidfile = join(home, 'app.pid');
  try {
    sandbox = await startSandbox();
    await mkdir(home, { recursive: true });
    // The sandbox logs in as an unprivileged user when we are root: give it the demo's directory.
    if (process.getuid?.() === 0)
      await runChecked('chown', ['-R', `${sandbox.user}:`, home], { timeoutMs: 60_000 });
    await chmod(work, 0o755);
    const port = await freePort();
    log.info(
      `Sandbox host: ${sandbox.user}@127.0.0.1:${sandbox.port} (host key pinned); the app will listen on 127.0.0.1:${port}`
    );
    const config = [
      'version: 1',
      'environment: demo',
      'target:',
      `  path: ${join(home, 'srv', 'demo-app')}`,
      '  keep-releases: 3',
      'service:',
      '  manager: command',
      `  start: PORT=${port} nohup node server.js > ${join(home, 'app.log')} 2>&1 & echo $! > ${pidfile}`,
      `  pidfile: ${pidfile}`,
      '  stop-grace: 5s',
      '  settle: 1s',
      '  start-timeout: 10s',
      'checks:',
      `  - { name: app health, type: http, url: "http://127.0.0.1:${port}/health", timeout: 2s, retries: 4, interval: 500ms }`,
      'post-deploy: { stability-window: 3s }'
    ].join('\n');
    const settingsFor = (artifact: string, release: string) =>
      parseSettings({
        input: name =>
          ({
            host: '127.0.0.1',
            'host-name': 'sandbox',
            port: String(sandbox!.port),
            user: sandbox!.user,
            'known-hosts': sandbox!.knownHostsLine,
            'ssh-key': sandbox!.privateKey,
            artifact,
            'release-id': release
          })[name],
        env: {},
        configText: config,
        configPath: 'demo.yml',
        now: new Date(),
        onSecret: () => {}
      });

    log.info('\n=== Deploy v1 (healthy) ===');
    const v1 = await runDeploy(settingsFor(await buildRelease(work, 'v1'), 'v1'), { log });
    log.info(verdictLine(v1));
    const afterV1 = await fetchText(`http://127.0.0.1:${port}/`);
    log.info(`GET / -> ${afterV1}`);

    log.info('\n=== Deploy v2 (its /health answers 500: a deliberate fault) ===');
    const v2 = await runDeploy(settingsFor(await buildRelease(work, 'v2', 'unhealthy'), 'v2'), { log });
    log.info(verdictLine(v2));
    const afterV2 = await fetchText(`http://127.0.0.1:${port}/`);
    log.info(`GET / -> ${afterV2}`);

    const ok =
      v1.status === 'deployed' && afterV1 === 'v1' && v2.status === 'rolled-back' && afterV2 === 'v1';
    process.stdout.write(
      ok
        ? 'demo passed: v1 deployed; v2 failed its health check and was rolled back automatically; v1 still answers.\n'
        : `demo FAILED: v1=${v1.status} (answered "${afterV1}"), v2=${v2.status} (then answered "${afterV2}")\n`
    );
    return ok ? 0 : 1;
  } finally {
    const pid = Number((await readFile(pidfile, 'utf8').catch(() => '')).trim());
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* already stopped */
      }
    }
    await sandbox?.stop();
    await rm(work, { recursive: true, force: true });
  }
}
