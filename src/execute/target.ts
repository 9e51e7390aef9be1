import { posix } from 'node:path';
import { DeployError } from '../errors.js';
import { checkRelease, readManifest, RELEASE_MISSING } from '../remote/commands.js';
import { manifestPath, releaseDir } from '../remote/layout.js';
import { deployedRelease, type DeploymentEntry, type DeploymentLog } from '../record/host-record.js';
import type { HostFacts } from '../plan/plan.js';
import type { DeployMode } from './result.js';
import {
  StepFailed,
  STEP_TIMEOUT_MS,
  tail,
  type DeployContext,
  type HostSession,
  runRecorded
} from './session.js';
import { previousDeployOf } from './state.js';

/** Which release a run deploys, decided under the lock from what the hosts hold and recorded. */
export interface Target {
  readonly id: string;
  readonly commit: string;
  /** The release is already on every host, verified: switch to it, upload nothing. */
  readonly reuse: boolean;
  /** Post-deploy: the release directory each host returns to on failure. */
  readonly previous: ReadonlyMap<HostSession, string | undefined>;
}

export const SHA = /^[0-9a-f]{40}$/;

/**
 * Which release this run deploys, decided under the lock from what the hosts hold and recorded:
 * - a deploy of a commit whose release is still on every host and verifies against its kept
 *   manifest reuses it (a re-run of an old workflow run only switches back);
 * - a rollback goes to the named release, or to the newest good one before the live one;
 * - a post-deploy run judges the release its deploy phase switched to.
 */
export async function chooseTarget(
  ctx: DeployContext,
  mode: DeployMode,
  runs: readonly HostSession[],
  facts: ReadonlyMap<HostSession, HostFacts>,
  logs: ReadonlyMap<HostSession, DeploymentLog>
): Promise<Target> {
  const { settings, deps, layout } = ctx;
  const haveArtifact = ctx.artifact !== undefined;
  const fresh: Target = {
    id: settings.releaseId,
    commit: settings.run.commit,
    reuse: false,
    previous: new Map()
  };
  const live = (run: HostSession) => {
    const p = facts.get(run)?.previous;
    return p ? posix.basename(p) : undefined;
  };
  if (mode.kind === 'post') {
    const previous = new Map<HostSession, string | undefined>();
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
    const chosen = new Map<HostSession, DeploymentEntry | undefined>();
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
      const problem = await verifyKept(run, id);
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
    const problem = await verifyKept(run, id);
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
export async function verifyKept(run: HostSession, id: string): Promise<string | undefined> {
  const { settings, layout } = run.ctx;
  return runRecorded(
    run,
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
