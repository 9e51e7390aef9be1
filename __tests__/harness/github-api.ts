/**
 * A stand-in for api.github.com: an HTTP server on 127.0.0.1 that answers the part of GitHub's
 * REST API deployguard uses (PR lookup for a commit, issue and commit comments, deployments and
 * their statuses, compare), keeps its state in memory, and records every request it receives.
 *
 * Integration tests point GITHUB_API_URL at `url`, seed state through the exported maps, and then
 * assert on both the state and `requests`. Responses follow GitHub's shapes and status codes for
 * the fields deployguard reads; everything else GitHub returns is left out on purpose, so a test
 * that starts depending on a missing field fails loudly here instead of passing against a fake
 * that guessed.
 *
 * Only node built-ins are imported, like hosts.ts, so any test (or a script) can load it.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request exactly as the server received it. */
export interface RecordedRequest {
  method: string;
  /** Pathname plus query string, as sent (not decoded). */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The raw body as UTF-8 text ('' when there was none), even when the request was refused. */
  body: string;
  /** The body parsed as JSON, when it was non-empty valid JSON. */
  json?: unknown;
}

/** An issue/PR comment or a commit comment, as stored and as returned by the API. */
export interface FakeComment {
  id: number;
  body: string;
  user: { login: string; type: 'User' | 'Bot' };
  author_association: string;
  html_url: string;
  created_at: string;
  updated_at: string;
}

/** A pull request as `GET /repos/{owner}/{repo}/commits/{sha}/pulls` lists it. */
export interface FakePull {
  number: number;
  title: string;
  html_url: string;
  state: string;
  body?: string;
}

/** A deployment created through the API, with every status posted to it (oldest first). */
export interface FakeDeployment {
  id: number;
  ref: string;
  environment: string;
  description?: string;
  statuses: Array<Record<string, unknown>>;
  payload: Record<string, unknown>;
}

/** One commit of a compare result. `login` is the GitHub account, absent when none matches the author. */
export interface FakeCompareCommit {
  sha: string;
  message: string;
  authorName: string;
  login?: string;
}

export interface FakeGitHub {
  /** Base URL for GITHUB_API_URL, e.g. 'http://127.0.0.1:43121' (no trailing slash). */
  url: string;
  /** Every request in arrival order, recorded before it was answered (401, 403, 404 and 413 included). */
  requests: RecordedRequest[];
  /** Issue/PR comments by issue or PR number, oldest first. */
  issueComments: Map<number, FakeComment[]>;
  /** Commit comments by commit sha, oldest first. */
  commitComments: Map<string, FakeComment[]>;
  /** Pull requests associated with a commit, by sha. A sha not in the map has none. */
  pullsForCommit: Map<string, FakePull[]>;
  /** Deployments in creation order. */
  deployments: FakeDeployment[];
  /** Compare results keyed 'base...head' (the refs exactly as in the request path, URL-decoded). */
  compare: Map<string, { commits: FakeCompareCommit[] }>;
  /**
   * Refuse matching requests with `status` (default 403) and GitHub's body for it, e.g.
   * {"message":"Resource not accessible by integration"} for 403. A string is a prefix of
   * 'METHOD /path?query' (or of '/path?query' when it starts with '/'), in which '{name}' stands
   * for one path segment: 'POST /repos/{owner}/{repo}/issues/{n}/comments'. A RegExp is tested
   * against 'METHOD /path?query'. When several rules match, the one added last wins.
   */
  deny(methodAndPathPrefix: string | RegExp, status?: number): void;
  /** Seed a comment written by someone else (for tests of which comments may be edited). */
  seedIssueComment(
    issue: number,
    body: string,
    user: { login: string; type: 'User' | 'Bot' },
    association: string
  ): FakeComment;
  /** Stop listening and drop open connections. Idempotent. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Limits and fixed values
// ---------------------------------------------------------------------------------------------

/** Requests with a larger body get 413 (GitHub's own limit is higher; nothing deployguard sends comes close). */
const MAX_BODY_BYTES = 1024 * 1024;
/** GitHub rejects longer comment bodies with 422; deployguard must trim its reports to fit. */
const MAX_COMMENT_CHARS = 65536;
const DEFAULT_PER_PAGE = 30;
const MAX_PER_PAGE = 100;
const FIRST_COMMENT_ID = 1000;
/** html_url values point here, so nothing a test prints looks like a link to a real repository. */
const WEB_BASE = 'https://github.test';
const DEPLOYMENT_STATES = new Set([
  'error',
  'failure',
  'inactive',
  'in_progress',
  'queued',
  'pending',
  'success'
]);

/** The message GitHub sends with each error status the fake produces. */
function errorMessage(status: number): string {
  switch (status) {
    case 400:
      return 'Problems parsing JSON';
    case 401:
      return 'Bad credentials';
    case 403:
      return 'Resource not accessible by integration';
    case 404:
      return 'Not Found';
    case 409:
      return 'Conflict';
    case 413:
      return 'Payload Too Large';
    case 422:
      return 'Validation Failed';
    case 429:
      return 'API rate limit exceeded';
    default:
      return status >= 500 ? 'Server Error' : (http.STATUS_CODES[status] ?? 'Error');
  }
}

/** GitHub's timestamps have whole seconds: '2024-05-01T12:00:00Z'. */
function timestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// ---------------------------------------------------------------------------------------------
// Request plumbing
// ---------------------------------------------------------------------------------------------

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly extra: Record<string, unknown> = {}
  ) {
    super(errorMessage(status));
  }
}

function validationFailed(resource: string, field: string, message: string): HttpError {
  return new HttpError(422, { errors: [{ resource, code: 'custom', field, message }] });
}

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** Read the whole body: it is recorded in full even when it is refused for its size. */
function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (b: Buffer) => chunks.push(b));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Turn a deny() string into a pattern: literal text, '{name}' as one path segment, anchored at the start. */
function denyPattern(spec: string | RegExp): RegExp {
  if (spec instanceof RegExp) return spec;
  const source = spec
    .split(/(\{[^}/]*\})/)
    .map(part => (/^\{[^}/]*\}$/.test(part) ? '[^/?]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  // A method-less prefix skips the method and the space after it.
  return new RegExp(spec.startsWith('/') ? `^[A-Z]+ ${source}` : `^${source}`);
}

/** page and per_page as GitHub reads them: bad or missing values fall back to the defaults. */
function pageParams(query: URLSearchParams): { page: number; perPage: number } {
  const int = (v: string | null): number | null => (v !== null && /^\d+$/.test(v) ? Number(v) : null);
  const perPage = Math.min(MAX_PER_PAGE, Math.max(1, int(query.get('per_page')) ?? DEFAULT_PER_PAGE));
  const page = Math.max(1, int(query.get('page')) ?? 1);
  return { page, perPage };
}

/**
 * One page of `items`, with a Link header in GitHub's format when there is more than one page:
 * `<URL>; rel="prev", <URL>; rel="next", <URL>; rel="last", <URL>; rel="first"` (each only where it
 * applies). The URLs are absolute, on this server, and keep the other query parameters.
 */
function paginate<T>(items: readonly T[], baseUrl: string, pathname: string, query: URLSearchParams): Reply {
  const { page, perPage } = pageParams(query);
  const lastPage = Math.max(1, Math.ceil(items.length / perPage));
  const pageUrl = (n: number): string => {
    const q = new URLSearchParams(query);
    q.set('page', String(n));
    return `${baseUrl}${pathname}?${q.toString()}`;
  };
  const links: string[] = [];
  if (page > 1) links.push(`<${pageUrl(Math.min(page - 1, lastPage))}>; rel="prev"`);
  if (page < lastPage) {
    links.push(`<${pageUrl(page + 1)}>; rel="next"`, `<${pageUrl(lastPage)}>; rel="last"`);
  }
  if (page > 1) links.push(`<${pageUrl(1)}>; rel="first"`);
  return {
    status: 200,
    body: items.slice((page - 1) * perPage, page * perPage),
    headers: links.length > 0 ? { link: links.join(', ') } : {}
  };
}

/** The `body` field of a comment create/update, validated the way GitHub does. */
function commentBody(json: unknown, resource: string): string {
  const body = (json as { body?: unknown } | null)?.body;
  if (typeof body !== 'string' || body.length === 0) {
    throw validationFailed(resource, 'body', 'body is missing');
  }
  // GitHub counts characters, not UTF-16 units or bytes.
  if ([...body].length > MAX_COMMENT_CHARS) {
    throw validationFailed(resource, 'body', `Body is too long (maximum is ${MAX_COMMENT_CHARS} characters)`);
  }
  return body;
}

/** A URL-decoded path segment; a malformed escape is taken literally rather than failing the request. */
function seg(s: string | undefined): string {
  try {
    return decodeURIComponent(s ?? '');
  } catch {
    return s ?? '';
  }
}

function asObject(json: unknown): Record<string, unknown> {
  return json !== null && typeof json === 'object' && !Array.isArray(json)
    ? (json as Record<string, unknown>)
    : {};
}

function optionalString(o: Record<string, unknown>, key: string): string | undefined {
  const v = o[key];
  return typeof v === 'string' ? v : undefined;
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/**
 * Start a fake GitHub API for repository `owner/repo` (default 'o/r'). Requests for any other
 * repository get 404, as they would with a token scoped to one repository. Comments created
 * through the API belong to `botLogin` (default 'github-actions[bot]', type 'Bot', association
 * 'NONE', which is what GitHub reports for the Actions bot).
 */
export async function startFakeGitHub(
  opts: { owner?: string; repo?: string; botLogin?: string } = {}
): Promise<FakeGitHub> {
  const owner = opts.owner ?? 'o';
  const repo = opts.repo ?? 'r';
  const bot = { login: opts.botLogin ?? 'github-actions[bot]', type: 'Bot' as const };
  const denyRules: Array<{ pattern: RegExp; status: number }> = [];
  let nextCommentId = FIRST_COMMENT_ID;
  let nextDeploymentId = 1;
  let nextStatusId = 1;
  let baseUrl = '';

  const newComment = (
    body: string,
    user: FakeComment['user'],
    association: string,
    htmlUrl: (id: number) => string
  ): FakeComment => {
    const id = nextCommentId++;
    const now = timestamp();
    return {
      id,
      body,
      user: { ...user },
      author_association: association,
      html_url: htmlUrl(id),
      created_at: now,
      updated_at: now
    };
  };
  const issueCommentUrl = (issue: number) => (id: number) =>
    `${WEB_BASE}/${owner}/${repo}/pull/${issue}#issuecomment-${id}`;
  const commitCommentUrl = (sha: string) => (id: number) =>
    `${WEB_BASE}/${owner}/${repo}/commit/${sha}#commitcomment-${id}`;

  const fake: FakeGitHub = {
    url: '',
    requests: [],
    issueComments: new Map(),
    commitComments: new Map(),
    pullsForCommit: new Map(),
    deployments: [],
    compare: new Map(),
    deny(spec, status = 403) {
      denyRules.push({ pattern: denyPattern(spec), status });
    },
    seedIssueComment(issue, body, user, association) {
      const c = newComment(body, user, association, issueCommentUrl(issue));
      listFor(fake.issueComments, issue).push(c);
      return c;
    },
    close() {
      closing ??= new Promise<void>(resolve => {
        server.close(() => resolve());
        // fetch keeps connections alive; without this, close() waits for them to time out.
        server.closeAllConnections();
      });
      return closing;
    }
  };
  let closing: Promise<void> | undefined;

  function listFor<K>(map: Map<K, FakeComment[]>, key: K): FakeComment[] {
    let list = map.get(key);
    if (!list) {
      list = [];
      map.set(key, list);
    }
    return list;
  }

  function findComment(map: Map<unknown, FakeComment[]>, id: number): FakeComment | undefined {
    for (const list of map.values()) {
      const c = list.find(x => x.id === id);
      if (c) return c;
    }
    return undefined;
  }

  function updateComment(c: FakeComment | undefined, json: unknown, resource: string): Reply {
    if (!c) throw new HttpError(404);
    c.body = commentBody(json, resource);
    c.updated_at = timestamp();
    return { status: 200, body: c };
  }

  /** Answer a request for this repository; `rest` is the path after /repos/{owner}/{repo}. */
  function route(
    method: string,
    rest: string,
    query: URLSearchParams,
    pathname: string,
    json: unknown
  ): Reply {
    let m: RegExpExecArray | null;

    if ((m = /^\/commits\/([^/]+)\/pulls$/.exec(rest)) && method === 'GET') {
      return { status: 200, body: fake.pullsForCommit.get(seg(m[1])) ?? [] };
    }

    if ((m = /^\/issues\/(\d+)\/comments$/.exec(rest))) {
      const issue = Number(m[1]);
      if (method === 'GET') return paginate(fake.issueComments.get(issue) ?? [], baseUrl, pathname, query);
      if (method === 'POST') {
        const c = newComment(commentBody(json, 'IssueComment'), bot, 'NONE', issueCommentUrl(issue));
        listFor(fake.issueComments, issue).push(c);
        return { status: 201, body: c };
      }
    }

    if ((m = /^\/issues\/comments\/(\d+)$/.exec(rest)) && method === 'PATCH') {
      return updateComment(findComment(fake.issueComments, Number(m[1])), json, 'IssueComment');
    }

    if ((m = /^\/commits\/([^/]+)\/comments$/.exec(rest))) {
      const sha = seg(m[1]);
      if (method === 'GET') return paginate(fake.commitComments.get(sha) ?? [], baseUrl, pathname, query);
      if (method === 'POST') {
        const c = newComment(commentBody(json, 'CommitComment'), bot, 'NONE', commitCommentUrl(sha));
        listFor(fake.commitComments, sha).push(c);
        return { status: 201, body: c };
      }
    }

    if ((m = /^\/comments\/(\d+)$/.exec(rest)) && method === 'PATCH') {
      return updateComment(findComment(fake.commitComments, Number(m[1])), json, 'CommitComment');
    }

    if (rest === '/deployments' && method === 'POST') {
      const o = asObject(json);
      const ref = optionalString(o, 'ref');
      if (!ref) throw validationFailed('Deployment', 'ref', 'ref is missing');
      // GitHub accepts the payload as an object or as a JSON string.
      let payload = o.payload;
      if (typeof payload === 'string') {
        try {
          payload = JSON.parse(payload) as unknown;
        } catch {
          throw validationFailed('Deployment', 'payload', 'payload is not valid JSON');
        }
      }
      const d: FakeDeployment = {
        id: nextDeploymentId++,
        ref,
        environment: optionalString(o, 'environment') ?? 'production',
        statuses: [],
        payload: asObject(payload)
      };
      const description = optionalString(o, 'description');
      if (description !== undefined) d.description = description;
      fake.deployments.push(d);
      const now = timestamp();
      return {
        status: 201,
        body: {
          id: d.id,
          ref: d.ref,
          sha: ref,
          task: typeof o.task === 'string' ? o.task : 'deploy',
          environment: d.environment,
          original_environment: d.environment,
          description: d.description ?? null,
          payload: d.payload,
          transient_environment: o.transient_environment === true,
          production_environment: o.production_environment ?? d.environment === 'production',
          creator: { login: bot.login, type: bot.type },
          created_at: now,
          updated_at: now,
          url: `${baseUrl}/repos/${owner}/${repo}/deployments/${d.id}`,
          statuses_url: `${baseUrl}/repos/${owner}/${repo}/deployments/${d.id}/statuses`
        }
      };
    }

    if ((m = /^\/deployments\/(\d+)\/statuses$/.exec(rest)) && method === 'POST') {
      const d = fake.deployments.find(x => x.id === Number(m?.[1]));
      if (!d) throw new HttpError(404);
      const o = asObject(json);
      const state = optionalString(o, 'state');
      if (!state || !DEPLOYMENT_STATES.has(state)) {
        throw validationFailed('DeploymentStatus', 'state', `state is not included in the list`);
      }
      const now = timestamp();
      const status: Record<string, unknown> = {
        id: nextStatusId++,
        state,
        description: optionalString(o, 'description') ?? '',
        environment: optionalString(o, 'environment') ?? d.environment,
        environment_url: optionalString(o, 'environment_url') ?? '',
        log_url: optionalString(o, 'log_url') ?? '',
        target_url: optionalString(o, 'log_url') ?? optionalString(o, 'target_url') ?? '',
        auto_inactive: o.auto_inactive ?? true,
        creator: { login: bot.login, type: bot.type },
        created_at: now,
        updated_at: now,
        deployment_url: `${baseUrl}/repos/${owner}/${repo}/deployments/${d.id}`
      };
      d.statuses.push(status);
      return { status: 201, body: status };
    }

    // The refs may contain '/', which clients send percent-encoded inside the one segment.
    if ((m = /^\/compare\/([^/]+)$/.exec(rest)) && method === 'GET') {
      const key = seg(m[1]);
      const found = fake.compare.get(key);
      if (!found) throw new HttpError(404);
      const date = timestamp();
      return {
        status: 200,
        body: {
          status: found.commits.length > 0 ? 'ahead' : 'identical',
          ahead_by: found.commits.length,
          behind_by: 0,
          total_commits: found.commits.length,
          html_url: `${WEB_BASE}/${owner}/${repo}/compare/${key}`,
          commits: found.commits.map(c => ({
            sha: c.sha,
            commit: { message: c.message, author: { name: c.authorName, date } },
            author: c.login !== undefined ? { login: c.login } : null,
            html_url: `${WEB_BASE}/${owner}/${repo}/commit/${c.sha}`
          }))
        }
      };
    }

    throw new HttpError(404);
  }

  async function handle(req: http.IncomingMessage): Promise<Reply> {
    const method = (req.method ?? 'GET').toUpperCase();
    const rawPath = req.url ?? '/';
    const raw = await readBody(req);
    const text = raw.toString('utf8');
    let json: unknown;
    let jsonOk = true;
    if (text.length > 0) {
      try {
        json = JSON.parse(text) as unknown;
      } catch {
        jsonOk = false;
      }
    }
    const record: RecordedRequest = { method, path: rawPath, headers: { ...req.headers }, body: text };
    if (json !== undefined) record.json = json;
    // Recorded before anything can refuse it, so tests see refused requests too.
    fake.requests.push(record);

    if (!req.headers.authorization) throw new HttpError(401);
    if (raw.length > MAX_BODY_BYTES) throw new HttpError(413);
    const line = `${method} ${rawPath}`;
    const rule = [...denyRules].reverse().find(r => {
      r.pattern.lastIndex = 0; // a /g or /y RegExp keeps state between test() calls
      return r.pattern.test(line);
    });
    if (rule) throw new HttpError(rule.status);

    const url = new URL(rawPath, 'http://fake.invalid');
    const m = /^\/repos\/([^/]+)\/([^/]+)(\/.*)$/.exec(url.pathname);
    // GitHub matches owner and repository names case-insensitively.
    if (
      !m ||
      seg(m[1]).toLowerCase() !== owner.toLowerCase() ||
      seg(m[2]).toLowerCase() !== repo.toLowerCase()
    ) {
      throw new HttpError(404);
    }
    if (!jsonOk) throw new HttpError(400);
    return route(method, m[3] as string, url.searchParams, url.pathname, json);
  }

  const server = http.createServer((req, res) => {
    handle(req)
      .catch((e: unknown): Reply => {
        if (e instanceof HttpError) return { status: e.status, body: { message: e.message, ...e.extra } };
        return { status: 500, body: { message: `fake GitHub: ${(e as Error).message}` } };
      })
      .then(reply => {
        res.writeHead(reply.status, { 'content-type': 'application/json; charset=utf-8', ...reply.headers });
        res.end(JSON.stringify(reply.body));
      })
      .catch(() => res.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://127.0.0.1:${port}`;
  fake.url = baseUrl;
  return fake;
}
