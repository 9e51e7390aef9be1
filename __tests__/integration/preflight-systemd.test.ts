/**
 * Honest status and the preflight, on one real Debian host with systemd as PID 1. A wrong
 * service setting (an unknown unit, a deploy user without sudo rights) must end as `failed` with
 * nothing changed, the live release still serving, the verdict and the host's history agreeing;
 * the preflight names the fix for each problem before anything is touched.
 */
import type { SystemdHost } from '../harness/hosts.js';
import { deployQuiet, freePort, get, makeRelease, settingsFor, type HostLike } from '../helpers/deploy.js';
import { startTestHost, SYSTEMD_TARGET, type SystemdTestHost } from '../helpers/test-host.js';
import { runDeploy } from '../../src/deploy.js';
import { readHistory } from '../../src/history.js';
import { memoryLogger } from '../../src/io/log.js';
import {
  preflightCommand,
  renderPreflight,
  runPreflight,
  type PreflightReport
} from '../../src/preflight.js';
import { verdictLine } from '../../src/report/summary.js';

let t: SystemdTestHost;
let host: SystemdHost;
let appPort: number;
let freshPort: number;
const TARGET = SYSTEMD_TARGET;
const UNIT = 'dgapp';

async function must(cmd: string): Promise<string> {
  const r = await host.exec(cmd);
  if (r.code !== 0) throw new Error(`${cmd} -> exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** A unit running the sample app from `<target>/current` (or from `workDir` when given). */
async function installUnit(name: string, target: string, port: number, workDir = `${target}/current`) {
  const unit = [
    '[Unit]',
    `Description=deployguard sample app in ${target}`,
    '[Service]',
    `Environment=PORT=${port}`,
    `WorkingDirectory=${workDir}`,
    `ExecStart=/usr/bin/node ${workDir}/server.js`,
    'Restart=no',
    ''
  ].join('\n');
  await must(`cat > /etc/systemd/system/${name}.service <<'UNIT'\n${unit}UNIT\nsystemctl daemon-reload`);
}

const yaml = (
  opts: { target?: string; unit?: string; port?: number; sudo?: boolean; journal?: boolean } = {}
) =>
  [
    'version: 1',
    `target: { path: ${opts.target ?? TARGET} }`,
    'service:',
    '  manager: systemd',
    `  name: ${opts.unit ?? UNIT}`,
    `  sudo: ${opts.sudo ?? false}`,
    '  settle: 500ms',
    '  start-timeout: 5s',
    'checks:',
    `  - { name: health, type: http, url: "http://127.0.0.1:${opts.port ?? appPort}/health", timeout: 1s, retries: 3, interval: 300ms }`,
    ...(opts.journal ? ['  - { name: clean-logs, type: logs, source: journal, window: 1s }'] : []),
    'post-deploy: { stability-window: 0s }'
  ].join('\n');

/** The harness host, logging in as another user (same key). */
const as = (user: string): HostLike => ({
  name: host.name,
  host: host.host,
  port: host.port,
  user,
  privateKey: host.privateKey,
  knownHostsLine: host.knownHostsLine
});

const settings = async (
  version: string,
  opts: Parameters<typeof yaml>[0] & { user?: string; fault?: string } = {}
) =>
  settingsFor(
    as(opts.user ?? 'root'),
    { artifact: await makeRelease(version, opts.fault), 'release-id': version },
    yaml(opts)
  );

/** The last line of the host's deployments.jsonl for a target. */
async function lastRecord(target = TARGET): Promise<{ release: string; status: string; previous?: string }> {
  const text = await must(`tail -n 1 ${target}/.deployguard/deployments.jsonl`);
  return JSON.parse(text) as { release: string; status: string; previous?: string };
}

beforeAll(async () => {
  t = await startTestHost({ kind: 'systemd', name: 'systemd-preflight' });
  ({ host, appPort } = t);
  freshPort = await freePort();
  await installUnit(UNIT, TARGET, appPort);
  // A deploy user with the same key as root, and (for now) no sudo rights at all.
  await must(
    'useradd -m -s /bin/sh deploy && install -d -o deploy -g deploy -m 700 /home/deploy/.ssh && ' +
      'install -o deploy -g deploy -m 600 /root/.ssh/authorized_keys /home/deploy/.ssh/authorized_keys'
  );
  const { result } = await deployQuiet(await settings('v1'));
  expect({ status: result.status, error: result.error }).toEqual({ status: 'deployed', error: undefined });
}, 120_000);

afterAll(async () => {
  await t?.stop();
});

describe('a failure before the switch is `failed`, nothing changed, and the history agrees', () => {
  test('an unknown systemd unit', async () => {
    const s = await settings('v2', { unit: 'no-such-unit' });
    const { result } = await deployQuiet(s);
    expect(result.status).toBe('failed');
    expect(result.hosts[0]!.outcome).toBe('failed');
    const verdict = verdictLine(result);
    expect(verdict).toMatch(/nothing changed/);
    expect(verdict).toMatch(/v1/);
    // v2 was never made live: the verdict does not name it as a release.
    expect(verdict).not.toMatch(/release v2|rolled back/);
    expect((await must(`readlink ${TARGET}/current`)).trim()).toBe(`${TARGET}/releases/v1`);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v1');
    expect(await lastRecord()).toMatchObject({ release: 'v2', status: 'failed', previous: 'v1' });
    const [h] = await readHistory(s, 5, memoryLogger());
    expect(h!.log!.entries.at(-1)).toMatchObject({ release: 'v2', status: 'failed' });
  }, 60_000);

  test('a deploy user without sudo rights', async () => {
    await must(`chown -R deploy:deploy ${TARGET}`);
    const { result } = await deployQuiet(await settings('v3', { user: 'deploy', sudo: true }));
    expect(result.status).toBe('failed');
    expect(result.hosts[0]!.outcome).toBe('failed');
    expect(verdictLine(result)).toMatch(/nothing changed/);
    expect(verdictLine(result)).not.toMatch(/release v3|rolled back/);
    expect((await must(`readlink ${TARGET}/current`)).trim()).toBe(`${TARGET}/releases/v1`);
    expect((await must(`systemctl is-active ${UNIT}`)).trim()).toBe('active');
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v1');
    expect(await lastRecord()).toMatchObject({ release: 'v3', status: 'failed', previous: 'v1' });
    // The lock is free.
    expect((await host.exec(`test -e ${TARGET}/.deployguard/lock`)).code).not.toBe(0);
  }, 60_000);

  test('a first deploy that fails to start: taken down, and no release is named to return to', async () => {
    await installUnit('dgfresh', '/srv/fresh', freshPort);
    const { result } = await deployQuiet(
      await settings('f1', { target: '/srv/fresh', unit: 'dgfresh', port: freshPort, fault: 'crash' })
    );
    expect(result.status).toBe('rolled-back');
    const verdict = verdictLine(result);
    expect(verdict).toMatch(/nothing is live/);
    expect(verdict).not.toMatch(/rolled back to|back on/);
    expect((await host.exec('test -e /srv/fresh/current')).code).not.toBe(0);
    expect(await lastRecord('/srv/fresh')).toMatchObject({ release: 'f1', status: 'rolled-back' });
  }, 60_000);
});

describe('the preflight names the fix for each problem, before anything changes', () => {
  const line =
    'deploy ALL=(root) NOPASSWD: /usr/bin/systemctl stop -- dgapp, /usr/bin/systemctl start -- dgapp, ' +
    '/usr/bin/systemctl show -p ActiveState -p SubState -p MainPID -p NRestarts -- dgapp, ' +
    '/usr/bin/journalctl -u dgapp -n 30 --no-pager -o short-iso';

  test('no sudo rights: the exact sudoers line; installed as printed, the deploy user deploys', async () => {
    const s = await settings('v4', { user: 'deploy', sudo: true });
    const before = await runPreflight(s, memoryLogger());
    expect(before.ok).toBe(false);
    const sudo = before.hosts[0]!.findings.find(f => f.check === 'sudo');
    expect(sudo).toMatchObject({ level: 'fail' });
    expect(sudo!.fix!.split('\n')).toContain(line);
    // The deploy stops at the preflight with the same line, nothing changed.
    const failed = await deployQuiet(s);
    expect(failed.result.status).toBe('failed');
    expect(failed.result.error).toContain(line);
    // The line as printed is valid sudoers syntax and grants exactly what the deploy needs.
    await must(
      `printf '%s\\n' '${line}' > /etc/sudoers.d/deployguard && chmod 440 /etc/sudoers.d/deployguard`
    );
    await must('visudo -cf /etc/sudoers.d/deployguard');
    const after = await runPreflight(s, memoryLogger());
    expect(after.hosts[0]!.findings.filter(f => f.level !== 'ok')).toEqual([]);
    const { result } = await deployQuiet(await settings('v5', { user: 'deploy', sudo: true }));
    expect({ status: result.status, error: result.error }).toEqual({ status: 'deployed', error: undefined });
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v5');
  }, 60_000);

  test('a journal logs check adds its sudo commands; the longer line, as printed, lets it read the journal', async () => {
    const s = await settings('v5j', { user: 'deploy', sudo: true, journal: true });
    const report = await runPreflight(s, memoryLogger());
    const fix = report.hosts[0]!.findings.find(f => f.check === 'sudo')!.fix!.split('\n')[1]!;
    expect(fix).toBe(
      `${line}, /usr/bin/systemctl show --timestamp\\=us+utc -p LoadState -p ActiveState -p InvocationID -p ActiveEnterTimestamp -p ExecMainStartTimestamp -- dgapp, ` +
        '/usr/bin/systemctl show -p LoadState -p ActiveState -p InvocationID -p ActiveEnterTimestamp -p ExecMainStartTimestamp -- dgapp, ' +
        '/usr/bin/journalctl --no-pager -o cat --show-cursor _SYSTEMD_INVOCATION_ID\\=*'
    );
    await host.exec(
      `cat > /etc/sudoers.d/deployguard <<'LINE'\n${fix}\nLINE\nchmod 440 /etc/sudoers.d/deployguard`
    );
    await must('visudo -cf /etc/sudoers.d/deployguard');
    expect((await runPreflight(s, memoryLogger())).ok).toBe(true);
    const { result } = await deployQuiet(s);
    expect({ status: result.status, error: result.error }).toEqual({ status: 'deployed', error: undefined });
    expect(result.hosts[0]!.checks.find(c => c.name === 'clean-logs')).toMatchObject({ ok: true });
  }, 60_000);

  test('an unknown unit: the unit file to create', async () => {
    const report = await runPreflight(await settings('v6', { unit: 'no-such-unit' }), memoryLogger());
    expect(report.ok).toBe(false);
    expect(report.hosts[0]!.findings.find(f => f.check === 'unit')).toMatchObject({
      level: 'fail',
      message: expect.stringMatching(/no-such-unit does not exist/),
      fix: expect.stringContaining(
        `create /etc/systemd/system/no-such-unit.service with WorkingDirectory=${TARGET}/current`
      )
    });
  }, 30_000);

  test('a unit that runs from elsewhere: a clear warning, and the unit file line to change', async () => {
    await installUnit('dgelse', '/opt/app', freshPort, '/opt/elsewhere');
    const report = await runPreflight(await settings('v6', { unit: 'dgelse' }), memoryLogger());
    expect(report.ok).toBe(true);
    expect(report.hosts[0]!.findings.find(f => f.check === 'unit')).toMatchObject({
      level: 'warn',
      message: expect.stringMatching(/deploying would not change what runs/),
      fix: expect.stringContaining(
        `in /etc/systemd/system/dgelse.service, change WorkingDirectory=/opt/elsewhere to WorkingDirectory=${TARGET}/current`
      )
    });
    expect(renderPreflight(report)).toMatch(/! unit: the unit dgelse does not run from \/srv\/app\/current/);
  }, 30_000);

  test('a missing host tool: named with its package; the deploy fails with nothing changed', async () => {
    await must('mv /usr/bin/sha256sum /usr/bin/sha256sum.away');
    try {
      const s = await settings('v6');
      const report = await runPreflight(s, memoryLogger());
      expect(report.hosts[0]!.findings.find(f => f.check === 'tools')).toMatchObject({
        level: 'fail',
        message: 'missing on the host: sha256sum',
        fix: expect.stringMatching(/^apt-get install coreutils/)
      });
      const { result } = await deployQuiet(s);
      expect(result.status).toBe('failed');
      expect(verdictLine(result)).toMatch(/nothing changed, v5j still live/);
      expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v5j');
      expect((await host.exec(`test -e ${TARGET}/.deployguard/lock`)).code).not.toBe(0);
      expect(await lastRecord()).toMatchObject({ release: 'v6', status: 'failed', previous: 'v5j' });
    } finally {
      await must('mv /usr/bin/sha256sum.away /usr/bin/sha256sum');
    }
  }, 60_000);

  test('too little disk (a 2 MiB tmpfs) for a 3 MiB artifact: preflight and deploy refuse it', async () => {
    await must('mkdir -p /srv/tiny && mount -t tmpfs -o size=2m tmpfs /srv/tiny');
    try {
      const artifact = await makeRelease('t1', undefined, { 'blob.bin': 'x'.repeat(3 * 1024 * 1024) });
      const s = settingsFor(as('root'), { artifact, 'release-id': 't1' }, yaml({ target: '/srv/tiny/app' }));
      const out: string[] = [];
      const code = await preflightCommand(s, t => out.push(t), true, memoryLogger());
      expect(code).toBe(1);
      const report = JSON.parse(out.join('')) as PreflightReport;
      expect(report.hosts[0]!.findings.find(f => f.check === 'disk')).toMatchObject({
        level: 'fail',
        message: expect.stringMatching(
          /^not enough free disk on \/srv\/tiny: 2\.0 MiB free, the upload needs about/
        )
      });
      const { result } = await deployQuiet(s);
      expect(result.status).toBe('failed');
      expect(result.error).toMatch(/not enough free disk/);
      // Nothing was written but deployguard's lock and state directory (the lock is released).
      expect((await must('ls -A /srv/tiny/app/.deployguard')).trim().split('\n')).not.toContain('staging');
      expect((await host.exec('test -e /srv/tiny/app/.deployguard/lock')).code).not.toBe(0);
    } finally {
      await must('umount /srv/tiny');
    }
  }, 60_000);
});

describe('the post-deploy phase', () => {
  test('a preflight failure there is reported, not blocking: the release already live is still judged', async () => {
    const log = memoryLogger();
    const before = (await must(`readlink ${TARGET}/current`)).trim().split('/').pop();
    const switched = await runDeploy(await settings('v7'), { log }, { kind: 'switch' });
    expect(switched.status).toBe('switched');
    await must('mv /usr/bin/sha256sum /usr/bin/sha256sum.away');
    try {
      const post = memoryLogger();
      const result = await runDeploy(await settings('v7'), { log: post }, { kind: 'post', release: 'v7' });
      expect({ status: result.status, error: result.error }).toEqual({
        status: 'deployed',
        error: undefined
      });
      expect(post.lines.join('\n')).toMatch(/preflight found problems:\n.*missing on the host: sha256sum/);
      expect(verdictLine(result)).toBe(
        `deployguard: deployed: release v7 is live (systemd-preflight: v7 live (was ${before}))`
      );
      expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v7');
    } finally {
      await must('mv /usr/bin/sha256sum.away /usr/bin/sha256sum');
    }
  }, 60_000);
});
