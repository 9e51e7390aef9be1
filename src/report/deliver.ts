import type { GitHubApi } from '../io/github.js';
import type { Logger } from '../io/log.js';
import { writePrivateFile } from '../io/private-dir.js';
import type { DeployResult, PhaseRecord } from '../execute/result.js';
import { artifactRootOf, reportOf } from '../scan/pre-deploy.js';
import type { Settings } from '../settings/types.js';
import { changesSince } from './changes.js';
import {
  attempt,
  createDeployment,
  fitComment,
  recordMarker,
  setDeploymentStatus,
  upsertComment,
  type CommentOn,
  type PullRef
} from './publish.js';
import { liveBefore, renderRecord, type BlockedBy, type Why } from './record.js';

/**
 * After a deploy, whatever its outcome: the record is rendered, written to a file, and posted
 * where the settings say. Shared by the action and the CLI; nothing here can fail the deploy.
 */
export interface DeliverOptions {
  readonly settings: Settings;
  readonly result: DeployResult;
  readonly api?: GitHubApi;
  readonly pr?: PullRef;
  readonly why?: Why;
  readonly blockedBy?: BlockedBy;
  /**
   * Unused: the record lists the findings themselves, which it reads from the result of a deploy
   * the secret scan blocked. Kept so callers that pass the count still compile.
   */
  readonly findings?: number;
  readonly extraPhases?: readonly PhaseRecord[];
  /** The git checkout, for the list of commits since the last deploy. */
  readonly workspace: string;
  /** Where the record's file goes: the run's private directory (io/private-dir.ts `privateDir`). */
  readonly outDir: string;
  readonly log: Logger;
  /** Every text leaving the process passes through this (registered secrets out). */
  readonly redact: (text: string) => string;
  /** A pull_request event deploys a merge commit GitHub made; comments go on the PR's head. */
  readonly commentSha?: string;
}

export interface Delivered {
  readonly markdown: string;
  /** The record's file ('' when it could not be written: a warning says why). */
  readonly path: string;
  /** URLs of the comments created or updated. */
  readonly comments: readonly string[];
}

/** The record's file name: environment and release, reduced to safe characters. */
export function recordFileName(environment: string, release: string): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80);
  return `deployguard-record-${safe(environment)}-${safe(release)}.md`;
}

/** Where the comment goes for the `comment` setting, given the PR found (if any). */
export function commentTargets(
  mode: Settings['report']['comment'],
  pr: PullRef | undefined,
  sha: string
): CommentOn[] {
  const onPr: CommentOn[] = pr ? [{ kind: 'pr', number: pr.number }] : [];
  const onCommit: CommentOn[] = /^[0-9a-f]{40}$/.test(sha) ? [{ kind: 'commit', sha }] : [];
  switch (mode) {
    case 'none':
      return [];
    case 'pr':
      return onPr;
    case 'commit':
      return onCommit;
    case 'both':
      return [...onPr, ...onCommit];
    case 'auto':
      return onPr.length ? onPr : onCommit;
  }
}

export async function deliverRecord(o: DeliverOptions): Promise<Delivered> {
  const { settings, result } = o;
  const live = result.hosts.find(h => h.previousDeploy)?.previousDeploy;
  const before = liveBefore(result);
  const changes = await changesSince({
    hostsRead: before.kind !== 'unread',
    live: before.kind === 'release' ? before.id : undefined,
    repoDir: o.workspace,
    base: live?.commit ?? result.lastDeployedCommit,
    head: settings.run.commit,
    api: o.api,
    repository: settings.run.repository,
    serverUrl: settings.run.serverUrl,
    log: o.log
  });
  const markdown = o.redact(
    renderRecord({
      environment: settings.environment,
      result,
      run: settings.run,
      environmentUrl: settings.report.environmentUrl,
      why: o.why,
      pr: o.pr,
      changes,
      blockedBy: o.blockedBy,
      findings: reportOf(result.blockedBy)?.scan?.findings,
      artifactRoot: settings.artifact ? artifactRootOf(o.workspace, settings.artifact) : undefined,
      extraPhases: o.extraPhases,
      configPath: settings.configPath
    })
  );
  // The release the run ended on (a reused or rolled-back-to one), not the fresh id it started with.
  const name = recordFileName(settings.environment, result.releaseId || 'none');
  let path = '';
  try {
    path = writePrivateFile(o.outDir, name, markdown);
  } catch (err) {
    o.log.warn(`the deployment record could not be written to ${o.outDir}: ${(err as Error).message}`);
  }
  const comments: string[] = [];
  const targets = commentTargets(settings.report.comment, o.pr, o.commentSha ?? settings.run.commit);
  if (targets.length && (!o.api || !settings.run.repository)) {
    o.log.info(
      'The deployment record is in the job summary only: commenting needs the `github-token` input and GITHUB_REPOSITORY.'
    );
  } else if (settings.report.comment === 'pr' && !o.pr) {
    o.log.info('No pull request belongs to this deploy; no comment was posted (comment: pr).');
  }
  if (o.api && settings.run.repository) {
    const api = o.api;
    const repository = settings.run.repository;
    const marker = recordMarker(settings.environment);
    for (const on of targets) {
      const body = fitComment(markdown, 'the job summary');
      const done = await attempt(
        on.kind === 'pr' ? 'comment on the pull request' : 'comment on the commit',
        o.log,
        () => upsertComment(api, repository, on, marker, body)
      );
      if (done) {
        comments.push(done.url);
        o.log.info(
          `deployment record ${done.action} on the ${on.kind === 'pr' ? `pull request #${on.number}` : `commit ${on.sha.slice(0, 7)}`}: ${done.url}`
        );
      }
    }
  }
  return { markdown, path, comments };
}

/**
 * A GitHub deployment, marked in progress, when `github-deployment` is on. Off by default: a job
 * that runs in an `environment:` already gets one from GitHub, and a second would duplicate it.
 */
export async function startGithubDeployment(
  settings: Settings,
  api: GitHubApi | undefined,
  log: Logger
): Promise<number | undefined> {
  if (!settings.report.githubDeployment) return undefined;
  if (!api || !settings.run.repository || !/^[0-9a-f]{40}$/.test(settings.run.commit)) {
    log.warn('github-deployment is on, but there is no github-token, GITHUB_REPOSITORY or commit: skipped.');
    return undefined;
  }
  const repository = settings.run.repository;
  return attempt('create a GitHub deployment', log, async () => {
    const id = await createDeployment(api, repository, {
      sha: settings.run.commit,
      environment: settings.environment,
      description: `deployguard: release ${settings.releaseId}`
    });
    if (id !== undefined)
      await setDeploymentStatus(api, repository, id, {
        state: 'in_progress',
        logUrl: settings.run.runUrl,
        description: 'deploying'
      });
    return id;
  });
}

export async function finishGithubDeployment(
  settings: Settings,
  api: GitHubApi | undefined,
  id: number | undefined,
  status: DeployResult['status'],
  log: Logger
): Promise<void> {
  if (id === undefined || !api || !settings.run.repository) return;
  const repository = settings.run.repository;
  await attempt('create a GitHub deployment', log, () =>
    setDeploymentStatus(api, repository, id, {
      state: status === 'deployed' ? 'success' : 'failure',
      environmentUrl: status === 'deployed' ? settings.report.environmentUrl : undefined,
      logUrl: settings.run.runUrl,
      description: `deployguard: ${status}`
    })
  );
}
