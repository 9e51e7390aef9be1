// Throw-away sshd instances on loopback for the benchmarks.
//
//   node bench/lib/fleet.mjs start DIR COUNT [MOUNTPOINT HOSTS_DIR]
//        -> DIR/ports (one a line), DIR/known_hosts, DIR/user_key, DIR/fleet.json
//   node bench/lib/fleet.mjs stop DIR          -> stops every instance by the PID in its pid file
//
// With MOUNTPOINT and HOSTS_DIR, instance I runs in its own mount namespace in which
// HOSTS_DIR/host-II is bind-mounted on MOUNTPOINT: one target path in deployguard.yml, and yet
// every "host" writes to a directory of its own, as separate machines would.
//
// Every instance runs as root (sshd needs it to switch users) but only lets the unprivileged
// account USER in: root's own logins are slow on this machine (its .bashrc starts pyenv), and a
// plain user with /bin/sh is what a deploy target looks like. All instances share one host key
// and one authorized user key; each listens on its own port with its own config, log and pid file.
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SSHD = '/usr/sbin/sshd';
export const USER = 'deployguard-sandbox';

function fail(msg) {
  console.error(`fleet: ${msg}`);
  process.exit(1);
}

/** Asks the kernel for an unused port (a tiny race with other programs is acceptable here). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function listening(port, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise(resolve => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise(r => setTimeout(r, 50));
  }
  throw new Error(`sshd on port ${port} did not listen within ${ms} ms`);
}

async function ensureUser() {
  if (process.getuid() !== 0) fail('run as root: sshd must switch to the benchmark user');
  try {
    await run('id', ['-u', USER]);
  } catch {
    await run('useradd', [
      '--system',
      '--create-home',
      '--home-dir',
      `/var/lib/${USER}`,
      '--shell',
      '/bin/sh',
      USER
    ]);
  }
  // A locked password ("!") makes sshd without PAM refuse even key logins; "*" is "no password".
  await run('usermod', ['-p', '*', USER]);
  const { stdout } = await run('getent', ['passwd', USER]);
  return stdout.trim().split(':')[5];
}

async function start(dir, count, mountpoint, hostsDir) {
  if (!existsSync(SSHD)) fail(`${SSHD} is missing: apt-get install -y openssh-server`);
  const home = await ensureUser();
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o755); // sshd reads authorized_keys as the user
  const keygen = (file, comment) =>
    run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', join(dir, file)]);
  await Promise.all([keygen('host_key', 'bench-host'), keygen('user_key', 'bench-user')]);
  await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'user_key.pub')), { mode: 0o644 });
  await mkdir('/run/sshd', { recursive: true });
  const hostPub = (await readFile(join(dir, 'host_key.pub'), 'utf8')).trim().split(/\s+/);
  const ports = [];
  for (let i = 0; i < count; i++) {
    const port = await freePort();
    const conf = join(dir, `sshd-${i}.conf`);
    await writeFile(
      conf,
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(dir, 'host_key')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        `AllowUsers ${USER}`,
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PubkeyAuthentication yes',
        'StrictModes no',
        'UsePAM no',
        'UseDNS no',
        `PidFile ${join(dir, `sshd-${i}.pid`)}`,
        'MaxStartups 100:30:200',
        'MaxSessions 50',
        // DEBUG1 logs every channel request ("request exec"): used to count remote commands.
        `LogLevel ${process.env.FLEET_LOGLEVEL ?? 'INFO'}`,
        ''
      ].join('\n')
    );
    const sshd = [SSHD, '-f', conf, '-E', join(dir, `sshd-${i}.log`)];
    let argv = sshd;
    if (mountpoint) {
      const own = join(hostsDir, `host-${String(i).padStart(2, '0')}`);
      await mkdir(own, { recursive: true });
      await run('chown', [`${USER}:`, own]);
      argv = [
        'unshare',
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        'mount --bind "$1" "$2" && shift 2 && exec "$@"',
        'sh',
        own,
        mountpoint,
        ...sshd
      ];
    }
    const child = spawn(argv[0], argv.slice(1), { stdio: 'ignore' });
    const code = await new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', resolve);
    });
    if (code !== 0) fail(`sshd exited with ${code}; see ${join(dir, `sshd-${i}.log`)}`);
    ports.push(port);
  }
  await Promise.all(ports.map(p => listening(p, 5000)));
  const knownHosts = ports.map(p => `[127.0.0.1]:${p} ${hostPub[0]} ${hostPub[1]}`).join('\n') + '\n';
  await writeFile(join(dir, 'known_hosts'), knownHosts);
  await writeFile(join(dir, 'ports'), ports.join('\n') + '\n');
  await writeFile(
    join(dir, 'fleet.json'),
    JSON.stringify(
      { user: USER, home, ports, key: join(dir, 'user_key'), knownHosts: join(dir, 'known_hosts') },
      null,
      2
    )
  );
  console.log(ports.join(' '));
}

async function stop(dir) {
  const names = await readdir(dir).catch(() => []);
  for (const name of names.filter(n => /^sshd-\d+\.pid$/.test(n))) {
    const pid = Number((await readFile(join(dir, name), 'utf8').catch(() => '')).trim());
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
  }
}

const [cmd, dir, count, mountpoint, hostsDir] = process.argv.slice(2);
if (cmd === 'start' && dir && Number(count) > 0) {
  if (mountpoint && !hostsDir) fail('MOUNTPOINT needs HOSTS_DIR');
  if (mountpoint && !existsSync(mountpoint)) fail(`mount point ${mountpoint} does not exist`);
  await start(dir, Number(count), mountpoint, hostsDir);
} else if (cmd === 'stop' && dir) await stop(dir);
else fail('usage: fleet.mjs start DIR COUNT [MOUNTPOINT HOSTS_DIR] | stop DIR');
