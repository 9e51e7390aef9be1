import { runGit } from '../io/git.js';
import { repoParams, type GitHubApi } from '../io/github.js';
import type { Logger } from '../io/log.js';
import { attempt } from './publish.js';
import type { Why } from './record.js';

/** The commits that go out with a deploy: from the last deployed commit to this one. */
export interface ChangeCommit {
  readonly sha: string;
  readonly subject: string;
  readonly author: string;
}

export interface Changes {
  readonly base?: string;
  readonly head: string;
  /** Newest first, at most MAX_LISTED. */
  readonly commits: readonly ChangeCommit[];
  /** All commits in the range (may be more than listed). */
  readonly total: number;
  readonly compareUrl?: string;
  /** Said instead of (or with) a list: a first deploy, a re-deploy, history that is not here. */
  readonly note?: string;
}

/** The record lists this many commits and links the compare view for the rest. */
export const MAX_LISTED = 50;
const FULL_SHA = /^[0-9a-f]{40}$/;

/**
 * The commits between the last deployed commit (from the hosts' records) and this one: from the
 * local clone when it has them, else from GitHub's compare API, else only the compare link.
 */
export async function changesSince(opts: {
  readonly repoDir: string;
  readonly base?: string;
  readonly head: string;
  readonly api?: GitHubApi;
  readonly repository?: string;
  readonly serverUrl: string;
  readonly log: Logger;
  /** False when no host was read: where the last deploy stands is then not known. */
  readonly hostsRead?: boolean;
  /** A release the hosts reported live (its record may lack the commit). */
  readonly live?: string;
}): Promise<Changes> {
  const { base, head } = opts;
  if (!base)
    return {
      head,
      commits: [],
      total: 0,
      note:
        opts.hostsRead === false
          ? 'The commits since the last deployment are not known: no host was read.'
          : opts.live
            ? `No earlier deployment's commit is recorded on the hosts (\`${opts.live}\` is live).`
            : 'First deploy: no earlier deployment is recorded on the hosts.'
    };
  const compareUrl =
    opts.repository && FULL_SHA.test(base) && FULL_SHA.test(head)
      ? `${opts.serverUrl}/${opts.repository}/compare/${base}...${head}`
      : undefined;
  // Only real commits can be the same: two unknown ones (a run outside a git checkout) say nothing.
  const unlisted = !FULL_SHA.test(head)
    ? "This deploy's commit is not known (not run from a git checkout): the changes since the last deployment are not listed."
    : base === head
      ? 'The same commit as the last deployment (a re-deploy).'
      : !FULL_SHA.test(base)
        ? "The last deployment's commit is not known (it was not deployed from a git checkout): the changes since are not listed."
        : undefined;
  if (unlisted) return { base, head, commits: [], total: 0, note: unlisted };
  const local = await fromGit(opts.repoDir, base, head);
  if (local) return { base, head, compareUrl, ...local };
  if (opts.api && opts.repository) {
    const api = opts.api;
    const repository = opts.repository;
    const remote = await attempt('list the commits since the last deploy', opts.log, () =>
      fromApi(api, repository, base, head)
    );
    if (remote) return { base, head, compareUrl, ...remote };
  }
  return {
    base,
    head,
    compareUrl,
    commits: [],
    total: 0,
    note: 'The commit list is not available here (shallow clone, no API access): see the compare link.'
  };
}

async function fromGit(
  dir: string,
  base: string,
  head: string
): Promise<{ commits: ChangeCommit[]; total: number } | undefined> {
  const range = `${base}..${head}`;
  const count = await runGit(dir, ['rev-list', '--count', range], { timeoutMs: 30_000 });
  if (count.code !== 0) return undefined;
  const log = await runGit(dir, ['log', `--max-count=${MAX_LISTED}`, '--format=%H%x1f%an%x1f%s', range], {
    timeoutMs: 30_000
  });
  if (log.code !== 0) return undefined;
  const commits = log.stdout
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map(l => {
      const [sha = '', author = '', subject = ''] = l.split('\x1f');
      return { sha, author, subject };
    });
  return { commits, total: Number(count.stdout.toString('utf8').trim()) || commits.length };
}

interface ApiCompare {
  total_commits?: number;
  commits?: {
    sha?: string;
    commit?: { message?: string; author?: { name?: string } };
    author?: { login?: string } | null;
  }[];
}

async function fromApi(
  api: GitHubApi,
  repository: string,
  base: string,
  head: string
): Promise<{ commits: ChangeCommit[]; total: number }> {
  const r = await api.request('GET /repos/{owner}/{repo}/compare/{basehead}', {
    ...repoParams(repository),
    basehead: `${base}...${head}`,
    per_page: 100
  });
  const data = r.data as ApiCompare;
  // The API lists oldest first; the record lists newest first, as `git log` does.
  const commits = (data.commits ?? [])
    .map(c => ({
      sha: c.sha ?? '',
      subject: (c.commit?.message ?? '').split('\n')[0]!,
      author: c.author?.login ? `@${c.author.login}` : (c.commit?.author?.name ?? '')
    }))
    .reverse();
  return { commits: commits.slice(0, MAX_LISTED), total: data.total_commits ?? commits.length };
}

/**
 * Why this deploy happens: the `reason` input, else the pull request's title, else the pushed
 * commit's message (from the event, or from the local clone).
 */
export async function deployReason(opts: {
  readonly reason?: string;
  readonly pr?: { readonly title: string };
  readonly event?: { readonly payload: unknown };
  readonly repoDir: string;
  readonly commit: string;
}): Promise<Why | undefined> {
  if (opts.reason) return { text: opts.reason, source: 'reason' };
  if (opts.pr?.title) return { text: opts.pr.title, source: 'pull-request' };
  const head = (opts.event?.payload as { head_commit?: { id?: string; message?: unknown } } | undefined)
    ?.head_commit;
  if (typeof head?.message === 'string' && head.message.trim() && (!head.id || head.id === opts.commit))
    return { text: head.message.trim(), source: 'commit' };
  if (!FULL_SHA.test(opts.commit)) return undefined;
  const r = await runGit(opts.repoDir, ['log', '-1', '--format=%B', opts.commit], { timeoutMs: 30_000 });
  const text = r.code === 0 ? r.stdout.toString('utf8').trim() : '';
  return text ? { text, source: 'commit' } : undefined;
}
