/**
 * Which commits the pre-deploy secret scan covers, worked out by resolveRange on REAL git
 * repositories made here (temporary directories, a bare "origin", shallow file:// clones): no mocks.
 * Commit dates are fixed, so every run builds the same history.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SecretScanError } from '../../src/errors.js';
import { resolveRange, type CommitRange } from '../../src/scan/range.js';

// ---------------------------------------------------------------------------------------------
// Helpers

const ZERO = '0'.repeat(40);
const scratch = mkdtempSync(path.join(tmpdir(), 'deployguard-range-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let clock = 0;
/** Each git call gets the next fixed timestamp (a minute apart), and no system or global config. */
function gitEnv(): NodeJS.ProcessEnv {
  const when = `@${1_700_000_000 + clock++ * 60} +0000`;
  return {
    ...process.env,
    GIT_AUTHOR_DATE: when,
    GIT_COMMITTER_DATE: when,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0'
  };
}

function git(dir: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, env: gitEnv(), encoding: 'utf8', stdio: 'pipe' }).trim();
}

let dirs = 0;
function freshDir(name: string): string {
  const dir = path.join(scratch, `${++dirs}-${name}`);
  return dir;
}

function configure(dir: string): void {
  git(dir, 'config', 'user.name', 'Range Test');
  git(dir, 'config', 'user.email', 'range@example.test');
  git(dir, 'config', 'commit.gpgsign', 'false');
}

function newRepo(name = 'repo'): string {
  const dir = freshDir(name);
  execFileSync('git', ['init', '-q', '-b', 'main', dir], { env: gitEnv(), stdio: 'pipe' });
  configure(dir);
  return dir;
}

/** One commit adding `<label>.txt`; returns its full sha. */
function commit(dir: string, label: string): string {
  writeFileSync(path.join(dir, `${label}.txt`), `${label}\n`);
  git(dir, 'add', `${label}.txt`);
  git(dir, 'commit', '-q', '-m', label);
  return git(dir, 'rev-parse', 'HEAD');
}

function commits(dir: string, prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => commit(dir, `${prefix}${i + 1}`));
}

/** n commits on `ref` (from `from`, or a new root) in one `git fast-import`; returns the tip. */
function bulk(dir: string, ref: string, n: number, from?: string): string {
  let stream = '';
  for (let i = 1; i <= n; i++) {
    const msg = `${ref} ${i}\n`;
    const body = `line ${i} of ${ref}\n`;
    stream +=
      `commit refs/heads/${ref}\n` +
      `committer Range Test <range@example.test> ${1_600_000_000 + clock++ * 60} +0000\n` +
      `data ${Buffer.byteLength(msg)}\n${msg}` +
      (i === 1 && from ? `from ${from}\n` : '') +
      `M 644 inline ${ref}-${i % 7}.txt\ndata ${Buffer.byteLength(body)}\n${body}\n`;
  }
  execFileSync('git', ['fast-import', '--quiet'], { cwd: dir, input: stream, env: gitEnv(), stdio: 'pipe' });
  return git(dir, 'rev-parse', `refs/heads/${ref}`);
}

/** What git itself lists for the revisions, oldest first: the expected `commits`. */
function revList(dir: string, ...revs: string[]): string[] {
  return git(dir, 'rev-list', '--reverse', '--topo-order', ...revs, '--')
    .split('\n')
    .filter(Boolean);
}

function shallowClone(src: string, name: string, depth = 1): string {
  const dir = freshDir(name);
  execFileSync('git', ['clone', '-q', `--depth=${depth}`, `file://${src}`, dir], {
    env: gitEnv(),
    stdio: 'pipe'
  });
  return dir;
}

const isShallow = (dir: string) => git(dir, 'rev-parse', '--is-shallow-repository') === 'true';

async function rejection(p: Promise<CommitRange>): Promise<SecretScanError> {
  const err = await p.then(
    r => {
      throw new Error(`expected a SecretScanError, got the range ${JSON.stringify(r)}`);
    },
    (e: unknown) => e
  );
  expect(err).toBeInstanceOf(SecretScanError);
  return err as SecretScanError;
}

// ---------------------------------------------------------------------------------------------
// Complete clones

describe('resolveRange on a complete clone', () => {
  let repo: string;
  let c: string[];

  beforeAll(() => {
    repo = newRepo();
    c = commits(repo, 'c', 8);
  });

  it('starts at the last deployed commit when head descends from it', async () => {
    const r = await resolveRange({ repoDir: repo, head: 'HEAD', lastDeployedCommit: c[2] });
    expect(r.source).toBe('last-deploy');
    expect(r.base).toBe(c[2]);
    expect(r.head).toBe(c[7]);
    expect(r.commits).toEqual(c.slice(3));
    expect(r.commits).toEqual(revList(repo, `${c[2]}..${c[7]}`));
    expect(r.logOpts).toEqual([`${c[2]}..${c[7]}`]);
    expect(r.note).toBeUndefined();
  });

  it('prefers the deployment record over the event, and finds nothing new when head is deployed', async () => {
    const push = { name: 'push', payload: { ref: 'refs/heads/main', before: c[0], after: c[7] } };
    const r = await resolveRange({ repoDir: repo, head: c[7]!, lastDeployedCommit: c[7], event: push });
    expect(r).toMatchObject({ source: 'last-deploy', base: c[7], head: c[7], commits: [] });
    expect(r.logOpts).toEqual([`${c[7]}..${c[7]}`]);
    expect(r.note).toMatch(/nothing new/);
  });

  it('covers before..after of a push', async () => {
    const payload = { ref: 'refs/heads/main', before: c[4], after: c[7], forced: false };
    const r = await resolveRange({ repoDir: repo, head: c[7]!, event: { name: 'push', payload } });
    expect(r.source).toBe('push');
    expect(r.base).toBe(c[4]);
    expect(r.commits).toEqual([c[5], c[6], c[7]]);
    expect(r.commits).toEqual(revList(repo, `${c[4]}..${c[7]}`));
    expect(r.logOpts).toEqual([`${c[4]}..${c[7]}`]);
    expect(r.note).toBeUndefined();
  });

  it('covers the whole history on a first deploy', async () => {
    const r = await resolveRange({ repoDir: repo, head: 'HEAD' });
    expect(r.source).toBe('first-deploy');
    expect(r.base).toBeUndefined();
    expect(r.head).toBe(c[7]);
    expect(r.commits).toEqual(c);
    expect(r.commits).toEqual(revList(repo, c[7]!));
    expect(r.logOpts).toEqual([c[7]]);
    // A workflow_dispatch says nothing about what is new either.
    const manual = await resolveRange({
      repoDir: repo,
      head: 'HEAD',
      event: { name: 'workflow_dispatch', payload: {} }
    });
    expect(manual).toEqual(r);
  });

  it('ignores a deployment record that is not a sha, with a note', async () => {
    const r = await resolveRange({ repoDir: repo, head: 'HEAD', lastDeployedCommit: 'unknown' });
    expect(r.source).toBe('first-deploy');
    expect(r.commits).toEqual(c);
    expect(r.note).toMatch(/"unknown" is not a commit sha/);
  });
});

describe('rewritten history', () => {
  let repo: string;
  let c: string[];
  let d: string[];

  beforeAll(() => {
    repo = newRepo();
    c = commits(repo, 'c', 5);
    git(repo, 'reset', '-q', '--hard', c[2]!);
    d = commits(repo, 'd', 2); // c1 c2 c3 d1 d2; c4 c5 now only in the object store
  });

  it('falls back to the whole history when the last deployed commit is not an ancestor', async () => {
    const r = await resolveRange({ repoDir: repo, head: 'HEAD', lastDeployedCommit: c[4] });
    expect(r.source).toBe('first-deploy');
    expect(r.commits).toEqual([c[0], c[1], c[2], d[0], d[1]]);
    expect(r.commits).toEqual(revList(repo, 'HEAD'));
    expect(r.logOpts).toEqual([d[1]]);
    expect(r.note).toMatch(new RegExp(`last deployed commit ${c[4]!.slice(0, 12)} is not an ancestor`));
  });

  it('falls back when the last deployed commit is unknown here (and there is no origin to fetch it from)', async () => {
    const r = await resolveRange({ repoDir: repo, head: 'HEAD', lastDeployedCommit: 'ab'.repeat(20) });
    expect(r.source).toBe('first-deploy');
    expect(r.commits).toEqual(revList(repo, 'HEAD'));
    expect(r.note).toMatch(/not an ancestor/);
  });

  it('a force-push covers merge-base(before, after)..after, flagged or detected', async () => {
    for (const forced of [true, undefined]) {
      const payload = { ref: 'refs/heads/main', before: c[4], after: d[1], forced };
      const r = await resolveRange({ repoDir: repo, head: d[1]!, event: { name: 'push', payload } });
      expect(r.source).toBe('push');
      expect(r.base).toBe(c[2]);
      expect(r.commits).toEqual(d);
      expect(r.commits).toEqual(revList(repo, d[1]!, `^${c[4]}`));
      expect(r.logOpts).toEqual([`${c[2]}..${d[1]}`]);
      expect(r.note).toMatch(/force-push/);
    }
  });

  it('a force-push whose previous tip is unknown covers the whole history', async () => {
    const payload = { ref: 'refs/heads/main', before: 'cd'.repeat(20), after: d[1], forced: true };
    const r = await resolveRange({ repoDir: repo, head: d[1]!, event: { name: 'push', payload } });
    expect(r.source).toBe('push');
    expect(r.base).toBeUndefined();
    expect(r.commits).toEqual(revList(repo, d[1]!));
    expect(r.logOpts).toEqual([d[1]]);
    expect(r.note).toMatch(/force-push.*unknown.*whole history/);
  });

  it('a rewritten record plus a push event: the push range, with both notes', async () => {
    const payload = { ref: 'refs/heads/main', before: c[4], after: d[1], forced: true };
    const r = await resolveRange({
      repoDir: repo,
      head: d[1]!,
      lastDeployedCommit: c[4],
      event: { name: 'push', payload }
    });
    expect(r.source).toBe('push');
    expect(r.commits).toEqual(d);
    expect(r.note).toMatch(/not an ancestor.*; force-push/);
  });
});

describe('a push that creates a branch', () => {
  let origin: string;
  let main: string[];
  let other: string[];
  let feat: string[];

  beforeAll(() => {
    origin = freshDir('origin.git');
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', origin], { env: gitEnv(), stdio: 'pipe' });
    const work = newRepo('work');
    git(work, 'remote', 'add', 'origin', origin);
    main = commits(work, 'm', 3);
    git(work, 'push', '-q', 'origin', 'main');
    git(work, 'checkout', '-q', '-b', 'other', main[1]!);
    other = commits(work, 'o', 2);
    git(work, 'push', '-q', 'origin', 'other');
    git(work, 'checkout', '-q', '-b', 'feat', main[2]!);
    feat = commits(work, 'f', 3);
    git(work, 'push', '-q', 'origin', 'feat');
  });

  const created = (after: string, ref = 'refs/heads/feat') => ({
    name: 'push',
    payload: { ref, before: ZERO, after, created: true, forced: false }
  });

  it('covers the commits on no other remote branch (not excluded by its own tracking ref)', async () => {
    const ci = freshDir('ci');
    execFileSync('git', ['clone', '-q', `file://${origin}`, ci], { env: gitEnv(), stdio: 'pipe' });
    expect(git(ci, 'for-each-ref', '--format=%(refname)', 'refs/remotes').split('\n')).toEqual(
      expect.arrayContaining([
        'refs/remotes/origin/feat',
        'refs/remotes/origin/main',
        'refs/remotes/origin/other'
      ])
    );
    const tip = feat[2]!;
    const r = await resolveRange({ repoDir: ci, head: tip, event: created(tip) });
    expect(r.source).toBe('push');
    expect(r.base).toBeUndefined();
    expect(r.head).toBe(tip);
    expect(r.commits).toEqual(feat);
    expect(r.commits).toEqual(revList(ci, tip, '--not', 'origin/main', 'origin/other'));
    expect(r.logOpts).toEqual([tip, '--not', ...[main[2]!, other[1]!].sort()]);
    expect(r.note).toMatch(/new branch feat/);
    // The log options select the same set in git itself (as gitleaks' `git log` would).
    expect(revList(ci, ...r.logOpts)).toEqual(feat);
  });

  it('covers the whole history when no other remote branch is known', async () => {
    const ci = freshDir('ci-single');
    execFileSync('git', ['clone', '-q', '--single-branch', '--branch', 'feat', `file://${origin}`, ci], {
      env: gitEnv(),
      stdio: 'pipe'
    });
    const tip = feat[2]!;
    const r = await resolveRange({ repoDir: ci, head: tip, event: created(tip) });
    expect(r.source).toBe('push');
    expect(r.commits).toEqual([...main, ...feat]);
    expect(r.commits).toEqual(revList(ci, tip));
    expect(r.logOpts).toEqual([tip]);
    expect(r.note).toMatch(/no other remote branch/);
  });
});

describe('pull requests', () => {
  let repo: string;
  let fork: string;
  let baseTip: string;
  let prTip: string;

  beforeAll(() => {
    repo = newRepo();
    fork = commits(repo, 'c', 2)[1]!;
    baseTip = commits(repo, 'm', 2)[1]!; // the base branch moved on after the PR forked
    prTip = bulk(repo, 'pr', 300, fork);
  });

  it('covers ALL the commits of a pull request with more than 250 of them', async () => {
    const payload = { pull_request: { number: 7, base: { sha: baseTip }, head: { sha: prTip } } };
    const r = await resolveRange({ repoDir: repo, head: prTip, event: { name: 'pull_request', payload } });
    expect(r.source).toBe('pull-request');
    expect(r.base).toBe(fork);
    expect(r.head).toBe(prTip);
    expect(r.commits).toHaveLength(300);
    expect(r.commits).toEqual(revList(repo, `${baseTip}..${prTip}`));
    expect(git(repo, 'rev-parse', `${r.commits[0]}^`)).toBe(fork);
    expect(r.commits[299]).toBe(prTip);
    expect(r.logOpts).toEqual([`${fork}..${prTip}`]);
  });

  it('pull_request_target, and the head from the caller when the payload has none', async () => {
    const payload = { pull_request: { base: { sha: baseTip.toUpperCase() } } };
    const r = await resolveRange({
      repoDir: repo,
      head: 'pr',
      event: { name: 'pull_request_target', payload }
    });
    expect(r).toMatchObject({ source: 'pull-request', base: fork, head: prTip });
    expect(r.commits).toHaveLength(300);
  });
});

// ---------------------------------------------------------------------------------------------
// Shallow clones

describe('shallow clones', () => {
  let src: string;
  let tip: string;
  const at = (n: number) => git(src, 'rev-parse', `main~${n}`);

  beforeAll(() => {
    src = newRepo('src');
    tip = bulk(src, 'main', 100);
    git(src, 'reset', '-q', '--hard', 'main');
  });

  it('deepens automatically (doubling) until the last deployed commit is reached', async () => {
    const ci = shallowClone(src, 'ci');
    expect(revList(ci, 'HEAD')).toEqual([tip]);
    const last = at(70);
    const r = await resolveRange({ repoDir: ci, head: 'HEAD', lastDeployedCommit: last });
    expect(r.source).toBe('last-deploy');
    expect(r.base).toBe(last);
    expect(r.commits).toHaveLength(70);
    expect(r.commits).toEqual(revList(src, `${last}..${tip}`));
    expect(r.logOpts).toEqual([`${last}..${tip}`]);
    // 1 + 32 + 64 commits: deepened twice, not unshallowed.
    expect(isShallow(ci)).toBe(true);
    expect(revList(ci, 'HEAD')).toHaveLength(97);
  });

  it('deepens for a push range too', async () => {
    const ci = shallowClone(src, 'ci-push');
    const payload = { ref: 'refs/heads/main', before: at(3), after: tip };
    const r = await resolveRange({ repoDir: ci, head: tip, event: { name: 'push', payload } });
    expect(r.commits).toEqual(revList(src, `${at(3)}..${tip}`));
    expect(r.logOpts).toEqual([`${at(3)}..${tip}`]);
  });

  it('a force-push whose previous tip origin no longer has: fetched without it, then the whole history', async () => {
    const ci = shallowClone(src, 'ci-gone');
    const gone = 'ef'.repeat(20);
    const payload = { ref: 'refs/heads/main', before: gone, after: tip, forced: true };
    const r = await resolveRange({ repoDir: ci, head: tip, event: { name: 'push', payload } });
    expect(r.source).toBe('push');
    expect(r.base).toBeUndefined();
    expect(r.commits).toEqual(revList(src, tip));
    expect(r.logOpts).toEqual([tip]);
    expect(r.note).toMatch(/force-push: the previous tip efefefefefef is unknown/);
    expect(r.note).toMatch(/fetched more history from origin \(--deepen=32/);
  });

  it('unshallows for a first deploy', async () => {
    const ci = shallowClone(src, 'ci-first');
    const r = await resolveRange({ repoDir: ci, head: 'HEAD' });
    expect(r.source).toBe('first-deploy');
    expect(r.commits).toEqual(revList(src, tip));
    expect(r.commits).toHaveLength(100);
    expect(isShallow(ci)).toBe(false);
  });

  it('with deepen: false, stops with a hint to set fetch-depth: 0 (and fetches nothing)', async () => {
    const ci = shallowClone(src, 'ci-nodeepen');
    const err = await rejection(
      resolveRange({ repoDir: ci, head: 'HEAD', lastDeployedCommit: at(10), deepen: false })
    );
    expect(err.phase).toBe('pre-deploy');
    expect(err.message).toMatch(/shallow/);
    expect(err.hint).toMatch(/fetch-depth: 0/);
    expect(revList(ci, 'HEAD')).toEqual([tip]);
    const first = await rejection(resolveRange({ repoDir: ci, head: 'HEAD', deepen: false }));
    expect(first.hint).toMatch(/fetch-depth: 0/);
  });

  it('a pull request checked out as its merge commit, one commit deep, as actions/checkout does', async () => {
    const origin = newRepo('pr-origin');
    const fork = bulk(origin, 'main', 5);
    const prTip = bulk(origin, 'topic', 40, fork);
    const baseTip = bulk(origin, 'main', 3, fork);
    git(origin, 'checkout', '-q', '-b', 'merge', baseTip);
    git(origin, 'merge', '-q', '--no-ff', '-m', 'Merge topic into main', prTip);
    const merge = git(origin, 'rev-parse', 'HEAD');
    git(origin, 'update-ref', 'refs/pull/1/merge', merge);

    const ci = newRepo('pr-ci');
    git(ci, 'remote', 'add', 'origin', `file://${origin}`);
    git(
      ci,
      'fetch',
      '-q',
      '--no-tags',
      '--depth=1',
      'origin',
      '+refs/pull/1/merge:refs/remotes/pull/1/merge'
    );
    git(ci, 'checkout', '-q', '--detach', 'refs/remotes/pull/1/merge');
    expect(revList(ci, 'HEAD')).toEqual([merge]);

    const payload = { pull_request: { number: 1, base: { sha: baseTip }, head: { sha: prTip } } };
    const r = await resolveRange({ repoDir: ci, head: merge, event: { name: 'pull_request', payload } });
    expect(r).toMatchObject({ source: 'pull-request', base: fork, head: prTip });
    expect(r.commits).toEqual(revList(origin, `${baseTip}..${prTip}`));
    expect(r.commits).toHaveLength(40);
    expect(r.logOpts).toEqual([`${fork}..${prTip}`]);
  });
});

// ---------------------------------------------------------------------------------------------
// Bad input

describe('bad input', () => {
  let repo: string;
  let c: string[];

  beforeAll(() => {
    repo = newRepo();
    c = commits(repo, 'c', 2);
  });

  it('rejects event shas that are not 40 hex digits before git sees them', async () => {
    const push = (payload: object) =>
      resolveRange({ repoDir: repo, head: 'HEAD', event: { name: 'push', payload } });
    let err = await rejection(push({ before: '--upload-pack=touch /tmp/pwned', after: c[1] }));
    expect(err.message).toMatch(
      /push event payload has an invalid before: "--upload-pack=touch \/tmp\/pwned"/
    );
    expect(err.message).toMatch(/40 hex digits/);
    err = await rejection(push({ before: c[0], after: 'HEAD' }));
    expect(err.message).toMatch(/invalid after: "HEAD"/);
    err = await rejection(push({}));
    expect(err.message).toMatch(/invalid before: undefined/);

    const pr = (payload: object) =>
      resolveRange({ repoDir: repo, head: 'HEAD', event: { name: 'pull_request', payload } });
    err = await rejection(pr({ pull_request: { base: { sha: c[0]!.slice(0, 12) }, head: { sha: c[1] } } }));
    expect(err.message).toMatch(/invalid pull_request\.base\.sha/);
    err = await rejection(pr({ pull_request: { base: { sha: c[0] }, head: { sha: 42 } } }));
    expect(err.message).toMatch(/invalid pull_request\.head\.sha: 42/);
    err = await rejection(pr({}));
    expect(err.message).toMatch(/invalid pull_request\.base\.sha: undefined/);
  });

  it('rejects a head that is not a revision, or not a commit here', async () => {
    let err = await rejection(resolveRange({ repoDir: repo, head: '--output=/tmp/x' }));
    expect(err.message).toMatch(/not a valid revision/);
    err = await rejection(resolveRange({ repoDir: repo, head: 'no-such-branch' }));
    expect(err.message).toMatch(/no-such-branch is not a commit/);
  });

  it('a checkout owned by another account: git refuses it, and the hint says how to mark it safe', async () => {
    // Giving a directory away takes root; CI runs the tests as root.
    if (process.getuid?.() !== 0) return;
    const dir = freshDir('foreign');
    execFileSync('git', ['init', '-q', dir]);
    execFileSync('chown', ['-R', 'nobody:', dir]);
    const err = await rejection(resolveRange({ repoDir: dir, head: 'HEAD' }));
    expect(err.message).toMatch(/dubious ownership/);
    expect(err.hint).toBe(`Mark the checkout as safe: git config --global --add safe.directory ${dir}`);
  });

  it('a directory that is not a repository: said so, with git stderr in the error', async () => {
    const dir = freshDir('plain');
    execFileSync('mkdir', ['-p', dir]);
    const err = await rejection(resolveRange({ repoDir: dir, head: 'HEAD' }));
    expect(err.message).toMatch(
      /is not a git checkout, so the commits going out cannot be scanned \(git: .*not a git repository/i
    );
    expect(err.hint).toMatch(/scan: artifact/);
    const missing = await rejection(resolveRange({ repoDir: path.join(dir, 'nope'), head: 'HEAD' }));
    expect(missing.message).toMatch(/is not a directory/);
  });
});
