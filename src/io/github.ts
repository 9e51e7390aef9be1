/**
 * The one door to GitHub's REST API. Everything deployguard does there (find the pull request of
 * a commit, post or edit the record, create a deployment, compare commits) goes through
 * `request`, so tests point it at a local server that speaks the same endpoints.
 */
export interface GitHubApi {
  request(route: string, params?: Record<string, unknown>): Promise<GitHubResponse>;
}

export interface GitHubResponse {
  readonly status: number;
  readonly data: unknown;
  readonly headers: Readonly<Record<string, string | number | undefined>>;
}

/** A failed API call: the HTTP status (0 when nothing answered) and GitHub's message. */
export class GitHubApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly route: string
  ) {
    super(message);
    this.name = 'GitHubApiError';
  }
}

/** How long one API call may take: the record must never hold up a finished deploy for long. */
const REQUEST_TIMEOUT_MS = 15_000;

/** An API client for `apiUrl` (GITHUB_API_URL) authenticated with `token`. */
export function githubApi(token: string, apiUrl: string): GitHubApi {
  // Loaded on the first call: the client and its HTTP stack take a quarter of a second to load,
  // which a deploy that never talks to GitHub (the CLI, `comment: none`) should not pay.
  let client: Promise<ReturnType<typeof import('@actions/github').getOctokit>> | undefined;
  const octokit = () =>
    (client ??= import('@actions/github').then(m =>
      m.getOctokit(token, { baseUrl: apiUrl, userAgent: 'deployguard' })
    ));
  return {
    async request(route, params = {}) {
      try {
        const r = await (
          await octokit()
        ).request(route, {
          ...params,
          request: { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }
        });
        return { status: r.status, data: r.data as unknown, headers: r.headers };
      } catch (err) {
        const e = err as { status?: number; message?: string; response?: { data?: { message?: string } } };
        const message = e.response?.data?.message ?? e.message ?? String(err);
        throw new GitHubApiError(message.split(' - https://')[0]!, e.status ?? 0, route);
      }
    }
  };
}

/** `owner/name` split for the API's path parameters. */
export function repoParams(repository: string): { owner: string; repo: string } {
  const [owner = '', repo = ''] = repository.split('/');
  return { owner, repo };
}
