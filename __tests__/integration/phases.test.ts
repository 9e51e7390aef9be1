/**
 * The sub-actions as a workflow runs them: pre-deploy, deploy and post-deploy, each its own
 * process, passing state only as a workflow would (one step's outputs become the next one's
 * inputs; the rest is on the host). Then rollback by re-running an older run (its release is
 * switched back to, nothing uploaded), the rollback action, and a rollback refused because the
 * kept release no longer matches its checksums. Real sshd, real service, real HTTP checks.
 */
import { appendFileSync, readFileSync, readlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sandbox } from '../../src/demo/sandbox.js';
import { commandServiceYaml, get, makeRelease, runActionEntry, runBundle } from '../helpers/deploy.js';
import { startTestHost, type TestHost } from '../helpers/test-host.js';

let t: TestHost;
let host: Sandbox;
let work: string;
let runDir: string;
let appPort: number;
let target: string;
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);

beforeAll(async () => {
  t = await startTestHost({ prefix: 'phases' });
  ({ host, work, runDir, appPort, target } = t);
  await writeFile(
    join(work, 'deployguard.yml'),
    commandServiceYaml(appPort, runDir, `target: { path: ${target} }`)
  );
}, 30_000);

afterAll(async () => {
  await t?.stop();
});

/** One step of a workflow run: the run id and commit are the run's, the inputs the step's. */
function step(entry: string, run: { id: string; sha: string }, inputs: Record<string, string>) {
  return runActionEntry(
    entry,
    {
      host: host.host,
      'host-name': 'web-1',
      port: String(host.port),
      user: host.user,
      'ssh-key': host.privateKey,
      'known-hosts': host.knownHostsLine,
      'lock-wait': '0s',
      scan: 'artifact',
      ...inputs
    },
    {
      dir: work,
      env: {
        GITHUB_WORKSPACE: work,
        GITHUB_SHA: run.sha,
        GITHUB_RUN_ID: run.id,
        GITHUB_REPOSITORY: 'acme/shop'
      }
    }
  );
}

/** A workflow run of one commit: pre-deploy, deploy, post-deploy, wired by outputs only. */
async function workflowRun(run: { id: string; sha: string }, version: string, fault?: string) {
  const artifact = await makeRelease(version, fault);
  const pre = await step('pre-deploy', run, { artifact });
  if (pre.code !== 0) return { pre };
  const deploy = await step('deploy', run, { artifact });
  if (deploy.code !== 0) return { pre, deploy };
  const post = await step('post-deploy', run, {
    release: deploy.outputs.release!,
    'previous-release': deploy.outputs['previous-release'] ?? ''
  });
  return { pre, deploy, post };
}

const current = () => readlinkSync(join(target, 'current')).split('/').pop();
const records = () =>
  readFileSync(join(target, '.deployguard', 'deployments.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map(l => JSON.parse(l) as { release: string; status: string; commit: string; previous?: string });

describe('the sub-actions in sequence, as separate processes', () => {
  let releaseA = '';
  let releaseC = '';

  test('run 1 (commit A): pre-deploy passes, deploy switches, post-deploy verifies and records', async () => {
    const r = await workflowRun({ id: '101', sha: A }, 'vA');
    expect(r.pre.outputs).toMatchObject({ status: 'passed', 'last-deployed-commit': '', 'live-release': '' });
    expect(r.deploy!.outputs).toMatchObject({ status: 'switched', 'previous-release': '', reused: 'false' });
    releaseA = r.deploy!.outputs.release!;
    expect(r.post!.code).toBe(0);
    expect(r.post!.outputs).toMatchObject({ status: 'deployed', release: releaseA, 'rolled-back': 'false' });
    expect(current()).toBe(releaseA);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('vA');
    expect(records().map(e => `${e.release}:${e.status}`)).toEqual([
      `${releaseA}:switched`,
      `${releaseA}:deployed`
    ]);
    // Each phase's summary says where it stands; only post-deploy calls it deployed.
    expect(r.deploy!.summary).toMatch(/## 🔀 Switched \(not verified yet\)/);
    expect(r.post!.summary).toMatch(/## ✅ Deployed: production/);
  }, 120_000);

  test('run 2 (commit B, broken): post-deploy rolls back to A using only the outputs and the host record', async () => {
    const r = await workflowRun({ id: '102', sha: B }, 'vB', 'unhealthy');
    expect(r.pre.outputs).toMatchObject({
      status: 'passed',
      'last-deployed-commit': A,
      'live-release': releaseA
    });
    expect(r.deploy!.outputs['previous-release']).toBe(releaseA);
    expect(r.post!.code).toBe(1);
    expect(r.post!.outputs).toMatchObject({
      status: 'rolled-back',
      'rolled-back': 'true',
      'previous-release': releaseA
    });
    expect(current()).toBe(releaseA);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('vA');
    expect(records().at(-1)).toMatchObject({ status: 'rolled-back', commit: B, previous: releaseA });
  }, 120_000);

  test('run 3 (commit C) deploys; re-running run 1 then switches back to A without uploading', async () => {
    const c = await workflowRun({ id: '103', sha: C }, 'vC');
    expect(c.post!.outputs.status).toBe('deployed');
    releaseC = c.deploy!.outputs.release!;
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('vC');

    // A re-run builds the artifact again (here: different bytes, to prove nothing is uploaded).
    const again = await workflowRun({ id: '101', sha: A }, 'vA-rebuilt');
    expect(again.deploy!.outputs).toMatchObject({ status: 'switched', release: releaseA, reused: 'true' });
    expect(again.deploy!.stdout).toMatch(/Verify the kept release/);
    expect(again.deploy!.stdout).not.toMatch(/Upload the artifact/);
    expect(again.post!.outputs.status).toBe('deployed');
    expect(current()).toBe(releaseA);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('vA');
  }, 180_000);

  test('the rollback action goes to the previous good release, verified first', async () => {
    const r = await step('rollback', { id: '104', sha: C }, {});
    expect(r.code).toBe(0);
    expect(r.outputs).toMatchObject({ status: 'deployed', release: releaseC, 'previous-release': releaseA });
    expect(r.stdout).toMatch(/Verify the kept release/);
    expect(current()).toBe(releaseC);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('vC');
    expect(records().at(-1)).toMatchObject({ release: releaseC, status: 'deployed', commit: C });
  }, 120_000);

  test('a kept release whose files changed is refused, and nothing changes', async () => {
    appendFileSync(join(target, 'releases', releaseA, 'server.js'), '\n// edited on the host\n');
    const r = await step('rollback', { id: '105', sha: C }, { to: releaseA });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /cannot roll back to [^:]+: its files changed since it was verified: \.\/server\.js: FAILED/
    );
    expect(current()).toBe(releaseC);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('vC');
  }, 60_000);

  test('the CLI rolls back by release id, and a bad id is refused before any host is contacted', async () => {
    const cfg = join(work, 'deployguard.yml');
    const common = [
      'rollback',
      '--config',
      cfg,
      '--host',
      host.host,
      '--port',
      String(host.port),
      '--user',
      host.user,
      '--known-hosts',
      host.knownHostsLine,
      '--lock-wait',
      '0s'
    ];
    const env = { PATH: process.env.PATH ?? '', HOME: work, DEPLOYGUARD_SSH_KEY: host.privateKey };
    const bad = await runBundle('cli', [...common, '--to', '../etc'], { cwd: work, env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--to: expected previous or a release id/);
    const bId = records().find(e => e.commit === B)!.release;
    // B was rolled back (never good): it is not a target.
    const refused = await runBundle('cli', [...common, '--to', bId], { cwd: work, env });
    expect(refused.code).toBe(1);
    expect(current()).toBe(releaseC);
  }, 60_000);
});
