import type { DeployResult, HostReport } from '../../src/execute/result.js';
import { verdictLine } from '../../src/report/summary.js';

const host = (name: string, fields: Partial<HostReport>): HostReport => ({
  name,
  outcome: 'not-started',
  steps: [],
  checks: [],
  rollbackChecks: [],
  ...fields
});

const result = (status: DeployResult['status'], hosts: HostReport[], releaseId = 'v2'): DeployResult => ({
  status,
  releaseId,
  rolledBack: status === 'rolled-back',
  hosts,
  preChecks: [],
  startedAt: new Date(0),
  finishedAt: new Date(0),
  phases: [],
  commit: 'c'.repeat(40),
  reused: false
});

describe('verdictLine names only releases that exist and were live', () => {
  test('deployed: the new release, and what it replaced', () => {
    expect(
      verdictLine(
        result('deployed', [host('web-1', { outcome: 'deployed', liveBefore: 'v1', previousRelease: 'v1' })])
      )
    ).toBe('deployguard: deployed: release v2 is live (web-1: v2 live (was v1))');
  });

  test('failed before the switch: nothing changed, the old release still live, the new one not named', () => {
    const line = verdictLine(
      result('failed', [
        host('web-1', { outcome: 'failed', liveBefore: 'v1', previousRelease: 'v1' }),
        host('web-2', { outcome: 'not-started', liveBefore: 'v1' })
      ])
    );
    expect(line).toBe(
      'deployguard: failed: nothing changed (web-1: nothing changed, v1 still live; web-2: not started, nothing changed, v1 still live)'
    );
    expect(line).not.toContain('v2');
  });

  test('failed on a host where nothing was live: nothing is named at all', () => {
    expect(verdictLine(result('failed', [host('web-1', { outcome: 'failed' })]))).toBe(
      'deployguard: failed: nothing changed (web-1: nothing changed)'
    );
  });

  test('rolled back: back on the release that was live before', () => {
    expect(
      verdictLine(
        result('rolled-back', [
          host('web-1', { outcome: 'rolled-back', liveBefore: 'v1', previousRelease: 'v1' })
        ])
      )
    ).toBe('deployguard: rolled-back: release v2 failed and was rolled back (web-1: back on v1, verified)');
  });

  test('a first deploy taken down: no release is named to return to', () => {
    const line = verdictLine({
      ...result('rolled-back', [host('web-1', { outcome: 'rolled-back' })]),
      rolledBack: false
    });
    expect(line).toBe(
      'deployguard: rolled-back: release v2 failed and was taken down (web-1: taken down, nothing is live (there was no release before))'
    );
    expect(line).not.toMatch(/rolled back to|back on/);
  });

  test('blocked and rollback-failed say so plainly', () => {
    expect(verdictLine(result('blocked', [host('web-1', { liveBefore: 'v1' })]))).toBe(
      'deployguard: blocked: nothing changed (web-1: not started, nothing changed, v1 still live)'
    );
    expect(verdictLine(result('rollback-failed', [host('web-1', { outcome: 'rollback-failed' })]))).toBe(
      'deployguard: rollback-failed: release v2 failed and the rollback did not complete: recover by hand (web-1: ROLLBACK FAILED, see the recovery steps)'
    );
  });
});
