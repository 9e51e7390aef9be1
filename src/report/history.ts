import { clip, type DeploymentLog } from '../record/host-record.js';

/** The history as a terminal table, newest first. */
export function renderHistory(host: string, log: DeploymentLog): string {
  const rows = [...log.entries]
    .reverse()
    .map(e => [
      e.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
      e.status,
      e.release,
      e.commit.slice(0, 12),
      e.actor,
      e.ref.replace(/^refs\/heads\//, ''),
      e.reason ? clip(e.reason.split('\n')[0]!, 60) : ''
    ]);
  const head = ['TIME', 'STATUS', 'RELEASE', 'COMMIT', 'ACTOR', 'REF', 'WHY'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i]!.length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (i < cells.length - 1 ? c.padEnd(widths[i]!) : c))
      .join('  ')
      .trimEnd();
  const out = [`${host}: ${log.entries.length} deployment(s)`, fmt(head), ...rows.map(fmt)];
  for (const p of log.problems) out.push(`  line ${p.line} skipped: ${p.reason}`);
  return out.join('\n');
}
