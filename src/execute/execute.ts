import { randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import { hostContextOf } from '../checks/runner.js';
import type { CheckResult, HostContext } from '../checks/types.js';
import { DeployError, DeployguardError, describeError, HealthCheckError, RollbackError } from '../errors.js';
import type { Logger } from '../io/log.js';
import type { RemoteShell } from '../io/ssh.js';
import {
  appendDeployment,
  checkRelease,
  linkUnchanged,
  LOCK_BUSY,
  LOCK_LOST,
  lockRefresh,
  readManifest,
  envFileText,
  readPreviousRelease,
  RELEASE_MISSING,
  listReleases,
  lockRelease,
  markRelease,
  parseServiceStatus,
  readLive,
  releasePresent,
  serviceCommands,
  switchCurrent,
  probe,
  pruneManifests,
  removePaths,
  type ServiceState
} from '../remote/commands.js';
import { layoutFor, manifestPath, releaseDir, stagingDir } from '../remote/layout.js';
import { abandonHashing, hashArtifact, parseManifest, parseModes, planDelta } from '../transfer/delta.js';
import {
  deployedRelease,
  entryChecks,
  lastDeployed,
  parseDeploymentsOutput,
  serializeEntry,
  type DeploymentEntry,
  type DeploymentLog
} from '../record/host-record.js';
import { remoteCommandLine, type Shell } from '../remote/shell.js';
import type { Colour, HostSettings, Settings } from '../settings/types.js';
import { instanceOf, liveColour, readLiveColour } from '../remote/blue-green.js';
import { manifestText, type Artifact } from '../transfer/artifact.js';
import { writeArchive } from '../transfer/tar.js';
import {
  parseReleaseList,
  lockScript,
  planHost,
  planPrune,
  type ExecStep,
  type HostFacts,
  type HostPlan,
  type PlanOptions,
  type Step
} from '../plan/plan.js';
import { batchSize, canaryBatches, rolloutBatches } from '../plan/rollout.js';
import {
  describeFindings,
  judgePreflight,
  parsePreflight,
  preflightProbe,
  type PreflightFacts
} from '../preflight.js';

import type {
  DeployMode,
  DeployResult,
  DeployStatus,
  HostOutcome,
  HostReport,
  PhaseRecord,
  PreviousDeploy
} from './result.js';

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
}

class StepFailed extends DeployguardError {}

/** A host stopped between steps because another host of its batch failed. */
class Stopped extends DeployError {}

/** The limit for one remote step (before-switch commands included); the upload has none. */
const STEP_TIMEOUT_MS = 30 * 60_000;

/** Production was unhealthy before the deploy and `require-healthy` is on: nothing was changed. */
class Blocked extends DeployguardError {
  constructor(
    message: string,
    readonly results: CheckResult[],
    hint: string,
    /** What blocked it, when it was not the health checks (the secret scan's error). */
    readonly reason?: unknown
  ) {
    super(message, 'pre-deploy', hint);
  }
}

/**
 * What the checks of this host judge. For blue-green, `colour` picks the instance and port: the
 * live one before the deploy, the new one after its start, the old one after a rollback.
 */
function hostContext(run: HostRun, settings: Settings, colour?: Colour): HostContext {
  return hostContextOf(settings, run.host, run.shell, colour);
}

/** The service as the plan runs it: for blue-green, the instance of `colour`. */
function serviceOf(settings: Settings, colour: Colour | undefined): Settings['service'] {
  const svc = settings.service;
  return svc.manager === 'systemd' && svc.blueGreen && colour
    ? { ...svc, name: instanceOf(svc.name, colour) }
    : svc;
}

function tail(text: string, n = 15): string {
  const ls = text.trimEnd().split('\n');
  return ls.slice(-n).join('\n');
}

interface HostRun {
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
}

/**
 * Deploys the release to every host, one after the other, all or nothing: when any step on any
 * host fails, every host that was changed is put back (undo steps in reverse), the rollback is
 * verified with the same checks, and the lock on every host is released on every path.
 */
export async function deploy(
  initial: Settings,
  artifact: Artifact | undefined,
  deps: DeployDeps,
  mode: DeployMode = { kind: 'full' }
): Promise<DeployResult> {
  // The release this run ends up deploying is known once the hosts are read (a kept release
  // reused, a rollback's target): from then on `settings` names it.
  let settings = initial;
  let reused = false;
  const startedAt = deps.now();
  const token = randomUUID();
  const layout = layoutFor(settings.target);
  const runs: HostRun[] = [];
  const reports: HostReport[] = settings.hosts.map(h => ({
    name: h.name,
    outcome: 'not-started',
    steps: [],
    checks: [],
    rollbackChecks: [],
    previousRelease: undefined
  }));
  let failure: unknown;
  let preChecks: CheckResult[] = [];
  let blockedBy: unknown;
  let lastDeployedCommit: string | undefined;
  // A rollback names its release only once a target is found: the fresh id in the settings is
  // never a release on the hosts, so until then nothing is recorded or reported under it.
  let chosen = mode.kind !== 'rollback';
  const phases: PhaseRecord[] = [];
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const start = deps.now().getTime();
    const t0 = Date.now();
    let ok = false;
    try {
      const value = await fn();
      ok = true;
      return value;
    } finally {
      phases.push({ name, start, ms: Date.now() - t0, ok });
    }
  };
  // How many hosts work at once: connects, reads, batches after the canaries, rollbacks. Never
  // all of a large fleet at once: a burst of SSH logins trips fail2ban and firewall rate limits.
  const per = batchSize(settings.hosts.length, settings.rollout);
  const parallel = per > 1 && settings.hosts.length > 1;
  /** One host's part of a phase: a log group when hosts go one at a time, plain lines when not. */
  const hostPart = <T>(run: HostRun, title: string, fn: () => Promise<T>): Promise<T> =>
    parallel ? fn() : deps.log.group(`${run.host.name}: ${title}`, fn);
  // Hashing the artifact for an incremental upload starts now: it overlaps the SSH handshakes,
  // which mostly wait on the hosts.
  const hashEarly =
    artifact !== undefined && (mode.kind === 'full' || mode.kind === 'switch') && mayLink(settings, artifact);
  if (hashEarly) void hashArtifact(artifact);
  try {
    // Connect to every host first: a wrong host key or key is found before any host changes.
    await timed('Connect', () =>
      deps.log.group('Connect to hosts', async () => {
        const slots: (HostRun | undefined)[] = settings.hosts.map(() => undefined);
        const settled = await inBatches([...settings.hosts.entries()], per, async ([i, host]) => {
          const shell = await deps.connect(host);
          slots[i] = {
            host,
            shell,
            report: reports[i]!,
            undo: [],
            locked: false,
            serviceTouched: false,
            parallel
          };
          deps.log.info(`${host.name}: connected (${host.user}@${host.host}:${host.port})`);
        });
        // Every connection that opened is closed at the end, even when another one failed.
        runs.push(...slots.filter((r): r is HostRun => r !== undefined));
        const failed = settled.find(r => r.status === 'rejected');
        if (failed) throw failed.reason;
      })
    );
    // Lock every host before reading anything: what is live, and so what a rollback returns
    // to, must not change under us between reading it and acting on it. The pre-deploy checks
    // alone change nothing and take no lock, so a pull request's checks never wait for a deploy.
    if (mode.kind !== 'pre') await lockHosts(runs, per, settings, layout, token, deps);
    throwFirst(
      await inBatches(
        runs.filter(r => r.abandoned !== undefined),
        per,
        run =>
          runRecorded(run, deps, { id: 'recover', title: 'Recover from the deploy that died' }, () =>
            recoverAbandoned(run, settings, layout, deps)
          )
      )
    );
    const facts = new Map<HostRun, HostFacts>();
    const logs = new Map<HostRun, DeploymentLog>();
    throwFirst(
      await inBatches(runs, per, async run => {
        const read = await readFacts(run, settings, layout, deps);
        facts.set(run, read.facts);
        logs.set(run, read.log);
      })
    );
    // The last good deploy, when every host agrees on it: every commit after it is going out.
    const commits = [...facts.values()].map(f => f.lastGoodCommit).filter((c): c is string => !!c);
    lastDeployedCommit =
      commits.length === runs.length && new Set(commits).size === 1 ? commits[0] : undefined;
    const target = await timed('Choose the release', () =>
      chooseTarget(initial, mode, runs, facts, logs, layout, deps, artifact !== undefined)
    );
    // Nothing to link from on any host, or nothing to upload at all: the early hashing is moot.
    if (hashEarly && (target.reuse || ![...facts.values()].some(f => f.previous))) abandonHashing(artifact);
    settings = { ...initial, releaseId: target.id, run: { ...initial.run, commit: target.commit } };
    chosen = true;
    reused = target.reuse;
    // The preflight's facts came with the host state: judged now that it is known whether this run
    // uploads anything. A host that cannot take the deploy stops it here, before any change.
    if (mode.kind !== 'pre')
      checkPreflight(settings, runs, target.reuse || mode.kind === 'rollback' ? undefined : artifact, deps, {
        // The post-deploy phase judges a release already live: stopping it here would leave that
        // release unverified. Its problems are reported; the checks and any rollback still run.
        block: mode.kind !== 'post'
      });
    if (mode.kind === 'post') {
      // The post-deploy phase returns to the release the deploy phase replaced, which is also
      // what was live before this deploy (current already names the new release).
      for (const run of runs) {
        const previous = target.previous.get(run);
        facts.set(run, { ...facts.get(run)!, previous });
        run.report.liveBefore = previous ? posix.basename(previous) : undefined;
      }
    }
    const gates = mode.kind === 'full' || mode.kind === 'pre';
    if (gates && settings.checks.some(c => c.stages.includes('pre')))
      preChecks = await timed('Pre-deploy checks', () => preDeployGate(settings, runs, facts, deps));
    if (gates && deps.beforeChanges) {
      try {
        await timed('Secret scan', () => deps.beforeChanges!({ lastDeployedCommit }));
      } catch (err) {
        throw new Blocked(
          (err as Error).message ?? String(err),
          [],
          (err as { hint?: string }).hint ?? '',
          err
        );
      }
    }
    // Canaries first, through their whole post-deploy window, then the rest in batches. The
    // first failure stops the rollout: no new host starts, the batch's other hosts stop at their
    // next step, and every host that changed is rolled back below, so the fleet ends on one version.
    const batches = mode.kind === 'pre' ? [] : rolloutBatches(runs.length, settings.rollout);
    const canaries = canaryBatches(runs.length, settings.rollout);
    for (const [b, batch] of batches.entries()) {
      const stop = new AbortController();
      const members = batch.map(i => runs[i]!);
      if (batches.length > 1)
        deps.log.info(
          `${b < canaries ? 'canary' : 'batch'} ${b + 1}/${batches.length}: ${members.map(r => r.host.name).join(', ')}`
        );
      const source = reused || mode.kind === 'rollback' ? 'reuse' : 'ship';
      // The run-once command runs on the first host of the first batch; the batch's other hosts
      // wait for it before they touch their service, and later batches start after it anyway.
      const once = b === 0 && source === 'ship' && settings.runOnce ? runOnceGate(members[0]!) : undefined;
      const settled = await Promise.allSettled(
        members.map((run, k) =>
          hostPart(run, `${VERB[mode.kind]} ${settings.releaseId}`, () =>
            deployHost(
              settings,
              layout,
              artifact,
              run,
              facts.get(run)!,
              deps,
              { source, part: planPart(mode, b < canaries), runOnce: once !== undefined && k === 0 },
              stop.signal,
              once
            ).catch((err: unknown) => {
              stop.abort();
              throw err;
            })
          )
        )
      );
      // The host that failed is the cause; the others in its batch were stopped because of it.
      const cause = settled.find(r => r.status === 'rejected' && !(r.reason instanceof Stopped));
      throwFirst(cause ? [cause] : settled);
    }
  } catch (err) {
    failure = err;
    if (err instanceof Blocked) {
      preChecks = err.results;
      blockedBy = err.reason;
    }
  }

  try {
    if (failure === undefined) {
      await inBatches(mode.kind === 'pre' ? [] : runs, per, async run => {
        if (mode.kind === 'switch') {
          // Not verified yet: the post-deploy phase judges it, marks it and prunes.
          run.report.outcome = 'switched';
          return;
        }
        await hostPart(run, 'finish', () => finishHost(settings, run, deps));
        run.report.outcome = 'deployed';
      });
    } else {
      const message = describeError(failure);
      deps.log.error(message);
      const failedRun =
        runs.find(r => r.report.error === undefined && r.report.steps.some(s => !s.ok)) ?? runs.at(-1);
      if (failedRun && !failedRun.report.error) failedRun.report.error = message;
      if (failedRun) await keepEvidence(failedRun, settings, layout, deps);
      await inBatches(
        [...runs].reverse().filter(r => r.undo.length > 0),
        per,
        run => hostPart(run, 'roll back', () => rollbackHost(settings, run, deps))
      );
    }
  } finally {
    if (hashEarly) abandonHashing(artifact);
    // Every path ends here: the record written under the lock, locks released, connections closed.
    // writeRecord and unlock never throw (they warn), so one host cannot keep another locked.
    await inBatches(runs, per, async run => {
      // A rollback that found no target changed nothing and has no release to name: no record.
      if (run.locked && mode.kind !== 'pre' && chosen) {
        await writeRecord(run, settings, layout, deps, {
          status: failure instanceof Blocked ? 'blocked' : hostStatus(run.report.outcome, failure, mode),
          startedAt,
          why:
            deps.why ??
            (mode.kind === 'rollback'
              ? `rollback to ${settings.releaseId}${run.report.previousRelease ? ` from ${run.report.previousRelease}` : ''}`
              : undefined)
        });
      }
      if (run.locked || run.lockUnsure) await unlock(run, layout, deps, token);
      stopHeartbeat(run);
      run.shell.close();
    });
  }

  const status: DeployStatus =
    failure === undefined
      ? mode.kind === 'switch'
        ? 'switched'
        : mode.kind === 'pre'
          ? 'checked'
          : 'deployed'
      : failure instanceof Blocked
        ? 'blocked'
        : reports.some(r => r.outcome === 'rollback-failed')
          ? 'rollback-failed'
          : reports.some(r => r.outcome === 'failed-live')
            ? 'failed-live'
            : reports.some(r => r.outcome === 'rolled-back')
              ? 'rolled-back'
              : 'failed';
  return {
    status,
    // Empty for a rollback that found no release to go back to.
    releaseId: chosen ? settings.releaseId : '',
    previousRelease: reports.find(r => r.previousRelease)?.previousRelease,
    // A previous release was restored somewhere: a first deploy that was taken down restored none.
    rolledBack: reports.some(
      r => r.outcome === 'rolled-back' && (r.liveBefore ?? r.previousRelease) !== undefined
    ),
    hosts: reports,
    preChecks,
    blockedBy,
    error: failure === undefined ? undefined : describeError(failure),
    startedAt,
    finishedAt: deps.now(),
    phases,
    lastDeployedCommit,
    commit: settings.run.commit,
    reused
  };
}

/**
 * Which steps a host runs in this mode. Canaries are judged before the rest switch, even when
 * the other hosts' checks are left to the post-deploy step: a canary that only switched proves
 * nothing.
 */
function planPart(mode: DeployMode, canary: boolean): PlanOptions['part'] {
  if (mode.kind === 'switch') return canary ? 'all' : 'switch';
  return mode.kind === 'post' ? 'post' : 'all';
}

const VERB: Record<DeployMode['kind'], string> = {
  full: 'deploy',
  pre: 'check',
  switch: 'ship and switch to',
  post: 'verify',
  rollback: 'roll back to'
};

/** The host's status in its record: a host that never started had nothing changed. */
function hostStatus(outcome: HostOutcome, failure: unknown, mode: DeployMode): DeploymentEntry['status'] {
  if (outcome === 'not-started')
    return failure === undefined ? (mode.kind === 'switch' ? 'switched' : 'deployed') : 'failed';
  return outcome;
}

/**
 * Appends this deploy to the host's deployments.jsonl, under the lock. A record that cannot be
 * written is a warning: the deploy's outcome on the host does not change because of it.
 */
async function writeRecord(
  run: HostRun,
  settings: Settings,
  layout: ReturnType<typeof layoutFor>,
  deps: DeployDeps,
  what: { readonly status: DeploymentEntry['status']; readonly startedAt: Date; readonly why?: string }
): Promise<void> {
  const now = deps.now();
  const entry: DeploymentEntry = {
    v: 1,
    time: now.toISOString(),
    environment: settings.environment,
    host: run.host.name,
    release: settings.releaseId,
    // A host stopped before its plan (the preflight) still records what was live.
    previous: run.report.previousRelease ?? run.report.liveBefore,
    commit: settings.run.commit,
    ref: settings.run.ref,
    actor: settings.run.actor,
    runUrl: settings.run.runUrl,
    status: what.status,
    reason: what.why,
    durationMs: now.getTime() - what.startedAt.getTime(),
    checks: entryChecks([...run.report.checks, ...run.report.rollbackChecks])
  };
  try {
    await execOk(
      run,
      appendDeployment(layout, serializeEntry(entry, deps.redact ?? (s => s))),
      'write the deployment record'
    );
  } catch (err) {
    deps.log.warn(
      `${run.host.name}: the deployment record could not be written to ${layout.deploymentsLog}: ${describeError(err)}`
    );
  }
}

/**
 * Before a rollback wipes the evidence: the service's last log lines, and where the failed
 * release stays on the host, so it can be debugged offline once production is safe again.
 */
async function keepEvidence(
  run: HostRun,
  settings: Settings,
  layout: ReturnType<typeof layoutFor>,
  deps: DeployDeps
): Promise<void> {
  if (layout.strategy === 'releases' && run.report.steps.some(s => s.id === 'promote' && s.ok))
    run.report.keptAt = releaseDir(layout, settings.releaseId);
  const logs = run.plan?.serviceLogs;
  if (!run.serviceTouched || !logs) return;
  const r = await run.shell.exec(logs, { timeoutMs: 20_000 }).catch(() => undefined);
  if (r?.stdout.trim()) run.report.logTail = tail(r.stdout, 20);
  else if (r === undefined) deps.log.warn(`${run.host.name}: the service's log lines could not be read`);
}

/**
 * The run-once command of a batch: settled by the host that runs it, awaited by the others before
 * they touch their service, so nothing switches anywhere before it succeeded.
 */
interface RunOnceGate {
  readonly host: string;
  readonly done: Promise<void>;
  succeed(): void;
  fail(err: unknown): void;
}

function runOnceGate(first: HostRun): RunOnceGate {
  let succeed!: () => void;
  let fail!: (err: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    succeed = resolve;
    fail = reject;
  });
  // Nobody may be waiting when it fails (a single host): that is not an unhandled rejection.
  done.catch(() => undefined);
  return { host: first.host.name, done, succeed, fail };
}

async function deployHost(
  settings: Settings,
  layout: ReturnType<typeof layoutFor>,
  artifact: Artifact | undefined,
  run: HostRun,
  facts: HostFacts,
  deps: DeployDeps,
  how: Pick<PlanOptions, 'source' | 'part' | 'runOnce'>,
  /** Aborted when another host of the same batch failed: this one stops at its next step. */
  stop?: AbortSignal,
  /** The run-once command of this batch: run here (`how.runOnce`), or waited for before the service is touched. */
  once?: RunOnceGate
): Promise<void> {
  try {
    await hostSteps(settings, layout, artifact, run, facts, deps, how, stop, once);
  } catch (err) {
    if (how.runOnce) once?.fail(err);
    throw err;
  }
}

async function hostSteps(
  ...[settings, layout, artifact, run, facts, deps, how, stop, once]: Parameters<typeof deployHost>
): Promise<void> {
  const plan = planHost(settings, layout, facts, {
    now: deps.now(),
    fileCount: artifact?.fileCount ?? 0,
    ...how
  });
  run.plan = plan;
  run.report.previousRelease = plan.previousRelease;
  run.report.outcome = 'failed';
  run.undo.push(...plan.initialUndo);
  if (plan.serviceTouched) run.serviceTouched = true;
  for (const step of plan.steps) {
    if (deps.signal?.aborted)
      throw new DeployError(`${run.host.name}: cancelled before "${step.title}"`, 'deploy');
    if (stop?.aborted)
      throw new DeployError(
        `${run.host.name}: stopped before "${step.title}": another host failed`,
        'deploy'
      );
    if (run.lockLost)
      throw new DeployError(
        `${run.host.name}: another deploy took over this host's lock; stopped before "${step.title}"`,
        'deploy',
        'The lock is taken over only when it was not refreshed for lock-ttl: check the link to this host and raise deploy.lock-ttl if it drops for that long.'
      );
    if ((step.touchesService || step.startsRelease) && once && !run.serviceTouched && !run.releaseStarted) {
      if (how.runOnce)
        once.succeed(); // its plan had no run-once step: nothing to wait for
      else
        await once.done.catch(() => {
          throw new Stopped(
            `${run.host.name}: stopped before "${step.title}": the run-once command did not succeed on ${once.host}`,
            'deploy'
          );
        });
    }
    if (step.undo && !step.undoAfterSuccess) run.undo.push(step.undo);
    if (step.touchesService) run.serviceTouched = true;
    if (step.startsRelease) run.releaseStarted = true;
    try {
      await runRecorded(run, deps, step, () => runAction(step, run, settings, artifact, deps));
      if (step.id === 'run-once') once?.succeed();
    } catch (err) {
      // The link dropped under the step: its command may have run on the host or not. Its undo
      // (switch back, mark failed) is safe either way, so it is undone as if it had run.
      if (step.undo && step.undoAfterSuccess && run.shell.alive === false) run.undo.push(step.undo);
      if (step.id === 'stop' && run.shell.alive !== false)
        await afterFailedStop(run, settings, facts, step, deps);
      throw err;
    }
    if (step.undo && step.undoAfterSuccess) run.undo.push(step.undo);
  }
}

/** A host cannot take this deploy: found by the preflight, before anything changed. */
class PreflightFailed extends DeployError {}

/**
 * Judges every host's preflight facts. Warnings are logged; failures stop the deploy before any
 * host changes, each with its fix. `artifact` is the upload, when this run ships one.
 */
function checkPreflight(
  settings: Settings,
  runs: readonly HostRun[],
  artifact: Artifact | undefined,
  deps: DeployDeps,
  opts: { readonly block: boolean }
): void {
  const need = artifact ? { bytes: artifact.totalBytes, files: artifact.fileCount } : undefined;
  const failed: string[] = [];
  for (const run of runs) {
    if (!run.preflight) continue;
    const findings = judgePreflight(settings, run.host, run.preflight, need);
    run.report.preflight = findings;
    const warnings = describeFindings(findings, ['warn']);
    if (warnings) deps.log.warn(`${run.host.name}: preflight:\n${warnings}`);
    const failures = describeFindings(findings, ['fail']);
    if (!failures) continue;
    if (!opts.block) {
      deps.log.warn(`${run.host.name}: preflight found problems:\n${failures}`);
      continue;
    }
    run.report.outcome = 'failed';
    run.report.error = `${run.host.name}: preflight failed; nothing was changed:\n${failures}`;
    run.report.steps.push({
      id: 'preflight',
      title: 'Preflight',
      ok: false,
      ms: 0,
      detail: run.report.error,
      at: deps.now().getTime()
    });
    failed.push(run.report.error);
  }
  if (failed.length)
    throw new PreflightFailed(
      failed.join('\n'),
      'deploy',
      'Nothing was changed on any host. Apply the fixes above (`deployguard preflight` checks again without deploying), then deploy again.'
    );
}

/**
 * A stop that failed may have changed nothing (an unknown unit, sudo refused, a stop that timed
 * out on a service that kept running). When the service is as it was before the deploy, nothing
 * live changed: no "start it again" is owed, and the deploy ends `failed`, not rolled back.
 */
async function afterFailedStop(
  run: HostRun,
  settings: Settings,
  facts: HostFacts,
  step: Step,
  deps: DeployDeps
): Promise<void> {
  const service = run.plan ? serviceCommands(settings.service, run.plan.layout) : undefined;
  if (!service) return;
  const r = await run.shell
    .exec(service.state ?? service.status, { timeoutMs: 20_000 })
    .catch(() => undefined);
  if (!r || r.code !== 0) return;
  const get = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(r.stdout)?.[1]?.trim();
  const state = parseServiceStatus(r.stdout);
  const unchanged = service.state
    ? get('LoadState') === 'not-found' ||
      state.active === 'active' ||
      (facts.serviceState !== undefined && state.active === facts.serviceState)
    : state.active === 'active' && state.alive;
  if (!unchanged) return;
  const i = step.undo ? run.undo.lastIndexOf(step.undo) : -1;
  if (i >= 0) run.undo.splice(i, 1);
  run.serviceTouched = run.plan?.serviceTouched ?? false;
  deps.log.info(
    `${run.host.name}: the stop failed and changed nothing: the service is ${state.active}, as before`
  );
}

/** Read-only: what the host runs now. */
async function readFacts(
  run: HostRun,
  settings: Settings,
  layout: ReturnType<typeof layoutFor>,
  deps: DeployDeps
): Promise<{ facts: HostFacts; log: DeploymentLog }> {
  return runRecorded(run, deps, { id: 'probe', title: 'Read the host state' }, async () => {
    const svc = settings.service;
    const bg = svc.manager === 'systemd' ? svc.blueGreen : undefined;
    const r = await run.shell.exec(probe(layout, preflightProbe(settings), bg && readLiveColour(bg)));
    if (r.code !== 0) throw new StepFailed(`${run.host.name}: ${tail(r.stderr) || 'probe failed'}`, 'deploy');
    const m = /^current=(.+)$/m.exec(r.stdout);
    const previous = m?.[1]?.trim() || undefined;
    const at = r.stdout.search(/^lines=\d+$/m);
    run.preflight = parsePreflight(at >= 0 ? r.stdout.slice(0, at) : r.stdout);
    if (bg) run.liveColour = liveColour(at >= 0 ? r.stdout.slice(0, at) : r.stdout);
    if (previous && layout.strategy === 'releases') run.report.liveBefore = posix.basename(previous);
    const log = parseDeploymentsOutput(at >= 0 ? r.stdout.slice(at) : '');
    if (log.problems.length) {
      run.report.recordProblems = log.problems.map(p => `line ${p.line}: ${p.reason}`);
      deps.log.warn(
        `${run.host.name}: ${layout.deploymentsLog} has ${log.problems.length} unreadable line(s), skipped: ${run.report.recordProblems.join('; ')}`
      );
    }
    // What is live now was put there by the newest good deploy of that release (releases), or
    // by the newest good deploy at all (in-place, where the live tree has no release name).
    const live = previous
      ? layout.strategy === 'releases'
        ? deployedRelease(log, posix.basename(previous))
        : lastDeployed(log)
      : undefined;
    if (live) run.report.previousDeploy = previousDeployOf(live);
    const good = lastDeployed(log)?.commit;
    return {
      facts: {
        previous,
        lastGoodCommit: good && /^[0-9a-f]{40}$/.test(good) ? good : undefined,
        serviceState: run.preflight.unit.get('ActiveState'),
        colour: run.liveColour
      },
      log
    };
  });
}

function previousDeployOf(e: DeploymentEntry): PreviousDeploy {
  return { release: e.release, commit: e.commit, runUrl: e.runUrl, time: e.time };
}

interface Target {
  readonly id: string;
  readonly commit: string;
  /** The release is already on every host, verified: switch to it, upload nothing. */
  readonly reuse: boolean;
  /** Post-deploy: the release directory each host returns to on failure. */
  readonly previous: ReadonlyMap<HostRun, string | undefined>;
}

const SHA = /^[0-9a-f]{40}$/;

/**
 * Which release this run deploys, decided under the lock from what the hosts hold and recorded:
 * - a deploy of a commit whose release is still on every host and verifies against its kept
 *   manifest reuses it (a re-run of an old workflow run only switches back);
 * - a rollback goes to the named release, or to the newest good one before the live one;
 * - a post-deploy run judges the release its deploy phase switched to.
 */
async function chooseTarget(
  settings: Settings,
  mode: DeployMode,
  runs: readonly HostRun[],
  facts: ReadonlyMap<HostRun, HostFacts>,
  logs: ReadonlyMap<HostRun, DeploymentLog>,
  layout: ReturnType<typeof layoutFor>,
  deps: DeployDeps,
  haveArtifact: boolean
): Promise<Target> {
  const fresh: Target = {
    id: settings.releaseId,
    commit: settings.run.commit,
    reuse: false,
    previous: new Map()
  };
  const live = (run: HostRun) => {
    const p = facts.get(run)?.previous;
    return p ? posix.basename(p) : undefined;
  };
  if (mode.kind === 'post') {
    const previous = new Map<HostRun, string | undefined>();
    for (const run of runs) {
      if (live(run) !== mode.release)
        throw new DeployError(
          `${run.host.name}: current is ${live(run) ?? 'not set'}, not ${mode.release}: another deploy ran after the deploy step, or the deploy step failed.`,
          'post-deploy',
          'Run post-deploy with the `release` output of the deploy step, in the same workflow run.'
        );
      const log = logs.get(run)!;
      const switched = log.entries.findLast(e => e.release === mode.release && e.status === 'switched');
      const back = mode.previous || switched?.previous;
      previous.set(run, back ? releaseDir(layout, back) : undefined);
      const before = back ? deployedRelease(log, back) : undefined;
      run.report.previousDeploy = before ? previousDeployOf(before) : undefined;
    }
    const commit = logs.get(runs[0]!)!.entries.findLast(e => e.release === mode.release)?.commit;
    return { id: mode.release, commit: commit ?? settings.run.commit, reuse: false, previous };
  }
  if (mode.kind === 'rollback') {
    if (layout.strategy !== 'releases')
      throw new DeployError(
        'rollback needs `strategy: releases`: an in-place target keeps backups, not releases.',
        'rollback',
        `Restore a backup by hand: the newest is the latest ${layout.base}.backup-* directory.`
      );
    const chosen = new Map<HostRun, DeploymentEntry | undefined>();
    for (const run of runs) {
      const current = live(run);
      const log = logs.get(run)!;
      const entry =
        mode.to === 'previous'
          ? log.entries.findLast(e => e.status === 'deployed' && e.release !== current)
          : deployedRelease(log, mode.to);
      if (mode.to === 'previous' && !entry)
        throw new DeployError(
          `${run.host.name}: no earlier good release is recorded (live: ${current ?? 'none'}).`,
          'rollback',
          'Name the release to return to: `deployguard history` lists them.'
        );
      if (mode.to !== 'previous' && !entry)
        throw new DeployError(
          `${run.host.name}: ${mode.to} was never recorded as a good deploy on this host; deployguard only rolls back to releases that passed their checks.`,
          'rollback',
          'Nothing was changed. `deployguard history` lists the good releases.'
        );
      if (mode.to !== 'previous' && mode.to === current)
        throw new DeployError(
          `${run.host.name}: ${mode.to} is already live; nothing to roll back.`,
          'rollback'
        );
      chosen.set(run, entry);
    }
    const ids = new Set(runs.map(r => chosen.get(r)?.release ?? (mode.to === 'previous' ? '' : mode.to)));
    if (ids.size !== 1)
      throw new DeployError(
        `the hosts would roll back to different releases: ${runs.map(r => `${r.host.name}: ${chosen.get(r)?.release}`).join(', ')}`,
        'rollback',
        'Name one release with `--to`; the fleet must end on one version.'
      );
    const id = [...ids][0]!;
    for (const run of runs) {
      const problem = await verifyKept(run, settings, layout, id, deps);
      if (problem)
        throw new DeployError(
          `${run.host.name}: cannot roll back to ${id}: ${problem}`,
          'rollback',
          'Nothing was changed. Pick another release (`deployguard history`), or deploy that commit again.'
        );
    }
    return { ...fresh, id, commit: chosen.get(runs[0]!)?.commit ?? 'unknown', reuse: true };
  }
  if (mode.kind === 'pre') return fresh;
  // A deploy: reuse this commit's release when every host still holds it, intact.
  if (layout.strategy !== 'releases' || !SHA.test(settings.run.commit)) return needArtifact(fresh);
  const candidates = runs.map(r =>
    logs.get(r)!.entries.findLast(e => e.status === 'deployed' && e.commit === settings.run.commit)
  );
  const id = candidates[0]?.release;
  if (
    !id ||
    candidates.some(c => c?.release !== id) ||
    (settings.releaseIdGiven && id !== settings.releaseId)
  )
    return needArtifact(fresh);
  for (const run of runs) {
    const problem = await verifyKept(run, settings, layout, id, deps);
    if (problem) {
      deps.log.info(
        `${run.host.name}: release ${id} of this commit cannot be reused (${problem}); shipping a new release.`
      );
      return needArtifact(fresh);
    }
  }
  deps.log.info(
    `release ${id} of commit ${settings.run.commit.slice(0, 12)} is on every host and verified: switching to it, nothing is uploaded.`
  );
  return { ...fresh, id, reuse: true };

  function needArtifact(t: Target): Target {
    if (!haveArtifact)
      throw new DeployError(
        'nothing to deploy: no artifact was given',
        'deploy',
        'Set the `artifact` input.'
      );
    return t;
  }
}

/**
 * Checks a release kept on the host against the manifest saved when it was first verified
 * (entries replaced by `shared` links left out). Returns why it cannot be used, or undefined.
 */
async function verifyKept(
  run: HostRun,
  settings: Settings,
  layout: ReturnType<typeof layoutFor>,
  id: string,
  deps: DeployDeps
): Promise<string | undefined> {
  return runRecorded(
    run,
    deps,
    { id: 'verify', title: `Verify the kept release ${id} (SHA-256 of every file)` },
    async () => {
      const release = releaseDir(layout, id);
      const m = await run.shell.exec(readManifest(release, manifestPath(layout, id)), {
        timeoutMs: STEP_TIMEOUT_MS
      });
      if (m.code === RELEASE_MISSING) return tail(m.stderr, 2) || 'it is gone';
      if (m.code !== 0)
        throw new StepFailed(
          `${run.host.name}: reading the manifest of ${id} failed (exit ${m.code}): ${tail(m.stderr)}`,
          'deploy'
        );
      const shared = settings.target.shared.map(e => e.replace(/\/+$/, ''));
      const lines = m.stdout
        .split('\n')
        .filter(l => l && !shared.some(e => l.slice(66) === `./${e}` || l.slice(66).startsWith(`./${e}/`)));
      const r = await run.shell.exec(checkRelease(release), {
        stdin: lines.join('\n') + '\n',
        timeoutMs: STEP_TIMEOUT_MS
      });
      if (r.code === 0) return undefined;
      const bad = r.stdout
        .split('\n')
        .filter(l => /: FAILED/.test(l))
        .slice(0, 5);
      return `its files changed since it was verified: ${bad.join('; ') || tail(r.stderr, 3)}`;
    }
  );
}

/**
 * The checks tagged `pre`, against production as it is, before anything changes. Unhealthy
 * production blocks the deploy when `require-healthy` is on, and is recorded either way. A first
 * deploy has no production to check.
 */
async function preDeployGate(
  settings: Settings,
  runs: readonly HostRun[],
  facts: ReadonlyMap<HostRun, HostFacts>,
  deps: DeployDeps
): Promise<CheckResult[]> {
  if (!settings.checks.some(c => c.stages.includes('pre'))) return [];
  const live = runs.filter(r => facts.get(r)?.previous);
  if (live.length === 0) {
    deps.log.info('Pre-deploy checks skipped: no release is live yet (first deploy).');
    return [];
  }
  return deps.log.group('Pre-deploy: is production healthy now?', async () => {
    const results = await deps.runChecks(
      'pre',
      live.map(r => hostContext(r, settings, r.liveColour)),
      { id: settings.releaseId, commit: settings.run.commit }
    );
    logChecks(results, deps.log);
    const failed = results.filter(r => !r.ok);
    if (failed.length === 0) return results;
    const what = `production is already unhealthy (${failed.length}/${results.length} pre-deploy checks failed: ${failed.map(f => `${f.name}${f.host ? `@${f.host}` : ''}: ${f.reason}`).join('; ')})`;
    if (settings.preDeploy.requireHealthy) {
      throw new Blocked(
        `Deploy blocked: ${what}. Nothing was changed.`,
        results,
        'Fix production first, or set `pre-deploy: { require-healthy: false }` to deploy anyway (for example, when this release is the fix).'
      );
    }
    deps.log.warn(`${what}; deploying anyway (require-healthy is off).`);
    return results;
  });
}

/** Runs one step, timing it and recording the outcome in the host's report and the log. */
async function runRecorded<T>(
  run: HostRun,
  deps: DeployDeps,
  step: Pick<Step, 'id' | 'title'>,
  fn: () => Promise<T>,
  undo = false
): Promise<T> {
  const t0 = Date.now();
  const at = deps.now().getTime();
  try {
    const value = await fn();
    recordDone(run, deps, step, Date.now() - t0, at, undo);
    return value;
  } catch (err) {
    const ms = Date.now() - t0;
    const detail = describeError(err);
    run.report.steps.push({ id: step.id, title: step.title, ok: false, ms, detail, undo, at });
    deps.log.error(`✗ ${run.parallel ? `${run.host.name}: ` : ''}${step.title} (${ms} ms): ${detail}`);
    throw err;
  }
}

function recordDone(
  run: HostRun,
  deps: DeployDeps,
  step: Pick<Step, 'id' | 'title'>,
  ms: number,
  at: number,
  undo = false
): void {
  run.report.steps.push({ id: step.id, title: step.title, ok: true, ms, undo, at });
  deps.log.info(`✓ ${run.parallel ? `${run.host.name}: ` : ''}${step.title} (${ms} ms)`);
}

const LOCK_STEP = { id: 'lock', title: 'Lock the host' } as const;

const hostKey = (h: HostSettings) => `${h.host}:${String(h.port).padStart(5, '0')}`;
const compareText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Locks every host. Uncontended (the usual case) a fleet is locked at once, `per` hosts at a
 * time, one round trip each. If any host is busy, the locks just taken are released and the
 * hosts are locked one by one, waiting for each, in an order every deploy shares (by address and
 * port, not config order): two deploys racing for the same fleet then queue behind each other
 * instead of each holding half of it.
 */
async function lockHosts(
  runs: readonly HostRun[],
  per: number,
  settings: Settings,
  layout: ReturnType<typeof layoutFor>,
  token: string,
  deps: DeployDeps
): Promise<void> {
  const script = () => lockScript(settings, layout, token, deps.now());
  if (runs.length > 1 && per > 1) {
    const taken = new Map<HostRun, { at: number; ms: number }>();
    const settled = await inBatches(runs, per, async run => {
      const at = deps.now().getTime();
      const t0 = Date.now();
      if (await acquireLock(script(), run, settings, deps, token, false))
        taken.set(run, { at, ms: Date.now() - t0 });
    });
    if (taken.size === runs.length) {
      for (const run of runs) recordDone(run, deps, LOCK_STEP, taken.get(run)!.ms, taken.get(run)!.at);
      return;
    }
    await Promise.all([...taken.keys()].map(run => unlock(run, layout, deps, token)));
    throwFirst(settled);
    deps.log.info(
      `${runs
        .filter(r => !taken.has(r))
        .map(r => r.host.name)
        .join(', ')}: locked by another deploy; locking the hosts one by one, in order`
    );
  }
  // One order for every deploy, whatever order its config lists the hosts in.
  const ordered = [...runs].sort((a, b) => compareText(hostKey(a.host), hostKey(b.host)));
  for (const run of ordered) {
    await runRecorded(run, deps, LOCK_STEP, async () => {
      await acquireLock(script(), run, settings, deps, token, true);
    });
  }
}

/**
 * A remote command that must succeed. Every one has a time limit: a hung `systemctl stop` or a
 * stuck mount must fail the step (and roll back), not hold the lock forever.
 */
async function execOk(
  run: HostRun,
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

async function runAction(
  step: Step,
  run: HostRun,
  settings: Settings,
  artifact: Artifact | undefined,
  deps: DeployDeps
): Promise<void> {
  const a = step.action;
  switch (a.kind) {
    case 'exec':
      await execOk(run, a.script, step.title);
      return;
    case 'write-env':
      await execOk(run, a.script, step.title, STEP_TIMEOUT_MS, envFileText(settings.env.vars));
      return;
    case 'upload': {
      if (!artifact) throw new StepFailed(`${run.host.name}: no artifact to upload`, 'deploy');
      const delta = run.fullUpload ? undefined : await prepareDelta(run, settings, artifact, deps);
      const shipped = delta?.send ?? artifact;
      let sent = 0;
      let archive: Promise<Map<string, string>> | undefined;
      const started = Date.now();
      // Large uploads report how far they are, so a slow link is seen as slow, not as hung.
      const progress =
        shipped.totalBytes >= PROGRESS_MIN_BYTES
          ? setInterval(
              () =>
                deps.log.info(uploadProgress(run.host.name, sent, shipped.totalBytes, Date.now() - started)),
              PROGRESS_EVERY_MS
            )
          : undefined;
      const r = await run.shell
        .exec(a.script, {
          stdin: channel =>
            (archive = writeArchive(shipped, channel, { onProgress: bytes => (sent = bytes) }))
        })
        .finally(() => clearInterval(progress));
      // A channel that closed early (connection drop, remote tar died) rejects the archive: the
      // writer sees the channel close and stops.
      const hashes = await (archive ?? Promise.reject(new Error('the upload never started'))).catch(
        (e: unknown) => (e instanceof Error ? e : new Error(String(e)))
      );
      if (r.code !== 0)
        throw new StepFailed(`${run.host.name}: upload failed (exit ${r.code}): ${tail(r.stderr)}`, 'deploy');
      if (hashes instanceof Error) {
        const hint = (hashes as { hint?: string }).hint;
        throw new StepFailed(
          `${run.host.name}: the artifact could not be sent: ${hashes.message}`,
          'deploy',
          hint
        );
      }
      // The files sent are hashed from the bytes sent; the linked ones by the hash they share
      // with the previous release. Verification checks the whole tree against both.
      run.hashes = delta ? new Map([...delta.local, ...hashes]) : hashes;
      const secs = Math.max(0.001, (Date.now() - started) / 1000);
      deps.log.info(
        `${run.host.name}: ${shipped.fileCount} files, ${(shipped.totalBytes / 1e6).toFixed(1)} MB sent in ${secs.toFixed(1)} s (${(shipped.totalBytes / 1e6 / secs).toFixed(1)} MB/s)${delta ? `; ${delta.link.length} unchanged files linked from ${run.plan?.previousRelease}` : ''}`
      );
      return;
    }
    case 'verify': {
      const hashes = run.hashes;
      if (!hashes) throw new StepFailed(`${run.host.name}: nothing was uploaded to verify`, 'deploy');
      const r = await run.shell.exec(a.script, { stdin: manifestText(hashes) });
      if (r.code !== 0 && run.shell.alive === false)
        throw new StepFailed(`${run.host.name}: the connection dropped during verification`, 'deploy');
      if (r.code !== 0 && run.delta && !run.fullUpload) {
        // The previous release no longer matches its manifest (changed on the host since): the
        // links carried that change. Start over and send everything.
        deps.log.warn(
          `${run.host.name}: the incremental upload did not verify (the previous release was changed on the host?); sending every file.`
        );
        run.fullUpload = true;
        for (const id of ['stage', 'upload']) {
          const again = run.plan?.steps.find(x => x.id === id);
          if (again) await runAction(again, run, settings, artifact, deps);
        }
        return runAction(step, run, settings, artifact, deps);
      }
      if (r.code !== 0) {
        const bad = r.stdout
          .split('\n')
          .filter(l => /: FAILED/.test(l))
          .slice(0, 10);
        throw new StepFailed(
          `${run.host.name}: checksum verification failed on the host; the service was not touched.\n${bad.join('\n') || tail(r.stderr)}`,
          'deploy',
          'The upload was corrupted or the staging directory was changed during the deploy. Re-run the deploy; if it repeats, check the disk on the host (df, dmesg).'
        );
      }
      return;
    }
    case 'await-running':
      return awaitRunning(a.script, run, settings, deps);
    case 'checks':
      return postDeployChecks(run, settings, deps, a.on);
  }
}

function failedChecks(results: readonly CheckResult[]): string {
  const failed = results.filter(r => !r.ok);
  return `${failed.length}/${results.length} health checks failed: ${failed.map(f => `${f.name}: ${f.reason}`).join('; ')}`;
}

/**
 * The post-deploy checks, then the same checks again and again through the stability window: a
 * release that answers at first and crashes 20 s later is caught here, not by the users.
 */
async function postDeployChecks(
  run: HostRun,
  settings: Settings,
  deps: DeployDeps,
  /** blue-green: `colour` before the flip (the checks that reach the colour), `live` after it. */
  on?: 'colour' | 'live'
): Promise<void> {
  const host = [hostContext(run, settings, run.plan?.colours?.idle)];
  const release = {
    id: settings.releaseId,
    commit: settings.run.commit,
    ...(on === 'colour' ? { eachHostOnly: true } : {})
  };
  let results = await deps.runChecks('post', host, release);
  // After a flip the record keeps both rounds: those on the colour, then those through the proxy.
  run.report.checks = on === 'live' ? [...run.report.checks, ...results] : results;
  logChecks(results, deps.log);
  if (results.some(r => !r.ok))
    throw new HealthCheckError(
      `${run.host.name}: ${on === 'live' ? 'after the flip: ' : ''}${failedChecks(results)}`,
      'post-deploy'
    );
  // After a flip the colour has been through its window already: one round through the proxy.
  const windowMs = on === 'live' ? 0 : settings.postDeploy.stabilityWindowMs;
  if (windowMs <= 0 || results.length === 0) return;
  const until = Date.now() + windowMs;
  let rounds = 0;
  deps.log.info(
    `${run.host.name}: watching the checks for the ${Math.round(windowMs / 1000)} s stability window`
  );
  while (Date.now() < until) {
    if (deps.signal?.aborted)
      throw new DeployError(`${run.host.name}: cancelled during the stability window`, 'post-deploy');
    await deps.sleep(Math.min(STABILITY_INTERVAL_MS, Math.max(0, until - Date.now())));
    results = await deps.runChecks('post', host, release);
    rounds++;
    if (results.some(r => !r.ok)) {
      run.report.checks = results;
      logChecks(results, deps.log);
      const at = Math.round((windowMs - Math.max(0, until - Date.now())) / 1000);
      throw new HealthCheckError(
        `${run.host.name}: unstable ${at} s into the stability window: ${failedChecks(results)}`,
        'post-deploy'
      );
    }
  }
  deps.log.info(
    `${run.host.name}: stable for ${Math.round(windowMs / 1000)} s (${rounds + 1} rounds of checks passed)`
  );
}

/** How often the checks repeat during the stability window. */
const STABILITY_INTERVAL_MS = 5000;

function logChecks(results: readonly CheckResult[], log: Logger): void {
  for (const r of results) {
    log.info(
      `${r.ok ? '✓' : '✗'} check ${r.name}: ${r.reason} (${r.attempts} attempt${r.attempts === 1 ? '' : 's'}, ${r.durationMs} ms)`
    );
  }
}

async function acquireLock(
  script: Shell,
  run: HostRun,
  settings: Settings,
  deps: DeployDeps,
  token: string,
  /** Wait for a busy lock (up to `lock.wait`); without, a busy lock returns false at once. */
  wait: boolean
): Promise<boolean> {
  const deadline = Date.now() + settings.lock.waitMs;
  for (;;) {
    // Until the script says "taken" or "busy", the lock may be ours on the host: a link that
    // drops under it loses the answer, not the mkdir. The release at the end removes it if so
    // (it only ever removes a lock carrying our token).
    run.lockUnsure = true;
    const r = await run.shell.exec(script);
    run.lockUnsure = r.code !== 0 && r.code !== LOCK_BUSY;
    if (r.code === 0) {
      run.locked = true;
      startHeartbeat(run, settings, token, deps);
      deps.onLock?.(run.host, true, token);
      if (r.stdout.startsWith('taken-over')) {
        run.abandoned = r.stdout.split('\n').slice(2).join('\n').trim();
        deps.log.warn(
          `${run.host.name}: took over an abandoned lock (older than the TTL). Previous owner: ${r.stdout.split('\n').slice(1).join(' ').trim()}`
        );
      }
      return true;
    }
    if (r.code !== LOCK_BUSY)
      throw new StepFailed(
        `${run.host.name}: could not take the lock (exit ${r.code}): ${tail(r.stderr)}`,
        'deploy',
        `deployguard keeps its lock and records in ${layoutFor(settings.target).stateDir}; the user ${run.host.user} must be able to create it (for in-place deploys, that means write access to the target's parent directory).`
      );
    if (!wait) return false;
    const owner = r.stdout.trim().split('\n').slice(1).join(' ');
    if (Date.now() >= deadline) {
      throw new DeployError(
        `${run.host.name}: another deploy holds the lock: ${owner || '(owner unknown)'}`,
        'deploy',
        `Wait for it to finish. A deploy refreshes its lock while it runs; if it died, the lock is taken over ${Math.round(settings.lock.ttlMs / 1000)} s after its last refresh (deploy.lock-ttl). Or remove ${run.plan?.layout.lockDir ?? 'the lock directory'} on the host after checking nothing runs.`
      );
    }
    deps.log.info(`${run.host.name}: waiting for the lock held by ${owner}`);
    await deps.sleep(Math.min(5000, Math.max(200, deadline - Date.now())));
  }
}

/**
 * "Active" is not "running": waits until the service is active with a live main PID, then
 * checks again after the settle time that it is the same PID with no restarts in between.
 */
async function awaitRunning(
  status: Shell,
  run: HostRun,
  settings: Settings,
  deps: DeployDeps
): Promise<void> {
  const svc = settings.service;
  if (svc.manager === 'none') return;
  const deadline = Date.now() + svc.startTimeoutMs;
  let last: ServiceState | undefined;
  for (;;) {
    last = parseServiceStatus(await execOk(run, status, 'service status'));
    if (last.active === 'active' && last.alive) {
      await deps.sleep(svc.settleMs);
      const again = parseServiceStatus(await execOk(run, status, 'service status'));
      const samePid = svc.manager === 'command' && !svc.pidfile ? true : again.pid === last.pid;
      if (again.active === 'active' && again.alive && samePid && again.restarts === last.restarts) {
        deps.log.info(
          `${run.host.name}: running, main PID ${again.pid || '(n/a)'}, stable for ${svc.settleMs} ms`
        );
        return;
      }
      last = again;
      break;
    }
    if (Date.now() >= deadline) break;
    await deps.sleep(500);
  }
  const logsCmd = run.plan?.serviceLogs;
  const logs = logsCmd ? await run.shell.exec(logsCmd).catch(() => undefined) : undefined;
  throw new DeployError(
    `${run.host.name}: the service is not running: ActiveState=${last.active}, MainPID=${last.pid}, PID alive: ${last.alive ? 'yes' : 'no'}, restarts=${last.restarts ?? 0}` +
      (logs?.stdout.trim() ? `\nLast log lines:\n${tail(logs.stdout, 20)}` : ''),
    'post-deploy',
    'The new release does not stay up. Its log lines above usually say why.'
  );
}

/**
 * Runs a rollback step once more when the link dropped under it. Undo steps are safe to repeat
 * (stop, switch back, start again, mark failed, remove): whether or not the first try ran on the
 * host, the second one, over a new connection, leaves it the same.
 */
async function againIfDropped(run: HostRun, deps: DeployDeps, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (run.shell.alive !== false) throw err;
    deps.log.warn(`${run.host.name}: the connection dropped during the rollback; trying that step again`);
    await fn();
  }
}

async function rollbackHost(settings: Settings, run: HostRun, deps: DeployDeps): Promise<void> {
  if (settings.postDeploy.rollback === 'off' && run.serviceTouched) {
    run.report.outcome = 'failed-live';
    deps.log.warn(`${run.host.name}: rollback is off; the failed release stays live.`);
    return;
  }
  // The release to return to was deleted on the host: undoing would stop the new release and then
  // have nothing to start. Nothing is undone; the new release keeps running, and a person decides.
  const previous = run.report.previousRelease;
  const layout = run.plan?.layout;
  if (run.serviceTouched && previous && layout?.strategy === 'releases') {
    const dir = releaseDir(layout, previous);
    const gone = await run.shell
      .exec(releasePresent(dir), { timeoutMs: STEP_TIMEOUT_MS })
      .catch(() => undefined);
    if (gone?.code === 1) {
      run.report.outcome = 'rollback-failed';
      run.report.recovery = [
        `Recover ${run.host.name} by hand: ${dir} is gone, so ${settings.releaseId} was left running although it failed.`,
        `  ssh -p ${run.host.port} ${run.host.user}@${run.host.host}`,
        `  # list the releases still there (a good one can be restored with: deployguard rollback --to ID)`,
        `  ls -l ${layout.releasesDir}`,
        `  # or deploy ${previous} again: re-run the workflow run that deployed it`
      ].join('\n');
      deps.log.error(`${run.host.name}: ROLLBACK NOT POSSIBLE: ${dir} is gone.\n${run.report.recovery}`);
      return;
    }
  }
  const pending = [...run.undo].reverse();
  for (let i = 0; i < pending.length; i++) {
    const step = pending[i]!;
    try {
      await againIfDropped(run, deps, () =>
        runRecorded(run, deps, step, () => execOk(run, step.action.script, step.title), true)
      );
    } catch (err) {
      run.report.outcome = 'rollback-failed';
      run.report.recovery = recoveryText(run, pending.slice(i));
      deps.log.error(`${run.host.name}: ROLLBACK FAILED: ${describeError(err)}\n${run.report.recovery}`);
      return;
    }
  }
  if (!run.serviceTouched) {
    // Nothing live changed: the old release never stopped serving.
    run.report.outcome = 'failed';
    return;
  }
  if (!run.report.previousRelease) {
    // A failed first deploy: there is no earlier release to verify; the failed one is taken down.
    run.report.outcome = 'rolled-back';
    deps.log.warn(
      `${run.host.name}: there was no release before this one; the failed release was taken down and nothing is live.`
    );
    return;
  }
  try {
    await againIfDropped(run, deps, () =>
      runRecorded(
        run,
        deps,
        { id: 'verify-rollback', title: 'Verify the restored release' },
        async () => {
          const old = run.plan?.colours?.live;
          const running = old
            ? serviceCommands(serviceOf(settings, old), run.plan!.layout)?.status
            : run.plan?.steps.flatMap(s => (s.action.kind === 'await-running' ? [s.action.script] : []))[0];
          if (running) await awaitRunning(running, run, settings, deps);
          const results = await deps.runChecks('rollback', [hostContext(run, settings, old)], {
            id: run.report.previousRelease ?? '',
            commit: run.report.previousDeploy?.commit ?? ''
          });
          run.report.rollbackChecks = results;
          logChecks(results, deps.log);
          const failed = results.filter(r => !r.ok);
          if (failed.length)
            throw new HealthCheckError(failed.map(f => `${f.name}: ${f.reason}`).join('; '), 'rollback');
        },
        true
      )
    );
    run.report.outcome = 'rolled-back';
    deps.log.info(
      `${run.host.name}: rolled back to ${run.report.previousRelease ?? 'the previous state'}, verified healthy`
    );
  } catch (err) {
    run.report.outcome = 'rollback-failed';
    run.report.recovery = recoveryText(run, [], settings);
    const e = new RollbackError(
      `${run.host.name}: rolled back, but the restored version is NOT healthy: ${describeError(err)}`,
      'rollback'
    );
    deps.log.error(`${e.message}\n${run.report.recovery}`);
  }
}

/** The exact commands a person runs to finish a rollback by hand. */
function recoveryText(run: HostRun, remaining: readonly ExecStep[], settings?: Settings): string {
  const h = run.host;
  const ssh = `ssh -p ${h.port} ${h.user}@${h.host}`;
  const lines = [`Recover ${h.name} by hand:`, `  ${ssh}`];
  for (const s of remaining) {
    lines.push(`  # ${s.title}`, `  ${remoteCommandLine(s.action.script)}`);
  }
  // Everything was undone, yet the restored release does not run: its service needs a person.
  const service =
    settings && run.plan
      ? serviceCommands(serviceOf(settings, run.plan.colours?.live), run.plan.layout)
      : undefined;
  if (service)
    lines.push(
      '  # the service does not run on the restored release: read why, fix it, then start it',
      `  ${remoteCommandLine(service.logs)}`,
      `  ${remoteCommandLine(service.start)}`
    );
  if (run.plan?.previousRelease)
    lines.push(
      `  # then check the service and that the previous release (${run.plan.previousRelease}) answers`
    );
  else
    lines.push(
      '  # there was no release before this one: check the service is stopped and nothing half-deployed is served'
    );
  return lines.join('\n');
}

async function finishHost(settings: Settings, run: HostRun, deps: DeployDeps): Promise<void> {
  const plan = run.plan!;
  for (const step of plan.finalize) {
    await runRecorded(run, deps, step, () => execOk(run, step.action.script, step.title));
  }
  try {
    const listing = await execOk(run, listReleases(plan.layout), 'list releases');
    const layout = plan.layout;
    const names =
      layout.strategy === 'releases'
        ? planPrune(parseReleaseList(listing), settings.releaseId, settings.target.keepReleases)
        : listing.split('\n').filter(Boolean).sort().reverse().slice(settings.target.keepReleases);
    const doomed =
      layout.strategy === 'releases'
        ? names.flatMap(id => [
            releaseDir(layout, id),
            posix.join(layout.statusDir, id),
            manifestPath(layout, id)
          ])
        : names;
    // In place, only the live tree's manifest means anything: the trees it describes are gone.
    if (layout.strategy === 'in-place')
      await execOk(run, pruneManifests(layout, settings.releaseId), 'prune manifests');
    if (doomed.length) {
      await execOk(run, removePaths(doomed), 'prune');
      deps.log.info(`pruned ${names.length}: ${names.map(n => posix.basename(n)).join(', ')}`);
    }
  } catch (err) {
    // The deploy is good; a failed cleanup must not turn it red, but a person should know.
    deps.log.warn(`${run.host.name}: pruning old releases failed: ${describeError(err)}`);
  }
}

/**
 * The deploy that held this host's lock died (the lock went unrefreshed for its TTL), maybe between
 * two steps: its release switched in but never checked, or the service stopped. Before anything
 * else this deploy puts the host back on the newest good release and makes sure the service runs.
 * `current` itself is never half a release: it only ever moves to a verified tree, atomically.
 */
async function recoverAbandoned(
  run: HostRun,
  settings: Settings,
  layout: ReturnType<typeof layoutFor>,
  deps: DeployDeps
): Promise<void> {
  let owner: { release?: unknown } = {};
  try {
    owner = JSON.parse(run.abandoned ?? '') as { release?: unknown };
  } catch {
    // An owner line from an older version or a hand-made lock: the release is unknown.
  }
  // The owner line comes from the host: only a plain release name is used in paths and commands.
  const dead =
    typeof owner.release === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(owner.release)
      ? owner.release
      : undefined;
  const service = serviceCommands(settings.service, layout);
  // Nothing live yet (the dead deploy was the first): there is nothing to return to or to start.
  const live = (await execOk(run, readLive(layout), 'read current')).trim();
  if (!live) return;
  if (layout.strategy === 'releases' && dead) {
    const releases = parseReleaseList(await execOk(run, listReleases(layout), 'list releases'));
    const good = releases
      .filter(r => r.status === 'good' && r.id !== dead)
      .sort((a, b) => (a.at ?? '').localeCompare(b.at ?? ''))
      .at(-1);
    if (posix.basename(live) === dead && releases.find(r => r.id === dead)?.status !== 'good' && good) {
      deps.log.warn(
        `${run.host.name}: the deploy of ${dead} died after switching to it, before it was checked: switching back to ${good.id}`
      );
      if (service) await execOk(run, service.stop, 'stop the service');
      await execOk(run, switchCurrent(layout, releaseDir(layout, good.id), `recover-${dead}`), 'switch back');
      await execOk(
        run,
        markRelease(layout, dead, 'failed', deps.now(), 'unknown'),
        'mark the release failed'
      );
    }
  }
  if (service) {
    const state = parseServiceStatus(await execOk(run, service.status, 'service status'));
    if (!(state.active === 'active' && state.alive)) {
      deps.log.warn(`${run.host.name}: the service was left stopped by the deploy that died: starting it`);
      await execOk(run, service.start, 'start the service');
    }
  }
}

/**
 * Refreshes a held lock a few times per TTL. A lock nobody refreshes for the TTL belongs to a
 * deploy that died (a killed runner), and the next deploy takes it over; so a live deploy keeps
 * its lock however long it runs. When the refresh finds the lock taken over, the deploy stops
 * before its next step.
 */
function startHeartbeat(run: HostRun, settings: Settings, token: string, deps: DeployDeps): void {
  stopHeartbeat(run);
  const every = Math.max(1000, Math.min(30_000, Math.floor(settings.lock.ttlMs / 4)));
  const refresh = lockRefresh(layoutFor(settings.target), token);
  let busy = false;
  run.heartbeat = setInterval(() => {
    if (busy || run.lockLost) return;
    busy = true;
    run.shell
      .exec(refresh, { timeoutMs: every })
      .then(r => {
        if (r.code !== LOCK_LOST) return;
        run.lockLost = true;
        deps.log.error(`${run.host.name}: another deploy has taken over the lock on this host`);
      })
      .catch(() => undefined) // a dropped link: the next beat (or step) connects again
      .finally(() => (busy = false));
  }, every);
  run.heartbeat.unref?.();
}

function stopHeartbeat(run: HostRun): void {
  if (run.heartbeat) clearInterval(run.heartbeat);
  run.heartbeat = undefined;
}

async function unlock(
  run: HostRun,
  layout: ReturnType<typeof layoutFor>,
  deps: DeployDeps,
  token: string
): Promise<void> {
  stopHeartbeat(run);
  try {
    await execOk(run, lockRelease(layout, token), 'release the lock');
    run.locked = false;
    deps.onLock?.(run.host, false, token);
  } catch (err) {
    deps.log.warn(`${run.host.name}: could not release the lock: ${describeError(err)}`);
  }
}

/** Runs `fn` over the items, `limit` at a time, and reports how each one ended. */
async function inBatches<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>
): Promise<PromiseSettledResult<void>[]> {
  const out: PromiseSettledResult<void>[] = [];
  for (let i = 0; i < items.length; i += limit)
    out.push(...(await Promise.allSettled(items.slice(i, i + limit).map(fn))));
  return out;
}

function throwFirst(settled: readonly PromiseSettledResult<unknown>[]): void {
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Artifacts from this size on log their upload progress. */
const PROGRESS_MIN_BYTES = 20 * 1024 * 1024;
const PROGRESS_EVERY_MS = 5000;

/** `web-1: upload 45% (45.0/99.0 MB, 38.2 MB/s, about 2 s left)` */
export function uploadProgress(host: string, sent: number, total: number, elapsedMs: number): string {
  const done = Math.min(sent, total);
  const rate = done / Math.max(0.001, elapsedMs / 1000);
  const left = rate > 0 ? Math.ceil((total - done) / rate) : undefined;
  return `${host}: upload ${Math.floor((done / Math.max(1, total)) * 100)}% (${(done / 1e6).toFixed(1)}/${(total / 1e6).toFixed(1)} MB, ${(rate / 1e6).toFixed(1)} MB/s, ${left === undefined ? 'time left unknown' : `about ${left} s left`})`;
}

/**
 * Whether an upload may link unchanged files from the previous release: only between releases
 * (in place there is no other tree), not with a `before-switch` command (it could write into
 * linked files, which the previous release shares), and not for a single-file artifact.
 */
function mayLink(settings: Settings, artifact: Artifact): boolean {
  return (
    layoutFor(settings.target).strategy === 'releases' &&
    settings.transfer.incremental &&
    !settings.beforeSwitch &&
    !artifact.isFile
  );
}

/**
 * Plans an incremental upload against the previous release on this host and links its unchanged
 * files into the staging directory. Undefined means "send everything": no previous release, no
 * kept manifest, a `before-switch` command (it could write into linked files, which the previous
 * release shares), or `incremental: false`.
 */
async function prepareDelta(
  run: HostRun,
  settings: Settings,
  artifact: Artifact,
  deps: DeployDeps
): Promise<{ link: readonly string[]; send: Artifact; local: Map<string, string> } | undefined> {
  const plan = run.plan;
  const previous = plan?.previousRelease;
  if (!plan || !previous || !mayLink(settings, artifact)) return undefined;
  const staging = stagingDir(plan.layout, settings.releaseId);
  const prevDir = releaseDir(plan.layout, previous);
  // The local hashes are computed while the host reads its manifest (and only once per fleet).
  const hashing = hashArtifact(artifact);
  const r = await run.shell.exec(readPreviousRelease(prevDir, manifestPath(plan.layout, previous)), {
    timeoutMs: STEP_TIMEOUT_MS
  });
  // A file that cannot be read is reported by the upload, with the artifact's own error.
  const local = await hashing.catch(() => undefined);
  if (r.code !== 0 || !local) {
    if (r.code !== 0) deps.log.info(`${run.host.name}: no kept manifest for ${previous}; sending every file`);
    return undefined;
  }
  const [manifestPart = '', modesPart = ''] = r.stdout.split('\n--modes--\n');
  const delta = planDelta(
    artifact,
    local,
    parseManifest(manifestPart),
    parseModes(modesPart),
    settings.target.shared.map(e => e.replace(/\/+$/, ''))
  );
  if (delta.link.length === 0) return undefined;
  await execOk(
    run,
    linkUnchanged(prevDir, staging),
    'link unchanged files',
    STEP_TIMEOUT_MS,
    `${delta.link.join('\0')}\0`
  );
  run.delta = true;
  const linked = new Set(delta.link);
  return { ...delta, local: new Map([...local].filter(([p]) => linked.has(p))) };
}
