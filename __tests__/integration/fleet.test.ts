/**
 * A fleet of real sshd hosts. Each sandbox sshd runs in its own mount namespace where its own
 * directory is mounted on the same path, so four hosts deploy to one `target.path` without seeing
 * each other's files, as separate machines would. A host-side check fails on the host that holds
 * a FAIL marker: canary failures, failures in a later batch, and that the fleet ends on one version.
 */
import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync
} from 'node:fs';
import { join } from 'node:path';
import type { Sandbox } from '../../src/demo/sandbox.js';
import { runDeploy } from '../../src/deploy.js';
import { memoryLogger } from '../../src/io/log.js';
import { parseSettings } from '../../src/settings/parse.js';
import { makeRelease } from '../helpers/deploy.js';
import { startTestHost, type TestHost } from '../helpers/test-host.js';

const MOUNT = '/srv/deployguard-fleet-test';
const TARGET = `${MOUNT}/app`;
const N = 4;
let fleet: TestHost[] = [];
let hosts: Sandbox[] = [];
/** Host i's MOUNT, as seen from here. */
const disk = (i: number) => fleet[i]!.runDir;

beforeAll(async () => {
  for (let i = 0; i < N; i++) {
    fleet.push(await startTestHost({ prefix: `fleet-${i + 1}`, runDirAt: MOUNT }));
  }
  hosts = fleet.map(t => t.host);
  // One deploy key for most of the fleet, as a team would have; web-4 takes only its own key.
  const pub = readFileSync(join(hosts[0]!.dir, 'user_key.pub'), 'utf8');
  for (const h of hosts.slice(1, 3)) appendFileSync(join(h.dir, 'authorized_keys'), pub);
}, 60_000);

afterAll(async () => {
  for (const t of fleet) await t.stop();
  fleet = [];
  hosts = [];
});

function settings(release: string, artifact: string, rollout: string, lockWait = '0s') {
  const yaml = [
    'version: 1',
    `target: { path: ${TARGET}, keep-releases: 3 }`,
    'service: { manager: none }',
    'hosts:',
    ...hosts.map(
      (h, i) =>
        `  - { name: web-${i + 1}, host: ${h.host}, port: ${h.port}, user: ${h.user}, known-hosts: "${h.knownHostsLine}"${i === 3 ? ', ssh-key-env: WEB4_KEY' : ''} }`
    ),
    'checks:',
    // Fails where the host holds a FAIL marker and the live release is a faulty one.
    `  - { name: no-fault, type: command, on: host, run: "test ! -e ${TARGET}/current/FAULT || test ! -e ${MOUNT}/FAIL", stages: [post], retries: 0 }`,
    `deploy: { ${rollout}, lock-wait: ${lockWait} }`,
    'post-deploy: { stability-window: 0s }',
    'pre-deploy: { gitleaks: false }'
  ].join('\n');
  return parseSettings({
    input: n => ({ artifact, 'release-id': release, 'ssh-key': hosts[0]!.privateKey })[n],
    env: { WEB4_KEY: hosts[3]!.privateKey },
    configText: yaml,
    configPath: 'fleet.yml',
    now: new Date(),
    onSecret: () => {}
  });
}

/** The release a host serves (its `current` link points into its own namespace's path). */
const live = (i: number): string | undefined => {
  try {
    return readlinkSync(join(disk(i), 'app', 'current'))
      .split('/')
      .pop();
  } catch {
    return undefined;
  }
};
const logins = (i: number) =>
  (readFileSync(join(hosts[i]!.dir, 'sshd.log'), 'utf8').match(/Accepted publickey/g) ?? []).length;
const fail = (i: number, on: boolean) =>
  on ? writeFileSync(join(disk(i), 'FAIL'), '') : rmSync(join(disk(i), 'FAIL'), { force: true });

async function deploy(release: string, rollout: string, faulty = false, lockWait?: string) {
  const log = memoryLogger();
  const artifact = await makeRelease(release, faulty ? 'fleet-test' : undefined);
  const result = await runDeploy(settings(release, artifact, rollout, lockWait), { log });
  return { result, log: log.lines.join('\n') };
}

describe('a fleet of four hosts', () => {
  test('canary, then batches of two: every host ends on the release, over one SSH connection each', async () => {
    const before = hosts.map((_, i) => logins(i));
    const { result, log } = await deploy('r1', 'canary: 1, max-parallel: 2');
    expect(result.status).toBe('deployed');
    expect(result.hosts.map(h => `${h.name}=${h.outcome}`)).toEqual([
      'web-1=deployed',
      'web-2=deployed',
      'web-3=deployed',
      'web-4=deployed'
    ]);
    expect(hosts.map((_, i) => live(i))).toEqual(['r1', 'r1', 'r1', 'r1']);
    expect(log).toMatch(/canary 1\/3: web-1\n[\s\S]*batch 2\/3: web-2, web-3\n[\s\S]*batch 3\/3: web-4/);
    // One connection per host for the whole deploy: lock, read, upload, verify, switch, checks.
    expect(hosts.map((_, i) => logins(i) - before[i]!)).toEqual([1, 1, 1, 1]);
    // In parallel, the lines name their host.
    expect(log).toMatch(/✓ web-3: Verify the SHA-256 of every file on the host/);
  }, 120_000);

  test('a failing canary stops the rollout: no other host starts, the canary is rolled back', async () => {
    fail(0, true);
    try {
      const { result } = await deploy('r2', 'canary: 1, max-parallel: 2', true);
      expect(result.status).toBe('rolled-back');
      expect(result.hosts.map(h => `${h.name}=${h.outcome}`)).toEqual([
        'web-1=rolled-back',
        'web-2=not-started',
        'web-3=not-started',
        'web-4=not-started'
      ]);
      expect(hosts.map((_, i) => live(i))).toEqual(['r1', 'r1', 'r1', 'r1']);
      for (const i of [1, 2, 3]) expect(existsSync(join(disk(i), 'app', 'releases', 'r2'))).toBe(false);
    } finally {
      fail(0, false);
    }
  }, 120_000);

  test('a failure in batch 2 rolls back batch 1 and the canary too: the fleet ends on one version', async () => {
    fail(2, true);
    try {
      const { result, log } = await deploy('r3', 'canary: 1, max-parallel: 2', true);
      expect(result.status).toBe('rolled-back');
      const outcome = Object.fromEntries(result.hosts.map(h => [h.name, h.outcome]));
      expect(outcome['web-1']).toBe('rolled-back');
      expect(outcome['web-3']).toBe('rolled-back');
      expect(outcome['web-4']).toBe('not-started');
      // web-2 ran beside web-3: it finished or was stopped at its next step, and was put back either way.
      expect(['rolled-back', 'failed']).toContain(outcome['web-2']);
      expect(hosts.map((_, i) => live(i))).toEqual(['r1', 'r1', 'r1', 'r1']);
      expect(result.error).toMatch(/web-3: 1\/1 health checks failed: no-fault/);
      expect(log).not.toMatch(/batch 3\/3/);
    } finally {
      fail(2, false);
    }
  }, 120_000);

  test('the deploy sub-action (switch only) still judges its canary before any other host switches', async () => {
    fail(0, true);
    try {
      const log = memoryLogger();
      const artifact = await makeRelease('r5', 'fleet-test');
      const result = await runDeploy(
        settings('r5', artifact, 'canary: 1, max-parallel: 3'),
        { log },
        { kind: 'switch' }
      );
      expect(result.status).toBe('rolled-back');
      expect(result.hosts.map(h => h.outcome)).toEqual([
        'rolled-back',
        'not-started',
        'not-started',
        'not-started'
      ]);
      expect(result.error).toMatch(/web-1: 1\/1 health checks failed: no-fault/);
      expect(hosts.map((_, i) => live(i))).toEqual(['r1', 'r1', 'r1', 'r1']);
    } finally {
      fail(0, false);
    }
  }, 120_000);

  test('max-parallel as a percentage, no canary: all four at once', async () => {
    const { result, log } = await deploy('r4', "max-parallel: '100%'");
    expect(result.status).toBe('deployed');
    expect(hosts.map((_, i) => live(i))).toEqual(['r4', 'r4', 'r4', 'r4']);
    expect(log).not.toMatch(/batch \d/);
    // Each host's record says what it did.
    const last = JSON.parse(
      readFileSync(join(disk(3), 'app', '.deployguard', 'deployments.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .at(-1)!
    );
    expect(last).toMatchObject({ host: 'web-4', release: 'r4', status: 'deployed', previous: 'r1' });
  }, 120_000);

  test('uncontended, the fleet is locked at once; a busy host makes it lock one by one, in order, and wait', async () => {
    const quick = await deploy('r7', 'max-parallel: 4');
    expect([quick.result.status, quick.result.error]).toEqual(['deployed', undefined]);
    expect(quick.log).not.toMatch(/locking the hosts one by one/);
    // Another deploy holds web-3 and lets go after a second.
    const lock = join(disk(2), 'app', '.deployguard', 'lock');
    mkdirSync(lock);
    writeFileSync(join(lock, 'owner'), 'deploy of r-other by someone\n');
    execFileSync('chown', ['-R', 'deployguard-sandbox:', lock]);
    const freed = new Promise<void>(resolve =>
      setTimeout(() => {
        rmSync(lock, { recursive: true, force: true });
        resolve();
      }, 1500)
    );
    const { result, log } = await deploy('r8', 'max-parallel: 4', false, '20s');
    await freed;
    expect(result.status).toBe('deployed');
    expect(log).toMatch(/web-3: locked by another deploy; locking the hosts one by one, in order/);
    expect(log).toMatch(/web-3: waiting for the lock held by deploy of r-other by someone/);
    expect(hosts.map((_, i) => live(i))).toEqual(['r8', 'r8', 'r8', 'r8']);
    // Locked one by one in address order (the same for every deploy), web-3 after its wait.
    const byPort = result.hosts
      .map((h, i) => ({ port: hosts[i]!.port, lock: h.steps.find(s => s.id === 'lock')! }))
      .sort((a, b) => a.port - b.port);
    const starts = byPort.map(h => h.lock.at);
    expect(starts).toEqual([...starts].sort((a, b) => a - b));
    expect(result.hosts[2]!.steps.find(s => s.id === 'lock')!.ms).toBeGreaterThanOrEqual(1000);
    // No lock left behind on any host.
    expect(hosts.map((_, i) => existsSync(join(disk(i), 'app', '.deployguard', 'lock')))).toEqual([
      false,
      false,
      false,
      false
    ]);
  }, 120_000);

  test('run-once runs on the first host only, and no host of its batch switches before it succeeded', async () => {
    const once = 'run-once: \'sleep 1; echo "$DEPLOYGUARD_RELEASE" >> ../../../once.log\'';
    const { result, log } = await deploy('o1', `max-parallel: 2, ${once}`);
    expect({ status: result.status, log }).toMatchObject({ status: 'deployed' });
    expect(hosts.map((_, i) => live(i))).toEqual(['o1', 'o1', 'o1', 'o1']);
    // Only web-1 ran it (each host sees its own disk at the mount), once.
    expect(
      hosts.map((_, i) =>
        existsSync(join(disk(i), 'once.log')) ? readFileSync(join(disk(i), 'once.log'), 'utf8') : ''
      )
    ).toEqual(['o1\n', '', '', '']);
    const ran = result.hosts[0]!.steps.find(s => s.id === 'run-once')!;
    const web2Switch = result.hosts[1]!.steps.find(s => s.id === 'switch')!;
    expect(web2Switch.at).toBeGreaterThanOrEqual(ran.at + ran.ms);
    expect(result.hosts.slice(1).every(h => !h.steps.some(s => s.id === 'run-once'))).toBe(true);
  }, 120_000);

  test('a failing run-once stops the deploy with nothing switched on any host', async () => {
    const { result, log } = await deploy(
      'o2',
      "max-parallel: 2, run-once: 'echo migration failed >&2; exit 5'"
    );
    expect(result.status).toBe('failed');
    expect(hosts.map((_, i) => live(i))).toEqual(['o1', 'o1', 'o1', 'o1']);
    expect(log).toMatch(/web-1: Run the run-once command .* failed \(exit 5\):\s+migration failed/);
    // web-2 ran alongside web-1 and stopped at its next step once web-1 failed, before anything
    // of it went live: how far its upload got by then is a matter of timing (no stop, no switch).
    expect(result.hosts[1]!.steps.map(s => s.id)).toContain('stage');
    expect(result.hosts[1]!.steps.some(s => s.id === 'stop')).toBe(false);
    expect(result.hosts[1]!.outcome).toBe('failed');
    expect(result.hosts.some(h => h.steps.some(s => s.id === 'switch'))).toBe(false);
    expect(result.hosts.slice(2).map(h => h.outcome)).toEqual(['not-started', 'not-started']);
  }, 120_000);
});
