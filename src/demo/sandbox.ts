import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { runChecked } from '../io/process.js';

const run = (file: string, args: readonly string[]) => runChecked(file, args, { timeoutMs: 60_000 });

/** A throw-away sshd on loopback: the demo's built-in target. */
export interface Sandbox {
  readonly dir: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly privateKey: string;
  readonly knownHostsLine: string;
  stop(): Promise<void>;
}

export const SSHD = '/usr/sbin/sshd';

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>(resolve => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise(r => setTimeout(r, 50));
  }
  throw new Error(`sshd did not listen on 127.0.0.1:${port} within ${ms} ms`);
}

/**
 * The unprivileged account the sandbox logs in as when we run as root. Deploying as a plain user
 * is what production should look like, and a `/bin/sh` login shell keeps each remote command fast
 * (root's interactive bash setup on some machines costs half a second per command).
 */
export const SANDBOX_USER = 'deployguard-sandbox';

async function ensureSandboxUser(): Promise<string> {
  if (process.getuid?.() !== 0) return userInfo().username;
  try {
    await run('id', ['-u', SANDBOX_USER]);
  } catch {
    await run('useradd', [
      '--system',
      '--create-home',
      '--home-dir',
      `/var/lib/${SANDBOX_USER}`,
      '--shell',
      '/bin/sh',
      SANDBOX_USER
    ]);
  }
  // useradd leaves the password "locked" (`!`), and sshd without PAM refuses locked accounts even
  // for key logins; `*` means "no password" without the lock.
  await run('usermod', ['-p', '*', SANDBOX_USER]);
  return SANDBOX_USER;
}

export interface SandboxOptions {
  /**
   * Gives this sshd its own view of one directory (root only): `source` is bind-mounted on
   * `target` in a private mount namespace, so several sandboxes can stand in for a fleet of hosts
   * that all deploy to the same path.
   */
  readonly bind?: { readonly source: string; readonly target: string };
  /** sshd's log level (its log is `<dir>/sshd.log`); DEBUG1 shows the negotiated algorithms. */
  readonly logLevel?: 'INFO' | 'VERBOSE' | 'DEBUG1';
}

/** Starts sshd with its own host key, config and one authorized key; nothing system-wide changes. */
export async function startSandbox(opts: SandboxOptions = {}): Promise<Sandbox> {
  if (!existsSync(SSHD)) {
    throw new Error(`${SSHD} is missing. Install it with: apt-get install -y openssh-server`);
  }
  const user = await ensureSandboxUser();
  const dir = await mkdtemp(join(tmpdir(), 'deployguard-sandbox-'));
  const port = await freePort();
  const keygen = (file: string, comment: string) =>
    run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', join(dir, file)]);
  await Promise.all([keygen('host_key', 'sandbox-host'), keygen('user_key', 'sandbox-user')]);
  // sshd reads authorized_keys as the logging-in user: it must be able to reach and read it.
  await chmod(dir, 0o755);
  await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'user_key.pub')), { mode: 0o644 });
  await mkdir('/run/sshd', { recursive: true }).catch(() => undefined);
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${join(dir, 'host_key')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin prohibit-password',
    'StrictModes no',
    'UsePAM no',
    `PidFile ${join(dir, 'sshd.pid')}`,
    'MaxStartups 100:30:200',
    'MaxSessions 50',
    `LogLevel ${opts.logLevel ?? 'INFO'}`
  ].join('\n');
  await writeFile(join(dir, 'sshd_config'), config + '\n');
  const sshd = [SSHD, '-f', join(dir, 'sshd_config'), '-E', join(dir, 'sshd.log')];
  const argv = opts.bind
    ? [
        'unshare',
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        'mount --bind "$1" "$2" && shift 2 && exec "$@"',
        'sh',
        opts.bind.source,
        opts.bind.target,
        ...sshd
      ]
    : sshd;
  // sshd forks into the background (its output goes to sshd.log) and exits 0 once it listens.
  await runChecked(argv[0]!, argv.slice(1), { timeoutMs: 30_000 }).catch((err: Error) => {
    throw new Error(`sshd did not start (${err.message}); see ${dir}/sshd.log`);
  });
  await waitForPort(port, 5000);
  const hostPub = (await readFile(join(dir, 'host_key.pub'), 'utf8')).trim().split(/\s+/);
  return {
    dir,
    host: '127.0.0.1',
    port,
    user,
    privateKey: await readFile(join(dir, 'user_key'), 'utf8'),
    knownHostsLine: `[127.0.0.1]:${port} ${hostPub[0]} ${hostPub[1]}`,
    async stop() {
      const pid = Number((await readFile(join(dir, 'sshd.pid'), 'utf8').catch(() => '')).trim());
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
      }
      await rm(dir, { recursive: true, force: true });
    }
  };
}
