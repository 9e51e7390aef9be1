/**
 * Guarded deploys to a real Debian host with systemd as PID 1, journald and sshd, booted by the
 * harness. The sample app runs as a real systemd unit; broken releases must end with the
 * previous version answering.
 */
import type { SystemdHost } from '../harness/hosts.js';
import { deployQuiet, get, makeRelease, settingsFor } from '../helpers/deploy.js';
import { startTestHost, SYSTEMD_TARGET, type SystemdTestHost } from '../helpers/test-host.js';

let t: SystemdTestHost;
let host: SystemdHost;
let appPort: number;
const TARGET = SYSTEMD_TARGET;
const UNIT = 'dgapp';

async function must(cmd: string): Promise<string> {
  const r = await host.exec(cmd);
  if (r.code !== 0) throw new Error(`${cmd} -> exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Writes the app's unit; `restart` chooses how systemd treats a crash. */
async function installUnit(restart: 'no' | 'always'): Promise<void> {
  const unit = [
    '[Unit]',
    'Description=deployguard sample app',
    '[Service]',
    `Environment=PORT=${appPort}`,
    `WorkingDirectory=${TARGET}/current`,
    `ExecStart=/usr/bin/node ${TARGET}/current/server.js`,
    `Restart=${restart}`,
    'RestartSec=200ms',
    // Let a crash loop run freely: the test is that deployguard notices it, not that systemd gives up.
    'StartLimitIntervalSec=0',
    ''
  ].join('\n');
  await must(`cat > /etc/systemd/system/${UNIT}.service <<'UNIT'\n${unit}UNIT\nsystemctl daemon-reload`);
}

const yaml = () =>
  [
    'version: 1',
    `target: { path: ${TARGET} }`,
    'service:',
    '  manager: systemd',
    `  name: ${UNIT}`,
    '  settle: 1500ms',
    '  start-timeout: 10s',
    'checks:',
    `  - { name: health, type: http, url: "http://127.0.0.1:${appPort}/health", timeout: 1s, retries: 4, interval: 500ms }`,
    'post-deploy: { stability-window: 0s }'
  ].join('\n');

const deploy = async (version: string, fault?: string) =>
  deployQuiet(
    settingsFor(host, { artifact: await makeRelease(version, fault), 'release-id': version }, yaml())
  );

beforeAll(async () => {
  t = await startTestHost({ kind: 'systemd', name: 'systemd-deploy' });
  ({ host, appPort } = t);
  await installUnit('no');
}, 180_000);

afterAll(async () => {
  await t?.stop();
});

describe('deploy to a real systemd host', () => {
  test('a healthy release runs under systemd with a live main PID', async () => {
    const { result } = await deploy('v1');
    expect(result.status).toBe('deployed');
    const show = await must(`systemctl show -p ActiveState -p MainPID ${UNIT}`);
    expect(show).toMatch(/ActiveState=active/);
    const pid = Number(/MainPID=(\d+)/.exec(show)?.[1]);
    expect(pid).toBeGreaterThan(0);
    expect((await host.exec(`test -d /proc/${pid}`)).code).toBe(0);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v1');
    expect((await must(`readlink ${TARGET}/current`)).trim()).toBe(`${TARGET}/releases/v1`);
  }, 60_000);

  test('a release whose service fails to start is rolled back; the journal says why', async () => {
    const { result } = await deploy('v2', 'crash');
    expect(result.status).toBe('rolled-back');
    expect(result.error).toMatch(/service is not running: ActiveState=(failed|inactive)/);
    expect(result.error).toMatch(/ERROR version v2: cannot start/);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v1');
    expect((await must(`systemctl is-active ${UNIT}`)).trim()).toBe('active');
    expect((await must(`cat ${TARGET}/.deployguard/status/v2`)).split(' ')[0]).toBe('failed');
    // What the record keeps for debugging offline: the journal's last lines and where v2 stays.
    expect(result.hosts[0]!.logTail).toMatch(/ERROR version v2: cannot start/);
    expect(result.hosts[0]!.keptAt).toBe(`${TARGET}/releases/v2`);
    expect((await must(`test -d ${TARGET}/releases/v2 && echo kept`)).trim()).toBe('kept');
  }, 90_000);

  test('a release that starts but fails its health check is rolled back', async () => {
    const { result } = await deploy('v3', 'unhealthy');
    expect(result.status).toBe('rolled-back');
    expect(result.hosts[0]!.checks[0]).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/HTTP 500/)
    });
    expect(result.hosts[0]!.rollbackChecks[0]).toMatchObject({ ok: true });
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v1');
  }, 90_000);

  test('a crash loop that systemd reports as active (Restart=always) is caught and rolled back', async () => {
    await installUnit('always');
    try {
      const { result } = await deploy('v4', 'crash');
      expect(result.status).toBe('rolled-back');
      expect(result.error).toMatch(/service is not running/);
      expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v1');
      // The restored release is stable: same PID a second later, no restarts.
      const a = await must(`systemctl show -p MainPID -p NRestarts ${UNIT}`);
      await new Promise(r => setTimeout(r, 1000));
      expect(await must(`systemctl show -p MainPID -p NRestarts ${UNIT}`)).toBe(a);
    } finally {
      await installUnit('no');
    }
  }, 90_000);

  test('after all that, a good release deploys; failed ones never counted as good and are pruned', async () => {
    const { result } = await deploy('v5');
    expect(result.status).toBe('deployed');
    expect(result.previousRelease).toBe('v1');
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v5');
    const statuses = await must(
      `cd ${TARGET}/.deployguard/status && for f in *; do printf '%s=%s\\n' "$f" "$(cut -d' ' -f1 "$f")"; done`
    );
    // v2 and v3 were pruned (failed, and not the newest failure); v4 stays for debugging.
    expect(statuses.trim().split('\n').sort()).toEqual(['v1=good', 'v4=failed', 'v5=good']);
    expect((await must(`ls ${TARGET}/releases`)).trim().split('\n').sort()).toEqual(['v1', 'v4', 'v5']);
    // The host's own record of all five deploys, in order, each with its outcome.
    const records = (await must(`cat ${TARGET}/.deployguard/deployments.jsonl`))
      .trim()
      .split('\n')
      .map(l => JSON.parse(l) as { release: string; status: string; previous?: string });
    expect(records.map(r => `${r.release}:${r.status}`)).toEqual([
      'v1:deployed',
      'v2:rolled-back',
      'v3:rolled-back',
      'v4:rolled-back',
      'v5:deployed'
    ]);
    expect(records[4]!.previous).toBe('v1');
    expect(result.hosts[0]!.previousDeploy?.release).toBe('v1');
  }, 60_000);
});

describe('more broken releases on the systemd host, after v5', () => {
  /** The base config with the health check given more patience, more checks, or a stability window. */
  const tuned = (opts: { retries?: number; checks?: string[]; window?: string }) =>
    yaml()
      // Patient by default: v6, the release the later tests roll back to, takes 4 s to listen.
      .replace('retries: 4', `retries: ${opts.retries ?? 16}`)
      .replace(
        'post-deploy: { stability-window: 0s }',
        `post-deploy: { stability-window: ${opts.window ?? '0s'} }`
      )
      .replace('checks:\n', `checks:\n${(opts.checks ?? []).map(c => `  - ${c}\n`).join('')}`);
  const deployTuned = async (version: string, fault: string, opts: Parameters<typeof tuned>[0]) =>
    deployQuiet(
      settingsFor(host, { artifact: await makeRelease(version, fault), 'release-id': version }, tuned(opts))
    );

  test('a slow start (4 s before it listens) that fits the checks’ patience passes', async () => {
    const { result } = await deployTuned('v6', 'slow-start', { retries: 16 });
    expect({ status: result.status, error: result.error }).toEqual({ status: 'deployed', error: undefined });
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v6');
    // It took retries: the first answers were refusals, then a 200.
    expect(result.hosts[0]!.checks[0]).toMatchObject({ ok: true });
    expect(result.hosts[0]!.checks[0]!.attempts).toBeGreaterThan(1);
  }, 90_000);

  test('errors in the first seconds of its logs: the logs check reads the journal, and v6 comes back', async () => {
    const { result } = await deployTuned('v7', 'log-errors', {
      checks: ['{ name: clean-logs, type: logs, source: journal, window: 4s }']
    });
    expect(result.status).toBe('rolled-back');
    const logs = result.hosts[0]!.checks.find(c => c.name === 'clean-logs');
    expect(logs).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/ERROR version v7: lost the database connection/)
    });
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v6');
    expect((await must(`systemctl is-active ${UNIT}`)).trim()).toBe('active');
  }, 90_000);

  test('a crash 20 s after start is caught inside the stability window, and v6 comes back', async () => {
    const { result } = await deployTuned('v8', 'late-crash', { window: '26s' });
    expect(result.status).toBe('rolled-back');
    expect(result.error).toMatch(/health|not running/);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v6');
    expect(result.hosts[0]!.logTail).toMatch(/ERROR version v8: crashed/);
  }, 120_000);

  test('a broken service unit: the rollback cannot start the old release either, and says what to run', async () => {
    await must(
      `sed -i 's|^ExecStart=.*|ExecStart=/nonexistent/node server.js|' /etc/systemd/system/${UNIT}.service && systemctl daemon-reload`
    );
    try {
      const { result, log } = await deployTuned('v9', '', {});
      expect(result.status).toBe('rollback-failed');
      const h = result.hosts[0]!;
      expect(log.join('\n')).toMatch(/rolled back, but the restored version is NOT healthy/);
      expect(h.recovery).toContain(`systemctl start -- ${UNIT}`);
      // Back on v6 (switched back), nothing good deleted, the lock free.
      expect((await must(`readlink ${TARGET}/current`)).trim()).toBe(`${TARGET}/releases/v6`);
      expect((await must(`ls ${TARGET}/releases`)).split('\n')).toContain('v6');
      expect((await host.exec(`test -e ${TARGET}/.deployguard/lock`)).code).not.toBe(0);
    } finally {
      await installUnit('no');
    }
    // The service is down, so an ordinary deploy is blocked by the pre-deploy gate; with the unit
    // repaired, the fix goes out when a person says so (require-healthy: false).
    expect((await deployTuned('v10', '', {})).result.status).toBe('blocked');
    const { result } = await deployQuiet(
      settingsFor(
        host,
        { artifact: await makeRelease('v10'), 'release-id': 'v10b' },
        `${tuned({})}\npre-deploy: { require-healthy: false }`
      )
    );
    expect({ status: result.status, error: result.error }).toEqual({ status: 'deployed', error: undefined });
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v10');
  }, 120_000);
});
