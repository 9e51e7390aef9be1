/**
 * The record on GitHub, against a local server that speaks GitHub's REST endpoints and records
 * every request (no network reaches GitHub from here): the PR lookup, one comment per environment
 * updated in place, comments deployguard must not touch, missing permissions, deployments, and
 * the commit list from the compare API.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { githubApi } from '../../src/io/github.js';
import { memoryLogger } from '../../src/io/log.js';
import type { DeployResult } from '../../src/execute/result.js';
import { deliverRecord, finishGithubDeployment, startGithubDeployment } from '../../src/report/deliver.js';
import { findPullRequest, recordMarker } from '../../src/report/publish.js';
import { startFakeGitHub, type FakeGitHub } from '../harness/github-api.js';
import { BASE_INPUTS, settingsFrom } from '../helpers/settings.js';

const SHA = '1'.repeat(40);
const PREV = '2'.repeat(40);
const TOKEN = 'ghs_fakeTokenForTheLocalApi0123456789';

let gh: FakeGitHub;
let work: string;

beforeEach(async () => {
  gh = await startFakeGitHub({ owner: 'acme', repo: 'shop' });
  work = await mkdtemp(join(tmpdir(), 'dg-gh-'));
});
afterEach(async () => {
  await gh.close();
  await rm(work, { recursive: true, force: true });
});

function settings(inputs: Record<string, string> = {}) {
  return settingsFrom({ ...BASE_INPUTS, 'github-token': TOKEN, ...inputs }, undefined, {
    GITHUB_REPOSITORY: 'acme/shop',
    GITHUB_SHA: SHA,
    GITHUB_REF: 'refs/heads/main',
    GITHUB_RUN_ID: '77',
    GITHUB_ACTOR: 'octocat',
    GITHUB_API_URL: gh.url
  });
}

function result(status: DeployResult['status'], release = 'r2'): DeployResult {
  return {
    status,
    releaseId: release,
    previousRelease: 'r1',
    rolledBack: status === 'rolled-back',
    hosts: [
      {
        name: 'web-1',
        outcome: status === 'deployed' ? 'deployed' : 'rolled-back',
        previousRelease: 'r1',
        steps: [],
        checks: [],
        rollbackChecks: [],
        previousDeploy: {
          release: 'r1',
          commit: PREV,
          runUrl: 'https://github.com/acme/shop/actions/runs/70',
          time: '2026-11-25T10:00:00.000Z'
        }
      }
    ],
    preChecks: [],
    startedAt: new Date('2026-11-26T12:00:00Z'),
    finishedAt: new Date('2026-11-26T12:00:30Z'),
    phases: [],
    commit: SHA,
    reused: false
  };
}

async function deliver(
  s: ReturnType<typeof settings>,
  r: DeployResult,
  pr?: { number: number; title: string; url: string }
) {
  const log = memoryLogger();
  const api = githubApi(TOKEN, gh.url);
  const out = await deliverRecord({
    settings: s,
    result: r,
    api,
    pr,
    workspace: work,
    outDir: work,
    log,
    redact: t => t
  });
  return { out, log: log.lines };
}

const writes = () => gh.requests.filter(r => r.method !== 'GET');

describe('the record as a comment', () => {
  test('a pushed commit that belongs to a PR is found through the API, and the PR gets the comment', async () => {
    gh.pullsForCommit.set(SHA, [
      {
        number: 12,
        title: 'Faster checkout',
        html_url: 'https://github.test/acme/shop/pull/12',
        state: 'open'
      }
    ]);
    const log = memoryLogger();
    const pr = await findPullRequest(
      githubApi(TOKEN, gh.url),
      'acme/shop',
      { name: 'push', payload: {} },
      SHA,
      log
    );
    expect(pr).toMatchObject({ number: 12, title: 'Faster checkout' });
    expect(gh.requests.map(r => `${r.method} ${r.path.split('?')[0]}`)).toEqual([
      `GET /repos/acme/shop/commits/${SHA}/pulls`
    ]);
    expect(gh.requests[0]!.headers.authorization).toBe(`token ${TOKEN}`);
    const { out } = await deliver(settings(), result('deployed'), pr);
    expect(out.comments).toEqual([expect.stringContaining('/pull/12#issuecomment-')]);
    const body = gh.issueComments.get(12)![0]!.body;
    expect(body.startsWith(recordMarker('production'))).toBe(true);
    expect(body).toContain('## ✅ Deployed: production `r2`');
    expect(body).toContain('Pull request [#12](https://github.test/acme/shop/pull/12): Faster checkout');
  });

  test('a pull_request event uses its own PR: no lookup request', async () => {
    const pr = await findPullRequest(
      githubApi(TOKEN, gh.url),
      'acme/shop',
      {
        name: 'pull_request',
        payload: { pull_request: { number: 3, title: 'T', html_url: 'u', head: { sha: PREV } } }
      },
      SHA,
      memoryLogger()
    );
    expect(pr).toEqual({ number: 3, title: 'T', url: 'u', headSha: PREV });
    expect(gh.requests).toHaveLength(0);
  });

  test('a second deploy edits the same comment instead of adding one; another environment gets its own', async () => {
    const pr = { number: 12, title: 'T', url: 'u' };
    await deliver(settings(), result('deployed', 'r2'), pr);
    await deliver(settings(), result('rolled-back', 'r3'), pr);
    const comments = gh.issueComments.get(12)!;
    expect(comments).toHaveLength(1);
    expect(comments[0]!.body).toContain('`r3`');
    expect(comments[0]!.body).not.toContain('`r2`');
    expect(writes().map(r => `${r.method} ${r.path}`)).toEqual([
      'POST /repos/acme/shop/issues/12/comments',
      `PATCH /repos/acme/shop/issues/comments/${comments[0]!.id}`
    ]);
    await deliver(settings({ environment: 'staging' }), result('deployed', 'r4'), pr);
    expect(gh.issueComments.get(12)).toHaveLength(2);
    expect(gh.issueComments.get(12)![1]!.body.startsWith(recordMarker('staging'))).toBe(true);
  });

  test("a stranger's comment carrying the marker is never edited; a collaborator's is", async () => {
    const marker = recordMarker('production');
    const stranger = gh.seedIssueComment(
      12,
      `${marker}\nfake record`,
      { login: 'mallory', type: 'User' },
      'NONE'
    );
    await deliver(settings(), result('deployed'), { number: 12, title: 'T', url: 'u' });
    expect(gh.issueComments.get(12)!.find(c => c.id === stranger.id)!.body).toBe(`${marker}\nfake record`);
    expect(gh.issueComments.get(12)).toHaveLength(2);

    const other = 13;
    const mine = gh.seedIssueComment(
      other,
      `${marker}\nold record`,
      { login: 'alice', type: 'User' },
      'COLLABORATOR'
    );
    await deliver(settings(), result('deployed'), { number: other, title: 'T', url: 'u' });
    expect(gh.issueComments.get(other)).toHaveLength(1);
    expect(gh.issueComments.get(other)![0]!.id).toBe(mine.id);
    expect(gh.issueComments.get(other)![0]!.body).toContain('`r2`');
  });

  test('the marker comment is found past the first page of comments', async () => {
    for (let i = 0; i < 150; i++)
      gh.seedIssueComment(12, `chatter ${i}`, { login: 'bob', type: 'User' }, 'MEMBER');
    await deliver(settings(), result('deployed', 'r2'), { number: 12, title: 'T', url: 'u' });
    gh.requests = [];
    await deliver(settings(), result('deployed', 'r3'), { number: 12, title: 'T', url: 'u' });
    expect(gh.issueComments.get(12)).toHaveLength(151);
    expect(
      gh.requests
        .filter(r => r.method === 'GET' && r.path.includes('/comments'))
        .map(r => new URL(r.path, gh.url).searchParams.get('page'))
    ).toEqual(['1', '2']);
    expect(writes()).toHaveLength(1);
    expect(writes()[0]!.method).toBe('PATCH');
  });

  test('without a PR the commit gets the comment, updated in place', async () => {
    await deliver(settings(), result('deployed', 'r2'));
    await deliver(settings(), result('deployed', 'r3'));
    expect(gh.commitComments.get(SHA)).toHaveLength(1);
    expect(writes().map(r => `${r.method} ${r.path}`)).toEqual([
      `POST /repos/acme/shop/commits/${SHA}/comments`,
      `PATCH /repos/acme/shop/comments/${gh.commitComments.get(SHA)![0]!.id}`
    ]);
  });

  test('comment: both posts on the PR and the commit; none posts nothing but still writes the file', async () => {
    await deliver(settings({ comment: 'both' }), result('deployed'), { number: 12, title: 'T', url: 'u' });
    expect(gh.issueComments.get(12)).toHaveLength(1);
    expect(gh.commitComments.get(SHA)).toHaveLength(1);
    gh.requests = [];
    const { out } = await deliver(settings({ comment: 'none' }), result('deployed'), {
      number: 12,
      title: 'T',
      url: 'u'
    });
    expect(writes()).toHaveLength(0);
    expect(readFileSync(out.path, 'utf8')).toBe(out.markdown);
  });

  test('a missing permission is a warning naming it, and the deploy result is untouched', async () => {
    gh.deny('POST /repos/acme/shop/issues/');
    const { out, log } = await deliver(settings(), result('deployed'), { number: 12, title: 'T', url: 'u' });
    expect(out.comments).toEqual([]);
    expect(log.join('\n')).toMatch(
      /warning: deployguard could not comment on the pull request: GitHub answered 403 \(Resource not accessible by integration\)\. Add `pull-requests: write` to the job's `permissions:`/
    );
    gh.deny('POST /repos/acme/shop/commits/');
    const commit = await deliver(settings({ comment: 'commit' }), result('deployed'));
    expect(commit.log.join('\n')).toMatch(
      /could not comment on the commit: GitHub answered 403.*`contents: write`/
    );
    gh.deny('GET /repos/acme/shop/commits/');
    const lookup = memoryLogger();
    expect(
      await findPullRequest(githubApi(TOKEN, gh.url), 'acme/shop', { name: 'push', payload: {} }, SHA, lookup)
    ).toBeUndefined();
    expect(lookup.lines.join('\n')).toMatch(
      /could not find the pull request of the commit: GitHub answered 403.*`pull-requests: read`/
    );
  });

  test('the commit list comes from the compare API when the workspace has no history', async () => {
    gh.compare.set(`${PREV}...${SHA}`, {
      commits: [
        { sha: '3'.repeat(40), message: 'First change\n\nbody', authorName: 'Ada', login: 'ada' },
        { sha: SHA, message: 'Second change', authorName: 'Bob' }
      ]
    });
    const { out } = await deliver(settings(), result('deployed'));
    expect(out.markdown).toContain(
      `2 commits since \`2222222\` ([compare](https://github.com/acme/shop/compare/${PREV}...${SHA}))`
    );
    // Newest first; a login is shown without a ping.
    expect(out.markdown).toMatch(/Second change \(Bob\)\n- \[`3333333`\][^\n]*First change \(@\u200bada\)/);
  });
});

describe('GitHub deployments', () => {
  test('off by default: no deployment is created (the job environment makes one)', async () => {
    expect(await startGithubDeployment(settings(), githubApi(TOKEN, gh.url), memoryLogger())).toBeUndefined();
    expect(gh.requests).toHaveLength(0);
  });

  test('on: created in progress, then success with the environment URL', async () => {
    const s = settings({ 'github-deployment': 'true', 'environment-url': 'https://shop.example.com' });
    const api = githubApi(TOKEN, gh.url);
    const id = await startGithubDeployment(s, api, memoryLogger());
    expect(id).toBe(gh.deployments[0]!.id);
    expect(gh.deployments[0]).toMatchObject({ ref: SHA, environment: 'production' });
    await finishGithubDeployment(s, api, id, 'deployed', memoryLogger());
    expect(gh.deployments[0]!.statuses.map(x => x.state)).toEqual(['in_progress', 'success']);
    expect(gh.deployments[0]!.statuses[1]).toMatchObject({
      environment_url: 'https://shop.example.com',
      log_url: 'https://github.com/acme/shop/actions/runs/77'
    });
  });

  test('without deployments: write, a warning and no failure', async () => {
    gh.deny('POST /repos/acme/shop/deployments');
    const log = memoryLogger();
    expect(
      await startGithubDeployment(settings({ 'github-deployment': 'true' }), githubApi(TOKEN, gh.url), log)
    ).toBeUndefined();
    expect(log.lines.join('\n')).toMatch(
      /could not create a GitHub deployment: GitHub answered 403.*`deployments: write`/
    );
  });
});
