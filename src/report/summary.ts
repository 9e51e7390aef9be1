import type { CheckResult } from '../checks/types.js';
import type { DeployResult, HostReport } from '../plan/execute.js';
import type { Finding } from '../scan/gitleaks.js';

/** Pure renderers of a deploy's result: Markdown for the step summary, one line for a terminal. */

const STATUS_TEXT: Record<DeployResult['status'], string> = {
  deployed: '✅ deployed',
  'rolled-back': '↩️ failed and rolled back (previous release verified healthy)',
  'rollback-failed': '🔥 failed, and the ROLLBACK FAILED: act now',
  failed: '❌ failed before the service was touched (nothing changed)',
  'failed-live': '❌ failed, and rollback is off: the failed release is live',
  blocked: '⛔ blocked before the deploy (nothing changed): see why below'
};

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, '<br>');
}

function checksTable(title: string, checks: readonly CheckResult[]): string[] {
  if (!checks.length) return [];
  return [
    `**${title}**: ${checks.filter(c => c.ok).length}/${checks.length} checks passed`,
    '',
    '| check | result | attempts | duration | detail |',
    '| --- | --- | --- | --- | --- |',
    ...checks.map(
      c =>
        `| ${cell(c.host ? `${c.name} @ ${c.host}` : c.name)} | ${c.ok ? '✅ pass' : '❌ fail'} | ${c.attempts} | ${c.durationMs} ms | ${cell(c.reason)} |`
    ),
    ''
  ];
}

function hostSection(h: HostReport): string[] {
  return [
    `### ${cell(h.name)}: ${h.outcome}`,
    '',
    '| step | result | time |',
    '| --- | --- | --- |',
    ...h.steps.map(
      s =>
        `| ${s.undo ? '↩️ ' : ''}${cell(s.title)} | ${s.ok ? '✅' : `❌ ${cell(s.detail ?? '')}`} | ${s.ms} ms |`
    ),
    '',
    ...checksTable('Post-deploy checks', h.checks),
    ...checksTable('Rollback verification', h.rollbackChecks),
    ...(h.recovery ? ['**Manual recovery**', '', '```sh', h.recovery, '```', ''] : [])
  ];
}

/** The step summary: status, release, previous release, per-host steps and checks. */
export function renderSummary(result: DeployResult, environment: string): string {
  const secs = ((result.finishedAt.getTime() - result.startedAt.getTime()) / 1000).toFixed(1);
  return [
    `## deployguard: ${environment}`,
    '',
    `**Status:** ${STATUS_TEXT[result.status]}  `,
    `**Release:** \`${result.releaseId}\`  `,
    `**Previous release:** ${result.previousRelease ? `\`${result.previousRelease}\`` : 'none (first deploy)'}  `,
    `**Duration:** ${secs} s`,
    '',
    ...(result.error ? ['```', result.error, '```', ''] : []),
    ...checksTable('Production before the deploy (pre-deploy checks)', result.preChecks),
    ...result.hosts.flatMap(hostSection)
  ].join('\n');
}

/** One line that says how it ended, for the end of a log or a terminal. */
export function verdictLine(result: DeployResult): string {
  const hosts = result.hosts.map(h => `${h.name}=${h.outcome}`).join(', ');
  return `deployguard: ${result.status}: release ${result.releaseId} (${hosts})`;
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
