import type { CheckResult } from '../checks/types.js';
import type { DeployStatus } from '../execute/result.js';

/**
 * The host's own record of every deploy: one JSON object per line in
 * `<state dir>/deployments.jsonl`, appended under the lock and never rewritten. deployguard reads
 * it back for "the last successful deployment" (where the secret scan starts, what a rollback
 * returns to, which run to re-run) and `deployguard history` lists it.
 */

/** Version of the line format; readers skip lines of a newer version rather than misread them. */
export const ENTRY_VERSION = 1;

/** The host's outcome, in the deploy's own terms. */
export type EntryStatus = DeployStatus;

export interface EntryCheck {
  readonly name: string;
  readonly stage: string;
  readonly ok: boolean;
  readonly ms: number;
  readonly reason: string;
}

export interface DeploymentEntry {
  readonly v: number;
  /** When the deploy finished on this host (ISO 8601, UTC). */
  readonly time: string;
  readonly environment: string;
  readonly host: string;
  readonly release: string;
  /** The release that was live before this deploy, if any. */
  readonly previous?: string;
  readonly commit: string;
  readonly ref: string;
  readonly actor: string;
  readonly runUrl?: string;
  /** This host's outcome: `deployed` means it ended serving this release, verified. */
  readonly status: EntryStatus;
  readonly reason?: string;
  readonly durationMs: number;
  readonly checks: readonly EntryCheck[];
  /** The deploy run that wrote it (its lock token): one entry per run and host, never two. */
  readonly id?: string;
}

/** A line of the file that could not be read, reported and skipped, never fatal. */
export interface LogProblem {
  readonly line: number;
  readonly reason: string;
}

export interface DeploymentLog {
  readonly entries: readonly (DeploymentEntry & { readonly line: number })[];
  readonly problems: readonly LogProblem[];
  /** Lines in the whole file (the text read may be only its tail). */
  readonly totalLines: number;
}

/** A line must fit in one remote command argument with room to spare (Linux allows 128 KiB). */
export const MAX_ENTRY_BYTES = 32 * 1024;
const MAX_REASON = 300;

export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The check results as the record keeps them: short reasons, no host-specific noise. */
export function entryChecks(results: readonly CheckResult[]): EntryCheck[] {
  return results.map(r => ({
    name: r.name,
    stage: r.stage,
    ok: r.ok,
    ms: r.durationMs,
    reason: clip(r.reason, MAX_REASON)
  }));
}

/**
 * One line of JSON for the file: every string passed through `redact` first (a secret must not
 * land on a host's disk), then cut down to MAX_ENTRY_BYTES by dropping check detail, never the
 * fields deployguard reads back.
 */
export function serializeEntry(entry: DeploymentEntry, redact: (s: string) => string): string {
  const clean = JSON.parse(
    JSON.stringify(entry, (_k, v: unknown) => (typeof v === 'string' ? redact(v) : v))
  ) as DeploymentEntry;
  let line = JSON.stringify(clean);
  if (Buffer.byteLength(line) <= MAX_ENTRY_BYTES) return line;
  const slim = {
    ...clean,
    reason: clean.reason ? clip(clean.reason, MAX_REASON) : undefined,
    checks: clean.checks.map(c => ({ ...c, reason: clip(c.reason, 80) }))
  };
  line = JSON.stringify(slim);
  if (Buffer.byteLength(line) <= MAX_ENTRY_BYTES) return line;
  return JSON.stringify({ ...slim, checks: [], checksDropped: clean.checks.length });
}

const STATUSES: ReadonlySet<string> = new Set([
  'deployed',
  'switched',
  'rolled-back',
  'rollback-failed',
  'failed',
  'failed-live',
  'blocked'
]);

function validEntry(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const o = value as Record<string, unknown>;
  if (typeof o.v !== 'number') return 'no format version `v`';
  if (o.v > ENTRY_VERSION) return `written by a newer deployguard (format ${o.v})`;
  for (const key of ['time', 'release', 'commit', 'status', 'host'] as const)
    if (typeof o[key] !== 'string' || o[key] === '') return `\`${key}\` is missing`;
  if (!STATUSES.has(o.status as string)) return `unknown status "${String(o.status).slice(0, 30)}"`;
  if (Number.isNaN(Date.parse(o.time as string))) return '`time` is not a date';
  return undefined;
}

/**
 * Parses the file (or its tail: `firstLine` is the number of the first line given). A line that
 * is not valid JSON (a write cut short by a lost connection or a full disk), or not an entry, is
 * reported with its line number and skipped.
 */
export function parseDeploymentLog(text: string, firstLine = 1, totalLines?: number): DeploymentLog {
  const entries: (DeploymentEntry & { line: number })[] = [];
  const problems: LogProblem[] = [];
  const rows = text.split('\n');
  if (rows.at(-1) === '') rows.pop();
  rows.forEach((row, i) => {
    const line = firstLine + i;
    if (row.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(row);
    } catch {
      problems.push({ line, reason: `not valid JSON (a write cut short?): ${clip(row, 60)}` });
      return;
    }
    const bad = validEntry(value);
    if (bad) {
      problems.push({ line, reason: bad });
      return;
    }
    const o = value as DeploymentEntry;
    entries.push({
      ...o,
      checks: Array.isArray(o.checks) ? o.checks : [],
      durationMs: typeof o.durationMs === 'number' ? o.durationMs : 0,
      ref: typeof o.ref === 'string' ? o.ref : '',
      actor: typeof o.actor === 'string' ? o.actor : '',
      environment: typeof o.environment === 'string' ? o.environment : '',
      line
    });
  });
  return { entries, problems, totalLines: totalLines ?? firstLine - 1 + rows.length };
}

/** The newest entry that ended with this host serving its release, verified. */
export function lastDeployed(log: DeploymentLog): (DeploymentEntry & { line: number }) | undefined {
  return log.entries.findLast(e => e.status === 'deployed');
}

/** The newest successful deploy of a given release (its commit, and the run that shipped it). */
export function deployedRelease(
  log: DeploymentLog,
  release: string
): (DeploymentEntry & { line: number }) | undefined {
  return log.entries.findLast(e => e.status === 'deployed' && e.release === release);
}

/**
 * Splits the output of `readDeployments`: a `lines=N` header (the whole file's line count), then
 * the tail of the file.
 */
export function parseDeploymentsOutput(stdout: string): DeploymentLog {
  const m = /^lines=(\d+)\n/.exec(stdout);
  if (!m) return { entries: [], problems: [], totalLines: 0 };
  const body = stdout.slice(m[0].length);
  const total = Number(m[1]);
  const shown = body.split('\n').filter((_l, i, all) => !(i === all.length - 1 && all[i] === '')).length;
  return parseDeploymentLog(body, Math.max(1, total - shown + 1), total);
}
