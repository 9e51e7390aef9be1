import { GitHubApiError, repoParams, type GitHubApi } from '../io/github.js';
import type { Logger } from '../io/log.js';

/**
 * Where the deployment record goes on GitHub: a comment on the pull request or the commit,
 * edited in place on later deploys, and optionally a GitHub deployment with its status. None of
 * it may fail a deploy: a missing permission is a warning that names the permission to grant.
 */

/** What each call needs in the workflow's `permissions:`; the README lists the same. */
export const PERMISSIONS = {
  'find the pull request of the commit': 'pull-requests: read',
  'comment on the pull request': 'pull-requests: write',
  'comment on the commit': 'contents: write',
  'create a GitHub deployment': 'deployments: write',
  'list the commits since the last deploy': 'contents: read'
} as const;

export type GitHubFeature = keyof typeof PERMISSIONS;

/**
 * Runs one GitHub call; a failure becomes a warning and `undefined`. A 403 (or a 404 where the
 * token may not see the repository) names the permission the job lacks.
 */
export async function attempt<T>(
  feature: GitHubFeature,
  log: Logger,
  fn: () => Promise<T>
): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    const permission = PERMISSIONS[feature];
    if (err instanceof GitHubApiError && (err.status === 403 || err.status === 401)) {
      log.warn(
        `deployguard could not ${feature}: GitHub answered ${err.status} (${err.message}). Add \`${permission}\` to the job's \`permissions:\`. The deploy itself is not affected.`
      );
    } else if (err instanceof GitHubApiError && err.status === 404) {
      log.warn(
        `deployguard could not ${feature}: GitHub answered 404 (${err.message}). Either it does not exist on GitHub (a commit that was not pushed), or the token cannot see it: the job needs \`${permission}\`. The deploy itself is not affected.`
      );
    } else {
      log.warn(
        `deployguard could not ${feature}: ${err instanceof Error ? err.message : String(err)}. The deploy itself is not affected.`
      );
    }
    return undefined;
  }
}

/** The hidden line that finds the record's comment again: one per environment (and PR or commit). */
export function recordMarker(environment: string): string {
  return `<!-- deployguard:record environment=${encodeURIComponent(environment)} -->`;
}

export interface PullRef {
  readonly number: number;
  readonly title: string;
  readonly url: string;
  /** The PR's head commit (a pull_request event's GITHUB_SHA is a merge commit GitHub made). */
  readonly headSha?: string;
}

interface ApiPull {
  number?: number;
  title?: string;
  html_url?: string;
  state?: string;
  head?: { sha?: string };
}

function pullRef(p: ApiPull): PullRef | undefined {
  if (typeof p.number !== 'number') return undefined;
  return { number: p.number, title: p.title ?? '', url: p.html_url ?? '', headSha: p.head?.sha };
}

/**
 * The pull request a deploy belongs to: the event's own PR, or the PR GitHub associates with the
 * pushed commit (an open one first, else the one it was merged by).
 */
export async function findPullRequest(
  api: GitHubApi | undefined,
  repository: string | undefined,
  event: { readonly name: string; readonly payload: unknown } | undefined,
  sha: string,
  log: Logger
): Promise<PullRef | undefined> {
  const payload = (event?.payload ?? {}) as { pull_request?: ApiPull };
  if (event && /^pull_request/.test(event.name) && payload.pull_request) return pullRef(payload.pull_request);
  if (!api || !repository || !/^[0-9a-f]{40}$/.test(sha)) return undefined;
  const pulls = await attempt('find the pull request of the commit', log, async () => {
    const r = await api.request('GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls', {
      ...repoParams(repository),
      commit_sha: sha,
      per_page: 10
    });
    return Array.isArray(r.data) ? (r.data as ApiPull[]) : [];
  });
  const chosen = pulls?.find(p => p.state === 'open') ?? pulls?.[0];
  return chosen ? pullRef(chosen) : undefined;
}

interface ApiComment {
  id: number;
  body?: string;
  html_url?: string;
  user?: { type?: string } | null;
  author_association?: string;
}

/**
 * A marker comment may be edited only when deployguard (a bot token) or someone with write access
 * wrote it: anyone can comment on a public repository's pull request, and a copied marker must not
 * make deployguard overwrite a stranger's comment.
 */
function trusted(c: ApiComment): boolean {
  return c.user?.type === 'Bot' || ['OWNER', 'MEMBER', 'COLLABORATOR'].includes(c.author_association ?? '');
}

export type CommentOn =
  { readonly kind: 'pr'; readonly number: number } | { readonly kind: 'commit'; readonly sha: string };

/** How many pages of 100 comments are searched for the marker before a new comment is made. */
const MAX_PAGES = 20;

/**
 * Creates the record's comment, or edits the one an earlier deploy of this environment left
 * (found by its hidden marker), so a PR carries one record per environment, always current.
 */
export async function upsertComment(
  api: GitHubApi,
  repository: string,
  on: CommentOn,
  marker: string,
  body: string
): Promise<{ readonly action: 'created' | 'updated'; readonly url: string }> {
  const repo = repoParams(repository);
  const list =
    on.kind === 'pr'
      ? {
          route: 'GET /repos/{owner}/{repo}/issues/{issue_number}/comments',
          key: { issue_number: on.number }
        }
      : { route: 'GET /repos/{owner}/{repo}/commits/{commit_sha}/comments', key: { commit_sha: on.sha } };
  let existing: ApiComment | undefined;
  for (let page = 1; page <= MAX_PAGES && !existing; page++) {
    const r = await api.request(list.route, { ...repo, ...list.key, per_page: 100, page });
    const comments = Array.isArray(r.data) ? (r.data as ApiComment[]) : [];
    existing = comments.find(c => typeof c.body === 'string' && c.body.includes(marker) && trusted(c));
    if (comments.length < 100) break;
  }
  if (existing) {
    const route =
      on.kind === 'pr'
        ? 'PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}'
        : 'PATCH /repos/{owner}/{repo}/comments/{comment_id}';
    const r = await api.request(route, { ...repo, comment_id: existing.id, body });
    return { action: 'updated', url: (r.data as ApiComment).html_url ?? existing.html_url ?? '' };
  }
  const route =
    on.kind === 'pr'
      ? 'POST /repos/{owner}/{repo}/issues/{issue_number}/comments'
      : 'POST /repos/{owner}/{repo}/commits/{commit_sha}/comments';
  const r = await api.request(route, { ...repo, ...list.key, body });
  return { action: 'created', url: (r.data as ApiComment).html_url ?? '' };
}

/** GitHub's own limit on a comment body is 65,536 characters. */
export const COMMENT_LIMIT = 65_000;

/**
 * Cuts a record that is too long for a comment at a section boundary and says where the whole
 * one is, rather than sending a body GitHub refuses.
 */
export function fitComment(body: string, whereWhole: string): string {
  if (body.length <= COMMENT_LIMIT) return body;
  const note = `\n\n_The record is too long for a comment and was cut here; the whole record is in ${whereWhole}._\n`;
  const room = COMMENT_LIMIT - note.length;
  const cut = body.lastIndexOf('\n### ', room);
  return body.slice(0, cut > 0 ? cut : room) + note;
}

export type DeploymentState = 'in_progress' | 'success' | 'failure' | 'error';

/**
 * A GitHub deployment for the commit, for jobs that do not run in an `environment:` (GitHub
 * creates one for those itself). Returns its id for the status updates.
 */
export async function createDeployment(
  api: GitHubApi,
  repository: string,
  d: { readonly sha: string; readonly environment: string; readonly description: string }
): Promise<number | undefined> {
  const r = await api.request('POST /repos/{owner}/{repo}/deployments', {
    ...repoParams(repository),
    ref: d.sha,
    environment: d.environment,
    description: d.description.slice(0, 140),
    auto_merge: false,
    // deployguard ran its own gates; GitHub's commit status checks are not asked again.
    required_contexts: [],
    production_environment: /^prod/i.test(d.environment)
  });
  const id = (r.data as { id?: unknown }).id;
  return typeof id === 'number' ? id : undefined;
}

export async function setDeploymentStatus(
  api: GitHubApi,
  repository: string,
  id: number,
  s: {
    readonly state: DeploymentState;
    readonly environmentUrl?: string;
    readonly logUrl?: string;
    readonly description: string;
  }
): Promise<void> {
  await api.request('POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses', {
    ...repoParams(repository),
    deployment_id: id,
    state: s.state,
    description: s.description.slice(0, 140),
    ...(s.environmentUrl ? { environment_url: s.environmentUrl } : {}),
    ...(s.logUrl ? { log_url: s.logUrl } : {}),
    auto_inactive: s.state === 'success'
  });
}
