/**
 * Self-test of the host harness: every other integration test trusts these hosts to be what they
 * claim, so this checks them against independent tools (ssh-keyscan, ssh-keygen, the plain ssh
 * client, node's own HTTP client) rather than against the harness itself.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import {
  HOSTS_DIR,
  makeKeyPair,
  startSshd,
  startSystemdHost,
  type SystemdHost,
  type TestHost
} from '../harness/hosts.js';
import { startTestHost } from '../helpers/test-host.js';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], input?: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', code => resolve({ code: code ?? -1, stdout, stderr }));
    // A command that exits without reading its input (ssh-keygen) makes this write fail with
    // EPIPE under load; its exit code and output still say how it went.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/** The plain ssh client with an explicit key and known_hosts, independent of TestHost.exec. */
async function sshWith(
  host: TestHost,
  opts: { privateKey: string; knownHostsLine: string },
  command: string
): Promise<Result> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dg-harness-test-'));
  try {
    fs.writeFileSync(path.join(dir, 'key'), opts.privateKey, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'known_hosts'), `${opts.knownHostsLine}\n`);
    return await run('ssh', [
      '-F',
      '/dev/null',
      '-i',
      path.join(dir, 'key'),
      '-p',
      String(host.port),
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'IdentityAgent=none',
      '-o',
      'BatchMode=yes',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `UserKnownHostsFile=${path.join(dir, 'known_hosts')}`,
      '-o',
      'GlobalKnownHostsFile=/dev/null',
      `${host.user}@${host.host}`,
      command
    ]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** What ssh-keyscan (not the harness) says the host's ed25519 key is, and its fingerprint per ssh-keygen. */
async function scan(host: TestHost): Promise<{ line: string; fingerprint: string }> {
  const r = await run('ssh-keyscan', ['-t', 'ed25519', '-p', String(host.port), host.host]);
  const line = r.stdout.split('\n').find(l => l.startsWith(`[${host.host}]:${host.port} `));
  if (!line) throw new Error(`ssh-keyscan found no key: ${r.stderr}`);
  const fp = await run('ssh-keygen', ['-lf', '-'], `${line}\n`);
  return { line, fingerprint: fp.stdout.trim().split(/\s+/)[1] ?? '' };
}

function refusesConnections(port: number): Promise<boolean> {
  return new Promise(resolve => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.on('connect', () => {
      sock.destroy();
      resolve(false);
    });
    sock.on('error', () => resolve(true));
  });
}

function instanceDirsOf(name: string): string[] {
  try {
    return fs.readdirSync(HOSTS_DIR).filter(e => e.startsWith(`${name}-`));
  } catch {
    return [];
  }
}

/** Expectations shared by both kinds of host. */
async function expectHonestIdentity(host: TestHost): Promise<void> {
  expect(host.host).toBe('127.0.0.1');
  expect(host.user).toBe('root');
  expect(host.privateKey).toMatch(
    /^-----BEGIN OPENSSH PRIVATE KEY-----\n[\s\S]+-----END OPENSSH PRIVATE KEY-----\n$/
  );
  expect(host.knownHostsLine).toMatch(
    new RegExp(`^\\[127\\.0\\.0\\.1\\]:${host.port} ssh-ed25519 AAAA[A-Za-z0-9+/=]+$`)
  );
  expect(host.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  const scanned = await scan(host);
  expect(scanned.line).toBe(host.knownHostsLine);
  expect(scanned.fingerprint).toBe(host.fingerprint);
}

describe('plain sshd hosts', () => {
  let a: TestHost;
  let b: TestHost;

  beforeAll(async () => {
    // Started together: a fleet must come up in parallel without port or file clashes.
    [a, b] = await Promise.all([startSshd({ name: 'sshd-a' }), startSshd({ name: 'sshd-b' })]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test('identity: known_hosts line and fingerprint are what ssh-keyscan and ssh-keygen see', async () => {
    await expectHonestIdentity(a);
    await expectHonestIdentity(b);
  });

  test('two hosts at once are distinct servers with distinct keys', async () => {
    expect(a.port).not.toBe(b.port);
    expect(a.fingerprint).not.toBe(b.fingerprint);
    expect(a.privateKey).not.toBe(b.privateKey);
    const [ra, rb] = await Promise.all([a.exec('echo from-a'), b.exec('echo from-b')]);
    expect(ra).toEqual({ code: 0, stdout: 'from-a\n', stderr: '' });
    expect(rb).toEqual({ code: 0, stdout: 'from-b\n', stderr: '' });
    // Each host authorizes only its own key.
    const cross = await sshWith(b, { privateKey: a.privateKey, knownHostsLine: b.knownHostsLine }, 'true');
    expect(cross.code).toBe(255);
    expect(cross.stderr).toMatch(/Permission denied \(publickey\)/);
  });

  test('exec returns exit codes, stdout and stderr faithfully', async () => {
    // Run side by side: each command is its own ssh connection, and concurrent ones must not mix.
    // (Each costs about a second on the dev machine, whose root ~/.bashrc, sourced by bash for
    // every ssh command, runs `pyenv init`.)
    const [ok, three, high, mixed, quoted, who] = await Promise.all([
      a.exec('true'),
      a.exec('exit 3'),
      a.exec('exit 254'),
      a.exec("printf 'out 1\\nout ✓\\n'; printf 'err\\n' >&2; exit 7"),
      // The command reaches a remote shell as one string: quoting and pipes behave as over plain ssh.
      a.exec(`echo "a  b" | tr a-z A-Z; echo $((6*7))`),
      // It really is this machine, as root.
      a.exec('id -u; hostname')
    ]);
    expect(ok).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(three).toEqual({ code: 3, stdout: '', stderr: '' });
    expect(high).toEqual({ code: 254, stdout: '', stderr: '' });
    expect(mixed).toEqual({ code: 7, stdout: 'out 1\nout ✓\n', stderr: 'err\n' });
    expect(quoted).toEqual({ code: 0, stdout: 'A  B\n42\n', stderr: '' });
    expect(who).toEqual({ code: 0, stdout: `0\n${os.hostname()}\n`, stderr: '' });
  });

  test('a wrong key is refused', async () => {
    const wrong = await makeKeyPair();
    expect(wrong.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----/);
    expect(wrong.publicKey).toMatch(/^ssh-ed25519 AAAA/);
    const r = await sshWith(a, { privateKey: wrong.privateKey, knownHostsLine: a.knownHostsLine }, 'true');
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/Permission denied \(publickey\)/);
    // The right key through the same path works, so the refusal was about the key.
    const ok = await sshWith(a, { privateKey: a.privateKey, knownHostsLine: a.knownHostsLine }, 'echo ok');
    expect(ok).toMatchObject({ code: 0, stdout: 'ok\n' });
  });

  test('a host presenting another host key is refused (the pin is real)', async () => {
    // b's key pinned for a's address: what a man in the middle on a's port would look like.
    const pinnedWrong = b.knownHostsLine.replace(`:${b.port} `, `:${a.port} `);
    const r = await sshWith(a, { privateKey: a.privateKey, knownHostsLine: pinnedWrong }, 'true');
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  test('makeKeyPair with a passphrase gives an encrypted key', async () => {
    const kp = await makeKeyPair({ passphrase: 'correct horse' });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dg-harness-test-'));
    try {
      const file = path.join(dir, 'key');
      fs.writeFileSync(file, kp.privateKey, { mode: 0o600 });
      expect((await run('ssh-keygen', ['-y', '-P', '', '-f', file])).code).not.toBe(0);
      const derived = await run('ssh-keygen', ['-y', '-P', 'correct horse', '-f', file]);
      expect(derived.code).toBe(0);
      expect(derived.stdout.trim().split(' ').slice(0, 2)).toEqual(kp.publicKey.split(' ').slice(0, 2));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('stop() kills the server, removes its directory, and is idempotent', async () => {
    const c = await startSshd({ name: 'sshd-stopme' });
    expect(instanceDirsOf('sshd-sshd-stopme')).toHaveLength(1);
    const dir = path.join(HOSTS_DIR, instanceDirsOf('sshd-sshd-stopme')[0] ?? '');
    const pid = Number(fs.readFileSync(path.join(dir, 'sshd.pid'), 'utf8'));
    // A session still running at stop() time must not outlive the host. (An unusual duration, so
    // that pgrep below cannot mistake anyone else's sleep for it.)
    const sleep = `sleep ${3000 + Math.floor(Math.random() * 1000)}`;
    const sleeper = c.exec(sleep);
    await new Promise(r => setTimeout(r, 300));
    await Promise.all([c.stop(), c.stop()]);
    await c.stop();
    expect(await sleeper).toMatchObject({ code: 255 });
    expect(fs.existsSync(`/proc/${pid}`) && !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))).toBe(
      false
    );
    expect(await refusesConnections(c.port)).toBe(true);
    expect(instanceDirsOf('sshd-sshd-stopme')).toHaveLength(0);
    // The session's process gets its signal at stop(); give the kernel a moment to take it away
    // (a zombie left for a slow reaper has no command line, so pgrep -f no longer sees it).
    let left = '';
    for (let i = 0; i < 30; i++) {
      left = (await run('pgrep', ['-f', sleep])).stdout;
      if (left === '') break;
      await new Promise(r => setTimeout(r, 100));
    }
    expect(left).toBe('');
  });
});

/** GET http://127.0.0.1:port/path from this process; null if nothing answers. */
function httpGet(port: number, urlPath: string): Promise<{ status: number; body: string } | null> {
  return new Promise(resolve => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, timeout: 2000 }, res => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', () => resolve(null));
    req.on('timeout', () => req.destroy());
  });
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise(r => setTimeout(r, 200));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

function showProps(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .trim()
      .split('\n')
      .map(l => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])
  );
}

/**
 * A unit running a node HTTP server. `$` and `%` are special in unit files, so the code avoids them;
 * it logs to stdout, which systemd sends to the journal.
 */
function httpUnit(port: number, greeting: string): string {
  const code =
    `const h=require('http');` +
    `h.createServer((q,s)=>{console.log('request '+q.url);s.end('${greeting} from '+require('os').hostname())})` +
    `.listen(${port},'127.0.0.1',()=>console.log('listening on ${port}'))`;
  return [
    '[Unit]',
    'Description=deployguard harness self-test HTTP server',
    '[Service]',
    `ExecStart=/usr/bin/node -e "${code}"`,
    'Restart=always',
    'RestartSec=200ms',
    '[Install]',
    'WantedBy=multi-user.target',
    ''
  ].join('\n');
}

describe('systemd host', () => {
  let h: SystemdHost;

  beforeAll(async () => {
    h = await startSystemdHost({ name: 'systemd-selftest' });
  }, 60_000);
  afterAll(async () => {
    await h?.stop();
  }, 30_000);

  test('identity: known_hosts line and fingerprint are what ssh-keyscan and ssh-keygen see', async () => {
    await expectHonestIdentity(h);
  });

  test('is a real systemd host of its own, up and running', async () => {
    const r = await h.exec(
      'cat /proc/1/comm; hostname; systemctl is-system-running; . /etc/os-release; echo $VERSION_CODENAME'
    );
    expect(r).toEqual({ code: 0, stdout: 'systemd\nsystemd-selftest\nrunning\nbookworm\n', stderr: '' });
    expect(
      (await h.exec('systemctl is-active ssh.service systemd-journald.service dbus.service')).stdout
    ).toBe('active\nactive\nactive\n');
    expect(await h.exec('exit 42')).toEqual({ code: 42, stdout: '', stderr: '' });
  });

  test('a wrong key is refused', async () => {
    const wrong = await makeKeyPair();
    const r = await sshWith(h, { privateKey: wrong.privateKey, knownHostsLine: h.knownHostsLine }, 'true');
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/Permission denied \(publickey\)/);
  });

  test('rootfs is the host filesystem, seen from this machine', async () => {
    await h.exec('echo written-inside > /root/marker');
    expect(fs.readFileSync(path.join(h.rootfs, 'root/marker'), 'utf8')).toBe('written-inside\n');
    fs.writeFileSync(path.join(h.rootfs, 'root/from-outside'), 'written-outside\n');
    expect((await h.exec('cat /root/from-outside')).stdout).toBe('written-outside\n');
  });

  test('unit lifecycle: start, reach from here, restart on crash, journal, stop', async () => {
    const port = await freePort();
    fs.writeFileSync(path.join(h.rootfs, 'etc/systemd/system/dg-http.service'), httpUnit(port, 'hello'));
    const start = await h.exec('systemctl daemon-reload && systemctl start dg-http.service');
    expect(start).toMatchObject({ code: 0 });

    // Shared network: the service's 127.0.0.1:port is this machine's.
    const res = await eventually(
      () => httpGet(port, '/first'),
      v => v !== null
    );
    expect(res).toEqual({ status: 200, body: 'hello from systemd-selftest' });

    const props = showProps(
      (await h.exec('systemctl show -p MainPID -p ActiveState -p NRestarts dg-http')).stdout
    );
    expect(props.ActiveState).toBe('active');
    expect(props.NRestarts).toBe('0');
    const mainPid = Number(props.MainPID);
    expect(mainPid).toBeGreaterThan(1);
    expect((await h.exec(`cat /proc/${mainPid}/comm`)).stdout).toBe('node\n');

    // Crash it: systemd must notice and restart it (Restart=always), with a new main PID.
    expect((await h.exec(`kill -9 ${mainPid}`)).code).toBe(0);
    const after = await eventually(
      async () =>
        showProps((await h.exec('systemctl show -p MainPID -p ActiveState -p NRestarts dg-http')).stdout),
      p => p.NRestarts === '1' && p.ActiveState === 'active'
    );
    expect(after.NRestarts).toBe('1');
    expect(Number(after.MainPID)).not.toBe(mainPid);
    const again = await eventually(
      () => httpGet(port, '/second'),
      v => v !== null
    );
    expect(again?.body).toBe('hello from systemd-selftest');

    // The journal has the service's own output, from both runs.
    const journal = await eventually(
      async () => (await h.exec('journalctl -u dg-http.service --no-pager -o cat')).stdout,
      out => out.includes('request /second')
    );
    expect(journal).toContain(`listening on ${port}`);
    expect(journal).toContain('request /first');
    expect(journal).toContain('request /second');
    expect(journal.split(`listening on ${port}`).length - 1).toBe(2);

    expect((await h.exec('systemctl stop dg-http.service')).code).toBe(0);
    expect((await h.exec('systemctl is-active dg-http.service')).stdout.trim()).toBe('inactive');
    expect(await refusesConnections(port)).toBe(true);
  });

  test('two systemd hosts at once are independent', async () => {
    const other = await startSystemdHost({ name: 'systemd-other' });
    try {
      expect(other.port).not.toBe(h.port);
      expect(other.fingerprint).not.toBe(h.fingerprint);
      expect(other.rootfs).not.toBe(h.rootfs);
      // Each has its own copy of the root: one host's files are not the other's.
      await h.exec('echo mine > /root/only-here');
      expect((await other.exec('test -e /root/only-here')).code).toBe(1);
      expect((await other.exec('hostname; cat /etc/machine-id')).stdout).not.toBe(
        (await h.exec('hostname; cat /etc/machine-id')).stdout
      );

      // The same unit name on both: stopping it on one host must not touch the other's.
      const [p1, p2] = [await freePort(), await freePort()];
      fs.writeFileSync(path.join(h.rootfs, 'etc/systemd/system/dg-twin.service'), httpUnit(p1, 'one'));
      fs.writeFileSync(path.join(other.rootfs, 'etc/systemd/system/dg-twin.service'), httpUnit(p2, 'two'));
      for (const host of [h, other]) {
        expect((await host.exec('systemctl daemon-reload && systemctl start dg-twin')).code).toBe(0);
      }
      expect(
        await eventually(
          () => httpGet(p2, '/'),
          v => v !== null
        )
      ).toEqual({ status: 200, body: 'two from systemd-other' });
      expect((await h.exec('systemctl stop dg-twin')).code).toBe(0);
      expect(await refusesConnections(p1)).toBe(true);
      expect(await httpGet(p2, '/')).toEqual({ status: 200, body: 'two from systemd-other' });
      expect(
        showProps((await other.exec('systemctl show -p ActiveState -p NRestarts dg-twin')).stdout)
      ).toEqual({
        NRestarts: '0',
        ActiveState: 'active'
      });
    } finally {
      await other.stop();
    }
  }, 60_000);

  test('stop() leaves no process, mount, cgroup or directory behind, and is idempotent', async () => {
    const t = await startSystemdHost({ name: 'systemd-stopme' });
    const [dirName] = instanceDirsOf('systemd-systemd-stopme');
    expect(dirName).toBeDefined();
    const dir = path.join(HOSTS_DIR, dirName ?? '');
    const state = JSON.parse(fs.readFileSync(path.join(dir, 'instance.json'), 'utf8')) as {
      root: string;
      cgroups: string[];
      systemd: { pid: number };
    };
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).toContain(` ${state.root} `);
    // A service left running must go down with the host.
    const sleep = `sleep ${3000 + Math.floor(Math.random() * 1000)}`;
    expect((await t.exec(`systemd-run --unit=dg-sleeper ${sleep}`)).code).toBe(0);
    expect((await run('pgrep', ['-f', sleep])).stdout).not.toBe('');

    await Promise.all([t.stop(), t.stop()]);
    await t.stop();

    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(state.root);
    expect(fs.existsSync(dir)).toBe(false);
    for (const cg of state.cgroups) expect(fs.existsSync(cg)).toBe(false);
    const stat = fs.existsSync(`/proc/${state.systemd.pid}/stat`)
      ? fs.readFileSync(`/proc/${state.systemd.pid}/stat`, 'utf8')
      : '';
    expect(stat === '' || /\) Z /.test(stat)).toBe(true);
    expect((await run('pgrep', ['-f', sleep])).stdout).toBe('');
    expect(await refusesConnections(t.port)).toBe(true);
  }, 60_000);
});

describe('startTestHost', () => {
  /** Work directories whose names start with `dg-<prefix>-` (mkdtemp adds six characters). */
  const workDirsOf = (prefix: string): string[] =>
    fs.readdirSync(os.tmpdir()).filter(e => e.startsWith(`dg-${prefix}-`) && e.length === prefix.length + 10);

  test('a sandbox comes with a 755 work dir, a run dir its user owns, and a stop() that undoes it all, once', async () => {
    const prefix = `selftest-${process.pid}`;
    const t = await startTestHost({ prefix });
    expect(workDirsOf(prefix)).toEqual([path.basename(t.work)]);
    expect(fs.statSync(t.work).mode & 0o777).toBe(0o755);
    expect(t.runDir).toBe(path.join(t.work, 'run'));
    expect(t.target).toBe(path.join(t.runDir, 'srv', 'app'));
    const owner = Number((await run('id', ['-u', t.host.user])).stdout.trim());
    expect(fs.statSync(t.runDir).uid).toBe(owner);
    expect(fs.statSync(await t.ownedDir(path.join(t.work, 'more', 'dirs'))).uid).toBe(owner);
    expect(await refusesConnections(t.host.port)).toBe(false);
    expect(await refusesConnections(t.appPort)).toBe(true);
    // An app left running from the run directory goes down with the host.
    const app = spawn('sleep', ['300'], { stdio: 'ignore' });
    fs.writeFileSync(path.join(t.runDir, 'app.pid'), `${app.pid}\n`);
    const gone = new Promise(resolve => app.on('exit', (_code, signal) => resolve(signal)));

    await Promise.all([t.stop(), t.stop()]);
    await t.stop();

    expect(await gone).toBe('SIGKILL');
    expect(fs.existsSync(t.work)).toBe(false);
    expect(workDirsOf(prefix)).toEqual([]);
    // The sandbox's stop() signals its sshd without waiting for it to exit.
    expect(
      await eventually(
        () => refusesConnections(t.host.port),
        gone => gone,
        5000
      )
    ).toBe(true);
  });

  test('a host that does not start leaves no work dir behind', async () => {
    const prefix = `selftest-broken-${process.pid}`;
    await expect(
      startTestHost({ kind: 'sshd', name: 'sshd-broken', prefix, extraConfig: ['NoSuchOption yes'] })
    ).rejects.toThrow(/startSshd\(sshd-broken\)/);
    expect(workDirsOf(prefix)).toEqual([]);
    expect(instanceDirsOf('sshd-sshd-broken')).toEqual([]);
  });
});
