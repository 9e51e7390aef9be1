/**
 * The one place deployguard starts local processes (git, gitleaks, the test command, local check
 * commands, the demo's tools). Every run has a timeout, can be cancelled, keeps a bounded amount
 * of output and gets an environment built on purpose (see `processEnv`), so no caller forgets one
 * of them. Programs run without a shell: a caller that wants one runs `/bin/sh -c` itself.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export interface ProcessOptions {
  readonly cwd?: string;
  /** The whole environment of the child (default: this process's). Build it with `processEnv`. */
  readonly env?: NodeJS.ProcessEnv;
  /** Killed (SIGKILL) after this long; the result's outcome is then `timeout`. Default 10 minutes. */
  readonly timeoutMs?: number;
  /** Aborting kills the child (SIGKILL); the result's outcome is then `cancelled`. */
  readonly signal?: AbortSignal;
  /** Bytes kept of stdout and of stderr, each. Default 64 MiB. */
  readonly maxOutputBytes?: number;
  /**
   * Past `maxOutputBytes`: `fail` kills the child and reports `overflow` (for output that is
   * parsed, where a cut would be a wrong answer); `tail` keeps the newest bytes (for output that
   * is only shown). Default `fail`.
   */
  readonly overflow?: 'fail' | 'tail';
  /**
   * The child leads its own process group, and a timeout or cancel kills the whole group: what a
   * shell command started too, not just the shell (which would leave e.g. a hung curl running).
   */
  readonly group?: boolean;
  /** Each chunk as it arrives, stdout and stderr in the order they came (streaming). */
  readonly onOutput?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void;
}

export interface ProcessResult {
  /** `exit`: it ended by itself (see code/signal); `error`: it could not be started. */
  readonly outcome: 'exit' | 'timeout' | 'cancelled' | 'overflow' | 'error';
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
  /** Why it could not be started (ENOENT, EACCES …), for outcome `error`. */
  readonly error?: NodeJS.ErrnoException;
  readonly ms: number;
}

const DEFAULT_TIMEOUT_MS = 10 * 60_000;
const DEFAULT_MAX_OUTPUT = 64 * 1024 * 1024;
/**
 * After the child exited, how long to wait for its output pipes to close. A background process it
 * left behind may hold them forever; the output that matters has arrived by then.
 */
const AFTER_EXIT_MS = 250;
/** SIGKILL cannot be ignored: this only bounds the wait for a process stuck in the kernel. */
const AFTER_KILL_MS = 2000;

/** Output of one stream, bounded. */
class Capture {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly max: number,
    private readonly keepTail: boolean
  ) {}

  /** Adds a chunk; false when the bound is passed and the caller asked to fail. */
  add(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size <= this.max) return true;
    if (!this.keepTail) return false;
    const all = Buffer.concat(this.chunks);
    this.chunks = [all.subarray(all.length - this.max)];
    this.size = this.max;
    return true;
  }

  get buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * Runs `file` with `args` (no shell) and resolves when it has ended, whatever the outcome: it
 * never rejects, so a caller decides what a non-zero exit, a timeout or a missing program means.
 */
export function runProcess(
  file: string,
  args: readonly string[],
  opts: ProcessOptions = {}
): Promise<ProcessResult> {
  const started = Date.now();
  const max = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  const out = new Capture(max, opts.overflow === 'tail');
  const err = new Capture(max, opts.overflow === 'tail');
  return new Promise<ProcessResult>(resolve => {
    const result = (
      outcome: ProcessResult['outcome'],
      exit?: { code: number | null; signal: NodeJS.Signals | null },
      error?: NodeJS.ErrnoException
    ): ProcessResult => ({
      outcome,
      code: exit?.code ?? null,
      signal: exit?.signal ?? null,
      stdout: out.buffer,
      stderr: err.buffer,
      ...(error ? { error } : {}),
      ms: Date.now() - started
    });
    if (opts.signal?.aborted) return resolve(result('cancelled'));

    let child: ChildProcess;
    try {
      child = spawn(file, [...args], {
        cwd: opts.cwd,
        env: opts.env ?? process.env,
        detached: opts.group === true,
        stdio: ['ignore', 'pipe', 'pipe'],
        windowsHide: true
      });
    } catch (e) {
      return resolve(result('error', undefined, e as NodeJS.ErrnoException));
    }

    let settled = false;
    let stopped: 'timeout' | 'cancelled' | 'overflow' | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let grace: NodeJS.Timeout | undefined;
    const finish = (error?: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      opts.signal?.removeEventListener('abort', onAbort);
      child.stdout?.destroy();
      child.stderr?.destroy();
      if (error) resolve(result('error', undefined, error));
      else resolve(result(stopped ?? 'exit', exit));
    };
    const kill = (why: 'timeout' | 'cancelled' | 'overflow') => {
      stopped ??= why;
      try {
        if (opts.group && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        // Already gone.
      }
      clearTimeout(grace);
      grace = setTimeout(() => finish(), AFTER_KILL_MS);
    };
    const timer = setTimeout(() => kill('timeout'), opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const onAbort = () => kill('cancelled');
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const take = (capture: Capture, stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      if (stopped === 'overflow') return;
      opts.onOutput?.(chunk, stream);
      if (!capture.add(chunk)) kill('overflow');
    };
    child.stdout?.on('data', take(out, 'stdout'));
    child.stderr?.on('data', take(err, 'stderr'));
    child.on('error', e => finish(e as NodeJS.ErrnoException));
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      if (stopped) return;
      clearTimeout(grace);
      grace = setTimeout(() => finish(), AFTER_EXIT_MS);
    });
    child.on('close', (code, signal) => {
      exit ??= { code, signal };
      finish();
    });
  });
}

/**
 * A user's command line (`/bin/sh -c`): the test command, a local check. It leads its own process
 * group, so a timeout or cancel kills what it started too; its output only goes to `onOutput`
 * (shown, never parsed: nothing is kept here).
 */
export function runShell(
  command: string,
  opts: Pick<ProcessOptions, 'cwd' | 'env' | 'timeoutMs' | 'signal' | 'onOutput'>
): Promise<ProcessResult> {
  return runProcess('/bin/sh', ['-c', command], {
    ...opts,
    group: true,
    overflow: 'tail',
    maxOutputBytes: 0
  });
}

/**
 * The same for the few places that must stay synchronous (a quick question asked while settings
 * are read). Output is capped and the child killed past it; it never throws.
 */
export function runProcessSync(
  file: string,
  args: readonly string[],
  opts: Pick<ProcessOptions, 'cwd' | 'env' | 'timeoutMs' | 'maxOutputBytes'> = {}
): ProcessResult {
  const started = Date.now();
  const r = spawnSync(file, [...args], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    killSignal: 'SIGKILL',
    maxBuffer: opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT,
    windowsHide: true
  });
  const error = r.error as NodeJS.ErrnoException | undefined;
  const outcome: ProcessResult['outcome'] = !error
    ? 'exit'
    : error.code === 'ETIMEDOUT'
      ? 'timeout'
      : error.code === 'ENOBUFS'
        ? 'overflow'
        : 'error';
  return {
    outcome,
    code: r.status,
    signal: r.signal,
    stdout: r.stdout ?? Buffer.alloc(0),
    stderr: r.stderr ?? Buffer.alloc(0),
    ...(outcome === 'error' && error ? { error } : {}),
    ms: Date.now() - started
  };
}

export interface EnvChanges {
  /** Names to leave out: exact names, or patterns matched against each name. */
  readonly drop?: readonly (string | RegExp)[];
  /** Values to set (after dropping). */
  readonly set?: Readonly<Record<string, string>>;
}

/**
 * A child's environment: `base` without the dropped names, plus `set`. A fresh object: the base
 * is never changed, so one caller's choices never leak into another's.
 */
export function processEnv(base: NodeJS.ProcessEnv, changes: EnvChanges = {}): NodeJS.ProcessEnv {
  const drop = changes.drop ?? [];
  const dropped = (name: string) => drop.some(d => (typeof d === 'string' ? d === name : d.test(name)));
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(base)) {
    if (value !== undefined && !dropped(name)) env[name] = value;
  }
  return { ...env, ...changes.set };
}

/** "exited with code 3", "killed by SIGTERM", "timed out after 5 s": how a run ended, for messages. */
export function describeOutcome(r: ProcessResult, timeoutMs = DEFAULT_TIMEOUT_MS): string {
  switch (r.outcome) {
    case 'timeout':
      return `timed out after ${timeoutMs < 10_000 ? `${timeoutMs} ms` : `${Math.round(timeoutMs / 1000)} s`}`;
    case 'cancelled':
      return 'cancelled';
    case 'overflow':
      return 'printed more output than deployguard keeps (killed)';
    case 'error':
      return `could not be started: ${r.error?.message ?? 'unknown error'}`;
    case 'exit':
      return r.signal ? `killed by ${r.signal}` : `exited with code ${r.code}`;
  }
}

/**
 * Runs a program that must succeed (the demo's tools): its stdout, or an Error naming the
 * program, how it ended and the end of its stderr.
 */
export async function runChecked(
  file: string,
  args: readonly string[],
  opts: ProcessOptions = {}
): Promise<Buffer> {
  const r = await runProcess(file, args, opts);
  if (r.outcome === 'exit' && r.code === 0) return r.stdout;
  const stderr = r.stderr.toString('utf8').trim().split('\n').slice(-5).join('\n');
  throw new Error(`${file} ${describeOutcome(r, opts.timeoutMs)}${stderr ? `: ${stderr}` : ''}`);
}
