/**
 * The action as the runner runs it: `node dist/main/index.cjs` with INPUT_* variables and the
 * GITHUB_* files, deploying to a real sshd. Then the post step, as the runner runs it after a
 * cancelled job, freeing a lock left behind.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sandbox } from '../../src/demo/sandbox.js';
import { commandServiceYaml, get, makeRelease, runActionEntry } from '../helpers/deploy.js';
import { startTestHost, type TestHost } from '../helpers/test-host.js';
import { githubPat } from '../fixtures/secrets/samples.js';
import { startFakeGitHub } from '../harness/github-api.js';

const HEALTH_TOKEN = 'hdr-7c1f2e9a44b0-secret';
const PASSPHRASE = 'pass-5e1b77c0d9a2-phrase';
const GH_TOKEN = 'ghs_e2eLocalApiToken9c8b7a6f5e4d3c2b1a';
const SHA = '1a2b3c4d5e6f708192a3b4c5d6e7f80912a3b4c5';
let t: TestHost;
let host: Sandbox;
let work: string;
let runDir: string;
let appPort: number;
let target: string;

beforeAll(async () => {
  t = await startTestHost({ prefix: 'e2e' });
  ({ host, work, runDir, appPort, target } = t);
  writeFileSync(
    join(work, 'deployguard.yml'),
    commandServiceYaml(appPort, runDir, `target: { path: ${target} }`, {
      // A check whose header carries a secret from the environment: it must never show up.
      checks: [
        `{ name: authed, type: http, url: "http://127.0.0.1:${appPort}/health", headers: { X-Token: "\${HEALTH_TOKEN}" }, timeout: 1s, retries: 3, interval: 300ms }`
      ]
    })
  );
}, 30_000);

afterAll(async () => {
  await t?.stop();
});

/** The action's entry as the runner runs it, with this file's workspace and environment. */
function runAction(entry: string, inputs: Record<string, string>, extraEnv: Record<string, string> = {}) {
  return runActionEntry(entry, inputs, {
    dir: work,
    env: {
      GITHUB_WORKSPACE: work,
      GITHUB_SHA: SHA,
      GITHUB_REPOSITORY: 'acme/shop',
      GITHUB_RUN_ID: '777',
      HEALTH_TOKEN,
      ...extraEnv
    }
  });
}

function inputs(artifact: string, release: string): Record<string, string> {
  return {
    host: host.host,
    'host-name': 'web-1',
    port: String(host.port),
    user: host.user,
    'ssh-key': host.privateKey,
    'known-hosts': host.knownHostsLine,
    artifact,
    'release-id': release,
    'lock-wait': '0s',
    // The workspace here is not a git checkout: scan the artifact with the real (WebAssembly)
    // gitleaks from node_modules/.bin, which is on PATH under npm test.
    scan: 'artifact'
  };
}

/** The lines of the private key that are secret (not the BEGIN/END armour). */
function secretLines(key: string): string[] {
  return key.split('\n').filter(l => l.length >= 8 && !l.startsWith('-----'));
}

describe('the action, run as the runner runs it', () => {
  test('a healthy deploy sets outputs, writes the record to the summary, the file and a commit comment; no secret leaks', async () => {
    const gh = await startFakeGitHub({ owner: 'acme', repo: 'shop' });
    const secretsGiven = [...secretLines(host.privateKey), HEALTH_TOKEN, PASSPHRASE, GH_TOKEN];
    let r: Awaited<ReturnType<typeof runAction>>;
    try {
      r = await runAction(
        'main',
        {
          ...inputs(await makeRelease('v1'), 'rel-1'),
          // A passphrase the (unencrypted) key does not need, and a reason that quotes a secret by
          // mistake: both must be scrubbed from every channel.
          'ssh-passphrase': PASSPHRASE,
          reason: `rotate creds ${HEALTH_TOKEN}`,
          'github-token': GH_TOKEN,
          'environment-url': 'https://shop.example.com'
        },
        { GITHUB_API_URL: gh.url, RUNNER_TEMP: work }
      );
    } finally {
      await gh.close();
    }
    expect({ code: r.code, err: r.stderr }).toEqual({ code: 0, err: '' });
    expect(r.outputs).toMatchObject({
      status: 'deployed',
      release: 'rel-1',
      'previous-release': '',
      'rolled-back': 'false',
      'environment-url': 'https://shop.example.com'
    });
    expect(r.summary).toMatch(/## ✅ Deployed: production `rel-1`/);
    expect(r.summary).toMatch(/\| web-1 \| ✅ deployed \| `rel-1` \|/);
    // The record is short: the timeline is folded, its phases named (no step-by-step list when healthy).
    expect(r.summary).toMatch(
      /<details><summary>Timeline and steps [^\n]*\n[\s\S]*\| web-1 \| [^\n]*Verify checksums/
    );
    expect(r.summary).toContain('**Why** (reason given): rotate creds ***');
    // The record's file is what the summary starts with.
    const record = readFileSync(r.outputs['log-path']!, 'utf8');
    expect(record).toMatch(/^<!-- deployguard:record environment=production -->\n/);
    expect(r.summary.startsWith(record)).toBe(true);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v1');
    // No PR for the commit: the record went to the commit, authenticated with the token.
    const posts = gh.requests.filter(q => q.method === 'POST');
    expect(posts.map(q => q.path)).toEqual([`/repos/acme/shop/commits/${SHA}/comments`]);
    expect(posts[0]!.headers.authorization).toBe(`token ${GH_TOKEN}`);
    expect((posts[0]!.json as { body: string }).body).toContain('## ✅ Deployed: production `rel-1`');
    const jsonl = readFileSync(join(target, '.deployguard', 'deployments.jsonl'), 'utf8');
    expect(JSON.parse(jsonl.trim().split('\n').at(-1)!)).toMatchObject({
      release: 'rel-1',
      status: 'deployed',
      reason: 'rotate creds ***'
    });
    // The secrets are registered for masking (the runner consumes ::add-mask::) and printed nowhere else.
    const stdoutWithoutMasks = r.stdout.replace(/^::add-mask::.*$/gm, '');
    const bodies = gh.requests.map(q => q.body).join('\n');
    // The secret scan ran (on the artifact) and wrote its SARIF, another channel to search.
    const sarif = readFileSync(r.outputs['sarif-path']!, 'utf8');
    expect(JSON.parse(sarif).runs[0].results).toEqual([]);
    for (const line of secretsGiven) {
      expect(sarif).not.toContain(line);
      expect(r.stdout).toContain(`::add-mask::${line}`);
      expect(stdoutWithoutMasks).not.toContain(line);
      expect(r.summary).not.toContain(line);
      expect(JSON.stringify(r.outputs)).not.toContain(line);
      expect(r.state).not.toContain(line);
      expect(bodies).not.toContain(line);
      expect(jsonl).not.toContain(line);
      expect(readFileSync(r.outputs['log-path']!, 'utf8')).not.toContain(line);
    }
    // The lock was released in the main step, so the post step has nothing to do.
    expect(r.state).toMatch(/deployguard-locks/);
    expect(existsSync(join(target, '.deployguard', 'lock'))).toBe(false);
  }, 120_000);

  test('an unhealthy release fails the step, rolls back, and says so in outputs and summary', async () => {
    const r = await runAction('main', inputs(await makeRelease('v2', 'unhealthy'), 'rel-2'));
    expect(r.code).toBe(1);
    expect(r.outputs).toMatchObject({
      status: 'rolled-back',
      release: 'rel-2',
      'previous-release': 'rel-1',
      'rolled-back': 'true'
    });
    expect(r.stdout).toMatch(/::error::deployguard: rolled-back: release rel-2/);
    expect(r.summary).toMatch(/## ↩️ Rolled back: production `rel-2`/);
    expect(r.summary).toMatch(
      /\| health \| ✅ pass \([^)]*\) \| ❌ fail \([^)]*\) \| ✅ pass \([^)]*\) \| HTTP 500/
    );
    expect(r.summary).toContain(`- the failed release is kept on the host at \`${target}/releases/rel-2\``);
    // No token given: the record stays in the summary, and nothing tried to reach GitHub.
    expect(r.stdout).not.toMatch(/could not comment/);
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v1');
  }, 120_000);

  test('invalid input fails before any host is touched, naming the input', async () => {
    const r = await runAction('main', { ...inputs(await makeRelease('v3'), 'rel-3'), port: 'twenty-two' });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /::error::.*input `port`: expected an integer from 1 to 65535, got "twenty-two"/
    );
    expect(existsSync(join(target, 'releases', 'rel-3'))).toBe(false);
  }, 60_000);

  test('dry-run prints every remote command and changes nothing', async () => {
    const r = await runAction('main', { ...inputs(await makeRelease('v4'), 'rel-4'), 'dry-run': 'true' });
    expect(r.code).toBe(0);
    expect(r.outputs.status).toBe('dry-run');
    expect(r.stdout).toContain(`ln -sfn -- ${target}/releases/rel-4 ${target}/current.tmp-rel-4`);
    expect(r.stdout).toContain('sha256sum -c --quiet --strict -- "$part"');
    expect(existsSync(join(target, 'releases', 'rel-4'))).toBe(false);
  }, 60_000);

  test('the post step frees a lock the main step left behind (cancelled job), and only its own', async () => {
    const lock = join(target, '.deployguard', 'lock');
    mkdirSync(lock, { recursive: true });
    writeFileSync(join(lock, 'owner'), '{"token":"someone-else"}\n');
    if (process.getuid?.() === 0)
      execFileSync('chown', ['-R', `${host.user}:`, join(target, '.deployguard')]);
    const state = { 'STATE_deployguard-locks': JSON.stringify([['web-1', 'tok-ours']]) };
    const notOurs = await runAction('post', inputs(await makeRelease('v5'), 'rel-5'), state);
    expect(notOurs.code).toBe(0);
    expect(existsSync(lock)).toBe(true);
    writeFileSync(join(lock, 'owner'), '{"token":"tok-ours"}\n');
    const ours = await runAction('post', inputs(await makeRelease('v5'), 'rel-5'), state);
    expect(ours.code).toBe(0);
    expect(ours.stdout).toMatch(
      /::warning::web-1: the deploy ended without releasing its lock; released it now/
    );
    expect(existsSync(lock)).toBe(false);
  }, 60_000);
});

describe('the pre-deploy gate, run as the runner runs it', () => {
  test('a secret in the artifact blocks the deploy: annotation, SARIF, summary table, and the secret nowhere', async () => {
    const leak = githubPat(11);
    const art = await makeRelease('v9', undefined, { [leak.file]: leak.content });
    const before = existsSync(join(target, 'current')) ? readlinkSync(join(target, 'current')) : '';
    const r = await runAction('main', inputs(art, 'rel-9'), { RUNNER_TEMP: work });
    expect(r.code).toBe(1);
    expect(r.outputs.status).toBe('blocked');
    expect(r.stdout).toMatch(
      new RegExp(`::error title=Secret found by gitleaks,file=.*${leak.file},line=${leak.line}`)
    );
    expect(r.summary).toMatch(/### Secrets found: 1/);
    expect(r.summary).toMatch(/\| github-pat \|/);
    const sarif = readFileSync(r.outputs['sarif-path']!, 'utf8');
    expect(JSON.parse(sarif).runs[0].results).toHaveLength(1);
    for (const text of [r.stdout, r.stderr, r.summary, sarif, JSON.stringify(r.outputs)])
      expect(text).not.toContain(leak.secret);
    // Nothing changed on the host.
    expect(existsSync(join(target, 'releases', 'rel-9'))).toBe(false);
    expect(existsSync(join(target, 'current')) ? readlinkSync(join(target, 'current')) : '').toBe(before);
  }, 120_000);

  test('a failing test command blocks the deploy and shows its last lines', async () => {
    const r = await runAction('main', {
      ...inputs(await makeRelease('v10'), 'rel-10'),
      'test-command': 'echo "3 tests, 1 failure: cart total"; exit 1'
    });
    expect(r.code).toBe(1);
    expect(r.outputs.status).toBe('blocked');
    expect(r.stdout).toMatch(
      /::error::the test command failed \(exit 1\)[^\n]*%0A3 tests, 1 failure: cart total/
    );
    expect(existsSync(join(target, 'releases', 'rel-10'))).toBe(false);
  }, 60_000);
});

describe('the secret scan starts from the last good deploy the hosts recorded', () => {
  test('first deploy scans the whole history; the next one only the commits since', async () => {
    const repo = join(work, 'repo');
    mkdirSync(repo, { recursive: true });
    const git = (...args: string[]) =>
      execFileSync('git', ['-C', repo, ...args], {
        encoding: 'utf8',
        env: {
          ...process.env,
          GIT_AUTHOR_DATE: '2026-11-01T10:00:00Z',
          GIT_COMMITTER_DATE: '2026-11-01T10:00:00Z'
        }
      }).trim();
    git('init', '-q', '-b', 'main');
    git('config', 'user.email', 'dev@example.com');
    git('config', 'user.name', 'Dev');
    const commitFile = (name: string, content: string) => {
      writeFileSync(join(repo, name), content);
      git('add', name);
      git('commit', '-q', '-m', `add ${name}`);
      return git('rev-parse', 'HEAD');
    };
    commitFile('a.txt', 'one\n');
    const second = commitFile('b.txt', 'two\n');
    const repoTarget = join(runDir, 'srv', 'repo-app');
    writeFileSync(
      join(repo, 'deployguard.yml'),
      commandServiceYaml(appPort, runDir, `target: { path: ${repoTarget} }`)
    );
    const deployAt = async (sha: string, release: string) =>
      runAction(
        'main',
        { ...inputs(await makeRelease(release), release), scan: 'both' },
        { GITHUB_WORKSPACE: repo, GITHUB_SHA: sha }
      );
    const first = await deployAt(second, 'g1');
    expect(first.outputs.status).toBe('deployed');
    expect(first.stdout).toMatch(/commits: 2 \(first-deploy up to [0-9a-f]{12}\)/);
    commitFile('c.txt', 'three\n');
    const fourth = commitFile('d.txt', 'four\n');
    const next = await deployAt(fourth, 'g2');
    expect(next.outputs.status).toBe('deployed');
    expect(next.stdout).toMatch(
      new RegExp(`commits: 2 \\(last-deploy ${second.slice(0, 12)}\\.\\.${fourth.slice(0, 12)}\\)`)
    );
    // The record lists the two commits going out, newest first, from the checkout's history.
    expect(next.summary).toContain(`2 commits since \`${second.slice(0, 7)}\``);
    expect(next.summary).toMatch(/add d\.txt \(Dev\)\n- [^\n]*add c\.txt \(Dev\)/);
    // The host recorded the commit with the release.
    expect(readFileSync(join(repoTarget, '.deployguard', 'status', 'g2'), 'utf8')).toMatch(
      new RegExp(`^good \\S+ ${fourth}$`, 'm')
    );
  }, 180_000);
});
