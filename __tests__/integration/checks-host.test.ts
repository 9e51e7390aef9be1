/**
 * The checks that run on a host, against a real Debian host with systemd as PID 1 and journald,
 * over the product's own SSH code. Each failure a probe is meant to catch is produced for real:
 * a unit that exits, one that crash-loops under Restart=always while systemd keeps saying
 * "active", one that logs errors a little after it starts, a writer that stops writing.
 */
import {
  fileFreshProbe,
  hostCommandProbe,
  hostVersionProbe,
  logsProbe,
  processProbe
} from '../../src/checks/host-probes.js';
import { runCheck, runChecks } from '../../src/checks/runner.js';
import type { CheckContext, HostContext } from '../../src/checks/types.js';
import { memoryLogger } from '../../src/io/log.js';
import { connectHost, type RemoteShell } from '../../src/io/ssh.js';
import { layoutFor } from '../../src/remote/layout.js';
import type {
  CheckBase,
  CommandCheck,
  FileFreshCheck,
  LogsCheck,
  ProcessCheck,
  ServiceSettings,
  VersionCheck
} from '../../src/settings/types.js';
import type { SystemdHost } from '../harness/hosts.js';
import { startTestHost, type SystemdTestHost } from '../helpers/test-host.js';

let t: SystemdTestHost;
let host: SystemdHost;
let shell: RemoteShell;

const layout = layoutFor({ path: '/srv/x', strategy: 'releases', keepReleases: 5, shared: [] });
const SHA = '0123456789abcdef0123456789abcdef01234567';
const ctx: CheckContext = { release: 'v7', commit: SHA };
const never = () => new AbortController().signal;

const systemd = (name: string): ServiceSettings => ({
  manager: 'systemd',
  switch: 'restart',
  name,
  sudo: false,
  settleMs: 1000,
  startTimeoutMs: 10_000
});
const on = (unit: string, service: ServiceSettings = systemd(unit)): HostContext => ({
  name: 'web-1',
  shell,
  service,
  layout
});

const base = (name: string): CheckBase => ({
  name,
  stages: ['post'],
  timeoutMs: 5000,
  retries: 0,
  intervalMs: 100,
  backoff: 1,
  deadlineMs: 0
});
const processCheck = (windowMs: number): ProcessCheck => ({ ...base('process'), type: 'process', windowMs });
const journalCheck = (windowMs: number, ignore: string[] = []): LogsCheck => ({
  ...base('logs'),
  type: 'logs',
  source: 'journal',
  windowMs,
  patterns: ['ERROR', 'FATAL'],
  ignore
});
const fileLogCheck = (path: string, windowMs: number): LogsCheck => ({
  ...journalCheck(windowMs),
  source: 'file',
  path
});
const freshCheck = (path: string, maxAgeMs: number): FileFreshCheck => ({
  ...base('fresh'),
  type: 'file-fresh',
  path,
  maxAgeMs
});
const commandCheck = (run: string, env: Record<string, string> = {}, timeoutMs = 5000): CommandCheck => ({
  ...base('command'),
  type: 'command',
  on: 'host',
  run,
  env,
  timeoutMs
});
const versionCheck = (run: string, expect: 'release' | 'commit'): VersionCheck => ({
  ...base('version'),
  type: 'version',
  on: 'host',
  run,
  expect
});

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

async function must(cmd: string): Promise<string> {
  const r = await host.exec(cmd);
  if (r.code !== 0) throw new Error(`${cmd} -> exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function installUnit(name: string, execStart: string, extra: string[] = []): Promise<void> {
  const unit = ['[Unit]', 'StartLimitIntervalSec=0', '[Service]', `ExecStart=${execStart}`, ...extra, ''];
  await must(`cat > /etc/systemd/system/${name}.service <<'UNIT'\n${unit.join('\n')}UNIT`);
}

async function show(unit: string): Promise<Record<string, string>> {
  const out = await must(`systemctl show -p ActiveState -p MainPID -p NRestarts ${unit}`);
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map(l => l.split('=', 2) as [string, string])
  );
}

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Waits until the unit's current run has logged a line containing `text`. */
async function waitForLog(unit: string, text: string): Promise<void> {
  await waitFor(`${unit} to log "${text}"`, async () => {
    const id = (await must(`systemctl show -p InvocationID --value ${unit}`)).trim();
    const r = await host.exec(`journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID=${id}`);
    return r.stdout.includes(text);
  });
}

/** Logs in to the test host as `user` with the harness's key, its host key pinned. */
function login(user: string): Promise<RemoteShell> {
  return connectHost(
    {
      name: 'web-1',
      host: host.host,
      port: host.port,
      user,
      knownHosts: [host.knownHostsLine],
      fingerprints: []
    },
    {
      privateKey: host.privateKey,
      insecureSkipHostKeyCheck: false,
      connectTimeoutMs: 5000,
      connectRetries: 1
    },
    memoryLogger()
  );
}

beforeAll(async () => {
  t = await startTestHost({ kind: 'systemd', name: 'systemd-checks' });
  host = t.host;
  shell = await login(host.user);
  await installUnit('dg-healthy', `/bin/sh -c 'echo "healthy: ready"; exec sleep infinity'`);
  await installUnit('dg-victim', `/bin/sh -c 'exec sleep infinity'`);
  await installUnit('dg-exits', `/bin/sh -c 'echo "config missing, giving up"; exit 1'`, ['Restart=no']);
  await installUnit(
    'dg-crash',
    `/usr/bin/node -e "console.log('up'); setTimeout(() => process.exit(1), 1500)"`,
    ['Restart=always', 'RestartSec=200ms']
  );
  await installUnit(
    'dg-errors',
    `/bin/sh -c 'echo "starting up"; sleep 1; echo "ERROR something broke"; echo "ERROR something broke again"; exec sleep infinity'`
  );
  await installUnit(
    'dg-toggle',
    `/bin/sh -c 'if [ -e /etc/dg-toggle-error ]; then echo "ERROR from the old run"; fi; echo "toggle up"; exec sleep infinity'`
  );
  await installUnit(
    'dg-writer',
    `/bin/sh -c 'for i in 1 2; do date > /var/lib/dg-data.txt; sleep 1; done; exec sleep infinity'`
  );
  await must('systemctl daemon-reload && systemctl start dg-healthy');
  // A live release: user commands and status commands run in it.
  await must(
    `mkdir -p /srv/x/releases/v7 && printf 'release=v7 commit=${SHA.slice(0, 7)}\\n' > /srv/x/releases/v7/VERSION && ln -sfn /srv/x/releases/v7 /srv/x/current`
  );
}, 180_000);

afterAll(async () => {
  shell?.close();
  await t?.stop();
});

describe('process', () => {
  test('a healthy unit keeps its main PID with no restarts through the window', async () => {
    const pid = (await show('dg-healthy')).MainPID;
    const r = await processProbe(processCheck(2000), on('dg-healthy'))(never());
    expect(r).toEqual({ ok: true, reason: `main PID ${pid} stayed up for 2 s with no restarts` });
  });

  test('a unit that exited at once fails, with its last log lines', async () => {
    await must('systemctl start dg-exits');
    await waitFor('dg-exits to fail', async () => (await show('dg-exits')).ActiveState === 'failed');
    const r = await processProbe(processCheck(2000), on('dg-exits'))(never());
    expect(r.ok).toBe(false);
    const [head, ...logLines] = r.reason.split('\n');
    expect(head).toBe('dg-exits is not running: ActiveState=failed, SubState=failed; last log lines:');
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.length).toBeLessThanOrEqual(3);
    expect(logLines.join('\n')).toMatch(/config missing, giving up|dg-exits\.service/);
  });

  test('a crash loop under Restart=always that still says "active" fails', async () => {
    await must('systemctl restart dg-crash');
    await waitFor('dg-crash to be active', async () => {
      const s = await show('dg-crash');
      return s.ActiveState === 'active' && s.MainPID !== '0';
    });
    const r = await processProbe(processCheck(3000), on('dg-crash'))(never());
    expect(r.ok).toBe(false);
    // Passed the start (active, live PID), then systemd restarted it behind the same "active".
    const head = r.reason.split('\n')[0] ?? '';
    expect(head).toMatch(
      /^(main PID changed \d+ -> \d+|main PID \d+ exited) and NRestarts (\d+) -> (\d+)( and ActiveState active -> \w+ \([\w-]+\))? within [\d.]+ s: crash loop; last log lines:$/
    );
    const [, before, after] = /NRestarts (\d+) -> (\d+)/.exec(head) ?? [];
    expect(Number(after)).toBeGreaterThan(Number(before));
    await must('systemctl stop dg-crash');
  });

  test('a unit stopped during the window fails and says what changed', async () => {
    await must('systemctl restart dg-victim');
    const pid = (await show('dg-victim')).MainPID;
    const probe = processProbe(processCheck(2000), on('dg-victim'))(never());
    await sleep(500);
    await must('systemctl stop dg-victim');
    const r = await probe;
    expect(r.ok).toBe(false);
    expect(r.reason.split('\n')[0]).toMatch(
      new RegExp(
        `^main PID ${pid} exited and ActiveState active -> inactive \\(dead\\) within [\\d.]+ s; last log lines:$`
      )
    );
  });

  test('command service with a pidfile: same live PID passes, a restart in the window fails', async () => {
    const svc: ServiceSettings = {
      manager: 'command',
      switch: 'restart',
      start: 'true',
      pidfile: '/run/dg-cmd.pid',
      stopGraceMs: 1000,
      settleMs: 1000,
      startTimeoutMs: 5000
    };
    const spawnDaemon = `setsid sh -c 'echo $$ > /run/dg-cmd.pid; exec sleep 300' </dev/null >/dev/null 2>&1 &`;
    await must(spawnDaemon);
    await waitFor('the pidfile', async () => (await host.exec('test -s /run/dg-cmd.pid')).code === 0);
    const pid = (await must('cat /run/dg-cmd.pid')).trim();
    expect(await processProbe(processCheck(1000), on('x', svc))(never())).toEqual({
      ok: true,
      reason: `PID ${pid} stayed up for 1 s`
    });

    const probe = processProbe(processCheck(2000), on('x', svc))(never());
    await sleep(500);
    await must(`kill ${pid}; rm -f /run/dg-cmd.pid; ${spawnDaemon}`);
    await waitFor('the new pidfile', async () => (await host.exec('test -s /run/dg-cmd.pid')).code === 0);
    const next = (await must('cat /run/dg-cmd.pid')).trim();
    const r = await probe;
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(
      new RegExp(`^PID in /run/dg-cmd\\.pid changed ${pid} -> ${next} within [\\d.]+ s: restarted$`)
    );
    await must(`kill ${next}`);
  });

  test('command service with only a status command; manager none is a clear failure', async () => {
    const svc: ServiceSettings = {
      manager: 'command',
      switch: 'restart',
      start: 'true',
      status: 'test -e /run/dg-flag',
      stopGraceMs: 1000,
      settleMs: 1000,
      startTimeoutMs: 5000
    };
    await must('rm -f /run/dg-flag');
    expect(await processProbe(processCheck(1000), on('x', svc))(never())).toEqual({
      ok: false,
      reason: 'the status command fails'
    });
    await must('touch /run/dg-flag');
    expect(await processProbe(processCheck(1000), on('x', svc))(never())).toEqual({
      ok: true,
      reason: 'status command passed for 1 s'
    });
    expect(await processProbe(processCheck(1000), on('x', { manager: 'none' }))(never())).toEqual({
      ok: false,
      reason:
        'service manager is none, so there is no process to check: configure `service` or drop this check'
    });
  });
});

describe('logs', () => {
  test('an ERROR line that appears within the window fails the check', async () => {
    await must('systemctl restart dg-errors');
    const started = Date.now();
    const r = await logsProbe(journalCheck(3000), on('dg-errors'))(never());
    expect(Date.now() - started).toBeLessThan(3000); // failed at the first look that saw it
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(
      /^dg-errors logged 2 error lines within [\d.]+ s of its start:\n {2}ERROR something broke\n {2}ERROR something broke again$/
    );
  });

  test('an ignore pattern suppresses the matching lines', async () => {
    await must('systemctl restart dg-errors');
    const r = await logsProbe(journalCheck(3000, ['something broke']), on('dg-errors'))(never());
    expect(r).toEqual({
      ok: true,
      reason: 'no error lines in 3 lines dg-errors logged in the 3 s after its start'
    });
  });

  test('a healthy unit passes; once its window is over, the journal is scanned once', async () => {
    await must('systemctl restart dg-healthy');
    await waitForLog('dg-healthy', 'healthy: ready');
    const watched = await logsProbe(journalCheck(2000), on('dg-healthy'))(never());
    expect(watched).toEqual({
      ok: true,
      reason: 'no error lines in 1 line dg-healthy logged in the 2 s after its start'
    });
    const started = Date.now();
    const once = await logsProbe(journalCheck(1000), on('dg-healthy'))(never());
    expect(Date.now() - started).toBeLessThan(1000);
    expect(once.ok).toBe(true);
    expect(once.reason).toMatch(/^no error lines in 1 line dg-healthy logged since its start [\d.]+ s ago$/);
  });

  test('errors logged by a previous run of the unit do not count after a restart', async () => {
    await must('touch /etc/dg-toggle-error && systemctl restart dg-toggle');
    await waitForLog('dg-toggle', 'toggle up');
    // The error is in the journal: this run fails...
    const before = await logsProbe(journalCheck(500), on('dg-toggle'))(never());
    expect(before.ok).toBe(false);
    expect(before.reason).toMatch(
      /^dg-toggle logged 1 error line within [\d.]+ m?s of its start:\n {2}ERROR from the old run$/
    );
    // ...and after a clean restart it is history, though still in `journalctl -u`.
    await must('rm /etc/dg-toggle-error && systemctl restart dg-toggle');
    await waitForLog('dg-toggle', 'toggle up');
    expect(await must('journalctl -u dg-toggle --no-pager -o cat')).toContain('ERROR from the old run');
    const after = await logsProbe(journalCheck(1000), on('dg-toggle'))(never());
    expect(after.ok).toBe(true);
  });

  test('a log file: only lines written during the window count, a last line without newline too', async () => {
    const file = '/var/log/dg-app.log';
    await must(`printf 'ERROR before the check\\n' > ${file}`);
    const clean = logsProbe(fileLogCheck(file, 1500), on('dg-healthy'))(never());
    await sleep(300);
    await must(`printf 'info: request ok\\ninfo: request ok\\n' >> ${file}`);
    expect(await clean).toEqual({
      ok: true,
      reason: `no error lines in 2 lines written to ${file} in 1.5 s`
    });

    const failing = logsProbe(fileLogCheck(file, 2500), on('dg-healthy'))(never());
    await sleep(300);
    await must(`printf 'info: fine\\nFATAL: out of memory\\n' >> ${file}`);
    const r = await failing;
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(
      new RegExp(`^${file} logged 1 error line within [\\d.]+ s:\\n {2}FATAL: out of memory$`)
    );

    const partial = logsProbe(fileLogCheck(file, 1500), on('dg-healthy'))(never());
    await sleep(300);
    await must(`printf 'ERROR no newline yet' >> ${file}`);
    expect((await partial).reason).toMatch(/logged 1 error line within [\d.]+ s:\n {2}ERROR no newline yet$/);
  });
});

describe('logs from a file the check cannot see', () => {
  test('a missing file fails once the window is over, naming the path', async () => {
    const r = await logsProbe(fileLogCheck('/var/log/dg-nothing.log', 800), on('dg-healthy'))(never());
    expect(r.ok).toBe(false);
    expect(r.reason).toBe(
      '/var/log/dg-nothing.log does not exist on the host (still missing after 800 ms): check `path`, and that the service writes its log there'
    );
  });

  test('a directory where the file should be fails at once', async () => {
    await must('rm -rf /var/log/dg-dir.log && mkdir /var/log/dg-dir.log');
    const started = Date.now();
    const r = await logsProbe(fileLogCheck('/var/log/dg-dir.log', 5000), on('dg-healthy'))(never());
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(/^\/var\/log\/dg-dir\.log is a directory on the host, not a log file/);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  test('a file with mode 000, read by a user who is not root, fails (root still reads it)', async () => {
    // A second login on the same host, as an ordinary user with the same key.
    await must(
      [
        'id dgreader >/dev/null 2>&1 || useradd -m -s /bin/sh dgreader',
        'install -d -m 700 -o dgreader -g dgreader /home/dgreader/.ssh',
        'install -m 600 -o dgreader -g dgreader /root/.ssh/authorized_keys /home/dgreader/.ssh/authorized_keys',
        "printf 'ERROR hidden from the reader\\n' > /var/log/dg-locked.log",
        'chmod 000 /var/log/dg-locked.log'
      ].join(' && ')
    );
    const reader = await login('dgreader');
    try {
      const r = await logsProbe(fileLogCheck('/var/log/dg-locked.log', 5000), {
        ...on('dg-healthy'),
        shell: reader
      })(never());
      expect(r.ok).toBe(false);
      expect(r.reason).toMatch(/^\/var\/log\/dg-locked\.log exists but dgreader cannot read it/);
    } finally {
      reader.close();
    }
    const asRoot = await logsProbe(fileLogCheck('/var/log/dg-locked.log', 500), on('dg-healthy'))(never());
    expect(asRoot).toEqual({
      ok: true,
      reason: 'no error lines in 0 lines written to /var/log/dg-locked.log in 500 ms'
    });
  });
});

describe('file-fresh', () => {
  const data = '/var/lib/dg-data.txt';

  test('a file the service keeps writing is fresh; once it stops, it goes stale', async () => {
    await must(`rm -f ${data} && systemctl restart dg-writer`);
    await sleep(1200);
    const fresh = await fileFreshProbe(freshCheck(data, 3000), on('dg-writer'))(never());
    expect(fresh.ok).toBe(true);
    expect(fresh.reason).toMatch(/^modified [0-2] s ago \(limit 3 s\)$/);
    // The writer stops after its second write (about 1 s after the start).
    await sleep(3300);
    const stale = await fileFreshProbe(freshCheck(data, 2000), on('dg-writer'))(never());
    expect(stale.ok).toBe(false);
    expect(stale.reason).toMatch(/^modified [3-5] s ago \(limit 2 s\)$/);
  });

  test('a missing file fails clearly', async () => {
    expect(await fileFreshProbe(freshCheck('/var/lib/dg-nothing.txt', 60_000), on('x'))(never())).toEqual({
      ok: false,
      reason: '/var/lib/dg-nothing.txt does not exist on the host'
    });
  });
});

describe('command on the host', () => {
  test('exit 0 passes', async () => {
    const r = await hostCommandProbe(commandCheck('echo hello'), on('x'))(never());
    expect(r.ok).toBe(true);
    expect(r.reason).toMatch(/^exit 0 in [\d.]+ m?s$/);
  });

  test('exit 3 fails with the exit code and the last 10 lines of output', async () => {
    const run = 'for i in $(seq 1 15); do echo "line $i"; done; echo "to stderr" >&2; exit 3';
    expect(await hostCommandProbe(commandCheck(run), on('x'))(never())).toEqual({
      ok: false,
      reason: [
        'exit 3; last lines of output:',
        ...[7, 8, 9, 10, 11, 12, 13, 14, 15].map(i => `  line ${i}`),
        '  to stderr'
      ].join('\n')
    });
  });

  test('env reaches the command, never the host process list, and is masked in output', async () => {
    const token = `s3cr3t 'q' $HOME "value"`;
    const env = { DG_TOKEN: token, DG_MODE: 'x' };
    const check = `case "$DG_TOKEN" in "s3cr3t 'q' \\$HOME \\"value\\"") ;; *) exit 4;; esac; [ "$DG_MODE" = x ]`;
    expect((await hostCommandProbe(commandCheck(check, env), on('x'))(never())).ok).toBe(true);

    const running = hostCommandProbe(commandCheck('sleep 1.5', env), on('x'))(never());
    await sleep(700);
    const ps = await must('ps -eo args');
    expect(ps).toContain('sleep 1.5');
    expect(ps).not.toContain('s3cr3t');
    expect((await running).ok).toBe(true);

    expect(
      await hostCommandProbe(commandCheck('echo "token is $DG_TOKEN"; exit 3', env), on('x'))(never())
    ).toEqual({ ok: false, reason: 'exit 3; last lines of output:\n  token is ***' });
  });

  test('a command that outlives its timeout fails', async () => {
    expect(await hostCommandProbe(commandCheck('sleep 5', {}, 500), on('x'))(never())).toEqual({
      ok: false,
      reason: 'no result within 500 ms'
    });
  });
});

describe('version on the host', () => {
  test('the release just deployed passes (the command runs in the live release)', async () => {
    expect(await hostVersionProbe(versionCheck('cat VERSION', 'release'), ctx, on('x'))(never())).toEqual({
      ok: true,
      reason: 'reports release v7'
    });
  });

  test('another release fails, and v7 is not v70', async () => {
    const wrong = { ...ctx, release: 'v8' };
    expect(await hostVersionProbe(versionCheck('cat VERSION', 'release'), wrong, on('x'))(never())).toEqual({
      ok: false,
      reason: 'expected release v8; the command reported "release=v7 commit=0123456"'
    });
    const v70 = await hostVersionProbe(versionCheck('echo release=v70', 'release'), ctx, on('x'))(never());
    expect(v70.ok).toBe(false);
  });

  test('the commit matches by its first 7+ characters; another commit fails', async () => {
    expect(await hostVersionProbe(versionCheck('cat VERSION', 'commit'), ctx, on('x'))(never())).toEqual({
      ok: true,
      reason: 'reports commit 0123456789ab…'
    });
    const other = { ...ctx, commit: 'fedcba9876543210fedcba9876543210fedcba98' };
    expect(await hostVersionProbe(versionCheck('cat VERSION', 'commit'), other, on('x'))(never())).toEqual({
      ok: false,
      reason: 'expected commit fedcba987654…; the command reported "release=v7 commit=0123456"'
    });
  });
});

describe('through the runner', () => {
  test('runChecks runs every host check on the host, in parallel, in order', async () => {
    await must('systemctl restart dg-healthy');
    const started = Date.now();
    const results = await runChecks(
      [
        { ...processCheck(2000), name: 'process' },
        { ...journalCheck(2000), name: 'logs' },
        { ...freshCheck('/var/lib/dg-nothing.txt', 5000), name: 'fresh' },
        { ...commandCheck('test -d /srv/x/current'), name: 'command' },
        { ...versionCheck('cat VERSION', 'release'), name: 'version' }
      ],
      'post',
      { context: ctx, hosts: [on('dg-healthy')] }
    );
    expect(Date.now() - started).toBeLessThan(4000);
    expect(results.map(r => [r.name, r.host, r.stage, r.ok])).toEqual([
      ['process', 'web-1', 'post', true],
      ['logs', 'web-1', 'post', true],
      ['fresh', 'web-1', 'post', false],
      ['command', 'web-1', 'post', true],
      ['version', 'web-1', 'post', true]
    ]);
    expect(results[2]?.reason).toBe('/var/lib/dg-nothing.txt does not exist on the host');
  });

  test('runCheck retries a failing host probe', async () => {
    const check = { ...freshCheck('/var/lib/dg-late.txt', 5000), retries: 5, intervalMs: 300 };
    await must('rm -f /var/lib/dg-late.txt');
    const result = runCheck(check, 'post', fileFreshProbe(check, on('x')), { host: 'web-1' });
    await sleep(400);
    await must('touch /var/lib/dg-late.txt');
    const r = await result;
    expect(r.ok).toBe(true);
    expect(r.attempts).toBeGreaterThan(1);
    expect(r.reason).toMatch(/^modified [01] s ago \(limit 5 s\)$/);
  });

  test('a cancelled run stops a window probe at once', async () => {
    const check = processCheck(30_000);
    const abort = new AbortController();
    const started = Date.now();
    const result = runCheck(check, 'post', processProbe(check, on('dg-healthy')), { signal: abort.signal });
    setTimeout(() => abort.abort(), 500);
    const r = await result;
    expect(Date.now() - started).toBeLessThan(1500);
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(/^stopped after [\d.]+ m?s \(cancelled\)$/);
  });
});
