import { dryRun, runDeploy } from './deploy.js';
import type { GitHubApi } from './io/github.js';
import type { Logger } from './io/log.js';
import { privateDir } from './io/private-dir.js';
import { blockedResult, type DeployMode, type DeployResult, type PhaseRecord } from './execute/result.js';
import { deployReason } from './report/changes.js';
import {
  deliverRecord,
  finishGithubDeployment,
  startGithubDeployment,
  type Delivered
} from './report/deliver.js';
import { findPullRequest, type PullRef } from './report/publish.js';
import { blockedReason, type BlockedBy, type Why } from './report/record.js';
import type { Finding } from './scan/gitleaks.js';
import { reportOf, secretGate, testGate, type ScanReport } from './scan/pre-deploy.js';
import type { Settings } from './settings/types.js';

/**
 * The one sequence behind the Action and the CLI: settings, the dry run, the gates (tests, then
 * the secret scan once the hosts are locked and read), the deploy (or one phase of it), the
 * record, the outputs. What differs between the two sits behind `PipelineHost`, as the state
 * provider does in actions/cache: where settings come from, how to log, what to do with a
 * finding, where state for the post step goes, and how the outcome is shown.
 */

/** GitHub's side of a run: only the Action has one. */
export interface GitHubContext {
  /** GITHUB_EVENT_NAME and its payload, for the commits going out and the record's "why". */
  readonly event?: { readonly name: string; readonly payload: unknown };
  /** The API, when a token and a repository are known (deployments, pull requests, comments). */
  readonly api?: GitHubApi;
}

/** Everything the pipeline learned, for the host to show. */
export interface PipelineRun {
  readonly settings: Settings;
  readonly mode: DeployMode;
  readonly result: DeployResult;
  /** The test command's failure, when the tests stopped the run before any host was contacted. */
  readonly failedTests?: unknown;
  /** The secret scan's report (also when it blocked the deploy). */
  readonly scanned?: ScanReport;
  readonly blockedBy?: BlockedBy;
  /** Extra phases for the record (the test command's). */
  readonly testPhases: readonly PhaseRecord[];
  readonly why?: Why;
  readonly pr?: PullRef;
}

/** Where the pipeline runs: the Action (io/actions-log.ts, @actions/core) or the CLI. */
export interface PipelineHost {
  /** Settings from the host's inputs (action inputs or flags) and the config file. */
  settings(purpose: 'deploy' | 'hosts'): Settings;
  /** The checkout: where tests run, what the scan and the record read. */
  readonly workspace: string;
  readonly env: NodeJS.ProcessEnv;
  readonly log: Logger;
  /** Secrets out of a text that leaves through a channel nobody masks. */
  readonly redact: (text: string) => string;
  /** GitHub's side of the run, given the settings (its token); undefined outside Actions. */
  github?(settings: Settings): GitHubContext;
  /** Calls `cancel` when the run is to stop (a signal); returns what stops listening. */
  onCancel(cancel: () => void): () => void;
  /** Each secret found, as the scan finds it (the Action annotates the file). */
  onFinding?(finding: Finding, settings: Settings): void;
  /** The locks held now, saved for the post step that frees them if the run dies. */
  saveLocks?(held: readonly (readonly [string, string])[]): void;
  /** A dry run's plan; the run ends there. Returns the exit code. */
  showPlan(settings: Settings, plan: string): Promise<number>;
  /** A directory of the user's own for the artifact's file hashes between runs (the CLI's). */
  hashCache?(): string | undefined;
  /** The outputs known once the deploy has ended, before the record is made. */
  outputs?(run: PipelineRun): void;
  /** Whether to make the deployment record of this run (and post it, when `post`). */
  record(run: PipelineRun): { readonly post: boolean } | undefined;
  /** The record was made: where it was written. */
  recorded?(record: Delivered, run: PipelineRun): void;
  /** The end: the summary, the verdict, the exit code. */
  finish(run: PipelineRun, record: Delivered | undefined): Promise<number>;
}

export interface PipelineRequest {
  /** Whether the run ships an artifact (a full deploy, the deploy phase): settings for a deploy then. */
  readonly ships: boolean;
  /** The deploy mode, from the host's own inputs, once settings are read (a ConfigError when wrong). */
  readonly mode: (settings: Settings) => DeployMode;
}

/** Runs the whole sequence; errors (a ConfigError first of all) are the host's to report. */
export async function runPipeline(host: PipelineHost, request: PipelineRequest): Promise<number> {
  const settings = host.settings(request.ships ? 'deploy' : 'hosts');
  if (settings.dryRun && request.ships) return host.showPlan(settings, await dryRun(settings));
  const mode = request.mode(settings);

  const abort = new AbortController();
  const stopListening = host.onCancel(() => abort.abort());
  try {
    const { log, workspace } = host;
    const outDir = privateDir();
    const github = host.github?.(settings);
    const gateOpts = {
      workspace,
      env: host.env,
      log,
      outDir,
      event: github?.event,
      signal: abort.signal,
      onFinding: host.onFinding && ((f: Finding) => host.onFinding!(f, settings))
    };
    const pr = github
      ? await findPullRequest(github.api, settings.run.repository, github.event, settings.run.commit, log)
      : undefined;
    const reasonOf = () =>
      deployReason({
        reason: settings.report.reason,
        pr,
        event: github?.event,
        repoDir: workspace,
        commit: settings.run.commit
      });
    // Outside Actions, the hosts' records carry only a reason given on purpose.
    const why = github ? await reasonOf() : undefined;

    // The gates belong to the whole run and to pre-deploy; the deploy phase trusts the pre-deploy
    // job before it, post-deploy and rollback ship nothing new.
    const gated = mode.kind === 'full' || mode.kind === 'pre';
    const testStart = Date.now();
    const failedTests = gated
      ? await testGate(settings, gateOpts).then(
          () => undefined,
          (err: unknown) => err ?? new Error('the test command failed')
        )
      : undefined;
    const testPhases =
      gated && settings.preDeploy.testCommand
        ? [{ name: 'Tests', start: testStart, ms: Date.now() - testStart, ok: failedTests === undefined }]
        : [];

    let scan: ScanReport | undefined;
    let result: DeployResult;
    let deploymentId: number | undefined;
    if (failedTests !== undefined) {
      result = blockedResult(settings, failedTests, new Date(testStart));
    } else {
      if (github && (mode.kind === 'full' || mode.kind === 'switch'))
        deploymentId = await startGithubDeployment(settings, github.api, log);
      const held = new Map<string, string>();
      result = await runDeploy(
        settings,
        {
          log,
          signal: abort.signal,
          why: github ? why?.text : settings.report.reason,
          redact: host.redact,
          hashCache: host.hashCache?.(),
          beforeChanges: gated
            ? async ({ lastDeployedCommit }) => {
                scan = await secretGate(settings, { ...gateOpts, lastDeployedCommit });
              }
            : undefined,
          onLock: host.saveLocks
            ? (h, isHeld, token) => {
                if (isHeld) held.set(h.name, token);
                else held.delete(h.name);
                host.saveLocks!([...held.entries()]);
              }
            : undefined
        },
        mode
      );
    }

    const run: PipelineRun = {
      settings,
      mode,
      result,
      failedTests,
      scanned: scan ?? reportOf(result.blockedBy)?.scan,
      blockedBy: blockedReason(result, failedTests !== undefined),
      testPhases,
      why,
      pr
    };
    host.outputs?.(run);
    const wanted = host.record(run);
    let record: Delivered | undefined;
    if (wanted) {
      record = await deliverRecord({
        settings: wanted.post ? settings : { ...settings, report: { ...settings.report, comment: 'none' } },
        result,
        api: wanted.post ? github?.api : undefined,
        pr,
        why: github ? why : await reasonOf(),
        blockedBy: run.blockedBy,
        findings: run.scanned?.findings.length,
        extraPhases: testPhases,
        workspace,
        outDir,
        log,
        redact: host.redact,
        commentSha: pr?.headSha && /^pull_request/.test(github?.event?.name ?? '') ? pr.headSha : undefined
      });
      host.recorded?.(record, run);
    }
    if (github) await finishGithubDeployment(settings, github.api, deploymentId, result.status, log);
    return await host.finish(run, record);
  } finally {
    stopListening();
  }
}
