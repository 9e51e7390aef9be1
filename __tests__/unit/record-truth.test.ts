/**
 * The record says only what happened: a failed first deploy leaves nothing live (no "previous
 * release serves again"), a blocked deploy names the release the hosts reported live (never
 * "first deploy" while one is), and a commit that is not known is never "the same commit".
 */
import type { DeployResult, HostReport } from '../../src/execute/result.js';
import { changesSince } from '../../src/report/changes.js';
import { renderRecord, type RecordInput } from '../../src/report/record.js';
import { memoryLogger } from '../../src/io/log.js';
import type { RunContext } from '../../src/settings/types.js';

const T0 = Date.UTC(2026, 11, 2, 12, 0, 0);
const SHA = 'a'.repeat(40);

const run: RunContext = {
  runId: '7',
  commit: SHA,
  ref: 'refs/heads/main',
  actor: 'octocat',
  repository: 'acme/shop',
  serverUrl: 'https://github.com',
  apiUrl: 'https://api.github.com'
};

const probe = { id: 'probe', title: 'Read the host state', ms: 40, ok: true, undo: false, at: T0 };

function host(outcome: HostReport['outcome'], over: Partial<HostReport> = {}): HostReport {
  return { name: 'web-1', outcome, steps: [probe], checks: [], rollbackChecks: [], ...over };
}

function result(status: DeployResult['status'], hosts: HostReport[], over: Partial<DeployResult> = {}) {
  const r: DeployResult = {
    status,
    releaseId: 'r2',
    rolledBack: status === 'rolled-back',
    hosts,
    preChecks: [],
    startedAt: new Date(T0),
    finishedAt: new Date(T0 + 5000),
    phases: [],
    commit: SHA,
    reused: false,
    ...over
  };
  return r;
}

const input = (r: DeployResult, over: Partial<RecordInput> = {}): RecordInput => ({
  environment: 'production',
  result: r,
  run,
  ...over
});

describe('a failed first deploy', () => {
  const md = renderRecord(
    input(
      result('rolled-back', [host('rolled-back', { error: 'health: HTTP 500' })], {
        error: 'web-1: health: HTTP 500'
      })
    )
  );

  test('says the release was taken down and nothing is live, not that a previous release serves', () => {
    expect(md).not.toMatch(/previous release[^|\n]* serves again/);
    expect(md).not.toContain('passed its checks');
    expect(md).toMatch(/\| \*\*Status\*\* \|[^\n]*taken down[^\n]*nothing is live/);
    expect(md).toMatch(/no release before/);
  });

  test('its rollback plan says what was done, not what going back would take', () => {
    expect(md).not.toContain('going back means stopping the service');
    expect(md).toMatch(/\*\*Rollback plan:\*\* done: the failed release was taken down/);
  });

  test('a fleet where one host had a release before says which host serves what', () => {
    const mixed = renderRecord(
      input(
        result(
          'rolled-back',
          [
            host('rolled-back', { name: 'web-1', previousRelease: 'r1', liveBefore: 'r1' }),
            host('rolled-back', { name: 'web-2' })
          ],
          { previousRelease: 'r1' }
        )
      )
    );
    expect(mixed).toMatch(/`r1` serves again on web-1/);
    expect(mixed).toMatch(/web-2[^\n|]*nothing is live/);
    expect(mixed).not.toContain('every host was returned');
  });
});

describe('a blocked deploy while a release is live', () => {
  // The hosts were read (probe), then the secret scan blocked: no plan, so no previousRelease.
  const blocked = result('blocked', [host('not-started', { liveBefore: 'r1' })], {
    error: 'gitleaks found 1 secret'
  });
  const md = renderRecord(input(blocked, { blockedBy: 'secrets' }));

  test('names the live release the hosts reported, never "first deploy"', () => {
    expect(md).not.toMatch(/first deploy/i);
    expect(md).toContain('(previous: `r1`)');
    expect(md).toContain('| web-1 | ⏸️ not started | `r1` |');
    expect(md).toContain('nothing to do: `r1` still serves');
  });

  test('the live release from the host record when the host names no release dir (in-place)', () => {
    const inPlace = result(
      'blocked',
      [
        host('not-started', {
          previousDeploy: { release: 'r1', commit: 'b'.repeat(40), time: '2026-12-01T00:00:00Z' }
        })
      ],
      { error: 'blocked' }
    );
    expect(renderRecord(input(inPlace, { blockedBy: 'health' }))).toContain('(previous: `r1`)');
  });

  test('says "not read" when no host was read (the connection failed), and a first deploy only when read', () => {
    const unread = result('failed', [host('not-started', { steps: [] })], { error: 'connect failed' });
    const text = renderRecord(input(unread));
    expect(text).not.toMatch(/first deploy/i);
    expect(text).toContain('previous: not read');
    const first = renderRecord(input(result('blocked', [host('not-started')], { error: 'x' })));
    expect(first).toContain('(first deploy)');
  });
});

describe('the changes section', () => {
  const base = { repoDir: '/nonexistent', serverUrl: 'https://github.com', log: memoryLogger() };

  test('an unknown commit on both sides is not "the same commit as the last deployment"', async () => {
    const c = await changesSince({ ...base, base: 'unknown', head: 'unknown' });
    expect(c.note).not.toMatch(/same commit/i);
    expect(c.note).toMatch(/not known/);
  });

  test('a real commit deployed again is a re-deploy', async () => {
    const c = await changesSince({ ...base, base: SHA, head: SHA });
    expect(c.note).toMatch(/same commit as the last deployment/);
  });

  test('the hosts not read is not a first deploy', async () => {
    const c = await changesSince({ ...base, head: SHA, hostsRead: false });
    expect(c.note).not.toMatch(/first deploy/i);
  });
});
