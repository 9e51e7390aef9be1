import { posix } from 'node:path';
import { describeError, HealthCheckError, RollbackError } from '../errors.js';
import {
  listReleases,
  markRelease,
  parseServiceStatus,
  readLive,
  releasePresent,
  serviceCommands,
  switchCurrent
} from '../remote/commands.js';
import { releaseDir } from '../remote/layout.js';
import { remoteCommandLine, sh } from '../remote/shell.js';
import {
  blueGreenOf,
  colourLink,
  colourService,
  flipBack,
  liveColour,
  otherColour,
  readLiveColour
} from '../remote/blue-green.js';
import { newestFirst, parseReleaseList, type ExecStep } from '../plan/plan.js';
import {
  STEP_TIMEOUT_MS,
  hostContext,
  tail,
  type HostSession,
  runRecorded,
  execOk,
  logChecks
} from './session.js';
import { awaitRunning } from './steps.js';

/** Putting a host back: the undo steps in reverse, the verification, and recovery by hand. */

/**
 * Before a rollback wipes the evidence: the service's last log lines, and where the failed
 * release stays on the host, so it can be debugged offline once production is safe again.
 */
export async function keepEvidence(run: HostSession): Promise<void> {
  const { settings, deps, layout } = run.ctx;
  if (layout.strategy === 'releases' && run.report.steps.some(s => s.id === 'promote' && s.ok))
    run.report.keptAt = releaseDir(layout, settings.releaseId);
  const logs = run.plan?.serviceLogs;
  if (!run.serviceTouched || !logs) return;
  const r = await run.shell.exec(logs, { timeoutMs: 20_000 }).catch(() => undefined);
  if (r?.stdout.trim()) run.report.logTail = tail(r.stdout, 20);
  else if (r === undefined) deps.log.warn(`${run.host.name}: the service's log lines could not be read`);
}

/**
 * Runs a rollback step once more when the link dropped under it. Undo steps are safe to repeat
 * (stop, switch back, start again, mark failed, remove): whether or not the first try ran on the
 * host, the second one, over a new connection, leaves it the same.
 */
export async function againIfDropped(run: HostSession, fn: () => Promise<unknown>): Promise<void> {
  const { deps } = run.ctx;
  try {
    await fn();
  } catch (err) {
    if (run.shell.alive !== false) throw err;
    deps.log.warn(`${run.host.name}: the connection dropped during the rollback; trying that step again`);
    await fn();
  }
}

export async function rollbackHost(run: HostSession): Promise<void> {
  const { settings, deps } = run.ctx;
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
      await againIfDropped(run, () =>
        runRecorded(run, step, () => execOk(run, step.action.script, step.title), true)
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
    await againIfDropped(run, () =>
      runRecorded(
        run,
        { id: 'verify-rollback', title: 'Verify the restored release' },
        async () => {
          const old = run.plan?.colours?.live;
          const running = old
            ? serviceCommands(colourService(settings.service, old), run.plan!.layout)?.status
            : run.plan?.steps.flatMap(s => (s.action.kind === 'await-running' ? [s.action.script] : []))[0];
          if (running) await awaitRunning(running, run);
          const results = await deps.runChecks('rollback', [hostContext(run, old)], {
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
    run.report.recovery = recoveryText(run, [], true);
    const e = new RollbackError(
      `${run.host.name}: rolled back, but the restored version is NOT healthy: ${describeError(err)}`,
      'rollback'
    );
    deps.log.error(`${e.message}\n${run.report.recovery}`);
  }
}

/** The exact commands a person runs to finish a rollback by hand. */
export function recoveryText(
  run: HostSession,
  remaining: readonly ExecStep[],
  /** Everything was undone, and the restored release does not run: add how to start it. */
  serviceDown = false
): string {
  const settings = serviceDown ? run.ctx.settings : undefined;
  const h = run.host;
  const ssh = `ssh -p ${h.port} ${h.user}@${h.host}`;
  const lines = [`Recover ${h.name} by hand:`, `  ${ssh}`];
  for (const s of remaining) {
    lines.push(`  # ${s.title}`, `  ${remoteCommandLine(s.action.script)}`);
  }
  // Everything was undone, yet the restored release does not run: its service needs a person.
  const service =
    settings && run.plan
      ? serviceCommands(colourService(settings.service, run.plan.colours?.live), run.plan.layout)
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

/**
 * The deploy that held this host's lock died (the lock went unrefreshed for its TTL), maybe between
 * two steps: its release switched in but never checked, or the service stopped. Before anything
 * else this deploy puts the host back on the newest good release and makes sure the service runs.
 * `current` itself is never half a release: it only ever moves to a verified tree, atomically.
 */
export async function recoverAbandoned(run: HostSession): Promise<void> {
  const { settings, deps, layout } = run.ctx;
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
  const svc = settings.service;
  const bg = blueGreenOf(svc);
  // blue-green: the service is the instance of the colour the proxy serves.
  const colour = bg ? liveColour(await execOk(run, readLiveColour(bg), 'read the live colour')) : undefined;
  if (bg && !colour) return; // no flip ever completed: nothing serves through the proxy yet
  const service = serviceCommands(colourService(settings.service, colour), layout);
  // Nothing live yet (the dead deploy was the first): there is nothing to return to or to start.
  const live = (await execOk(run, readLive(layout), 'read current')).trim();
  if (!live) return;
  // The dead deploy switched (blue-green: flipped) to its release but never finished checking it:
  // back to the release to return to, when there is one. blue-green: the other colour's release
  // while it is good; else the newest good release.
  if (layout.strategy === 'releases' && dead && posix.basename(live) === dead) {
    const releases = parseReleaseList(await execOk(run, listReleases(layout), 'list releases'));
    const other = bg && colour ? otherColour(colour) : undefined;
    const back = other
      ? posix.basename((await run.shell.exec(sh`readlink -- ${colourLink(layout, other)}`)).stdout.trim())
      : releases.filter(r => r.status === 'good' && r.id !== dead).sort(newestFirst)[0]?.id;
    const good = releases.find(r => r.id === back && r.status === 'good');
    if (releases.find(r => r.id === dead)?.status !== 'good' && good) {
      if (bg && other && svc.manager === 'systemd') {
        deps.log.warn(
          `${run.host.name}: the deploy of ${dead} died after flipping to it, before it was checked: flipping back to ${other} (${good.id})`
        );
        await execOk(
          run,
          flipBack(layout, bg, svc.name, svc.sudo, other, releaseDir(layout, good.id), `recover-${dead}`),
          'flip back'
        );
      } else {
        deps.log.warn(
          `${run.host.name}: the deploy of ${dead} died after switching to it, before it was checked: switching back to ${good.id}`
        );
        if (service) await execOk(run, service.stop, 'stop the service');
        await execOk(
          run,
          switchCurrent(layout, releaseDir(layout, good.id), `recover-${dead}`),
          'switch back'
        );
      }
      await execOk(
        run,
        markRelease(layout, dead, 'failed', deps.now(), 'unknown'),
        'mark the release failed'
      );
      // blue-green: the colour flipped back to kept running throughout.
      if (bg) return;
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
