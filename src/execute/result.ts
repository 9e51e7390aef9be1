import { describeError } from '../errors.js';
import type { CheckResult } from '../checks/types.js';
import type { PreflightFinding } from '../preflight.js';
import type { Settings } from '../settings/types.js';

/**
 * What a deploy reports: per host and as a whole. The action's outputs, the summary, the PR
 * comment, the host's record line and the CLI's exit code are all made from these.
 */

export type HostOutcome =
  'deployed' | 'switched' | 'rolled-back' | 'rollback-failed' | 'failed' | 'failed-live' | 'not-started';
/** `failed`: nothing live changed. `failed-live`: rollback is off and the failed release serves. */
export type DeployStatus =
  | 'deployed'
  | 'switched'
  | 'checked'
  | 'rolled-back'
  | 'rollback-failed'
  | 'failed'
  | 'failed-live'
  | 'blocked';

/**
 * What this run does. `full`: every phase. `switch`: ship and start the release, no checks (the
 * `deploy` sub-action; it ends `switched`). `post`: the running check, health checks and automatic
 * rollback for a release an earlier `switch` run started (the `post-deploy` sub-action). `pre`:
 * the gates only (production health, the secret scan), changing nothing; it ends `checked`.
 * `rollback`: switch back to a release kept on the hosts (`previous`, or an id).
 */
export type DeployMode =
  | { readonly kind: 'full' }
  | { readonly kind: 'pre' }
  | { readonly kind: 'switch' }
  | { readonly kind: 'post'; readonly release: string; readonly previous?: string }
  | { readonly kind: 'rollback'; readonly to: string };

export interface StepRecord {
  readonly id: string;
  readonly title: string;
  readonly ok: boolean;
  readonly ms: number;
  readonly detail?: string;
  readonly undo?: boolean;
  /** When the step started (ms since the epoch), for the record's timeline. */
  readonly at: number;
}

/** A phase that is not one host's step: connecting, the pre-deploy checks, the secret scan. */
export interface PhaseRecord {
  readonly name: string;
  /** ms since the epoch. */
  readonly start: number;
  readonly ms: number;
  readonly ok: boolean;
}

/** What the host's record says about the release that was live before this deploy. */
export interface PreviousDeploy {
  readonly release: string;
  readonly commit: string;
  readonly runUrl?: string;
  readonly time: string;
}

export interface HostReport {
  readonly name: string;
  outcome: HostOutcome;
  previousRelease?: string;
  readonly steps: StepRecord[];
  checks: CheckResult[];
  rollbackChecks: CheckResult[];
  error?: string;
  /** Set when the rollback did not complete: what to run by hand, exactly. */
  recovery?: string;
  /** The record of the deploy that put the previous release live (from the host's log). */
  previousDeploy?: PreviousDeploy;
  /** The service's last log lines, taken when the new release failed after it was started. */
  logTail?: string;
  /** Where the failed release stays on the host for a look offline. */
  keptAt?: string;
  /** Lines of the host's deployments.jsonl that could not be read (reported, skipped). */
  recordProblems?: string[];
  /** The release `current` pointed at when this run read the host (releases strategy only). */
  liveBefore?: string;
  /** What the preflight found on this host (failures stop the deploy before anything changes). */
  preflight?: readonly PreflightFinding[];
}

export interface DeployResult {
  readonly status: DeployStatus;
  /** The release deployed or switched to; '' for a rollback that found no release to go back to. */
  readonly releaseId: string;
  readonly previousRelease?: string;
  readonly rolledBack: boolean;
  readonly hosts: readonly HostReport[];
  /** Production's health before anything changed (empty on a first deploy). */
  readonly preChecks: readonly CheckResult[];
  /** The error of the `beforeChanges` gate when it blocked the deploy. */
  readonly blockedBy?: unknown;
  readonly error?: string;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  /** Connect, lock and read, pre-deploy checks, secret scan: with each host's steps, the timeline. */
  readonly phases: readonly PhaseRecord[];
  /** The commit every host recorded as its last good deploy (where "changes since" start). */
  readonly lastDeployedCommit?: string;
  /** The commit of the release deployed (a rollback's is the old release's). */
  readonly commit: string;
  /** The release was already on the hosts and verified: it was only switched to, not uploaded. */
  readonly reused: boolean;
}

/** The result of a deploy stopped before any host was contacted (by the test command). */
export function blockedResult(settings: Settings, err: unknown, at: Date): DeployResult {
  return {
    status: 'blocked',
    releaseId: settings.releaseId,
    rolledBack: false,
    hosts: [],
    preChecks: [],
    error: describeError(err),
    startedAt: at,
    finishedAt: new Date(),
    phases: [],
    commit: settings.run.commit,
    reused: false
  };
}
