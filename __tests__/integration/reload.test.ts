/**
 * `switch: reload` on a real systemd host (issue 14): the unit's main process stays, `current`
 * moves, and `systemctl reload` makes the service pick up the new release. The unit runs
 * examples/app/reload-master.js, which forks the app from the release `current` names and, on
 * SIGHUP, replaces its worker only once the new one listens.
 */
import type { SystemdHost } from '../harness/hosts.js';
import { deployQuiet, get, makeRelease, settingsFor } from '../helpers/deploy.js';
import { startTestHost, SYSTEMD_TARGET, type SystemdTestHost } from '../helpers/test-host.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

let t: SystemdTestHost;
let host: SystemdHost;
let appPort: number;
const TARGET = SYSTEMD_TARGET;
const UNIT = 'dgreload';
const MASTER = readFileSync(join(process.cwd(), 'examples', 'app', 'reload-master.js'), 'utf8');

async function must(cmd: string): Promise<string> {
  const r = await host.exec(cmd);
  if (r.code !== 0) throw new Error(`${cmd} -> exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function installUnit(reload: boolean): Promise<void> {
  const unit = [
    '[Unit]',
    'Description=deployguard sample app behind a reloading master',
    '[Service]',
    `Environment=PORT=${appPort} APP_DIR=${TARGET}/current`,
    `WorkingDirectory=${TARGET}/current`,
    `ExecStart=/usr/bin/node ${TARGET}/current/reload-master.js`,
    ...(reload ? ['ExecReload=/bin/kill -HUP $MAINPID'] : []),
    ''
  ].join('\n');
  await must(`cat > /etc/systemd/system/${UNIT}.service <<'UNIT'\n${unit}UNIT\nsystemctl daemon-reload`);
}

const yaml = () =>
  [
    'version: 1',
    `target: { path: ${TARGET} }`,
    `service: { manager: systemd, name: ${UNIT}, settle: 1s, start-timeout: 10s, switch: reload }`,
    'checks:',
    // The version check proves the reload took: the old worker would still answer 200 on /health.
    `  - { name: version, type: version, url: "http://127.0.0.1:${appPort}/", expect: release, timeout: 1s, retries: 10, interval: 300ms }`,
    `  - { name: health, type: http, url: "http://127.0.0.1:${appPort}/health", timeout: 1s, retries: 4, interval: 300ms }`,
    'post-deploy: { stability-window: 0s }'
  ].join('\n');

const deploy = async (version: string, fault?: string) =>
  deployQuiet(
    settingsFor(
      host,
      { artifact: await makeRelease(version, fault, { 'reload-master.js': MASTER }), 'release-id': version },
      yaml()
    )
  );

const mainPid = async () => Number((await must(`systemctl show -p MainPID --value ${UNIT}`)).trim());

beforeAll(async () => {
  t = await startTestHost({ kind: 'systemd', name: 'systemd-reload' });
  ({ host, appPort } = t);
  await installUnit(true);
}, 180_000);

afterAll(async () => {
  await t?.stop();
});

describe('switch: reload on a real systemd host', () => {
  let pid = 0;

  test('the first deploy starts the service (nothing to reload yet)', async () => {
    const { result } = await deploy('v1');
    expect({ status: result.status, error: result.error }).toEqual({ status: 'deployed', error: undefined });
    expect(result.hosts[0]!.steps.map(s => s.id)).toContain('start');
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v1');
    pid = await mainPid();
    expect(pid).toBeGreaterThan(0);
  }, 60_000);

  test('the next deploy reloads: same main PID, no stop, and the new release answers', async () => {
    const { result } = await deploy('v2');
    expect({ status: result.status, error: result.error }).toEqual({ status: 'deployed', error: undefined });
    const ids = result.hosts[0]!.steps.map(s => s.id);
    expect(ids).toContain('reload');
    expect(ids).not.toContain('stop');
    expect(ids).not.toContain('start');
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v2');
    expect(await mainPid()).toBe(pid);
  }, 60_000);

  test('a release that fails its checks after the reload is switched back and reloaded again', async () => {
    const { result } = await deploy('v3', 'unhealthy');
    expect(result.status).toBe('rolled-back');
    const undo = result.hosts[0]!.steps.filter(s => s.undo).map(s => s.title);
    expect(undo).toContain('Switch current back to v2 and reload');
    expect(result.hosts[0]!.rollbackChecks.every(c => c.ok)).toBe(true);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v2');
    expect(await mainPid()).toBe(pid);
    expect((await must(`readlink ${TARGET}/current`)).trim()).toBe(`${TARGET}/releases/v2`);
  }, 60_000);

  test('the preflight refuses a unit without ExecReload=, before anything changes', async () => {
    await installUnit(false);
    try {
      const { result } = await deploy('v4');
      expect(result.status).toBe('failed');
      expect(result.error).toMatch(/cannot reload \(no ExecReload=\)/);
      expect((await must(`readlink ${TARGET}/current`)).trim()).toBe(`${TARGET}/releases/v2`);
      expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v2');
    } finally {
      await installUnit(true);
    }
  }, 60_000);
});
