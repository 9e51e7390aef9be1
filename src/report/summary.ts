import type { CheckResult } from '../checks/types.js';
import type { DeployResult } from '../plan/execute.js';

/** Pure renderers of a deploy's result: Markdown for the step summary, one line for a terminal. */

/** One line that says how it ended, for the end of a log or a terminal. */
export function verdictLine(result: DeployResult): string {
  const hosts = result.hosts.map(h => `${h.name}=${h.outcome}`).join(', ');
  return `deployguard: ${result.status}: release ${result.releaseId}${hosts ? ` (${hosts})` : ''}`;
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
