/**
 * The one way deployguard runs git: in the repository it names, and only there. Variables that
 * point git at another repository (GIT_DIR from a hook, GIT_INDEX_FILE, alternates …) are removed
 * from every git run, and from the gitleaks runs too (gitleaks runs `git log` itself), so the
 * range of commits, the scan of those commits and the record's list of changes all read the same
 * repository.
 */
import * as path from 'node:path';
import { describeOutcome, processEnv, runProcess, runProcessSync, type ProcessResult } from './process.js';

/**
 * The variables that make git read another repository than the one it runs in: the list git
 * itself clears before it runs a command in another repository (`git rev-parse
 * --local-env-vars`), plus GIT_NAMESPACE, which changes the refs it sees. Left out of that list:
 * GIT_CONFIG, GIT_CONFIG_PARAMETERS and GIT_CONFIG_COUNT. They set options rather than pick a
 * repository, and runners pass settings such as `safe.directory` or an auth header for fetches
 * through them; the range, the scan and the record all get them alike.
 */
export const REPOSITORY_VARIABLES: readonly string[] = [
  'GIT_DIR',
  'GIT_WORK_TREE',
  'GIT_IMPLICIT_WORK_TREE',
  'GIT_INDEX_FILE',
  'GIT_OBJECT_DIRECTORY',
  'GIT_ALTERNATE_OBJECT_DIRECTORIES',
  'GIT_COMMON_DIR',
  'GIT_NAMESPACE',
  'GIT_GRAFT_FILE',
  'GIT_SHALLOW_FILE',
  'GIT_REPLACE_REF_BASE',
  'GIT_NO_REPLACE_OBJECTS',
  'GIT_PREFIX',
  'GIT_INTERNAL_SUPER_PREFIX'
];

/**
 * The environment of git (and of gitleaks, which runs git): `base` without the variables above;
 * never a prompt for a password, never a pager, messages in one language so stderr can be read.
 */
export function gitEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return processEnv(base, {
    drop: REPOSITORY_VARIABLES,
    set: { GIT_TERMINAL_PROMPT: '0', GCM_INTERACTIVE: 'never', GIT_PAGER: 'cat', LC_ALL: 'C' }
  });
}

export interface GitResult {
  /** git's exit code; -1 when it did not end by itself (timeout, cancel, too much output, signal). */
  readonly code: number;
  readonly stdout: Buffer;
  /** git's stderr, followed by why it was stopped when code is -1. */
  readonly stderr: string;
  /** git could not be started at all (not installed, not on PATH). */
  readonly notFound: boolean;
}

export interface GitOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Bytes of stdout kept; more kills git (code -1). Default 1 GiB: rev-lists can be long. */
  readonly maxOutputBytes?: number;
  /** The environment to start from (default: this process's); cleaned by `gitEnv` either way. */
  readonly env?: NodeJS.ProcessEnv;
}

const DEFAULT_TIMEOUT_MS = 120_000;
const DEFAULT_MAX_OUTPUT = 1024 * 1024 * 1024;

/** `git -C <repo> <args>` in <repo>: the repository is always named, never found from the environment. */
function argv(repo: string, args: readonly string[]): string[] {
  return ['-C', path.resolve(repo), ...args];
}

function toGitResult(r: ProcessResult, timeoutMs: number): GitResult {
  const stderr = r.stderr.toString('utf8');
  if (r.outcome === 'exit' && r.code !== null) {
    return { code: r.code, stdout: r.stdout, stderr, notFound: false };
  }
  return {
    code: -1,
    stdout: r.stdout,
    stderr: `${stderr}\n${describeOutcome(r, timeoutMs)}`,
    notFound: r.outcome === 'error' && r.error?.code === 'ENOENT'
  };
}

/** Runs git in `repo`; never throws (see `notFound` and `code`). */
export async function runGit(
  repo: string,
  args: readonly string[],
  opts: GitOptions = {}
): Promise<GitResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const r = await runProcess('git', argv(repo, args), {
    env: gitEnv(opts.env),
    timeoutMs,
    signal: opts.signal,
    maxOutputBytes: opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT
  });
  return toGitResult(r, timeoutMs);
}

/** The same, synchronously: for a quick question asked while settings are read. */
export function runGitSync(
  repo: string,
  args: readonly string[],
  opts: Omit<GitOptions, 'signal'> = {}
): GitResult {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const r = runProcessSync('git', argv(repo, args), {
    env: gitEnv(opts.env),
    timeoutMs,
    maxOutputBytes: opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT
  });
  return toGitResult(r, timeoutMs);
}
