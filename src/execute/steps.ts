import { DeployError, HealthCheckError } from '../errors.js';
import { envFileText, parseServiceStatus, serviceCommands, type ServiceState } from '../remote/commands.js';
import type { Shell } from '../remote/shell.js';
import { planHost, type HostFacts, type PlanOptions, type Step } from '../plan/plan.js';
import {
  Stopped,
  STEP_TIMEOUT_MS,
  hostContext,
  tail,
  type HostSession,
  runRecorded,
  execOk,
  logChecks,
  failedChecks
} from './session.js';
import { uploadArtifact, verifyUpload } from './upload.js';

/** One host's steps of the plan, run in order, each with its undo registered as it goes. */

/**
 * The run-once command of a batch: settled by the host that runs it, awaited by the others before
 * they touch their service, so nothing switches anywhere before it succeeded.
 */
export interface RunOnceGate {
  readonly host: string;
  readonly done: Promise<void>;
  succeed(): void;
  fail(err: unknown): void;
}

export function runOnceGate(first: HostSession): RunOnceGate {
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

export async function deployHost(
  run: HostSession,
  facts: HostFacts,
  how: Pick<PlanOptions, 'source' | 'part' | 'runOnce'>,
  /** Aborted when another host of the same batch failed: this one stops at its next step. */
  stop?: AbortSignal,
  /** The run-once command of this batch: run here (`how.runOnce`), or waited for before the service is touched. */
  once?: RunOnceGate
): Promise<void> {
  try {
    await hostSteps(run, facts, how, stop, once);
  } catch (err) {
    if (how.runOnce) once?.fail(err);
    throw err;
  }
}

export async function hostSteps(
  ...[run, facts, how, stop, once]: Parameters<typeof deployHost>
): Promise<void> {
  const { settings, deps, layout, artifact } = run.ctx;
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
      await runRecorded(run, step, () => runAction(step, run));
      if (step.id === 'run-once') once?.succeed();
    } catch (err) {
      // The link dropped under the step: its command may have run on the host or not. Its undo
      // (switch back, mark failed) is safe either way, so it is undone as if it had run.
      if (step.undo && step.undoAfterSuccess && run.shell.alive === false) run.undo.push(step.undo);
      if (step.id === 'stop' && run.shell.alive !== false) await afterFailedStop(run, facts, step);
      throw err;
    }
    if (step.undo && step.undoAfterSuccess) run.undo.push(step.undo);
  }
}

export async function runAction(step: Step, run: HostSession): Promise<void> {
  const { settings } = run.ctx;
  const a = step.action;
  switch (a.kind) {
    case 'exec':
      await execOk(run, a.script, step.title);
      return;
    case 'write-env':
      await execOk(run, a.script, step.title, STEP_TIMEOUT_MS, envFileText(settings.env.vars));
      return;
    case 'upload':
      return uploadArtifact(run, a.script);
    case 'verify':
      return verifyUpload(run, a.script);
    case 'await-running':
      return awaitRunning(a.script, run);
    case 'checks':
      return postDeployChecks(run, a.on);
  }
}

/**
 * The post-deploy checks, then the same checks again and again through the stability window: a
 * release that answers at first and crashes 20 s later is caught here, not by the users.
 */
export async function postDeployChecks(
  run: HostSession,
  /** blue-green: `colour` before the flip (the checks that reach the colour), `live` after it. */
  on?: 'colour' | 'live'
): Promise<void> {
  const { settings, deps } = run.ctx;
  const host = [hostContext(run, run.plan?.colours?.idle)];
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
export const STABILITY_INTERVAL_MS = 5000;

/**
 * "Active" is not "running": waits until the service is active with a live main PID, then
 * checks again after the settle time that it is the same PID with no restarts in between.
 */
export async function awaitRunning(status: Shell, run: HostSession): Promise<void> {
  const { settings, deps } = run.ctx;
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
 * A stop that failed may have changed nothing (an unknown unit, sudo refused, a stop that timed
 * out on a service that kept running). When the service is as it was before the deploy, nothing
 * live changed: no "start it again" is owed, and the deploy ends `failed`, not rolled back.
 */
export async function afterFailedStop(run: HostSession, facts: HostFacts, step: Step): Promise<void> {
  const { settings, deps } = run.ctx;
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
