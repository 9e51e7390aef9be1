/**
 * Which commits a pre-deploy secret scan must cover: "the commits going out". Worked out with the
 * real `git` CLI (io/git.ts, no shell) in the checked-out repository, never with the GitHub API, so
 * a pull request with 3,000 commits is covered as fully as one with 3.
 *
 * Rules, in order:
 *  1. The host's record of the last deployed commit, when it is an ancestor of head: base..head.
 *     When it is not (history rewritten) the rules below apply, with a note.
 *  2. pull_request / pull_request_target: merge-base(PR base sha, PR head)..PR head.
 *  3. push: before..after. A new branch (before all zeros): the commits on no other remote branch.
 *     A force-push: merge-base(before, after)..after, or the whole history when before is unknown.
 *  4. Nothing known (first deploy, local CLI): the whole history reachable from head.
 *
 * Shallow checkouts (actions/checkout's default is one commit) are deepened from `origin` when the
 * answer depends on history that is not there: `git fetch --deepen` doubling up to a bound, then
 * `--unshallow`. A range is only returned once it is exact: none of its commits may sit on the
 * shallow boundary (their parents missing), or commits that are going out could be left unscanned.
 */
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { SecretScanError } from '../errors.js';
import { runGit, type GitResult } from '../io/git.js';

export type RangeSource = 'last-deploy' | 'push' | 'pull-request' | 'first-deploy' | 'explicit';

export interface CommitRange {
  readonly source: RangeSource;
  /** Exclusive lower bound; undefined: the whole history up to head (or head --not <tips>, see note). */
  readonly base?: string;
  /** Full sha of the newest commit of the range. */
  readonly head: string;
  /** Full shas, oldest first (parents before children), exactly the commits of the range. */
  readonly commits: readonly string[];
  /** The same set as `gitleaks git --log-opts=...` arguments: ['<base>..<head>'] or ['<head>']. */
  readonly logOpts: readonly string[];
  /** Why the range is not the obvious one (fallbacks, force-pushes, unknown commits). */
  readonly note?: string;
}

export interface RangeInput {
  readonly repoDir: string;
  /** GITHUB_SHA, HEAD, or another revision of repoDir. */
  readonly head: string;
  /** From the host's deployment record, when one exists (preferred over the event). */
  readonly lastDeployedCommit?: string;
  /** GITHUB_EVENT_NAME and the parsed JSON of GITHUB_EVENT_PATH. */
  // The parsed event JSON, as callers have it; it is only ever read through checks below.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly event?: { readonly name: string; readonly payload: any };
  /** Default true: fetch more history from origin when the checkout is shallow. */
  readonly deepen?: boolean;
}

const ZERO_SHA = '0'.repeat(40);
const FULL_SHA = /^[0-9a-f]{40}$/i;
/** A revision given by the caller (GITHUB_SHA, HEAD, a branch): never an option, no odd bytes. */
const REVISION = /^[A-Za-z0-9_][A-Za-z0-9._/@{}^~+-]*$/;

const short = (sha: string) => sha.slice(0, 12);

/** First `--deepen` step; each next one doubles, until DEEPEN_BOUND commits, then `--unshallow`. */
const DEEPEN_FIRST = 32;
const DEEPEN_BOUND = 2048;

/** `git fetch` without tags, submodules or an automatic gc on the way. */
const FETCH = [
  '-c',
  'gc.auto=0',
  '-c',
  'maintenance.auto=false',
  'fetch',
  '--no-tags',
  '--quiet',
  '--no-recurse-submodules'
] as const;

const FETCH_DEPTH_HINT =
  'Set `fetch-depth: 0` on actions/checkout so the whole history is there (or leave `deepen` on ' +
  'so deployguard can fetch what it needs from origin).';

// ---------------------------------------------------------------------------------------------
// git

/** What io/git.ts answers, stdout as text. */
type GitText = Pick<GitResult, 'code' | 'stderr'> & { readonly stdout: string };

/** The last lines of git's stderr, with any credentials in URLs masked. */
function stderrTail(stderr: string, lines = 6): string {
  const tail = stderr
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1***@')
    .trim()
    .split('\n')
    .slice(-lines)
    .join('\n');
  return tail.length > 1500 ? `…${tail.slice(-1500)}` : tail || '(no output)';
}

/** A command line for messages: long lists of shas are shortened. */
function shown(args: readonly string[]): string {
  const text = ['git', ...args].join(' ');
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

/** The questions the range rules ask git, with failures worded for the secret scan. */
class Git {
  /** `$GIT_DIR/shallow`: the file is re-read on every question, as fetches change it. */
  private shallowFile: string | undefined;

  constructor(readonly dir: string) {}

  /** Runs git (io/git.ts, its timeout unless given); never throws for a non-zero exit (only when git cannot be started). */
  async run(args: readonly string[], timeoutMs?: number): Promise<GitText> {
    const r = await runGit(this.dir, args, timeoutMs === undefined ? {} : { timeoutMs });
    if (r.notFound) {
      throw new SecretScanError(
        `git is not installed (or not on PATH), so the commits to scan cannot be worked out.`,
        'pre-deploy',
        'Install git on the runner, or run deployguard where git is available.'
      );
    }
    return { code: r.code, stdout: r.stdout.toString('utf8'), stderr: r.stderr };
  }

  /** Runs git and returns stdout; any failure is a SecretScanError with git's stderr. */
  async ok(args: readonly string[], timeoutMs?: number): Promise<string> {
    const r = await this.run(args, timeoutMs);
    if (r.code !== 0) throw this.failure(args, r);
    return r.stdout;
  }

  /** A failed git run as an error; a checkout git refuses for its owner always gets the safe.directory fix. */
  failure(args: readonly string[], r: GitText, hint?: string): SecretScanError {
    const err = stderrTail(r.stderr);
    return new SecretScanError(
      `${shown(args)} failed in ${this.dir} (exit ${r.code}): ${err}`,
      'pre-deploy',
      /dubious ownership/.test(r.stderr)
        ? `Mark the checkout as safe: git config --global --add safe.directory ${this.dir}`
        : (hint ??
            'The secret scan needs the commits going out; check that the repository is checked out and intact.')
    );
  }

  /** The full sha of a commit, or undefined when there is no such commit here. */
  async commit(rev: string): Promise<string | undefined> {
    const args = ['rev-parse', '--verify', '--quiet', `${rev}^{commit}`];
    const r = await this.run(args);
    if (r.code === 0) return r.stdout.trim();
    if (r.code === 1) return undefined;
    throw this.failure(args, r);
  }

  async isAncestor(a: string, b: string): Promise<boolean> {
    const args = ['merge-base', '--is-ancestor', a, b];
    const r = await this.run(args);
    if (r.code === 0) return true;
    if (r.code === 1) return false;
    throw this.failure(args, r);
  }

  /** The best common ancestor, or undefined when the histories share none (here). */
  async mergeBase(a: string, b: string): Promise<string | undefined> {
    const args = ['merge-base', a, b];
    const r = await this.run(args);
    if (r.code === 0) return r.stdout.trim().split('\n')[0];
    if (r.code === 1) return undefined;
    throw this.failure(args, r);
  }

  /** Commits of a rev-list, parents before children. */
  async list(revs: readonly string[]): Promise<string[]> {
    const out = await this.ok(['rev-list', '--reverse', '--topo-order', ...revs, '--'], 600_000);
    return out.split('\n').filter(Boolean);
  }

  /** The commits whose parents this clone does not have (empty for a complete clone). */
  async shallowCommits(): Promise<Set<string>> {
    this.shallowFile ??= path.resolve(
      this.dir,
      (await this.ok(['rev-parse', '--git-path', 'shallow'])).trim()
    );
    try {
      const text = await readFile(this.shallowFile, 'utf8');
      return new Set(text.split('\n').filter(Boolean));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
      throw err;
    }
  }

  async isShallow(): Promise<boolean> {
    return (await this.shallowCommits()).size > 0;
  }

  /** Is part of tip's history cut off by the shallow boundary? */
  async truncated(tip: string): Promise<boolean> {
    const shallow = await this.shallowCommits();
    if (shallow.size === 0) return false;
    return (await this.list([tip])).some(c => shallow.has(c));
  }

  /** Remote-tracking branches: full ref name and the commit it points to. */
  async remoteBranches(): Promise<{ ref: string; sha: string }[]> {
    const out = await this.ok(['for-each-ref', '--format=%(objectname) %(refname)', 'refs/remotes/']);
    return out
      .split('\n')
      .filter(Boolean)
      .map(line => {
        const i = line.indexOf(' ');
        return { sha: line.slice(0, i), ref: line.slice(i + 1) };
      });
  }
}

// ---------------------------------------------------------------------------------------------
// Getting more history

/** An attempt needs history this clone does not have yet (NEED_ALL: needs all of it). */
const NEED = Symbol('need more history');
const NEED_ALL = Symbol('need the whole history');
type Step<T> = T | typeof NEED | typeof NEED_ALL;

/**
 * Fetches more history from origin, one step at a time, for attempts that report NEED: a shallow
 * clone is deepened (doubling) and finally unshallowed; a complete clone fetches missing commits by
 * sha once. `final` tells an attempt that nothing more can be had, so its answer must be definite.
 */
class History {
  private step = DEEPEN_FIRST;
  private deepened = 0;
  private unshallowed = false;
  /** Missing commits a complete clone already tried to fetch. */
  private readonly tried = new Set<string>();
  /** Shas origin said it does not have ("not our ref"). */
  private readonly refused = new Set<string>();
  /** What was fetched, for the note. */
  readonly fetched: string[] = [];

  constructor(
    private readonly git: Git,
    private readonly allowed: boolean
  ) {}

  private async missing(wants: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (const w of wants) if (!(await this.git.commit(w))) out.push(w);
    return out;
  }

  async final(wants: readonly string[]): Promise<boolean> {
    if (!this.allowed) return true;
    if (await this.git.isShallow()) return this.unshallowed;
    return (await this.missing(wants)).every(w => this.tried.has(w));
  }

  async run<T>(
    what: string,
    wants: readonly string[],
    attempt: (final: boolean) => Promise<Step<T>>
  ): Promise<T> {
    for (;;) {
      const final = await this.final(wants);
      const r = await attempt(final);
      if (r !== NEED && r !== NEED_ALL) return r;
      if (final) {
        throw new SecretScanError(
          `The checkout in ${this.git.dir} is shallow and lacks the history needed for ${what}` +
            (this.allowed ? ', even after fetching all of it from origin.' : ' (deepening is turned off).'),
          'pre-deploy',
          FETCH_DEPTH_HINT
        );
      }
      await this.grow(wants, r === NEED_ALL);
    }
  }

  private async grow(wants: readonly string[], all: boolean): Promise<void> {
    if ((await this.git.isShallow()) && !this.unshallowed) {
      if (!all && this.deepened + this.step <= DEEPEN_BOUND) {
        await this.fetch([`--deepen=${this.step}`], wants);
        this.deepened += this.step;
        this.step *= 2;
      } else {
        await this.fetch(['--unshallow'], wants);
        this.unshallowed = true;
      }
      return;
    }
    // A complete clone: commits it lacks may still be on origin (another branch, a pull request).
    // One try each; a commit origin does not have either is an answer too.
    for (const sha of await this.missing(wants)) {
      if (this.tried.has(sha)) continue;
      this.tried.add(sha);
      const r = await this.git.run([...FETCH, 'origin', sha], 600_000);
      if (r.code === 0) this.fetched.push(`fetch ${short(sha)}`);
    }
  }

  /**
   * `git fetch <how> origin <wants>`: the commits we need by sha first; when origin refuses one
   * (gone after a force-push, never pushed), without it; then head alone; then origin's refspec.
   */
  private async fetch(how: readonly string[], wants: readonly string[]): Promise<void> {
    const usable = wants.filter(w => !this.refused.has(w));
    const sets = [usable, usable.slice(0, 1), []].filter(
      (set, i, all) => i === 0 || set.length !== all[i - 1]?.length
    );
    let last: { args: string[]; r: GitText } | undefined;
    for (let i = 0; i < sets.length; i++) {
      const set = sets[i] ?? [];
      const args = [...FETCH, ...how, 'origin', ...set];
      const r = await this.git.run(args, 600_000);
      if (r.code === 0) {
        this.fetched.push(how.join(' '));
        return;
      }
      last = { args, r };
      // "not our ref <sha>": origin does not have that commit; try the same fetch without it.
      const gone = [...r.stderr.matchAll(/not our ref ([0-9a-f]{40})/gi)].map(m => m[1]!.toLowerCase());
      const dropped = set.filter(w => gone.includes(w));
      if (dropped.length > 0 && dropped.length < set.length) {
        for (const w of dropped) {
          this.refused.add(w);
          this.tried.add(w);
        }
        sets.splice(
          i + 1,
          0,
          set.filter(w => !this.refused.has(w))
        );
      }
    }
    if (last) {
      throw this.git.failure(
        last.args,
        last.r,
        `The checkout is shallow and more history could not be fetched from origin. ${FETCH_DEPTH_HINT}`
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The rules

interface Found {
  readonly base?: string;
  readonly head: string;
  readonly commits: readonly string[];
  readonly logOpts: readonly string[];
  readonly note?: string;
}

/** base..head when every commit in it has its parents here; NEED otherwise. */
async function between(git: Git, base: string, head: string, note?: string): Promise<Step<Found>> {
  const commits = await git.list([`${base}..${head}`]);
  const shallow = await git.shallowCommits();
  if (commits.some(c => shallow.has(c))) return NEED;
  return { base, head, commits, logOpts: [`${base}..${head}`], ...(note ? { note } : {}) };
}

/** Everything reachable from head; NEED_ALL while the clone is shallow below it. */
async function everything(git: Git, head: string, note?: string): Promise<Step<Found>> {
  const commits = await git.list([head]);
  const shallow = await git.shallowCommits();
  if (commits.some(c => shallow.has(c))) return NEED_ALL;
  return { head, commits, logOpts: [head], ...(note ? { note } : {}) };
}

/** A sha from the event payload: 40 hex digits, or a SecretScanError naming the field. */
function payloadSha(event: string, name: string, value: unknown): string {
  if (typeof value === 'string' && FULL_SHA.test(value)) return value.toLowerCase();
  const shownValue = typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : String(value);
  return failPayload(event, name, `${shownValue} is not a commit sha (40 hex digits)`);
}

function failPayload(event: string, name: string, why: string): never {
  throw new SecretScanError(
    `The ${event} event payload has an invalid ${name}: ${why}.`,
    'pre-deploy',
    'The payload is read from GITHUB_EVENT_PATH; run deployguard in the workflow of that event, ' +
      'or without an event to scan the whole history.'
  );
}

function field(obj: unknown, key: string): unknown {
  return obj !== null && typeof obj === 'object' ? (obj as Record<string, unknown>)[key] : undefined;
}

/** Rule 1: base = the last deployed commit, when head descends from it; 'rewritten' otherwise. */
async function fromLastDeploy(
  git: Git,
  h: History,
  head: string,
  last: string
): Promise<Found | 'rewritten'> {
  return h.run(`the last deployed commit ${short(last)}`, [head, last], async final => {
    const base = await git.commit(last);
    if (base && (await git.isAncestor(base, head))) return between(git, base, head);
    // Unknown here, or not an ancestor: certain only once head's history is all here.
    if (await git.truncated(head)) return NEED;
    if (!base && !final) return NEED;
    return 'rewritten' as const;
  });
}

async function fromPullRequest(
  git: Git,
  h: History,
  input: RangeInput,
  event: string,
  payload: unknown
): Promise<Found> {
  const pr = field(payload, 'pull_request');
  const baseSha = payloadSha(event, 'pull_request.base.sha', field(field(pr, 'base'), 'sha'));
  const headField = field(field(pr, 'head'), 'sha');
  const prHead = headField === undefined ? undefined : payloadSha(event, 'pull_request.head.sha', headField);
  const tip = prHead ?? (await resolveHead(git, h, input.head));

  return h.run(`pull request ${short(baseSha)}...${short(tip)}`, [tip, baseSha], async final => {
    const head = await git.commit(tip);
    if (!head) {
      if (!final) return NEED;
      throw new SecretScanError(
        `The pull request head ${tip} is not in ${git.dir} and could not be fetched from origin.`,
        'pre-deploy',
        FETCH_DEPTH_HINT
      );
    }
    const base = await git.commit(baseSha);
    if (!base) {
      if (!final || (await git.truncated(head))) return NEED;
      return everything(
        git,
        head,
        `the pull request base ${short(baseSha)} is unknown here and on origin: scanning the whole history`
      );
    }
    const mb = await git.mergeBase(base, head);
    if (!mb) {
      if ((await git.truncated(head)) || (await git.truncated(base))) return NEED;
      return everything(
        git,
        head,
        'the pull request shares no history with its base: scanning the whole history'
      );
    }
    return between(git, mb, head);
  });
}

async function fromPush(
  git: Git,
  h: History,
  input: RangeInput,
  event: string,
  payload: unknown
): Promise<Found> {
  const before = payloadSha(event, 'before', field(payload, 'before'));
  const afterField = field(payload, 'after');
  const after = afterField === undefined ? undefined : payloadSha(event, 'after', afterField);
  if (after === ZERO_SHA || field(payload, 'deleted') === true) {
    throw new SecretScanError(
      `The push event deletes ${String(field(payload, 'ref') ?? 'a ref')}: no commits go out with it.`,
      'pre-deploy',
      'Deploy on pushes that add commits (on.push.branches), not on branch deletions.'
    );
  }
  const tip = after ?? (await resolveHead(git, h, input.head));
  const forced = field(payload, 'forced') === true;

  if (before === ZERO_SHA) return fromNewBranch(git, h, tip, field(payload, 'ref'));

  return h.run(`the push ${short(before)}..${short(tip)}`, [tip, before], async final => {
    const head = await git.commit(tip);
    if (!head) return final ? fail(`the pushed commit ${tip} is not in ${git.dir}`) : NEED;
    const prev = await git.commit(before);
    if (!prev) {
      if (!final || (await git.truncated(head))) return NEED;
      return everything(
        git,
        head,
        `force-push: the previous tip ${short(before)} is unknown here and on origin, so the whole history is scanned`
      );
    }
    if (!forced && (await git.isAncestor(prev, head))) return between(git, prev, head);
    // Not an ancestor: a force-push (unless the cut-off history hides the link).
    if (!forced && (await git.truncated(head))) return NEED;
    const mb = await git.mergeBase(prev, head);
    if (!mb) {
      if ((await git.truncated(head)) || (await git.truncated(prev))) return NEED;
      return everything(
        git,
        head,
        `force-push: ${short(before)} shares no history with ${short(head)}, so the whole history is scanned`
      );
    }
    const why = forced ? 'force-push' : `force-push (${short(before)} is not an ancestor of ${short(head)})`;
    return between(git, mb, head, `${why}: scanning from the merge-base ${short(mb)} of before and after`);
  });
}

/** A new branch: the commits on no other remote branch, or the whole history when none is known. */
async function fromNewBranch(git: Git, h: History, tip: string, ref: unknown): Promise<Found> {
  const branch =
    typeof ref === 'string' && ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : '';
  // Only compared with ref names from for-each-ref below; never passed to git.
  const label = branch
    ? `new branch ${branch}`
    : `new ref ${typeof ref === 'string' ? ref.slice(0, 200) : ''}`.trim();
  const self = new Set(branch ? [`refs/remotes/origin/${branch}`] : []);
  self.add('refs/remotes/origin/HEAD');
  const others = [
    ...new Set((await git.remoteBranches()).filter(b => !self.has(b.ref)).map(b => b.sha.toLowerCase()))
  ]
    .filter(sha => FULL_SHA.test(sha))
    .sort();

  return h.run(`the ${label}`, [tip, ...others], async final => {
    const head = await git.commit(tip);
    if (!head) return final ? fail(`the pushed commit ${tip} is not in ${git.dir}`) : NEED;
    if (others.length === 0) {
      return everything(
        git,
        head,
        `${label}: no other remote branch is known here, so the whole history is scanned`
      );
    }
    const commits = await git.list([head, '--not', ...others]);
    const shallow = await git.shallowCommits();
    if (commits.some(c => shallow.has(c))) return NEED;
    return {
      head,
      commits,
      logOpts: [head, '--not', ...others],
      note: `${label}: the commits on no other remote branch (${others.length} known)`
    };
  });
}

function fail(what: string): never {
  throw new SecretScanError(`Cannot work out the commits to scan: ${what}.`, 'pre-deploy', FETCH_DEPTH_HINT);
}

/** The caller's head (GITHUB_SHA, HEAD, ...) as a full sha, fetched when it is a sha not here. */
async function resolveHead(git: Git, h: History, rev: string): Promise<string> {
  if (typeof rev !== 'string' || !REVISION.test(rev) || rev.length > 256) {
    throw new SecretScanError(
      `The head to scan up to is not a valid revision: ${JSON.stringify(String(rev).slice(0, 80))}.`,
      'pre-deploy',
      'Pass a commit sha (GITHUB_SHA) or a ref such as HEAD.'
    );
  }
  const wants = FULL_SHA.test(rev) ? [rev.toLowerCase()] : [];
  return h.run(`the head commit ${rev}`, wants, async final => {
    const sha = await git.commit(rev);
    if (sha) return sha;
    if (!final && wants.length > 0) return NEED;
    return fail(`${rev} is not a commit in ${git.dir}`);
  });
}

// ---------------------------------------------------------------------------------------------

/** The commits going out with a deploy of `input.head`, by the rules at the top of this file. */
export async function resolveRange(input: RangeInput): Promise<CommitRange> {
  const dir = path.resolve(input.repoDir);
  const isDir = await stat(dir).then(
    s => s.isDirectory(),
    () => false
  );
  if (!isDir) {
    throw new SecretScanError(
      `${dir} is not a directory: there is no checkout to work out the commits to scan from.`,
      'pre-deploy',
      'Check out the repository (actions/checkout with fetch-depth: 0) before the secret scan.'
    );
  }
  const git = new Git(dir);
  const top = await git.run(['rev-parse', '--git-dir']);
  if (top.code !== 0) {
    // The one check that the workspace is a repository at all (the gate asks nothing before this).
    if (/not a git repository/i.test(top.stderr))
      throw new SecretScanError(
        `${dir} is not a git checkout, so the commits going out cannot be scanned (git: ${stderrTail(top.stderr)})`,
        'pre-deploy',
        'Check out the repository with actions/checkout (fetch-depth: 0), or limit the scan to the artifact with `scan: artifact`.'
      );
    throw git.failure(
      ['rev-parse', '--git-dir'],
      top,
      'Check out the repository (actions/checkout with fetch-depth: 0) before the secret scan.'
    );
  }
  const h = new History(git, input.deepen ?? true);
  const notes: string[] = [];
  const done = (source: RangeSource, f: Found): CommitRange => {
    const fetched =
      h.fetched.length > 0 ? [`fetched more history from origin (${h.fetched.join(', ')})`] : [];
    const note = [...notes, ...(f.note ? [f.note] : []), ...fetched].join('; ');
    return {
      source,
      ...(f.base ? { base: f.base } : {}),
      head: f.head,
      commits: Object.freeze([...f.commits]),
      logOpts: Object.freeze([...f.logOpts]),
      ...(note ? { note } : {})
    };
  };

  // Rule 1: the host's record of what it runs now.
  const recorded = typeof input.lastDeployedCommit === 'string' ? input.lastDeployedCommit.trim() : '';
  if (recorded) {
    if (!/^[0-9a-f]{7,40}$/i.test(recorded)) {
      notes.push(`the recorded last deploy ${JSON.stringify(recorded.slice(0, 80))} is not a commit sha`);
    } else {
      const head = await resolveHead(git, h, input.head);
      const last = recorded.toLowerCase();
      const r = await fromLastDeploy(git, h, head, last);
      if (r !== 'rewritten') {
        return done(
          'last-deploy',
          r.commits.length === 0 ? { ...r, note: 'nothing new since the last deploy' } : r
        );
      }
      notes.push(
        `the last deployed commit ${short(last)} is not an ancestor of ${short(head)} (history rewritten?)`
      );
    }
  }

  // Rules 2 and 3: the event that started the workflow.
  const name = input.event?.name;
  const payload: unknown = input.event?.payload;
  if (name === 'pull_request' || name === 'pull_request_target') {
    return done('pull-request', await fromPullRequest(git, h, input, name, payload));
  }
  if (name === 'push') {
    return done('push', await fromPush(git, h, input, name, payload));
  }

  // Rule 4: nothing to go by.
  const head = await resolveHead(git, h, input.head);
  const whole = await h.run(`the whole history of ${short(head)}`, [head], async () => everything(git, head));
  return done('first-deploy', whole);
}
