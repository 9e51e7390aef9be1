import type { CheckResult } from '../checks/types.js';
import type { DeployResult, HostReport } from '../execute/result.js';

/** Pure renderers of a deploy's result: Markdown for the step summary, one line for a terminal. */

/**
 * One line that says how it ended, for the end of a log or a terminal. It names only releases
 * that exist and were live: a release that failed before the switch is not named, and a first
 * deploy that was taken down says that nothing is live, not what it went back to.
 */
export function verdictLine(result: DeployResult): string {
  const id = result.releaseId;
  const head: Record<DeployResult['status'], string> = {
    deployed: `release ${id} is live`,
    switched: `release ${id} is switched in, not verified yet`,
    checked: 'the pre-deploy gates passed; nothing changed',
    blocked: 'nothing changed',
    failed: 'nothing changed',
    'rolled-back': result.rolledBack
      ? `release ${id} failed and was rolled back`
      : `release ${id} failed and was taken down`,
    'rollback-failed': `release ${id} failed and the rollback did not complete: recover by hand`,
    'failed-live': `release ${id} failed and stays live (rollback is off)`
  };
  const hosts = result.hosts.map(h => `${h.name}: ${hostVerdict(result, h)}`).join('; ');
  return `deployguard: ${result.status}: ${head[result.status]}${hosts ? ` (${hosts})` : ''}`;
}

/** What one host serves now, in words that name no release that is not there. */
function hostVerdict(result: DeployResult, h: HostReport): string {
  const still = h.liveBefore ? `, ${h.liveBefore} still live` : '';
  switch (h.outcome) {
    case 'deployed':
      return `${result.releaseId} live${h.liveBefore ? ` (was ${h.liveBefore})` : ''}`;
    case 'switched':
      return `${result.releaseId} live, not verified yet`;
    case 'rolled-back':
      if (h.liveBefore) return `back on ${h.liveBefore}, verified`;
      return h.previousRelease
        ? `the previous tree restored from ${h.previousRelease}, verified`
        : 'taken down, nothing is live (there was no release before)';
    case 'rollback-failed':
      return 'ROLLBACK FAILED, see the recovery steps';
    case 'failed-live':
      return `${result.releaseId} failed and stays live`;
    case 'failed':
      return `nothing changed${still}`;
    case 'not-started':
      return result.status === 'deployed' || result.status === 'switched'
        ? 'not started'
        : `not started, nothing changed${still}`;
  }
}

/** The check results as a plain-text table for a terminal, ending with "N/M checks passed". */
export function renderCheckTable(results: readonly CheckResult[]): string {
  const rows = results.map(r => [
    r.ok ? 'PASS' : 'FAIL',
    r.host ? `${r.name} @ ${r.host}` : r.name,
    r.stage,
    String(r.attempts),
    `${r.durationMs} ms`,
    r.reason
  ]);
  const head = ['RESULT', 'CHECK', 'STAGE', 'ATTEMPTS', 'DURATION', 'REASON'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => (i < 5 ? r[i]!.length : 0))));
  const line = (cells: string[]) => cells.map((c, i) => (i < 5 ? c.padEnd(widths[i]!) : c)).join('  ');
  const passed = results.filter(r => r.ok).length;
  return [line(head), ...rows.map(line), `${passed}/${results.length} checks passed`].join('\n');
}
