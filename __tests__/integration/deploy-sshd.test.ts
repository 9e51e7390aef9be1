/**
 * Guarded deploys over a real sshd on loopback, with the sample app run by a `command` service
 * (pidfile) and real HTTP health checks. Nothing here is mocked.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sandbox } from '../../src/demo/sandbox.js';
import { connectHost } from '../../src/io/ssh.js';
import { memoryLogger } from '../../src/io/log.js';
import { runDeploy } from '../../src/deploy.js';
import { sh } from '../../src/remote/shell.js';
import { LOCK_BUSY, lockAcquire } from '../../src/remote/commands.js';
import { layoutFor } from '../../src/remote/layout.js';
import { renderRecord } from '../../src/report/record.js';
import { verdictLine } from '../../src/report/summary.js';
import { HOSTILE } from '../helpers/hostile.js';
import {
  commandServiceYaml,
  deployQuiet,
  freePort,
  get,
  makeRelease,
  settingsFor
} from '../helpers/deploy.js';
import { startTestHost, type TestHost } from '../helpers/test-host.js';

let t: TestHost;
let host: Sandbox;
let base: string;
let appPort: number;
let runDir: string;

/** Gives everything under dir to the host's user (after a test wrote files there as root). */
function owned(dir: string): void {
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', `${host.user}:`, dir]);
}

beforeAll(async () => {
  t = await startTestHost({ prefix: 'sshd-test' });
  ({ host, work: base } = t);
}, 30_000);

afterAll(async () => {
  await killApp();
  await t?.stop();
});

async function killApp(): Promise<void> {
  if (!runDir) return;
  const pid = Number(
    (existsSync(join(runDir, 'app.pid')) ? readFileSync(join(runDir, 'app.pid'), 'utf8') : '').trim()
  );
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

let n = 0;
/** A fresh target directory and app port per test, so tests never see each other's releases. */
async function freshTarget(): Promise<{ target: string; yaml: (extra?: string) => string }> {
  await killApp();
  n++;
  runDir = await t.ownedDir(join(base, `run-${n}`));
  appPort = await freePort();
  const target = join(runDir, 'srv', 'app');
  return { target, yaml: (extra = '') => commandServiceYaml(appPort, runDir, extra) };
}

/** Alive means it exists and is not a zombie (orphans here may never be reaped). */
function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '')[0] !== 'Z';
  } catch {
    return false;
  }
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

describe('deploy over real sshd', () => {
  test('a healthy deploy switches current atomically, verifies every file and releases the lock', async () => {
    const { target, yaml } = await freshTarget();
    const art = await makeRelease('v1', undefined, { 'lib/util.js': 'module.exports = 1;\n' });
    const { result } = await deployQuiet(
      settingsFor(host, { artifact: art, 'target-path': target, 'release-id': 'r1' }, yaml())
    );
    expect(result.status).toBe('deployed');
    expect(result.previousRelease).toBeUndefined();
    expect(readlinkSync(join(target, 'current'))).toBe(join(target, 'releases', 'r1'));
    for (const f of ['server.js', 'VERSION', 'lib/util.js']) {
      expect(sha256(join(target, 'releases', 'r1', f))).toBe(sha256(join(art, f)));
    }
    expect(readFileSync(join(target, '.deployguard', 'status', 'r1'), 'utf8')).toMatch(/^good /);
    expect(existsSync(join(target, '.deployguard', 'lock'))).toBe(false);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v1');
  }, 60_000);

  test('a release that fails its health check is rolled back, and the old version answers', async () => {
    const { target, yaml } = await freshTarget();
    const s = (artifact: string, id: string) =>
      settingsFor(host, { artifact, 'target-path': target, 'release-id': id }, yaml());
    expect((await deployQuiet(s(await makeRelease('v1'), 'r1'))).result.status).toBe('deployed');
    const { result } = await deployQuiet(s(await makeRelease('v2', 'unhealthy'), 'r2'));
    expect(result.status).toBe('rolled-back');
    expect(result.rolledBack).toBe(true);
    expect(result.previousRelease).toBe('r1');
    expect(result.error).toMatch(/health checks failed: health: HTTP 500/);
    expect(result.hosts[0]!.rollbackChecks.every(c => c.ok)).toBe(true);
    expect(readlinkSync(join(target, 'current'))).toBe(join(target, 'releases', 'r1'));
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v1');
    // The broken release stays for debugging, marked failed so it never counts as a good one.
    expect(readFileSync(join(target, '.deployguard', 'status', 'r2'), 'utf8')).toMatch(/^failed /);
    expect(existsSync(join(target, '.deployguard', 'lock'))).toBe(false);
  }, 90_000);

  test('a release that cannot start is rolled back and the old version answers', async () => {
    const { target, yaml } = await freshTarget();
    const s = (artifact: string, id: string) =>
      settingsFor(host, { artifact, 'target-path': target, 'release-id': id }, yaml());
    expect((await deployQuiet(s(await makeRelease('v1'), 'r1'))).result.status).toBe('deployed');
    const { result } = await deployQuiet(s(await makeRelease('v2', 'crash'), 'r2'));
    expect(result.status).toBe('rolled-back');
    expect(result.error).toMatch(/service is not running/);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v1');
  }, 90_000);

  test('a failing before-switch command stops the deploy before the service is touched', async () => {
    const { target, yaml } = await freshTarget();
    const s = (artifact: string, id: string, extra: Record<string, string> = {}) =>
      settingsFor(host, { artifact, 'target-path': target, 'release-id': id, ...extra }, yaml());
    expect((await deployQuiet(s(await makeRelease('v1'), 'r1'))).result.status).toBe('deployed');
    const pidBefore = readFileSync(join(runDir, 'app.pid'), 'utf8');
    const { result } = await deployQuiet(
      s(await makeRelease('v2'), 'r2', { 'before-switch': 'echo migrating; exit 3' })
    );
    expect(result.status).toBe('failed');
    expect(result.rolledBack).toBe(false);
    expect(result.error).toMatch(/before-switch command .* failed \(exit 3\)[\s\S]*migrating/);
    expect(result.hosts[0]!.steps.map(x => x.id)).not.toContain('stop');
    expect(readFileSync(join(runDir, 'app.pid'), 'utf8')).toBe(pidBefore);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v1');
  }, 90_000);

  test('keep-releases counts good releases only; the live and last good release survive', async () => {
    const { target, yaml } = await freshTarget();
    const cfg = yaml(`target: { path: ${target}, keep-releases: 2 }`);
    const s = (artifact: string, id: string) => settingsFor(host, { artifact, 'release-id': id }, cfg);
    for (const [id, fault] of [['r1'], ['r2'], ['r3', 'unhealthy'], ['r4', 'unhealthy'], ['r5']] as const) {
      await deployQuiet(s(await makeRelease(id, fault), id));
    }
    // Good: r1, r2, r5 (keep 2 -> r2, r5). Failed: r3, r4 (keep the newest failure, r4).
    expect(readdirSync(join(target, 'releases')).sort()).toEqual(['r2', 'r4', 'r5']);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('r5');
  }, 180_000);

  test('shared entries are linked into every release and survive deploys', async () => {
    const { target, yaml } = await freshTarget();
    const cfg = yaml(`target: { path: ${target}, shared: [.env, data/] }`);
    const s = (artifact: string, id: string) => settingsFor(host, { artifact, 'release-id': id }, cfg);
    expect(
      (await deployQuiet(s(await makeRelease('v1', undefined, { '.env': 'SEED=1\n' }), 'r1'))).result.status
    ).toBe('deployed');
    writeFileSync(join(target, 'shared', 'data', 'state.db'), 'precious');
    expect(
      (await deployQuiet(s(await makeRelease('v2', undefined, { '.env': 'SEED=overwritten\n' }), 'r2')))
        .result.status
    ).toBe('deployed');
    expect(readlinkSync(join(target, 'releases', 'r2', '.env'))).toBe(join(target, 'shared', '.env'));
    expect(readFileSync(join(target, 'current', '.env'), 'utf8')).toBe('SEED=1\n');
    expect(readFileSync(join(target, 'current', 'data', 'state.db'), 'utf8')).toBe('precious');
  }, 90_000);

  test('in-place: a timestamped backup is taken and restored on rollback', async () => {
    const { target, yaml } = await freshTarget();
    const cfg = yaml(`target: { path: ${target}, strategy: in-place }`);
    const s = (artifact: string, id: string) => settingsFor(host, { artifact, 'release-id': id }, cfg);
    expect((await deployQuiet(s(await makeRelease('v1'), 'r1'))).result.status).toBe('deployed');
    expect(readFileSync(join(target, 'VERSION'), 'utf8')).toBe('v1\n');
    const { result } = await deployQuiet(s(await makeRelease('v2', 'unhealthy'), 'r2'));
    expect(result.status).toBe('rolled-back');
    expect(readFileSync(join(target, 'VERSION'), 'utf8')).toBe('v1\n');
    expect(existsSync(join(target, 'FAULT'))).toBe(false);
    const backups = readdirSync(join(target, '..')).filter(f => /^app\.backup-\d{8}-\d{6}$/.test(f));
    expect(backups).toHaveLength(1);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v1');
  }, 90_000);

  test('in-place: after a good deploy only keep-releases backups stay, the one it just took among them', async () => {
    const { target, yaml } = await freshTarget();
    const cfg = yaml(`target: { path: ${target}, strategy: in-place, keep-releases: 1 }`);
    const s = (artifact: string, id: string) => settingsFor(host, { artifact, 'release-id': id }, cfg);
    const backups = () =>
      readdirSync(join(target, '..'))
        .filter(f => /^app\.backup-\d{8}-\d{6}$/.test(f))
        .sort();
    // Backups are named to the second.
    const nextSecond = () => new Promise(r => setTimeout(r, 1100));
    for (const v of ['v1', 'v2']) {
      expect((await deployQuiet(s(await makeRelease(v), `r-${v}`))).result.status).toBe('deployed');
      await nextSecond();
    }
    const [first] = backups();
    expect(backups()).toHaveLength(1);
    const { result, log } = await deployQuiet(s(await makeRelease('v3'), 'r-v3'));
    expect(result.status).toBe('deployed');
    // The probe listed only the first backup; the one this deploy took counts too, and is the newest.
    expect(backups()).toHaveLength(1);
    expect(backups()[0]! > first!).toBe(true);
    expect(log.join('\n')).toContain(`pruned 1: ${first}`);
    expect(readFileSync(join(target, 'VERSION'), 'utf8')).toBe('v3\n');
  }, 90_000);

  test('a lock taken over before the finish: the release is recorded once, nothing is pruned, the lock is left to its owner', async () => {
    const { target, yaml } = await freshTarget();
    const cfg = yaml(`target: { path: ${target}, keep-releases: 1 }`);
    const s = (id: string) => settingsFor(host, { artifact: release, 'release-id': id }, cfg);
    const release = await makeRelease('v1');
    expect((await deployQuiet(s('k1'))).result.status).toBe('deployed');
    // As the last step ends, another deploy takes the lock over (its owner file, as a takeover writes it).
    const owner = join(target, '.deployguard', 'lock', 'owner');
    const inner = memoryLogger();
    const log = {
      ...inner,
      info: (m: string) => {
        inner.info(m);
        if (m.includes('✓ Post-deploy health checks')) writeFileSync(owner, '{"token":"another-deploy"}\n');
      }
    };
    const result = await runDeploy(s('k2'), { log });
    expect(result.status).toBe('deployed');
    // k1 stays: the listing the prune would have used was read under a lock this deploy no longer holds.
    expect(readdirSync(join(target, 'releases')).sort()).toEqual(['k1', 'k2']);
    expect(inner.lines.join('\n')).toContain("the lock is no longer this deploy's: nothing pruned");
    expect(readFileSync(owner, 'utf8')).toContain('another-deploy');
    const records = readFileSync(join(target, '.deployguard', 'deployments.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map(l => JSON.parse(l) as { release: string; id?: string });
    expect(records.map(r => r.release)).toEqual(['k1', 'k2']);
    expect(new Set(records.map(r => r.id)).size).toBe(2);
    await rm(join(target, '.deployguard', 'lock'), { recursive: true, force: true });
  }, 90_000);

  test('another deploy holding the lock makes this one fail, naming the owner; nothing is changed', async () => {
    const { target, yaml } = await freshTarget();
    const lock = join(target, '.deployguard', 'lock');
    await mkdir(lock, { recursive: true });
    writeFileSync(
      join(lock, 'owner'),
      JSON.stringify({ token: 'other', run: '4242', actor: 'alice' }) + '\n'
    );
    owned(runDir);
    const { result } = await deployQuiet(
      settingsFor(
        host,
        { artifact: await makeRelease('v1'), 'target-path': target, 'lock-wait': '1s' },
        yaml()
      )
    );
    expect(result.status).toBe('failed');
    expect(result.error).toMatch(/another deploy holds the lock: .*"run":"4242".*"actor":"alice"/);
    expect(existsSync(join(target, 'releases'))).toBe(false);
    // Not ours: still there.
    expect(readFileSync(join(lock, 'owner'), 'utf8')).toMatch(/alice/);
  }, 60_000);

  test('a lock older than its TTL is taken over with a warning', async () => {
    const { target, yaml } = await freshTarget();
    const lock = join(target, '.deployguard', 'lock');
    await mkdir(lock, { recursive: true });
    writeFileSync(join(lock, 'owner'), '{"token":"dead","run":"1"}\n');
    execFileSync('touch', ['-d', '3 hours ago', lock]);
    owned(runDir);
    const { result, log } = await deployQuiet(
      settingsFor(host, { artifact: await makeRelease('v1'), 'target-path': target }, yaml())
    );
    expect(result.status).toBe('deployed');
    expect(log.join('\n')).toMatch(/took over an abandoned lock.*"run":"1"/);
    expect(existsSync(lock)).toBe(false);
  }, 60_000);

  test('a host key that does not match the pin stops everything and shows the offered key', async () => {
    const { target, yaml } = await freshTarget();
    const wrong = host.knownHostsLine.replace(
      /ssh-ed25519 \S+/,
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl'
    );
    const { result } = await deployQuiet(
      settingsFor(
        host,
        { artifact: await makeRelease('v1'), 'target-path': target, 'known-hosts': wrong },
        yaml()
      )
    );
    expect(result.status).toBe('failed');
    expect(result.error).toMatch(/HOST KEY DOES NOT MATCH THE PIN/);
    const offered = execFileSync('ssh-keygen', ['-lf', join(host.dir, 'host_key.pub')], {
      encoding: 'utf8'
    }).split(' ')[1]!;
    expect(result.error).toContain(offered);
    expect(existsSync(target)).toBe(false);
  }, 60_000);

  test('an unpinned host is refused before any credential is sent, showing the key to pin', async () => {
    const { target, yaml } = await freshTarget();
    const s = settingsFor(
      host,
      { artifact: await makeRelease('v1'), 'target-path': target, 'known-hosts': '' },
      yaml()
    );
    const logins = () =>
      (readFileSync(join(host.dir, 'sshd.log'), 'utf8').match(/Accepted publickey/g) ?? []).length;
    const before = logins();
    const { result } = await deployQuiet(s);
    expect(result.status).toBe('failed');
    expect(result.error).toMatch(/the host key of 127\.0\.0\.1:\d+ is not pinned/);
    const fp = execFileSync('ssh-keygen', ['-lf', join(host.dir, 'host_key.pub')], {
      encoding: 'utf8'
    }).split(' ')[1]!;
    expect(result.error).toContain(`ssh-ed25519 ${fp}`);
    expect(result.error).toContain(host.knownHostsLine);
    expect(result.error).toContain(`host-key: ${fp}`);
    expect(existsSync(target)).toBe(false);
    // The handshake stopped at the host key: no login happened...
    expect(logins()).toBe(before);
    // ...while a pinned connection does log in (so the count above could have moved).
    const pinned = settingsFor(host, { artifact: '/tmp', 'target-path': '/tmp' });
    (await connectHost(pinned.hosts[0]!, pinned.ssh, memoryLogger())).close();
    await new Promise(r => setTimeout(r, 200));
    expect(logins()).toBeGreaterThan(before);
  }, 60_000);

  test('a host pinned by SHA256 fingerprint connects', async () => {
    const { target, yaml } = await freshTarget();
    const fp = execFileSync('ssh-keygen', ['-lf', join(host.dir, 'host_key.pub')], {
      encoding: 'utf8'
    }).split(' ')[1]!;
    const s = settingsFor(
      host,
      { artifact: await makeRelease('v1'), 'target-path': target, 'known-hosts': '', 'host-key': fp },
      yaml()
    );
    expect((await deployQuiet(s)).result.status).toBe('deployed');
  }, 60_000);

  test('a closed port fails with a hint, after bounded retries', async () => {
    const { target, yaml } = await freshTarget();
    const s = settingsFor(
      { ...host, port: await freePort() },
      { artifact: await makeRelease('v1'), 'target-path': target },
      yaml()
    );
    const { result } = await deployQuiet({ ...s, ssh: { ...s.ssh, connectRetries: 1 } });
    expect(result.status).toBe('failed');
    expect(result.error).toMatch(/ECONNREFUSED[\s\S]*Nothing accepts connections/);
  }, 60_000);

  test('hostile strings reach the host as literal data over a real SSH session', async () => {
    const s = settingsFor(host, { artifact: '/tmp', 'target-path': '/tmp' });
    const shell = await connectHost(s.hosts[0]!, s.ssh, memoryLogger());
    try {
      for (const value of HOSTILE) {
        const r = await shell.exec(sh`printf '%s' ${value}`);
        expect({ value, out: r.stdout, code: r.code }).toEqual({ value, out: value, code: 0 });
      }
      const t0 = Date.now();
      const slow = await shell.exec(sh`sleep 5`, { timeoutMs: 400 });
      expect({ code: slow.code, fast: Date.now() - t0 < 2000 }).toEqual({ code: 124, fast: true });
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 300);
      expect((await shell.exec(sh`sleep 5`, { signal: ac.signal })).code).toBe(130);
      const fail = await shell.exec(sh`echo partial; false; echo never`);
      expect(fail.code).not.toBe(0);
      expect(fail.stdout).toBe('partial\n');
    } finally {
      shell.close();
    }
  }, 60_000);

  test('the release directory on the host is the real path current resolves to', () => {
    // Sanity for the assertions above: they read the host's files through this machine's paths.
    const any = readdirSync(base).find(d => existsSync(join(base, d, 'srv', 'app', 'current')));
    expect(any && realpathSync(join(base, any, 'srv', 'app', 'current'))).toMatch(/releases\//);
  });
});

describe('credentials, opt-outs and the worst case', () => {
  test('a passphrase-protected key works with its passphrase and fails clearly without it', async () => {
    const { target, yaml } = await freshTarget();
    const dir = await mkdtemp(join(tmpdir(), 'dg-key-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'correct horse battery', '-f', join(dir, 'k')]);
    const authorized = join(host.dir, 'authorized_keys');
    writeFileSync(authorized, readFileSync(authorized, 'utf8') + readFileSync(join(dir, 'k.pub'), 'utf8'));
    const key = readFileSync(join(dir, 'k'), 'utf8');
    const base = { artifact: await makeRelease('v1'), 'target-path': target, 'ssh-key': key };
    const ok = await deployQuiet(
      settingsFor(host, { ...base, 'ssh-passphrase': 'correct horse battery' }, yaml())
    );
    expect(ok.result.status).toBe('deployed');
    const bad = await deployQuiet(settingsFor(host, { ...base, 'ssh-passphrase': 'wrong' }, yaml()));
    expect(bad.result.status).toBe('failed');
    expect(bad.result.error).toMatch(/could not connect[\s\S]*Hint: .*(passphrase|key)/);
    expect(bad.result.error).not.toContain('correct horse');
    await rm(dir, { recursive: true, force: true });
  }, 60_000);

  test('skipping the host key check works only when asked, and warns with the fingerprint', async () => {
    const { target, yaml } = await freshTarget();
    const fp = execFileSync('ssh-keygen', ['-lf', join(host.dir, 'host_key.pub')], {
      encoding: 'utf8'
    }).split(' ')[1]!;
    const s = settingsFor(
      host,
      {
        artifact: await makeRelease('v1'),
        'target-path': target,
        'known-hosts': '',
        'insecure-skip-host-key-check': 'true'
      },
      yaml()
    );
    const { result, log } = await deployQuiet(s);
    expect(result.status).toBe('deployed');
    expect(log.join('\n')).toContain(
      `host key NOT verified (insecure-skip-host-key-check is on). The host offered ssh-ed25519 ${fp}`
    );
  }, 60_000);

  test('a service that ignores SIGTERM is killed after the grace period', async () => {
    const { target, yaml } = await freshTarget();
    const s = (artifact: string, id: string) =>
      settingsFor(host, { artifact, 'target-path': target, 'release-id': id }, yaml());
    expect((await deployQuiet(s(await makeRelease('v1', 'stubborn'), 'r1'))).result.status).toBe('deployed');
    const stubborn = Number(readFileSync(join(runDir, 'app.pid'), 'utf8'));
    const { result, log } = await deployQuiet(s(await makeRelease('v2'), 'r2'));
    expect(result.status).toBe('deployed');
    expect(log.join('\n')).toMatch(/✓ Stop the service \((\d+) ms\)/);
    const stopMs = Number(/✓ Stop the service \((\d+) ms\)/.exec(log.join('\n'))![1]);
    expect(stopMs).toBeGreaterThanOrEqual(3000); // stop-grace: 3s, then SIGKILL
    expect(alive(stubborn)).toBe(false);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v2');
  }, 60_000);

  test('when the rollback itself fails, it says so loudly with the commands to recover by hand', async () => {
    const { target, yaml } = await freshTarget();
    const s = (artifact: string, id: string) =>
      settingsFor(host, { artifact, 'target-path': target, 'release-id': id }, yaml());
    expect((await deployQuiet(s(await makeRelease('v1'), 'r1'))).result.status).toBe('deployed');
    // Someone broke the old release on the host: restarting it after the rollback cannot work.
    await rm(join(target, 'releases', 'r1', 'server.js'));
    const { result } = await deployQuiet(s(await makeRelease('v2', 'unhealthy'), 'r2'));
    expect(result.status).toBe('rollback-failed');
    const h = result.hosts[0]!;
    expect(h.outcome).toBe('rollback-failed');
    expect(h.recovery).toContain(`ssh -p ${host.port} ${host.user}@127.0.0.1`);
    expect(readlinkSync(join(target, 'current'))).toBe(join(target, 'releases', 'r1'));
    // The lock is released even so, and nothing good was deleted.
    expect(existsSync(join(target, '.deployguard', 'lock'))).toBe(false);
    expect(existsSync(join(target, 'releases', 'r2', 'server.js'))).toBe(true);
    expect(existsSync(join(target, 'releases', 'r1'))).toBe(true);
  }, 90_000);

  test('when the release to return to was deleted, nothing is undone: the new one keeps running, loudly', async () => {
    const { target, yaml } = await freshTarget();
    const s = (artifact: string, id: string) =>
      settingsFor(host, { artifact, 'target-path': target, 'release-id': id }, yaml());
    expect((await deployQuiet(s(await makeRelease('v1'), 'r1'))).result.status).toBe('deployed');
    await rm(join(target, 'releases', 'r1'), { recursive: true, force: true });
    const { result, log } = await deployQuiet(s(await makeRelease('v2', 'unhealthy'), 'r2'));
    expect(result.status).toBe('rollback-failed');
    expect(log.join('\n')).toMatch(/ROLLBACK NOT POSSIBLE: .*releases\/r1 is gone/);
    expect(result.hosts[0]!.recovery).toMatch(/ls -l .*releases/);
    // Not a dangling link, not a stopped service: r2 still answers, though it failed its checks.
    expect(readlinkSync(join(target, 'current'))).toBe(join(target, 'releases', 'r2'));
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v2');
    expect(existsSync(join(target, '.deployguard', 'lock'))).toBe(false);
    // Production is unhealthy now, so an ordinary deploy is blocked by the pre-deploy gate;
    // the fix goes out when a person says so (require-healthy: false).
    expect((await deployQuiet(s(await makeRelease('v3'), 'r3'))).result.status).toBe('blocked');
    const fix = settingsFor(
      host,
      { artifact: await makeRelease('v3'), 'target-path': target, 'release-id': 'r3b' },
      yaml('pre-deploy: { require-healthy: false }')
    );
    expect((await deployQuiet(fix)).result.status).toBe('deployed');
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v3');
  }, 90_000);
});

describe('the gates around the switch', () => {
  test('a release that crashes seconds after a healthy start is caught in the stability window and rolled back', async () => {
    const { target } = await freshTarget();
    const cfg = (window: string) =>
      commandServiceYaml(appPort, runDir, `target: { path: ${target} }`, {
        window,
        appEnv: 'CRASH_AFTER_MS=2500'
      });
    const s = (artifact: string, id: string) => settingsFor(host, { artifact, 'release-id': id }, cfg('8s'));
    expect((await deployQuiet(s(await makeRelease('v1'), 'r1'))).result.status).toBe('deployed');
    const t0 = Date.now();
    const { result, log } = await deployQuiet(s(await makeRelease('v2', 'late-crash'), 'r2'));
    expect(result.status).toBe('rolled-back');
    expect(result.error).toMatch(
      /unstable \d+ s into the stability window: 1\/1 health checks failed: health: request to http:\/\/127\.0\.0\.1:\d+\/health failed: .*ECONNREFUSED/
    );
    // The first round of checks passed: the crash came later.
    expect(log.join('\n')).toMatch(/watching the checks for the 8 s stability window/);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v1');
  }, 120_000);

  test('unhealthy production blocks the deploy when require-healthy is on, and nothing changes', async () => {
    const { target } = await freshTarget();
    const cfg = (pre: string) =>
      commandServiceYaml(appPort, runDir, `target: { path: ${target} }`, { preDeploy: pre });
    expect(
      (
        await deployQuiet(
          settingsFor(
            host,
            { artifact: await makeRelease('v1'), 'release-id': 'r1' },
            cfg('{ require-healthy: true }')
          )
        )
      ).result.status
    ).toBe('deployed');
    await killApp(); // production is now down
    const blocked = settingsFor(
      host,
      { artifact: await makeRelease('v2'), 'release-id': 'r2' },
      cfg('{ require-healthy: true }')
    );
    const { result } = await deployQuiet(blocked);
    expect(result.status).toBe('blocked');
    expect(result.error).toMatch(
      /Deploy blocked: production is already unhealthy \(1\/1 pre-deploy checks failed: health: request to http:\/\/127\.0\.0\.1:\d+\/health failed: .*ECONNREFUSED.*\)\. Nothing was changed\./
    );
    expect(result.preChecks).toEqual([expect.objectContaining({ name: 'health', stage: 'pre', ok: false })]);
    expect(readdirSync(join(target, 'releases'))).toEqual(['r1']);
    expect(existsSync(join(target, '.deployguard', 'lock'))).toBe(false);
    // r1 is live: the record names it as what was there, never "first deploy".
    const md = renderRecord({ environment: 'production', result, run: blocked.run, blockedBy: 'health' });
    expect(md).toContain('`r2` (previous: `r1`)');
    expect(md).not.toMatch(/first deploy/i);
    expect(md).toContain('nothing to do: `r1` still serves');
  }, 90_000);

  test('with require-healthy off, unhealthy production is recorded and the deploy goes ahead', async () => {
    const { target } = await freshTarget();
    const cfg = commandServiceYaml(appPort, runDir, `target: { path: ${target} }`, {
      preDeploy: '{ require-healthy: false }'
    });
    expect(
      (await deployQuiet(settingsFor(host, { artifact: await makeRelease('v1'), 'release-id': 'r1' }, cfg)))
        .result.status
    ).toBe('deployed');
    await killApp();
    const { result, log } = await deployQuiet(
      settingsFor(host, { artifact: await makeRelease('v2'), 'release-id': 'r2' }, cfg)
    );
    expect(result.status).toBe('deployed');
    expect(result.preChecks[0]).toMatchObject({ ok: false, stage: 'pre' });
    expect(log.join('\n')).toMatch(
      /production is already unhealthy .*deploying anyway \(require-healthy is off\)/
    );
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v2');
  }, 90_000);
});

describe('version check', () => {
  test('a stale process still serving the old code is caught by the version check and rolled back', async () => {
    const { target } = await freshTarget();
    // No service manager: nothing restarts the app, so after the switch the old process still
    // answers, which is exactly what a version check exists to catch.
    const cfg = [
      'version: 1',
      `target: { path: ${target} }`,
      'service: { manager: none }',
      'checks:',
      `  - { name: new code answers, type: version, url: "http://127.0.0.1:${appPort}/", expect: release, timeout: 1s, retries: 2, interval: 300ms }`,
      'post-deploy: { stability-window: 0s }'
    ].join('\n');
    const s = (artifact: string, id: string) => settingsFor(host, { artifact, 'release-id': id }, cfg);
    // Start the app by hand from release v1's code, as if an old deploy had.
    const v1 = await makeRelease('v1');
    const first = await deployQuiet(s(v1, 'v1'));
    expect(first.result.status).toBe('rolled-back'); // nothing answers at all yet
    execFileSync('sh', [
      '-c',
      `PORT=${appPort} nohup node ${v1}/server.js > /dev/null 2>&1 & echo $! > ${runDir}/app.pid`
    ]);
    await new Promise(r => setTimeout(r, 500));
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v1');
    const { result } = await deployQuiet(s(await makeRelease('v2'), 'v2'));
    expect(result.status).toBe('rolled-back');
    expect(result.hosts[0]!.checks[0]!.reason).toMatch(/reports .*v1.*expected release v2/);
    // Version checks never verify a rollback: they expect the release that was just removed.
    expect(result.hosts[0]!.rollbackChecks).toEqual([]);
  }, 90_000);
});

describe('review fixes', () => {
  test('a failed first deploy is taken down cleanly: nothing live, no "rollback failed"', async () => {
    const { target, yaml } = await freshTarget();
    const settings = settingsFor(
      host,
      { artifact: await makeRelease('v1', 'unhealthy'), 'target-path': target, 'release-id': 'r1' },
      yaml()
    );
    const { result } = await deployQuiet(settings);
    expect(result.status).toBe('rolled-back');
    expect(result.hosts[0]!.outcome).toBe('rolled-back');
    // No previous release was restored: the action's rolled-back output is false.
    expect(result.rolledBack).toBe(false);
    expect(verdictLine(result)).toMatch(/release r1 failed and was taken down /);
    expect(existsSync(join(target, 'current'))).toBe(false);
    expect(readFileSync(join(target, '.deployguard', 'status', 'r1'), 'utf8')).toMatch(/^failed /);
    expect(existsSync(join(target, '.deployguard', 'lock'))).toBe(false);
    // The record of this real run says what happened: taken down, nothing live, nothing before.
    const md = renderRecord({ environment: 'production', result, run: settings.run });
    expect(md).toMatch(/\| \*\*Status\*\* \| ↩️ taken down: [^\n]*nothing is live now \|/);
    expect(md).toContain('(first deploy)');
    expect(md).toContain('| nothing (taken down; no release before) |');
    expect(md).not.toMatch(/serves again|passed its checks|returned to/);
  }, 60_000);

  test('re-deploying an existing release id fails without touching that release or its record', async () => {
    const { target, yaml } = await freshTarget();
    const s = (artifact: string) =>
      settingsFor(host, { artifact, 'target-path': target, 'release-id': 'same' }, yaml());
    expect((await deployQuiet(s(await makeRelease('v1')))).result.status).toBe('deployed');
    const { result } = await deployQuiet(s(await makeRelease('v2')));
    expect(result.status).toBe('failed');
    expect(result.error).toMatch(/release directory already exists/);
    expect(readFileSync(join(target, '.deployguard', 'status', 'same'), 'utf8')).toMatch(/^good /);
    expect(readFileSync(join(target, 'releases', 'same', 'VERSION'), 'utf8')).toBe('v1\n');
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v1');
  }, 60_000);
});

describe('the lock under contention', () => {
  test('several deploys finding the same stale lock: exactly one takes it over, every time', async () => {
    const { target } = await freshTarget();
    const s = settingsFor(host, { artifact: '/tmp', 'target-path': target });
    const layout = layoutFor(s.target);
    const shells = await Promise.all(
      [1, 2, 3, 4, 5, 6].map(() => connectHost(s.hosts[0]!, s.ssh, memoryLogger()))
    );
    try {
      for (let round = 0; round < 15; round++) {
        await shells[0]!.exec(
          sh`rm -rf -- ${layout.lockDir} ${layout.lockDir}.takeover; mkdir -p -- ${layout.lockDir}; echo '{"token":"dead"}' > ${layout.lockDir}/owner; touch -d '3 hours ago' ${layout.lockDir}`
        );
        const results = await Promise.all(
          shells.map((sh_, i) => sh_.exec(lockAcquire(layout, `{"token":"T${i}"}`, 3600)))
        );
        const winners = results.flatMap((r, i) => (r.code === 0 ? [i] : []));
        expect({ round, winners: winners.length }).toEqual({ round, winners: 1 });
        expect(results.filter(r => r.code !== 0).every(r => r.code === LOCK_BUSY)).toBe(true);
        const owner = (await shells[0]!.exec(sh`cat -- ${layout.lockDir}/owner`)).stdout;
        expect(owner).toBe(`{"token":"T${winners[0]}"}\n`);
      }
    } finally {
      for (const x of shells) x.close();
    }
  }, 120_000);
});

test('with rollback off, a failed release stays live and the status says so', async () => {
  const { target } = await freshTarget();
  const cfg = commandServiceYaml(appPort, runDir, `target: { path: ${target} }`, { rollback: 'off' });
  const s = (artifact: string, id: string) => settingsFor(host, { artifact, 'release-id': id }, cfg);
  expect((await deployQuiet(s(await makeRelease('v1'), 'r1'))).result.status).toBe('deployed');
  const { result } = await deployQuiet(s(await makeRelease('v2', 'unhealthy'), 'r2'));
  expect(result.status).toBe('failed-live');
  expect(result.rolledBack).toBe(false);
  expect(readlinkSync(join(target, 'current'))).toBe(join(target, 'releases', 'r2'));
  expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v2');
  expect(existsSync(join(target, '.deployguard', 'lock'))).toBe(false);
}, 60_000);
