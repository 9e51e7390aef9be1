/**
 * The fake GitHub API itself, driven with plain fetch: tests that rely on it can only be as right
 * as its pagination, error bodies and request log.
 */
import { startFakeGitHub, type FakeGitHub } from '../harness/github-api.js';

const AUTH = { authorization: 'token test-token' };

let gh: FakeGitHub;

beforeEach(async () => {
  gh = await startFakeGitHub();
});

afterEach(async () => {
  await gh.close();
});

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = AUTH
): Promise<{ status: number; json: unknown; link: string | null }> {
  const res = await fetch(`${gh.url}${path}`, {
    method,
    headers: { ...headers, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  });
  return { status: res.status, json: await res.json(), link: res.headers.get('link') };
}

test('issue comments paginate with an absolute rel="next" link until the last page', async () => {
  for (let i = 0; i < 5; i++) gh.seedIssueComment(7, `c${i}`, { login: 'alice', type: 'User' }, 'MEMBER');

  const bodies: string[] = [];
  let next: string | null = `${gh.url}/repos/o/r/issues/7/comments?per_page=2`;
  while (next) {
    const res = await fetch(next, { headers: AUTH });
    expect(res.status).toBe(200);
    bodies.push(...((await res.json()) as Array<{ body: string }>).map(c => c.body));
    next = /<([^>]+)>; rel="next"/.exec(res.headers.get('link') ?? '')?.[1] ?? null;
    if (next) expect(next.startsWith(`${gh.url}/repos/o/r/issues/7/comments?`)).toBe(true);
  }
  expect(bodies).toEqual(['c0', 'c1', 'c2', 'c3', 'c4']);
  expect(gh.requests.map(r => r.path)).toEqual([
    '/repos/o/r/issues/7/comments?per_page=2',
    '/repos/o/r/issues/7/comments?per_page=2&page=2',
    '/repos/o/r/issues/7/comments?per_page=2&page=3'
  ]);

  // One page: no link header at all.
  expect((await call('GET', '/repos/o/r/issues/7/comments')).link).toBeNull();
});

test('a comment is created as the bot, then patched; unknown ids are 404', async () => {
  const created = await call('POST', '/repos/o/r/issues/3/comments', { body: 'hello' });
  expect(created.status).toBe(201);
  expect(created.json).toMatchObject({
    id: 1000,
    body: 'hello',
    user: { login: 'github-actions[bot]', type: 'Bot' },
    author_association: 'NONE',
    html_url: 'https://github.test/o/r/pull/3#issuecomment-1000'
  });

  const patched = await call('PATCH', '/repos/o/r/issues/comments/1000', { body: 'edited' });
  expect(patched.status).toBe(200);
  expect(patched.json).toMatchObject({ id: 1000, body: 'edited' });
  expect(gh.issueComments.get(3)?.map(c => c.body)).toEqual(['edited']);
  expect(gh.requests[1]).toMatchObject({ method: 'PATCH', json: { body: 'edited' } });

  expect((await call('PATCH', '/repos/o/r/issues/comments/999', { body: 'x' })).status).toBe(404);
});

test("deny() answers 403 with GitHub's message and still records the request", async () => {
  gh.deny('POST /repos/{owner}/{repo}/issues/{n}/comments');

  const res = await call('POST', '/repos/o/r/issues/5/comments', { body: 'nope' });
  expect(res).toMatchObject({ status: 403, json: { message: 'Resource not accessible by integration' } });
  expect(gh.issueComments.get(5)).toBeUndefined();
  expect(gh.requests).toHaveLength(1);
  expect(gh.requests[0]).toMatchObject({ method: 'POST', body: '{"body":"nope"}' });
  // Only the denied method is refused.
  expect((await call('GET', '/repos/o/r/issues/5/comments')).status).toBe(200);
});

test('no authorization header: 401 Bad credentials, recorded', async () => {
  const res = await call('GET', '/repos/o/r/commits/abc/pulls', undefined, {});
  expect(res).toEqual({ status: 401, json: { message: 'Bad credentials' }, link: null });
  expect(gh.requests).toHaveLength(1);
  expect(gh.requests[0]?.headers.authorization).toBeUndefined();
});

test('compare answers from the map and 404s for unknown ranges or another repository', async () => {
  gh.compare.set('v1...feature/x', {
    commits: [{ sha: 'a1', message: 'fix', authorName: 'Alice', login: 'alice' }]
  });

  const found = await call('GET', `/repos/o/r/compare/${encodeURIComponent('v1...feature/x')}`);
  expect(found.status).toBe(200);
  expect(found.json).toMatchObject({
    status: 'ahead',
    ahead_by: 1,
    total_commits: 1,
    commits: [
      { sha: 'a1', commit: { message: 'fix', author: { name: 'Alice' } }, author: { login: 'alice' } }
    ]
  });

  expect(await call('GET', '/repos/o/r/compare/v1...v2')).toMatchObject({
    status: 404,
    json: { message: 'Not Found' }
  });
  expect((await call('GET', '/repos/other/r/compare/v1...feature%2Fx')).status).toBe(404);
});

test('bodies over 1 MiB are refused with 413', async () => {
  const res = await call('POST', '/repos/o/r/issues/1/comments', { body: 'x'.repeat(1024 * 1024) });
  expect(res.status).toBe(413);
  expect(gh.requests[0]?.body.length).toBeGreaterThan(1024 * 1024);
});
