import type { CheckResult } from '../checks/types.js';
import type { DeployResult } from '../plan/execute.js';
import type { Finding } from '../scan/gitleaks.js';
import { cell } from './record.js';

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

/** The secret scan's findings as a Markdown table: rule, where, commit, author, date. Never the secret. */
export function renderFindings(findings: readonly Finding[], artifactRoot: string): string {
  if (findings.length === 0) return '';
  const rows = findings.map(f => {
    const file = f.source === 'artifact' ? `${artifactRoot.replace(/\/+$/, '')}/${f.file}` : f.file;
    return `| ${cell(f.rule)} | \`${cell(file)}:${f.line}\` | ${f.commit ? `\`${f.commit.slice(0, 12)}\`` : '(artifact)'} | ${cell(f.author ?? '')} | ${cell((f.date ?? '').slice(0, 10))} |`;
  });
  return [
    `### Secrets found: ${findings.length}`,
    '',
    '| rule | file:line | commit | author | date |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
    'Rotate each secret first (it is already exposed), then remove it. For a false positive, allowlist it in `.gitleaks.toml` or add its fingerprint to `.gitleaksignore`.',
    ''
  ].join('\n');
}
