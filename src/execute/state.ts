import { posix } from 'node:path';
import type { CheckResult } from '../checks/types.js';
import { DeployError, DeployguardError } from '../errors.js';
import {
  PREVIOUS_MARK,
  RELEASES_MARK,
  previousReleaseFacts,
  probe,
  releaseListing
} from '../remote/commands.js';
import { lines, type Shell } from '../remote/shell.js';
import {
  deployedRelease,
  lastDeployed,
  parseDeploymentsOutput,
  type DeploymentEntry,
  type DeploymentLog
} from '../record/host-record.js';
import { blueGreenOf, liveColour, readLiveColour } from '../remote/blue-green.js';
import { mayLink } from './upload.js';
import type { Artifact } from '../transfer/artifact.js';
import type { HostFacts } from '../plan/plan.js';
import { describeFindings, judgePreflight, parsePreflight, preflightProbe } from '../preflight.js';
import type { PreviousDeploy } from './result.js';
import {
  StepFailed,
  hostContext,
  tail,
  type DeployContext,
  type HostSession,
  type PreviousRelease,
  runRecorded,
  logChecks
} from './session.js';

/**
 * Reading the hosts before anything changes: their state and record, the preflight's verdict, and
 * the pre-deploy checks against production as it is.
 */

/** Production was unhealthy before the deploy and `require-healthy` is on: nothing was changed. */
export class Blocked extends DeployguardError {
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

/** A host cannot take this deploy: found by the preflight, before anything changed. */
export class PreflightFailed extends DeployError {}

/**
 * Judges every host's preflight facts. Warnings are logged; failures stop the deploy before any
 * host changes, each with its fix. `artifact` is the upload, when this run ships one.
 */
export function checkPreflight(
  ctx: DeployContext,
  runs: readonly HostSession[],
  artifact: Artifact | undefined,
  opts: { readonly block: boolean }
): void {
  const { settings, deps } = ctx;
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
 * The read of the host state: the preflight's facts, the live release, the deployment record and,
 * when this run may upload incrementally, the live release's manifest (read-only). Sent with the
 * lock (see `lockThenProbe`), or on its own.
 */
export function probeScript(ctx: DeployContext): Shell {
  const { settings, layout, artifact } = ctx;
  const svc = settings.service;
  const bg = blueGreenOf(svc);
  const base = probe(layout, preflightProbe(settings), bg && readLiveColour(bg));
  return lines(
    releaseListing(layout),
    base,
    artifact && mayLink(settings, artifact) ? previousReleaseFacts(layout) : undefined
  );
}

/** Splits the release listing (see `releaseListing`) off the probe's output. */
export function splitReleases(stdout: string): { rest: string; releases?: string } {
  const mark = `${RELEASES_MARK}\n`;
  const open = stdout.startsWith(mark) ? 0 : stdout.indexOf(`\n${mark}`) + 1;
  if (open === 0 && !stdout.startsWith(mark)) return { rest: stdout };
  const body = open + mark.length;
  const close = stdout.startsWith(mark, body) ? body : stdout.indexOf(`\n${mark}`, body) + 1;
  if (close < body) return { rest: stdout };
  return {
    releases: stdout.slice(body, close),
    rest: stdout.slice(0, open) + stdout.slice(close + mark.length)
  };
}

/** Splits the live release's part (see `previousReleaseFacts`) off the probe's output. */
export function splitPrevious(stdout: string): { rest: string; previous?: PreviousRelease } {
  const at = stdout.indexOf(`\n${PREVIOUS_MARK}\n`);
  const start = stdout.startsWith(`${PREVIOUS_MARK}\n`) ? 0 : at < 0 ? -1 : at + 1;
  if (start < 0) return { rest: stdout };
  const part = stdout.slice(start + PREVIOUS_MARK.length + 1);
  const nl = part.indexOf('\n');
  const id = part.slice(0, nl);
  const [manifest = '', modes = ''] = part.slice(nl + 1).split(/^--modes--\n/m);
  return { rest: stdout.slice(0, start), previous: { id, manifest, modes } };
}

/** Read-only: what the host runs now. */
export async function readFacts(run: HostSession): Promise<{ facts: HostFacts; log: DeploymentLog }> {
  const { settings, deps, layout } = run.ctx;
  return runRecorded(run, { id: 'probe', title: 'Read the host state' }, async () => {
    const svc = settings.service;
    const bg = blueGreenOf(svc);
    // Read in the lock's round trip, unless something changed the host since (a recovery).
    const answer = run.probed ?? (await run.shell.exec(probeScript(run.ctx)));
    run.probed = undefined;
    if (answer.code !== 0)
      throw new StepFailed(`${run.host.name}: ${tail(answer.stderr) || 'probe failed'}`, 'deploy');
    const listed = splitReleases(answer.stdout);
    run.releases = listed.releases;
    const split = splitPrevious(listed.rest);
    run.previous = split.previous;
    const r = { ...answer, stdout: split.rest };
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

export function previousDeployOf(e: DeploymentEntry): PreviousDeploy {
  return { release: e.release, commit: e.commit, runUrl: e.runUrl, time: e.time };
}

/**
 * The checks tagged `pre`, against production as it is, before anything changes. Unhealthy
 * production blocks the deploy when `require-healthy` is on, and is recorded either way. A first
 * deploy has no production to check.
 */
export async function preDeployGate(
  ctx: DeployContext,
  runs: readonly HostSession[],
  facts: ReadonlyMap<HostSession, HostFacts>
): Promise<CheckResult[]> {
  const { settings, deps } = ctx;
  if (!settings.checks.some(c => c.stages.includes('pre'))) return [];
  const live = runs.filter(r => facts.get(r)?.previous);
  if (live.length === 0) {
    deps.log.info('Pre-deploy checks skipped: no release is live yet (first deploy).');
    return [];
  }
  return deps.log.group('Pre-deploy: is production healthy now?', async () => {
    const results = await deps.runChecks(
      'pre',
      live.map(r => hostContext(r, r.liveColour)),
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
