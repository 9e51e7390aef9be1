import { randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import type { CheckResult } from '../checks/types.js';
import { describeError } from '../errors.js';
import {
  appendDeployment,
  pruneManifests,
  lockHeld,
  lockRelease,
  pruneReleases,
  removePaths,
  statPath,
  withCode
} from '../remote/commands.js';
import { lines, sh, type Shell } from '../remote/shell.js';
import { layoutFor, manifestPath, releaseDir } from '../remote/layout.js';
import { abandonHashing } from '../transfer/delta.js';
import {
  entryChecks,
  serializeEntry,
  type DeploymentEntry,
  type DeploymentLog
} from '../record/host-record.js';
import type { Settings } from '../settings/types.js';
import type { Artifact } from '../transfer/artifact.js';
import { SharedMembers } from '../transfer/tar.js';
import { parseReleaseList, planPrune, type HostFacts, type PlanOptions } from '../plan/plan.js';
import { batchSize, canaryBatches, rolloutBatches } from '../plan/rollout.js';
import type {
  DeployMode,
  DeployResult,
  DeployStatus,
  HostOutcome,
  HostReport,
  PhaseRecord
} from './result.js';
import {
  type DeployDeps,
  Stopped,
  type DeployContext,
  type HostSession,
  runRecorded,
  inBatches,
  tail,
  throwFirst
} from './session.js';
import { lockHosts, stopHeartbeat } from './lock.js';
import { Blocked, checkPreflight, readFacts, preDeployGate } from './state.js';
import { chooseTarget } from './target.js';
import { runOnceGate, deployHost, runGroup } from './steps.js';
import { localHashes, mayLink } from './upload.js';
import { keepEvidence, rollbackHost, recoverAbandoned } from './rollback.js';

/**
 * The deploy of one release to every host, all or nothing: connect, lock, read, choose the
 * release, the preflight and the gates, then the hosts in canary and batch order; on any failure
 * every changed host is put back and verified. The parts live beside this file: session.ts (the
 * per-host state), lock.ts, state.ts (reading the hosts), target.ts, steps.ts, upload.ts and
 * rollback.ts.
 */

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
  const shared = artifact && settings.hosts.length > 1 ? new SharedMembers() : undefined;
  const ctx: DeployContext = { settings, deps, layout, token, artifact, shared };
  const runs: HostSession[] = [];
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
  const hostPart = <T>(run: HostSession, title: string, fn: () => Promise<T>): Promise<T> =>
    parallel ? fn() : deps.log.group(`${run.host.name}: ${title}`, fn);
  // Hashing the artifact for an incremental upload starts now: it overlaps the SSH handshakes,
  // which mostly wait on the hosts.
  const hashEarly =
    artifact !== undefined && (mode.kind === 'full' || mode.kind === 'switch') && mayLink(settings, artifact);
  if (hashEarly) void localHashes(ctx, artifact);
  try {
    // Connect to every host first: a wrong host key or key is found before any host changes.
    await timed('Connect', () =>
      deps.log.group('Connect to hosts', async () => {
        const slots: (HostSession | undefined)[] = settings.hosts.map(() => undefined);
        const settled = await inBatches([...settings.hosts.entries()], per, async ([i, host]) => {
          const shell = await deps.connect(host);
          slots[i] = {
            ctx,
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
        runs.push(...slots.filter((r): r is HostSession => r !== undefined));
        const failed = settled.find(r => r.status === 'rejected');
        if (failed) throw failed.reason;
      })
    );
    // Lock every host before reading anything: what is live, and so what a rollback returns
    // to, must not change under us between reading it and acting on it. The pre-deploy checks
    // alone change nothing and take no lock, so a pull request's checks never wait for a deploy.
    if (mode.kind !== 'pre') await lockHosts(ctx, runs, per);
    throwFirst(
      await inBatches(
        runs.filter(r => r.abandoned !== undefined),
        per,
        run =>
          runRecorded(run, { id: 'recover', title: 'Recover from the deploy that died' }, () => {
            // The recovery changes the host: its state is read again afterwards.
            run.probed = undefined;
            return recoverAbandoned(run);
          })
      )
    );
    const facts = new Map<HostSession, HostFacts>();
    const logs = new Map<HostSession, DeploymentLog>();
    throwFirst(
      await inBatches(runs, per, async run => {
        const read = await readFacts(run);
        facts.set(run, read.facts);
        logs.set(run, read.log);
      })
    );
    // The last good deploy, when every host agrees on it: every commit after it is going out.
    const commits = [...facts.values()].map(f => f.lastGoodCommit).filter((c): c is string => !!c);
    lastDeployedCommit =
      commits.length === runs.length && new Set(commits).size === 1 ? commits[0] : undefined;
    const target = await timed('Choose the release', () => chooseTarget(ctx, mode, runs, facts, logs));
    // Nothing to link from on any host, or nothing to upload at all: the early hashing is moot.
    if (hashEarly && (target.reuse || ![...facts.values()].some(f => f.previous))) abandonHashing(artifact);
    settings = { ...initial, releaseId: target.id, run: { ...initial.run, commit: target.commit } };
    ctx.settings = settings;
    chosen = true;
    reused = target.reuse;
    // The preflight's facts came with the host state: judged now that it is known whether this run
    // uploads anything. A host that cannot take the deploy stops it here, before any change.
    if (mode.kind !== 'pre')
      checkPreflight(ctx, runs, target.reuse || mode.kind === 'rollback' ? undefined : artifact, {
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
      preChecks = await timed('Pre-deploy checks', () => preDeployGate(ctx, runs, facts));
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
              run,
              facts.get(run)!,
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

  // The host's deployment record, appended under the lock at its end; none for a rollback that
  // found no target (it changed nothing and has no release to name).
  const recordOf = (run: HostSession, status: DeploymentEntry['status']): Shell | undefined =>
    run.locked && mode.kind !== 'pre' && chosen
      ? recordScript(run, {
          status,
          startedAt,
          why:
            deps.why ??
            (mode.kind === 'rollback'
              ? `rollback to ${settings.releaseId}${run.report.previousRelease ? ` from ${run.report.previousRelease}` : ''}`
              : undefined)
        })
      : undefined;

  try {
    if (failure === undefined) {
      await inBatches(mode.kind === 'pre' ? [] : runs, per, async run => {
        if (mode.kind === 'switch') {
          // Not verified yet: the post-deploy phase judges it, marks it and prunes.
          run.report.outcome = 'switched';
          return;
        }
        try {
          await hostPart(run, 'finish', () => finishHost(run, recordOf(run, 'deployed')));
        } catch (err) {
          // Live and checked, but not marked good (or its answer was lost): said, never silent.
          deps.log.warn(
            `${run.host.name}: ${settings.releaseId} is live and passed its checks, but the finish failed: ${describeError(err)}`
          );
          return;
        }
        run.report.outcome = 'deployed';
      });
    } else {
      const message = describeError(failure);
      deps.log.error(message);
      const failedRun =
        runs.find(r => r.report.error === undefined && r.report.steps.some(s => !s.ok)) ?? runs.at(-1);
      if (failedRun && !failedRun.report.error) failedRun.report.error = message;
      if (failedRun) await keepEvidence(failedRun);
      await inBatches(
        [...runs].reverse().filter(r => r.undo.length > 0),
        per,
        run => hostPart(run, 'roll back', () => rollbackHost(run))
      );
    }
  } finally {
    if (hashEarly) abandonHashing(artifact);
    // Every path ends here: the record written under the lock, locks released, connections closed.
    // writeRecord and unlock never throw (they warn), so one host cannot keep another locked.
    await inBatches(runs, per, async run => {
      // A good deploy closed its hosts with their last step.
      if (!run.closed)
        await closeHost(
          run,
          recordOf(
            run,
            failure instanceof Blocked ? 'blocked' : hostStatus(run.report.outcome, failure, mode)
          )
        );
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

/** The script that appends this deploy to the host's deployments.jsonl. */
function recordScript(
  run: HostSession,
  what: { readonly status: DeploymentEntry['status']; readonly startedAt: Date; readonly why?: string }
): Shell {
  const { settings, deps, layout } = run.ctx;
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
    checks: entryChecks([...run.report.checks, ...run.report.rollbackChecks]),
    id: run.ctx.token
  };
  return appendDeployment(layout, serializeEntry(entry, deps.redact ?? (s => s)), run.ctx.token);
}

/** The script of a host's end: the prune, the record and the lock's release, each with its exit code. */
interface Close {
  readonly script: Shell;
  readonly prune?: Prune;
  readonly record: boolean;
  readonly release: boolean;
}

interface Prune {
  readonly script: Shell;
  /** The log line once it ran. */
  readonly done?: string;
}

/**
 * The end of every path, in one round trip: the prune a good deploy decided on, the deployment
 * record (written under the lock) and the release of the lock. Each part runs whatever the one
 * before did, and none of them fails the deploy: a prune, record or unlock that fails is a warning.
 * A good deploy sends this with its last step (see `finishHost`); every other path sends it here.
 */
function closeScript(run: HostSession, record: Shell | undefined, prune?: Prune): Close | undefined {
  const { layout, token } = run.ctx;
  const release = run.locked || run.lockUnsure === true;
  const parts = [
    prune && withCode(prune.script, 'prune-rc'),
    record && withCode(record, 'record-rc'),
    release ? withCode(lockRelease(layout, token), 'unlock-rc') : undefined
  ].filter((x): x is Shell => x !== undefined);
  return parts.length ? { script: lines(...parts), prune, record: !!record, release } : undefined;
}

async function closeHost(run: HostSession, record: Shell | undefined): Promise<void> {
  stopHeartbeat(run);
  const close = closeScript(run, record);
  if (!close) return;
  let out = '';
  let failed: string;
  try {
    const r = await run.shell.exec(close.script);
    out = r.stdout;
    failed = tail(r.stderr) || `exit ${r.code}`;
  } catch (err) {
    failed = describeError(err);
  }
  await closed(run, close, out, failed);
}

/** Reads what the close script printed: warnings for the parts that failed, the lock freed for sure. */
async function closed(run: HostSession, close: Close, out: string, failed: string): Promise<void> {
  const { deps, layout, token } = run.ctx;
  const ok = (name: string) => out.includes(`\n${name}=0\n`);
  if (close.prune && !ok('prune-rc'))
    deps.log.warn(`${run.host.name}: pruning old releases failed: ${failed}`);
  else if (close.prune?.done) deps.log.info(close.prune.done);
  if (close.record && !ok('record-rc'))
    deps.log.warn(
      `${run.host.name}: the deployment record could not be written to ${layout.deploymentsLog}: ${failed}`
    );
  run.closed = true;
  if (!close.release) return;
  // When the link dropped under the script (or an earlier part hung it), the lock is ours to free,
  // so it is asked for once more on its own, over a new connection if need be. Releasing is
  // harmless when it already happened: only a lock carrying our token is removed.
  const unlocked =
    ok('unlock-rc') || (await run.shell.exec(lockRelease(layout, token)).catch(() => undefined))?.code === 0;
  if (unlocked) {
    run.locked = false;
    run.lockUnsure = false;
    deps.onLock?.(run.host, false, token);
  } else deps.log.warn(`${run.host.name}: could not release the lock: ${failed}`);
}

/**
 * A good deploy's end in one round trip: the release marked good, then (once that succeeded) the
 * prune, the record and the unlock of `closeScript`. What to prune is decided from the releases the
 * probe listed under the lock, with this one now good.
 */
async function finishHost(run: HostSession, record: Shell | undefined): Promise<void> {
  const plan = run.plan!;
  const prune = pruneScript(run);
  stopHeartbeat(run);
  const close = closeScript(run, record, prune);
  // The close parts run once every finalize step succeeded, after the line that separates them.
  const separator = '--deployguard-close--';
  const output = await runGroup(run, plan.finalize, {
    after: close && lines(sh`echo ${separator}`, close.script)
  });
  if (!close) return;
  const at = output.stdout.indexOf(`${separator}\n`);
  await closed(
    run,
    close,
    at < 0 ? '' : `\n${output.stdout.slice(at + separator.length + 1)}`,
    tail(output.stderr) || 'no answer'
  );
}

/** The prune after a good deploy, from the probe's listing (see `HostSession.releases`). */
function pruneScript(run: HostSession): Prune | undefined {
  const { settings, deps, token } = run.ctx;
  const layout = run.plan!.layout;
  // The deploy is good; a cleanup that cannot be done must not turn it red, but a person should know.
  if (run.releases === undefined || run.lockLost) {
    deps.log.warn(
      `${run.host.name}: old releases not pruned: ${run.lockLost ? 'another deploy took over the lock' : 'the releases could not be listed'}`
    );
    return undefined;
  }
  const keep = settings.target.keepReleases;
  const listed = run.releases.split('\n').filter(Boolean);
  const names =
    layout.strategy === 'releases'
      ? planPrune(
          [
            ...parseReleaseList(run.releases).filter(r => r.id !== settings.releaseId),
            { id: settings.releaseId, status: 'good', at: deps.now().toISOString() }
          ],
          settings.releaseId,
          keep
        )
      : [...new Set([...listed, ...(run.plan!.backup ? [run.plan!.backup] : [])])]
          .sort()
          .reverse()
          .slice(keep);
  const scripts =
    layout.strategy === 'releases'
      ? [
          names.length
            ? pruneReleases(
                layout,
                names.map(id => releaseDir(layout, id)),
                names.flatMap(id => [
                  posix.join(layout.statusDir, id),
                  manifestPath(layout, id),
                  statPath(manifestPath(layout, id))
                ])
              )
            : undefined
        ]
      : // In place, only the live tree's manifest means anything: the trees it describes are gone.
        [pruneManifests(layout, settings.releaseId), names.length ? removePaths(names) : undefined];
  const parts = scripts.filter((x): x is Shell => x !== undefined);
  if (!parts.length) return undefined;
  // The listing is only as good as the lock it was read under: with the lock gone, nothing goes.
  return {
    script: lines(
      sh`if ! ${lockHeld(layout, token)}; then echo "the lock is no longer this deploy's: nothing pruned" >&2; exit 1; fi`,
      ...parts
    ),
    done: names.length ? `pruned ${names.length}: ${names.map(n => posix.basename(n)).join(', ')}` : undefined
  };
}
