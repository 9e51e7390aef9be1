import { DeployError, HealthCheckError, describeError } from '../errors.js';
import {
  envFileText,
  parseServiceStatus,
  serviceCommands,
  STEP_MARK,
  stepGroup,
  type ServiceState
} from '../remote/commands.js';
import type { Shell } from '../remote/shell.js';
import { planHost, type HostFacts, type PlanOptions, type Step } from '../plan/plan.js';
import {
  Stopped,
  STEP_TIMEOUT_MS,
  hostContext,
  tail,
  type HostSession,
  runRecorded,
  recordDone,
  recordFailed,
  execOk,
  logChecks,
  failedChecks,
  StepFailed
} from './session.js';
import { linkedChanged, uploadArtifact, verifyFailed, verifyRequest, verifyUpload } from './upload.js';

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
  for (let i = 0; i < plan.steps.length;) {
    let group = groupAt(plan.steps, i);
    // While this host still waits for the run-once command of another host, a group ends before
    // its first step that must wait: the steps before it run now, as they would alone.
    const waits = once && !how.runOnce && !run.serviceTouched && !run.releaseStarted;
    const first = group.findIndex(s => s.touchesService || s.startsRelease);
    if (waits && first > 0) group = group.slice(0, first);
    i += group.length;
    const step = group[0]!;
    if (deps.signal?.aborted)
      throw new DeployError(`${run.host.name}: cancelled before "${step.title}"`, 'deploy');
    // Stopped, not failed: the host that failed is the cause the deploy reports, whichever ends first.
    if (stop?.aborted)
      throw new Stopped(`${run.host.name}: stopped before "${step.title}": another host failed`, 'deploy');
    if (run.lockLost)
      throw new DeployError(
        `${run.host.name}: another deploy took over this host's lock; stopped before "${step.title}"`,
        'deploy',
        'The lock is taken over only when it was not refreshed for lock-ttl: check the link to this host and raise deploy.lock-ttl if it drops for that long.'
      );
    // A group waits for the run-once command before it starts when any of its steps would have.
    const gated = group.find(s => s.touchesService || s.startsRelease);
    if (gated && once && !run.serviceTouched && !run.releaseStarted) {
      if (how.runOnce)
        once.succeed(); // its plan had no run-once step: nothing to wait for
      else
        await once.done.catch(() => {
          throw new Stopped(
            `${run.host.name}: stopped before "${gated.title}": the run-once command did not succeed on ${once.host}`,
            'deploy'
          );
        });
    }
    if (group.length > 1) {
      await runGroup(run, group, { facts });
      continue;
    }
    if (step.undo && !step.undoAfterSuccess) run.undo.push(step.undo);
    if (step.touchesService) run.serviceTouched = true;
    if (step.startsRelease) run.releaseStarted = true;
    // Staging is the first part of the upload's own script: recorded by the upload.
    if (step.id === 'stage' && plan.steps[i]?.action.kind === 'upload') {
      run.staging = { step };
      continue;
    }
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

/**
 * The steps from `i` on that go to the host as one script: consecutive plain remote commands. The
 * run-once command stays alone (the other hosts wait for its own outcome), and so does any step
 * that needs more than a script (the upload, the checks, the env file on stdin).
 */
export function groupAt(steps: readonly Step[], i: number): readonly Step[] {
  const joins = (s: Step | undefined) => s !== undefined && s.action.kind === 'exec' && s.id !== 'run-once';
  // The verification may lead a group: it alone reads the group's stdin (the manifest), and the
  // steps after it run only once it passed, as they would after it alone.
  if (!joins(steps[i]) && steps[i]?.action.kind !== 'verify') return steps.slice(i, i + 1);
  let end = i + 1;
  while (joins(steps[end]) && !(steps[end]!.id === 'stage' && steps[end + 1]?.action.kind === 'upload'))
    end++;
  return steps.slice(i, end);
}

/** The output and exit code of a script run by `withCode` (exit 1 when its code line is missing). */
export function withCodeOf(text: string, name: string): { readonly code: number; readonly stdout: string } {
  const end = text.lastIndexOf(`\n${name}=`);
  const code = end < 0 ? NaN : Number(text.slice(end + name.length + 2).trim());
  return { code: Number.isInteger(code) ? code : 1, stdout: end < 0 ? text : text.slice(0, end) };
}

/**
 * Runs consecutive steps in one round trip (see `stepGroup`) and records each as if it had run on
 * its own: the steps that printed their mark succeeded (their undo registered before or after, as
 * each says); the first without one failed. When the link drops, any step from there on may have
 * run: each one's undo is registered and the service counts as touched if any of them touches it,
 * which is what a single step whose link dropped gets too.
 */
export async function runGroup(
  run: HostSession,
  group: readonly Step[],
  opts: { readonly facts?: HostFacts; readonly after?: Shell } = {}
): Promise<{ readonly stdout: string; readonly stderr: string }> {
  const { deps } = run.ctx;
  const head = group[0]!.action;
  const verify = head.kind === 'verify' ? verifyRequest(run, head.script) : undefined;
  const scripts = group.map(s =>
    s.action.kind === 'exec' ? s.action.script : s.action.kind === 'verify' ? verify?.script : undefined
  );
  const at = deps.now().getTime();
  const t0 = Date.now();
  let r: { code: number; stdout: string; stderr: string } | undefined;
  let error: unknown;
  try {
    r = await run.shell.exec(
      stepGroup(
        scripts.filter((x): x is Shell => x !== undefined),
        opts.after
      ),
      { timeoutMs: STEP_TIMEOUT_MS, ...(verify ? { stdin: verify.stdin } : {}) }
    );
  } catch (err) {
    error = err;
  }
  if (verify && r) linkedChanged(run, r.stdout);
  const marks: number[] = [];
  let start = 0;
  const out: string[] = [];
  for (const line of (r?.stdout ?? '').split('\n')) {
    const m = new RegExp(`^${STEP_MARK} (start|\\d+) (\\S+)$`).exec(line);
    // The host's uptime in seconds, to the hundredth: kept in milliseconds.
    const ms = m ? Math.round(Number(m[2]) * 1000) || 0 : 0;
    if (m?.[1] === 'start') start = ms;
    else if (m && Number(m[1]) === marks.length) marks.push(ms);
    else out.push(line);
  }
  // Each step's time by the host's clock (the client's may differ); the round trip goes to the last.
  const took = (k: number) => {
    const from = k === 0 ? start : marks[k - 1]!;
    const ms = marks[k]! - from;
    return from > 0 && ms >= 0 && ms < 24 * 3600_000 ? ms : 0;
  };
  let used = 0;
  for (const [k, step] of group.entries()) {
    if (k < marks.length) {
      if (step.undo && !step.undoAfterSuccess) run.undo.push(step.undo);
      if (step.touchesService) run.serviceTouched = true;
      if (step.startsRelease) run.releaseStarted = true;
      const ms = k === group.length - 1 ? Math.max(0, Date.now() - t0 - used) : took(k);
      recordDone(run, step, ms, at + used);
      used += ms;
      if (step.undo && step.undoAfterSuccess) run.undo.push(step.undo);
      continue;
    }
    const dropped = run.shell.alive === false || error !== undefined;
    if (k === 0 && head.kind === 'verify' && r && !dropped) {
      // The verification failed: an incremental upload is sent again in full and verified on its
      // own; the rest of the group then runs as it would have.
      try {
        await verifyFailed(run, r, head.script);
      } catch (err) {
        recordFailed(run, step, Date.now() - t0, at, describeError(err));
        throw err;
      }
      recordDone(run, step, Date.now() - t0, at);
      return group.length > 1
        ? runGroup(run, group.slice(1), opts)
        : { stdout: out.join('\n'), stderr: r.stderr };
    }
    for (const maybe of dropped ? group.slice(k) : [step]) {
      if (maybe.undo && (!maybe.undoAfterSuccess || dropped)) run.undo.push(maybe.undo);
      if (maybe.touchesService) run.serviceTouched = true;
      if (maybe.startsRelease) run.releaseStarted = true;
    }
    const detail =
      error !== undefined ? describeError(error) : tail(`${r?.stderr ?? ''}\n${out.join('\n')}`.trim());
    const failure =
      error ??
      new StepFailed(
        `${run.host.name}: ${step.title} failed (exit ${r?.code})${detail ? `:\n${detail}` : ''}`,
        'deploy'
      );
    recordFailed(run, step, Math.max(0, Date.now() - t0 - used), at + used, describeError(failure));
    if (step.id === 'stop' && !dropped && opts.facts) await afterFailedStop(run, opts.facts, step);
    throw failure;
  }
  if (r && r.code !== 0)
    throw new StepFailed(
      `${run.host.name}: the script after ${group.at(-1)!.title} failed (exit ${r.code}): ${tail(r.stderr)}`,
      'deploy'
    );
  return { stdout: out.join('\n'), stderr: r?.stderr ?? '' };
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
      return uploadArtifact(run);
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
