/**
 * A runner killed mid-deploy (SIGKILL to the CLI, so no cleanup runs at all) at each point where
 * the host is in between: locked only, staged, service stopped, switched to an unchecked release,
 * unchecked release started. The next deploy must find the lock abandoned (it is no longer
 * refreshed), take it over, put the host back on a good release with its service running, and
 * then deploy: a complete, verified release serves, and no lock is left.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sandbox } from '../../src/demo/sandbox.js';
import { commandServiceYaml, deployQuiet, get, makeRelease, settingsFor } from '../helpers/deploy.js';
import { startTestHost, type TestHost } from '../helpers/test-host.js';

let t: TestHost;
let host: Sandbox;
let base: string;
let runDir: string;
let target: string;
let appPort: number;
let yaml: string;

beforeAll(async () => {
  t = await startTestHost({ prefix: 'kill' });
  ({ host, work: base, runDir, target, appPort } = t);
  // The shortest TTL allowed: a dead deploy's lock is taken over 10 s after its last refresh.
  yaml = commandServiceYaml(appPort, runDir, 'deploy: { lock-ttl: 10s }', {
    preDeploy: '{ gitleaks: false }'
  });
}, 30_000);

afterAll(() => t?.stop());

/** Runs the bundled CLI and SIGKILLs it as soon as a line of its output matches `when`. */
async function deployKilled(release: string, when: RegExp): Promise<{ killed: boolean; output: string }> {
  const artifact = await makeRelease(release);
  const config = join(base, `${release}.yml`);
  writeFileSync(
    config,
    [
      yaml,
      `artifact: ${artifact}`,
      `target: { path: ${target} }`,
      'hosts:',
      `  - { name: web, host: ${host.host}, port: ${host.port}, user: ${host.user} }`
    ].join('\n')
  );
  const child = spawn(
    process.execPath,
    [
      join(process.cwd(), 'dist', 'cli', 'index.cjs'),
      'deploy',
      '--config',
      config,
      '--release-id',
      release,
      '--known-hosts',
      host.knownHostsLine
    ],
    { cwd: base, env: { PATH: process.env.PATH ?? '', DEPLOYGUARD_SSH_KEY: host.privateKey } }
  );
  let output = '';
  let killed = false;
  const watch = (b: Buffer) => {
    output += b.toString();
    if (!killed && when.test(output)) {
      killed = true;
      child.kill('SIGKILL');
    }
  };
  child.stdout.on('data', watch);
  child.stderr.on('data', watch);
  // 'exit', not 'close': a process the CLI started may still hold its output pipes.
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await new Promise(resolve => child.on('exit', resolve));
  clearTimeout(timer);
  if (process.env.KILL_DEBUG) console.log(output);
  return { killed, output };
}

function servedRelease(): string {
  const release = readlinkSync(join(target, 'current')).split('/').pop()!;
  execFileSync(
    'sha256sum',
    ['-c', '--strict', '--quiet', join(target, '.deployguard', 'manifests', `${release}.sha256`)],
    {
      cwd: join(target, 'releases', release)
    }
  );
  return release;
}

const POINTS: readonly { name: string; when: RegExp; switchedBack?: boolean }[] = [
  { name: 'holding only the lock', when: /✓ Lock the host/ },
  { name: 'after the upload', when: /✓ Upload the artifact/ },
  { name: 'with the service stopped', when: /✓ Stop the service/ },
  {
    name: 'switched to an unchecked release, service stopped',
    when: /✓ Switch current to/,
    switchedBack: true
  },
  { name: 'with the unchecked release started', when: /✓ Start the service/, switchedBack: true }
];

describe('a runner killed mid-deploy', () => {
  beforeAll(async () => {
    const first = await deployQuiet(
      settingsFor(
        host,
        { artifact: await makeRelease('good-0'), 'target-path': target, 'release-id': 'good-0' },
        yaml
      )
    );
    expect(first.result.status).toBe('deployed');
  }, 60_000);

  test.each(POINTS.map((p, i) => [p.name, i, p] as const))(
    'killed %s: the next deploy takes over, recovers and deploys',
    async (_name, i, point) => {
      const killed = await deployKilled(`dead-${i}`, point.when);
      expect({ killed: killed.killed, tail: killed.output.slice(-300) }).toMatchObject({ killed: true });
      // The dead deploy's lock is still there, with its owner.
      expect(readFileSync(join(target, '.deployguard', 'lock', 'owner'), 'utf8')).toContain(
        `"release":"dead-${i}"`
      );

      const next = await deployQuiet(
        settingsFor(
          host,
          {
            artifact: await makeRelease(`good-${i + 1}`),
            'target-path': target,
            'release-id': `good-${i + 1}`,
            'lock-wait': '40s'
          },
          yaml
        )
      );
      const log = next.log.join('\n');
      expect({ status: next.result.status, error: next.result.error }).toEqual({
        status: 'deployed',
        error: undefined
      });
      expect(log).toMatch(/took over an abandoned lock/);
      if (point.switchedBack)
        expect(log).toMatch(
          new RegExp(
            `the deploy of dead-${i} died after switching to it, before it was checked: switching back to good-${i}`
          )
        );
      expect(servedRelease()).toBe(`good-${i + 1}`);
      expect((await get(`http://127.0.0.1:${appPort}/`)).trim()).toBe(`good-${i + 1}`);
      expect(existsSync(join(target, '.deployguard', 'lock'))).toBe(false);
      // The recovery is in the record, as a step of the deploy that did it.
      expect(next.result.hosts[0]!.steps.map(s => s.id)).toContain('recover');
    },
    90_000
  );
});

test('a live deploy that runs longer than the TTL keeps its lock: a second deploy waits, fails, and names it', async () => {
  const longYaml = commandServiceYaml(appPort, runDir, 'deploy: { lock-ttl: 10s }', {
    preDeploy: '{ gitleaks: false }',
    window: '14s'
  });
  const long = deployQuiet(
    settingsFor(
      host,
      { artifact: await makeRelease('long-1'), 'target-path': target, 'release-id': 'long-1' },
      longYaml
    )
  );
  // Past the TTL of a lock nobody refreshed: only the heartbeat keeps it.
  await new Promise(r => setTimeout(r, 12_000));
  const second = await deployQuiet(
    settingsFor(
      host,
      {
        artifact: await makeRelease('long-2'),
        'target-path': target,
        'release-id': 'long-2',
        'lock-wait': '2s'
      },
      yaml
    )
  );
  expect(second.result.status).not.toBe('deployed');
  expect(second.result.error).toMatch(/another deploy holds the lock: .*"release":"long-1"/);
  expect(second.log.join('\n')).not.toMatch(/took over/);
  const first = await long;
  expect({ status: first.result.status, error: first.result.error }).toEqual({
    status: 'deployed',
    error: undefined
  });
  expect(servedRelease()).toBe('long-1');
  expect(existsSync(join(target, 'releases', 'long-2'))).toBe(false);
}, 90_000);

describe('two deploys started at the same moment', () => {
  const go = async (release: string, lockWait: string) =>
    deployQuiet(
      settingsFor(
        host,
        {
          artifact: await makeRelease(release),
          'target-path': target,
          'release-id': release,
          'lock-wait': lockWait
        },
        commandServiceYaml(appPort, runDir, 'deploy: { lock-ttl: 10s }', {
          preDeploy: '{ gitleaks: false }',
          window: '3s'
        })
      )
    );
  const records = () =>
    (existsSync(join(target, '.deployguard', 'deployments.jsonl'))
      ? readFileSync(join(target, '.deployguard', 'deployments.jsonl'), 'utf8')
      : ''
    )
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(l => JSON.parse(l) as { release: string; status: string; previous?: string });

  test('with a short wait: one deploys, the other fails naming the owner, and leaves no trace', async () => {
    const before = records().length;
    const [a, b] = await Promise.all([go('race-a', '1s'), go('race-b', '1s')]);
    const won = [a, b].filter(r => r.result.status === 'deployed');
    const lost = [a, b].filter(r => r.result.status !== 'deployed');
    expect([won.length, lost.length]).toEqual([1, 1]);
    const winner = won[0] === a ? 'race-a' : 'race-b';
    const loser = winner === 'race-a' ? 'race-b' : 'race-a';
    expect(lost[0]!.result.error).toMatch(
      new RegExp(`another deploy holds the lock: .*"release":"${winner}"`)
    );
    expect(servedRelease()).toBe(winner);
    expect(existsSync(join(target, 'releases', loser))).toBe(false);
    // Only the winner wrote a record: the loser never held the lock.
    expect(
      records()
        .slice(before)
        .map(r => r.release)
    ).toEqual([winner]);
  }, 90_000);

  test('with a long enough wait: both deploy, one after the other, never interleaved', async () => {
    const before = records().length;
    const [a, b] = await Promise.all([go('seq-a', '60s'), go('seq-b', '60s')]);
    expect([a.result.status, b.result.status]).toEqual(['deployed', 'deployed']);
    const added = records().slice(before);
    expect(added.map(r => r.status)).toEqual(['deployed', 'deployed']);
    // The second one's previous release is the first one: it started after the first ended.
    expect(added[1]!.previous).toBe(added[0]!.release);
    expect(servedRelease()).toBe(added[1]!.release);
  }, 120_000);
});
