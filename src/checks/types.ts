import type { Stage } from '../settings/types.js';

/** The outcome of one check, as it appears in the summary table and the deployment record. */
export interface CheckResult {
  readonly name: string;
  readonly stage: Stage | 'rollback';
  readonly ok: boolean;
  readonly attempts: number;
  readonly durationMs: number;
  /** Why it failed (or what passed), short and safe to print: secrets are never in it. */
  readonly reason: string;
}

/** One attempt of a check: resolves with ok/reason, never throws for a failed probe. */
export type Probe = (signal: AbortSignal) => Promise<{ ok: boolean; reason: string }>;
