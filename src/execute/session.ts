import { hostContextOf } from '../checks/runner.js';
import type { CheckResult, HostContext } from '../checks/types.js';
import { DeployError, DeployguardError, describeError } from '../errors.js';
import type { Logger } from '../io/log.js';
import type { RemoteShell } from '../io/ssh.js';
import type { Layout } from '../remote/layout.js';
import type { Shell } from '../remote/shell.js';
import type { Colour, HostSettings, Settings } from '../settings/types.js';
import type { Artifact } from '../transfer/artifact.js';
import type { SharedMembers } from '../transfer/tar.js';
import type { ExecStep, HostPlan, Step } from '../plan/plan.js';
import type { PreflightFacts } from '../preflight.js';
import type { HostReport } from './result.js';

/**
 * One deploy's shared context and each host's session in it: the host's connection, what it did
 * (its report and undo list), and the few helpers every part of the executor runs steps with.
 */

/** Everything the executor does to the outside world, so tests can swap any of it. */
export interface DeployDeps {
  readonly log: Logger;
  connect(host: HostSettings): Promise<RemoteShell>;
  /** Runs the checks of a stage (pre-deploy, post-deploy, or verifying a rollback) for these hosts. */
  runChecks(
    stage: 'pre' | 'post' | 'rollback',
    hosts: readonly HostContext[],
    release: {
      readonly id: string;
      readonly commit: string;
      /** Only the checks that judge each host on its own (blue-green, before the flip). */
      readonly eachHostOnly?: boolean;
    }
  ): Promise<CheckResult[]>;
  now(): Date;
  sleep(ms: number): Promise<void>;
  /** Aborted when the job is cancelled: the executor stops between steps and rolls back. */
  readonly signal?: AbortSignal;
  /**
   * The last gate before anything changes, with every host locked and read: the secret scan runs
   * here, starting from the commit of the last good deploy the hosts recorded. Throwing blocks.
   */
  beforeChanges?(ctx: { readonly lastDeployedCommit?: string }): Promise<void>;
  /** Called once a host's lock is held or released, so a post step can free a lock left behind. */
  onLock?(host: HostSettings, held: boolean, token: string): void;
  /** Why this deploy happens (the reason input, the PR title, the commit message), for the record. */
  readonly why?: string;
  /** Applied to every string of the host's record before it is written (secrets out). */
  redact?(text: string): string;
  /** Where the artifact's file hashes are kept between runs (the CLI's own cache), if anywhere. */
  readonly hashCache?: string;
}

/** What every host of one deploy shares. */
export interface DeployContext {
  /** The run's settings; from the target choice on, they name the release chosen. */
  settings: Settings;
  readonly deps: DeployDeps;
  readonly layout: Layout;
  /** This run's lock token. */
  readonly token: string;
  /** The upload, when this run ships one. */
  readonly artifact?: Artifact;
  /** With several hosts: the archive members their uploads pack once and share. */
  readonly shared?: SharedMembers;
}

export interface HostSession {
  readonly ctx: DeployContext;
  readonly host: HostSettings;
  readonly shell: RemoteShell;
  readonly report: HostReport;
  plan?: HostPlan;
  readonly undo: ExecStep[];
  locked: boolean;
  /** SHA-256 of every uploaded file, from the bytes sent; the verify step checks the host against it. */
  hashes?: Map<string, string>;
  serviceTouched: boolean;
  /** The upload linked unchanged files from the previous release (incremental). */
  delta?: boolean;
  /** Send every file: the incremental upload failed verification once. */
  fullUpload?: boolean;
  /** Several hosts work at once: their log lines carry the host name instead of a group. */
  readonly parallel?: boolean;
  /** Refreshes the held lock (its heartbeat) until it is released. */
  heartbeat?: ReturnType<typeof setInterval>;
  /** Another deploy took the lock over: this one must not change the host any further. */
  lockLost?: boolean;
  /** This deploy took over an abandoned lock: the owner line of the deploy that died holding it. */
  abandoned?: string;
  /** The preflight's facts, read with the host state. */
  preflight?: PreflightFacts;
  /** The lock script was sent but its answer was lost: the lock may be held. */
  lockUnsure?: boolean;
  /** blue-green: the colour the proxy served when the host was read. */
  liveColour?: Colour;
  /** blue-green: the new release was started on the idle colour (the run-once gate was passed). */
  releaseStarted?: boolean;
  /** The probe's answer, read in the lock's round trip; used up by the first read of the host state. */
  probed?: { readonly code: number; readonly stdout: string; readonly stderr: string };
  /** What the probe found of the live release, for an incremental upload. */
  previous?: PreviousRelease;
  /** The staging step, run as the first part of the upload's script (one round trip for both). */
  staging?: { readonly step: Pick<Step, 'id' | 'title'> };
  /** The paths of the files the upload sent (not linked), for the verification of only those. */
  sent?: ReadonlySet<string>;
  /**
   * The releases (or in-place backups) the probe listed, with their status lines: what the prune
   * after a good deploy decides from. Nothing but this deploy changes them while it holds the lock;
   * the prune runs only while it still does.
   */
  releases?: string;
  /** The prune, the record and the unlock ran with the finish: nothing is left to close. */
  closed?: boolean;
}

/** The live release as the probe read it: its name, kept manifest and file modes. */
export interface PreviousRelease {
  readonly id: string;
  readonly manifest: string;
  readonly modes: string;
}

export class StepFailed extends DeployguardError {}

/** A host stopped between steps because another host of its batch failed. */
export class Stopped extends DeployError {}

/** The limit for one remote step (before-switch commands included); the upload has none. */
export const STEP_TIMEOUT_MS = 30 * 60_000;

/**
 * What the checks of this host judge. For blue-green, `colour` picks the instance and port: the
 * live one before the deploy, the new one after its start, the old one after a rollback.
 */
export function hostContext(run: HostSession, colour?: Colour): HostContext {
  const { settings } = run.ctx;
  return hostContextOf(settings, run.host, run.shell, colour);
}

export function tail(text: string, n = 15): string {
  const ls = text.trimEnd().split('\n');
  return ls.slice(-n).join('\n');
}

/** Runs one step, timing it and recording the outcome in the host's report and the log. */
export async function runRecorded<T>(
  run: HostSession,
  step: Pick<Step, 'id' | 'title'>,
  fn: () => Promise<T>,
  undo = false
): Promise<T> {
  const { deps } = run.ctx;
  const t0 = Date.now();
  const at = deps.now().getTime();
  try {
    const value = await fn();
    recordDone(run, step, Date.now() - t0, at, undo);
    return value;
  } catch (err) {
    recordFailed(run, step, Date.now() - t0, at, describeError(err), undo);
    throw err;
  }
}

export function recordFailed(
  run: HostSession,
  step: Pick<Step, 'id' | 'title'>,
  ms: number,
  at: number,
  detail: string,
  undo = false
): void {
  const { deps } = run.ctx;
  run.report.steps.push({ id: step.id, title: step.title, ok: false, ms, detail, undo, at });
  deps.log.error(`✗ ${run.parallel ? `${run.host.name}: ` : ''}${step.title} (${ms} ms): ${detail}`);
}

export function recordDone(
  run: HostSession,
  step: Pick<Step, 'id' | 'title'>,
  ms: number,
  at: number,
  undo = false
): void {
  const { deps } = run.ctx;
  run.report.steps.push({ id: step.id, title: step.title, ok: true, ms, undo, at });
  deps.log.info(`✓ ${run.parallel ? `${run.host.name}: ` : ''}${step.title} (${ms} ms)`);
}

/**
 * A remote command that must succeed. Every one has a time limit: a hung `systemctl stop` or a
 * stuck mount must fail the step (and roll back), not hold the lock forever.
 */
export async function execOk(
  run: HostSession,
  script: Shell,
  what: string,
  timeoutMs = STEP_TIMEOUT_MS,
  stdin?: string
): Promise<string> {
  const r = await run.shell.exec(script, { timeoutMs, ...(stdin === undefined ? {} : { stdin }) });
  if (r.code !== 0) {
    const out = tail(`${r.stderr}\n${r.stdout}`.trim());
    throw new StepFailed(
      `${run.host.name}: ${what} failed (exit ${r.code})${out ? `:\n${out}` : ''}`,
      'deploy'
    );
  }
  return r.stdout;
}

export function logChecks(results: readonly CheckResult[], log: Logger): void {
  for (const r of results) {
    log.info(
      `${r.ok ? '✓' : '✗'} check ${r.name}: ${r.reason} (${r.attempts} attempt${r.attempts === 1 ? '' : 's'}, ${r.durationMs} ms)`
    );
  }
}

export function failedChecks(results: readonly CheckResult[]): string {
  const failed = results.filter(r => !r.ok);
  return `${failed.length}/${results.length} health checks failed: ${failed.map(f => `${f.name}: ${f.reason}`).join('; ')}`;
}

/** Runs `fn` over the items, `limit` at a time, and reports how each one ended. */
export async function inBatches<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>
): Promise<PromiseSettledResult<void>[]> {
  const out: PromiseSettledResult<void>[] = [];
  for (let i = 0; i < items.length; i += limit)
    out.push(...(await Promise.allSettled(items.slice(i, i + limit).map(fn))));
  return out;
}

export function throwFirst(settled: readonly PromiseSettledResult<unknown>[]): void {
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
