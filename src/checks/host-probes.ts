import type { ExecResult, RemoteShell } from '../io/ssh.js';
import { parseServiceStatus, serviceCommands, sudoPrefix, type ServiceState } from '../remote/commands.js';
import { lines, sh, Shell, userScript } from '../remote/shell.js';
import type {
  CommandCheck,
  FileFreshCheck,
  LogsCheck,
  ProcessCheck,
  ServiceSettings,
  VersionCheck
} from '../settings/types.js';
import type { CheckContext, HostContext, Probe, ProbeResult } from './types.js';
import { reportsVersion } from './version.js';

/*
 * Checks that run on a host over its open SSH connection. Every probe resolves with ok/reason and
 * never throws: a failed or unreachable host is a failed check, and its reason says why in one
 * line (plus, where they explain it, a few lines of output).
 *
 * The remote scripts are built with `sh` (values quoted) and `userScript` (commands the user
 * wrote), like every other remote command. Each remote command inside a probe is bounded by the
 * check's `timeout`; probes that watch a window (process, logs) last the window, polling.
 */

/** How often window probes look again. */
const POLL_MS = 2000;
/** Output lines shown when a command fails; matching log lines shown when a logs check fails. */
const TAIL_LINES = 10;
const MATCH_LINES = 5;
/** Service log lines appended when the process check fails. */
const SERVICE_LOG_LINES = 3;
const LINE_WIDTH = 200;
/** Bytes of a log file read per remote call (a busy log is read in several calls, never skipped). */
const FILE_CHUNK = 1024 * 1024;
/** After the window, at most this many extra reads to catch up with a log that grows very fast. */
const FILE_CATCH_UP_READS = 32;
/** Environment values shorter than this are not masked in output (masking `1` would mangle it). */
const MIN_MASKED = 4;
/** How long past a command's timeout we wait for the host to report it before giving up on it. */
const TIMEOUT_GRACE_MS = 1500;

// ---------------------------------------------------------------------------------------------
// Plumbing: a failure reason as an exception inside a probe, abortable waits, remote calls
// ---------------------------------------------------------------------------------------------

/** Ends a probe with this reason; `guarded` turns it into `{ ok: false, reason }`. */
class Fail extends Error {}

function guarded(body: (signal: AbortSignal) => Promise<ProbeResult>): Probe {
  return async signal => {
    const started = Date.now();
    // The runner adds "(cancelled)"; this says how far the probe got.
    const stopped = () => ({ ok: false, reason: `stopped after ${human(Date.now() - started)}` });
    if (signal.aborted) return stopped();
    try {
      return await body(signal);
    } catch (err) {
      if (signal.aborted) return stopped();
      const message = err instanceof Error ? err.message : String(err);
      return { ok: false, reason: err instanceof Fail ? message : `could not run on the host: ${message}` };
    }
  };
}

/** Resolves after `ms`, or at once when the signal aborts (the caller then stops). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    if (signal.aborted || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, signal);
  if (signal.aborted) throw new Fail('cancelled');
}

/**
 * Runs a script; stops waiting when the signal aborts or the timeout (plus a grace) has passed.
 * The shell's own timeout closes the channel, but sshd keeps a channel open while its command
 * still runs, so without this a hung remote command would hold the probe past its timeout.
 */
function exec(
  shell: RemoteShell,
  script: Shell,
  opts: { timeoutMs: number; stdin?: string },
  signal: AbortSignal
): Promise<ExecResult> {
  if (signal.aborted) return Promise.reject(new Fail('cancelled'));
  return new Promise((resolve, reject) => {
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      settle();
    };
    const onAbort = () => finish(() => reject(new Fail('cancelled')));
    const timer = setTimeout(
      () =>
        finish(() => resolve({ code: 124, stdout: '', stderr: `(timed out after ${opts.timeoutMs} ms)` })),
      opts.timeoutMs + TIMEOUT_GRACE_MS
    );
    signal.addEventListener('abort', onAbort, { once: true });
    const stdin = opts.stdin !== undefined ? { stdin: opts.stdin } : {};
    shell.exec(script, { timeoutMs: opts.timeoutMs, ...stdin }).then(
      r => finish(() => resolve(r)),
      (err: unknown) => finish(() => reject(err instanceof Error ? err : new Error(String(err))))
    );
  });
}

function timedOut(r: ExecResult, timeoutMs: number): boolean {
  return r.code === 124 && r.stderr.endsWith(`(timed out after ${timeoutMs} ms)`);
}

/** A script of our own that must succeed; its failure ends the probe with stderr's last line. */
async function execOk(
  host: HostContext,
  script: Shell,
  what: string,
  timeoutMs: number,
  signal: AbortSignal
): Promise<string> {
  const r = await exec(host.shell, script, { timeoutMs }, signal);
  if (timedOut(r, timeoutMs)) throw new Fail(`${what}: no answer from the host within ${human(timeoutMs)}`);
  if (r.code !== 0) {
    const last = lastLines(r.stderr || r.stdout, 1)[0];
    throw new Fail(`${what} failed on the host (exit ${r.code})${last ? `: ${last}` : ''}`);
  }
  return r.stdout;
}

// ---------------------------------------------------------------------------------------------
// Text helpers
// ---------------------------------------------------------------------------------------------

function clip(line: string, width = LINE_WIDTH): string {
  return line.length > width ? `${line.slice(0, width)}…` : line;
}

/** The last `n` non-empty lines, each clipped. */
function lastLines(text: string, n: number): string[] {
  return text
    .split('\n')
    .map(l => l.trimEnd())
    .filter(l => l.trim() !== '')
    .slice(-n)
    .map(l => clip(l));
}

function indented(list: readonly string[]): string {
  return list.map(l => `\n  ${l}`).join('');
}

/** A short, flat excerpt of command output for a one-line reason. */
function excerpt(text: string, width = 120): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat ? `"${clip(flat, width)}"` : '(no output)';
}

/** "800 ms", "1.5 s", "10 s", "3m 20s", "2h 5m". */
function human(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  if (s < 120) return `${Math.round(s * 10) / 10} s`;
  const total = Math.round(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  return h > 0 ? `${h}h ${m}m` : `${m}m ${total % 60}s`;
}

/** "a", "a and b", "a, b and c". */
function joinAnd(parts: readonly string[]): string {
  return parts.length <= 1 ? (parts[0] ?? '') : `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Masks the values of a command's environment in its output: they may be secrets. */
function masked(text: string, env: Readonly<Record<string, string>>): string {
  const values = Object.values(env)
    .filter(v => v.length >= MIN_MASKED)
    .sort((a, b) => b.length - a.length);
  return values.reduce((t, v) => t.split(v).join('***'), text);
}

/** `KEY=value` lines (systemctl show, and the status scripts of `serviceCommands`). */
function keyValues(out: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of out.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0 && !map.has(line.slice(0, i))) map.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return map;
}

// ---------------------------------------------------------------------------------------------
// command (on: host) and version (on: host)
// ---------------------------------------------------------------------------------------------

/**
 * A user command run from the live release (or `/` before the first deploy), output merged, and
 * killed with its children by `timeout` (exit 124) when it outlives the check's timeout.
 */
function userCommand(host: HostContext, command: string, withEnv: boolean, timeoutMs: number): Shell {
  const secs = String(Math.max(0.01, timeoutMs / 1000));
  return lines(
    // The environment arrives on stdin, not in the script: a remote command line is visible to
    // every user of the host in `ps`, and these values may be secrets.
    withEnv && sh`eval "$(cat)"`,
    sh`cd -- ${host.layout.current} 2>/dev/null || cd /`,
    sh`if command -v timeout >/dev/null 2>&1; then`,
    sh`  timeout -k 1 ${secs} ${userScript(command)} </dev/null 2>&1`,
    sh`else`,
    sh`  ${userScript(command)} </dev/null 2>&1`,
    sh`fi`
  );
}

async function runUserCommand(
  host: HostContext,
  command: string,
  env: Readonly<Record<string, string>>,
  timeoutMs: number,
  signal: AbortSignal
): Promise<{ code: number; output: string; timedOut: boolean }> {
  const names = Object.keys(env);
  const bad = names.find(n => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(n));
  if (bad !== undefined) throw new Fail(`env name "${clip(bad, 64)}" is not a valid shell variable name`);
  const exports = lines(...names.map(n => sh`export ${new Shell(n)}=${env[n] ?? ''}`));
  const started = Date.now();
  const r = await exec(
    host.shell,
    userCommand(host, command, names.length > 0, timeoutMs),
    // The host's `timeout` fires first; this is the backstop where it is missing.
    { timeoutMs: timeoutMs + 2000, ...(names.length > 0 ? { stdin: `${exports.text}\n` } : {}) },
    signal
  );
  // stdout holds the command's merged output; stderr only our own shell's complaints.
  const stderr = r.stderr.replace(/\n?\(timed out after \d+ ms\)\s*$/, '');
  const output = masked(stderr.trim() ? `${r.stdout}\n${stderr}` : r.stdout, env);
  // 124 is also what `timeout` exits with; a command that exits 124 by itself, early, is not late.
  const late = r.code === 124 && Date.now() - started >= timeoutMs;
  return { code: r.code, output, timedOut: late };
}

/**
 * `command` with `on: host`: runs the check's command on the host with its `env` exported; exit 0
 * passes. A failure shows the exit code and the last lines of output (environment values masked).
 */
export function hostCommandProbe(check: CommandCheck, host: HostContext): Probe {
  return guarded(async signal => {
    const started = Date.now();
    const r = await runUserCommand(host, check.run, check.env, check.timeoutMs, signal);
    if (r.code === 0) return { ok: true, reason: `exit 0 in ${human(Date.now() - started)}` };
    const tail = lastLines(r.output, TAIL_LINES);
    const head = r.timedOut ? `no result within ${human(check.timeoutMs)}` : `exit ${r.code}`;
    return { ok: false, reason: tail.length ? `${head}; last lines of output:${indented(tail)}` : head };
  });
}

/**
 * `version` with `run` and `on: host`: the command's output must report the release just
 * deployed (`expect: release`) or its commit (`expect: commit`, full sha or 7+ characters).
 */
export function hostVersionProbe(check: VersionCheck, ctx: CheckContext, host: HostContext): Probe {
  return guarded(async signal => {
    if (!check.run) return { ok: false, reason: 'a version check on a host needs `run`' };
    const expected = check.expect === 'release' ? ctx.release : ctx.commit;
    if (!expected) return { ok: false, reason: `no ${check.expect} is known to compare with` };
    const what = `${check.expect} ${check.expect === 'release' ? expected : clip(expected, 12)}`;
    const r = await runUserCommand(host, check.run, {}, check.timeoutMs, signal);
    if (r.timedOut) {
      return { ok: false, reason: `expected ${what}; no result within ${human(check.timeoutMs)}` };
    }
    if (r.code !== 0) {
      return {
        ok: false,
        reason: `expected ${what}; the command failed (exit ${r.code}): ${excerpt(r.output)}`
      };
    }
    if (reportsVersion(r.output, expected, check.expect)) return { ok: true, reason: `reports ${what}` };
    return { ok: false, reason: `expected ${what}; the command reported ${excerpt(r.output)}` };
  });
}

// ---------------------------------------------------------------------------------------------
// process
// ---------------------------------------------------------------------------------------------

type Watched =
  { kind: 'systemd'; unit: string } | { kind: 'pidfile'; pidfile: string } | { kind: 'status-command' };

/** Why a state at the start of the window is not "running", or undefined when it is. */
function notRunning(w: Watched, s: ServiceState): string | undefined {
  if (w.kind === 'status-command') return s.active === 'active' ? undefined : 'the status command fails';
  if (w.kind === 'pidfile') {
    return s.alive ? undefined : `no live process in ${w.pidfile}`;
  }
  const sub = s.sub ? `, SubState=${s.sub}` : '';
  const restarts = s.restarts ? `, NRestarts=${s.restarts}` : '';
  if (s.active !== 'active') return `${w.unit} is not running: ActiveState=${s.active}${sub}${restarts}`;
  if (!s.alive) {
    return s.pid
      ? `${w.unit} is active but its main PID ${s.pid} is not alive (exited or zombie)${restarts}`
      : `${w.unit} is active but has no main PID${restarts}`;
  }
  return undefined;
}

/** What changed since the start of the window, or undefined when nothing did. */
function changed(w: Watched, first: ServiceState, now: ServiceState, elapsedMs: number): string | undefined {
  const within = `within ${human(elapsedMs)}`;
  if (w.kind === 'status-command') {
    return now.active === 'active'
      ? undefined
      : `the status command fails ${within} (it passed at the start)`;
  }
  const parts: string[] = [];
  const who = w.kind === 'pidfile' ? `PID in ${w.pidfile}` : 'main PID';
  const was = w.kind === 'pidfile' ? `PID ${first.pid} from ${w.pidfile}` : `main PID ${first.pid}`;
  if (now.pid !== first.pid && now.pid !== 0) parts.push(`${who} changed ${first.pid} -> ${now.pid}`);
  else if (now.pid !== first.pid) parts.push(`${was} exited`);
  else if (!now.alive) parts.push(`${was} is no longer alive (exited or zombie)`);
  if (now.restarts !== first.restarts) {
    parts.push(`NRestarts ${first.restarts ?? '?'} -> ${now.restarts ?? '?'}`);
  }
  if (w.kind === 'systemd' && now.active !== 'active') {
    parts.push(`ActiveState active -> ${now.active}${now.sub ? ` (${now.sub})` : ''}`);
  }
  if (parts.length === 0) return undefined;
  const more = (now.restarts ?? 0) > (first.restarts ?? 0);
  const verdict = more ? ': crash loop' : now.pid !== first.pid && now.alive ? ': restarted' : '';
  return `${joinAnd(parts)} ${within}${verdict}`;
}

/**
 * `process`: the service is running at the start (systemd: ActiveState=active and the main PID
 * alive, not a zombie) and still the same process at the end of the window: same main PID, same
 * NRestarts. Looks every 2 s and fails at the first change, so a crash loop under Restart=always
 * that keeps saying "active" is caught. Command services: the pidfile's PID alive and unchanged,
 * or (without a pidfile) the status command passing at the start and at every look.
 */
export function processProbe(check: ProcessCheck, host: HostContext): Probe {
  return guarded(async signal => {
    const svc = host.service;
    const cmds = serviceCommands(svc, host.layout);
    if (svc.manager === 'none' || !cmds) {
      return {
        ok: false,
        reason:
          'service manager is none, so there is no process to check: configure `service` or drop this check'
      };
    }
    let watched: Watched;
    if (svc.manager === 'systemd') watched = { kind: 'systemd', unit: svc.name };
    else if (svc.pidfile) watched = { kind: 'pidfile', pidfile: svc.pidfile };
    else if (svc.status) watched = { kind: 'status-command' };
    else {
      return {
        ok: false,
        reason: 'the command service has neither `pidfile` nor `status`, so there is no process to check'
      };
    }
    const status = async () =>
      parseServiceStatus(await execOk(host, cmds.status, 'service status', check.timeoutMs, signal));
    const withLogs = async (reason: string): Promise<ProbeResult> => {
      const r = await exec(host.shell, cmds.logs, { timeoutMs: check.timeoutMs }, signal).catch(
        () => undefined
      );
      const tail = r && r.code === 0 ? lastLines(r.stdout, SERVICE_LOG_LINES) : [];
      return { ok: false, reason: tail.length ? `${reason}; last log lines:${indented(tail)}` : reason };
    };

    const started = Date.now();
    const first = await status();
    const down = notRunning(watched, first);
    if (down) return withLogs(down);
    const end = started + check.windowMs;
    while (Date.now() < end) {
      await pause(Math.min(POLL_MS, end - Date.now()), signal);
      const change = changed(watched, first, await status(), Date.now() - started);
      if (change) return withLogs(change);
    }
    const window = human(check.windowMs);
    if (watched.kind === 'status-command') return { ok: true, reason: `status command passed for ${window}` };
    return {
      ok: true,
      reason:
        watched.kind === 'systemd'
          ? `main PID ${first.pid} stayed up for ${window} with no restarts`
          : `PID ${first.pid} stayed up for ${window}`
    };
  });
}

// ---------------------------------------------------------------------------------------------
// logs
// ---------------------------------------------------------------------------------------------

/** Finds error lines: any pattern, none of the ignores (plain, case-sensitive substrings). */
function matcher(check: LogsCheck): (line: string) => boolean {
  return line => check.patterns.some(p => line.includes(p)) && !check.ignore.some(i => line.includes(i));
}

function errorReport(source: string, found: readonly string[], when: string): string {
  const shown = found.slice(0, MATCH_LINES).map(l => clip(l.trim()));
  const more = found.length > MATCH_LINES ? [`… and ${found.length - MATCH_LINES} more`] : [];
  return `${source} logged ${plural(found.length, 'error line')} ${when}:${indented([...shown, ...more])}`;
}

const JOURNAL_MARK = '@@deployguard-journal@@';
const FILE_MARK = '@@deployguard-log@@';
const CURSOR = '-- cursor: ';
const INVOCATION_ID = /^[0-9a-f]{32}$/;

/** `Thu 2026-11-26 13:36:16[.123456] UTC` (systemctl show, UTC) as epoch seconds. */
function utcSeconds(stamp: string | undefined): number | undefined {
  const m = /(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)? (?:UTC|GMT)$/.exec(stamp ?? '');
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  return Date.UTC(y, mo - 1, d, h, mi, s) / 1000 + Number(m[7] ?? 0);
}

/**
 * One look at the journal: the unit's state and the log lines of its invocations (the current
 * one, plus those seen earlier in this probe) after the cursor of the previous look.
 */
function journalScript(
  svc: ServiceSettings & { manager: 'systemd' },
  ids: readonly string[],
  cursor?: string
): Shell {
  const sudo = sudoPrefix(svc.sudo);
  const known = ids.map(id => `_SYSTEMD_INVOCATION_ID=${id}`);
  const after = cursor ? sh`--after-cursor=${cursor}` : sh``;
  return lines(
    // UTC timestamps, in microseconds where systemd can (248+), else in seconds; TZ=UTC makes
    // older ones print UTC too (sudo passes a sane TZ through).
    sh`export TZ=UTC LC_ALL=C`,
    sh`set -- -p LoadState -p ActiveState -p InvocationID -p ActiveEnterTimestamp -p ExecMainStartTimestamp -- ${svc.name}`,
    sh`out=$(${sudo}systemctl show --timestamp=us+utc "$@" 2>/dev/null) || out=$(${sudo}systemctl show "$@")`,
    sh`printf '%s\\n' "$out"`,
    sh`echo "HostNow=$(date +%s.%N)"`,
    sh`id=$(printf '%s\\n' "$out" | sed -n 's/^InvocationID=//p')`,
    sh`echo ${JOURNAL_MARK}`,
    sh`if [ -n "$id" ]; then`,
    sh`  if ${sudo}journalctl --no-pager -o cat --show-cursor "_SYSTEMD_INVOCATION_ID=$id" ${known} ${after}; then :; else echo "journalctl-exit=$?" >&2; fi`,
    sh`fi`
  );
}

interface LogSource {
  /** Reads what was logged since the last read. */
  read(): Promise<{ lines: string[]; behind?: boolean }>;
  /** Local time at which the window ends. */
  readonly end: number;
  readonly name: string;
  /** "within 3 s of its start" (journal) or "within 3 s" (file, since the probe began). */
  when(): string;
  passed(linesRead: number): string;
  /** A last line still without its newline when the window ends (files only). */
  flush?(): string;
}

async function journalSource(check: LogsCheck, host: HostContext, signal: AbortSignal): Promise<LogSource> {
  const svc = host.service;
  if (svc.manager !== 'systemd') {
    throw new Fail(
      `the journal holds the logs of systemd units and the service manager is ${svc.manager}: use \`source: file\` with \`path\``
    );
  }
  const ids: string[] = [];
  let cursor: string | undefined;
  const look = async () => {
    const r = await exec(host.shell, journalScript(svc, ids, cursor), { timeoutMs: check.timeoutMs }, signal);
    if (timedOut(r, check.timeoutMs)) {
      throw new Fail(`reading the journal: no answer from the host within ${human(check.timeoutMs)}`);
    }
    const at = r.stdout.indexOf(`${JOURNAL_MARK}\n`);
    if (r.code !== 0 || at < 0) {
      throw new Fail(
        `reading the journal failed (exit ${r.code}): ${lastLines(r.stderr, 1)[0] ?? 'no output'}`
      );
    }
    const kv = keyValues(r.stdout.slice(0, at));
    if (kv.get('LoadState') === 'not-found') throw new Fail(`unit ${svc.name} is not known on the host`);
    const id = kv.get('InvocationID') ?? '';
    if (!INVOCATION_ID.test(id)) throw new Fail(`${svc.name} has not been started: no run to read logs of`);
    const stderr = r.stderr.trim();
    if (/insufficient permissions|not seeing messages from other users/.test(stderr)) {
      throw new Fail(
        `this user may not read the journal of ${svc.name}: add it to the systemd-journal group, or set \`sudo: true\` on the service`
      );
    }
    // journalctl exits 1, silently, when nothing matches; anything else is a real failure.
    if (stderr && stderr !== 'journalctl-exit=1') {
      throw new Fail(`reading the journal failed: ${lastLines(stderr, 1)[0]}`);
    }
    const text = r.stdout.slice(at + JOURNAL_MARK.length + 1).replace(/\n$/, '');
    const all = text ? text.split('\n') : [];
    const last = all.at(-1);
    if (last?.startsWith(CURSOR)) cursor = last.slice(CURSOR.length);
    else if (all.length > 0) {
      // The shell keeps at most 4 MiB of output, and the cursor comes last.
      throw new Fail(`${svc.name} logged too much to scan in one look (over 4 MiB in ${human(POLL_MS)})`);
    }
    if (!ids.includes(id)) ids.push(id);
    return { kv, lines: all.slice(0, -1).filter(l => l !== '-- No entries --') };
  };

  const probeStart = Date.now();
  const first = await look();
  // `date +%N` is GNU; elsewhere it may stay literal, and whole seconds do.
  const hostNow = parseFloat(first.kv.get('HostNow') ?? '');
  const since =
    utcSeconds(first.kv.get('ActiveEnterTimestamp')) ?? utcSeconds(first.kv.get('ExecMainStartTimestamp'));
  // Both ends of "since its start" come from the host's clock; without a start time, the window
  // counts from now (never shorter than asked).
  const ageMs = since !== undefined && Number.isFinite(hostNow) ? Math.max(0, (hostNow - since) * 1000) : 0;
  let pending: string[] | undefined = first.lines;
  const unit = svc.name;
  return {
    name: unit,
    end: probeStart + Math.max(0, check.windowMs - ageMs),
    async read() {
      const out = pending ?? (await look()).lines;
      pending = undefined;
      return { lines: out };
    },
    when: () => `within ${human(ageMs + Date.now() - probeStart)} of its start`,
    passed: n =>
      ageMs >= check.windowMs
        ? `no error lines in ${plural(n, 'line')} ${unit} logged since its start ${human(ageMs)} ago`
        : `no error lines in ${plural(n, 'line')} ${unit} logged in the ${human(check.windowMs)} after its start`
  };
}

/** Why a log file cannot be read, from the host's own answer; undefined when it can. */
function unreadable(state: string | undefined, path: string, user: string): string | undefined {
  switch (state) {
    case 'directory':
      return `${path} is a directory on the host, not a log file: set \`path\` to the file the service writes`;
    case 'unreadable':
      return `${path} exists but ${user} cannot read it: make it readable to that user (for example, add the user to the file's group), or point \`path\` at a log it can read`;
    case 'not-regular':
      return `${path} is not a regular file on the host: set \`path\` to the file the service writes`;
    default:
      return undefined;
  }
}

async function fileSource(check: LogsCheck, host: HostContext, signal: AbortSignal): Promise<LogSource> {
  const path = check.path;
  if (!path) throw new Fail('a logs check with `source: file` needs `path`');
  const look = async (from: number) => {
    // A missing, unreadable or wrong kind of file is reported, never read as "no lines": a
    // check that cannot see the log must not pass. `[ -r ]` is not enough (root passes it for
    // any file), so the file is opened for reading.
    const script = lines(
      sh`if [ -d ${path} ]; then echo state=directory; exit 0; fi`,
      sh`if [ ! -e ${path} ]; then echo state=missing; exit 0; fi`,
      sh`if [ ! -f ${path} ]; then echo state=not-regular; exit 0; fi`,
      sh`if ! ( : < ${path} ) 2>/dev/null; then echo state=unreadable; echo "user=$(id -un 2>/dev/null || id -u)"; exit 0; fi`,
      sh`s=$(stat -L -c %s -- ${path})`,
      sh`echo state=ok; echo "size=$s"`,
      sh`off=${from}; if [ "$s" -lt "$off" ]; then off=0; fi`,
      sh`n=$((s - off)); if [ "$n" -gt ${FILE_CHUNK} ]; then n=${FILE_CHUNK}; fi`,
      sh`echo "offset=$off"; echo "bytes=$n"; echo ${FILE_MARK}`,
      sh`if [ "$n" -gt 0 ]; then tail -c +$((off + 1)) -- ${path} | head -c "$n"; fi`
    );
    const out = await execOk(host, script, `reading ${path}`, check.timeoutMs, signal);
    const at = out.indexOf(`${FILE_MARK}\n`);
    const kv = keyValues(at < 0 ? out : out.slice(0, at));
    const state = kv.get('state');
    const problem = unreadable(state, path, kv.get('user') || 'the SSH user');
    if (problem) throw new Fail(problem);
    if (state === 'missing') return { size: -1, offset: 0, bytes: 0, text: '' };
    if (state !== 'ok' || at < 0) throw new Fail(`reading ${path}: the host gave no usable answer`);
    return {
      size: Number(kv.get('size')),
      offset: Number(kv.get('offset')),
      bytes: Number(kv.get('bytes')),
      text: out.slice(at + FILE_MARK.length + 1)
    };
  };

  const probeStart = Date.now();
  // Only what is written from now on counts; a file that does not exist yet counts from its
  // start, and must exist by the end of the window.
  const start = await look(Number.MAX_SAFE_INTEGER);
  let offset = Math.max(0, start.size);
  let partial = '';
  return {
    name: path,
    end: probeStart + check.windowMs,
    async read() {
      const r = await look(offset);
      if (r.size < 0) {
        if (Date.now() >= probeStart + check.windowMs)
          throw new Fail(
            `${path} does not exist on the host (still missing after ${human(check.windowMs)}): check \`path\`, and that the service writes its log there`
          );
        return { lines: [] };
      }
      // It shrank: truncated or rotated, and the new file is read from its start.
      if (r.offset !== offset) partial = '';
      offset = r.offset + r.bytes;
      const text = partial + r.text;
      const cut = text.lastIndexOf('\n');
      partial = text.slice(cut + 1);
      return {
        lines: text
          .slice(0, cut + 1)
          .split('\n')
          .slice(0, -1),
        behind: offset < r.size
      };
    },
    when: () => `within ${human(Date.now() - probeStart)}`,
    passed: n => `no error lines in ${plural(n, 'line')} written to ${path} in ${human(check.windowMs)}`,
    flush: () => partial
  };
}

/**
 * `logs`: no error line during the window. `journal` (systemd): the log lines of the unit's
 * current invocation (InvocationID; a restart starts a new one, so errors of a previous run do
 * not count), looked at every 2 s until the window has passed since the service started
 * (ActiveEnterTimestamp on the host's clock; once if it has passed already). `file`: lines
 * appended to `path` after the probe started, for the window. Fails at the first look that finds
 * a line containing any of `patterns` and none of `ignore`, showing the first 5 such lines.
 */
export function logsProbe(check: LogsCheck, host: HostContext): Probe {
  return guarded(async signal => {
    const isError = matcher(check);
    const src =
      check.source === 'file'
        ? await fileSource(check, host, signal)
        : await journalSource(check, host, signal);
    let read = 0;
    let extra = 0;
    for (;;) {
      const chunk = await src.read();
      const over = Date.now() >= src.end;
      const last = over && !chunk.behind ? (src.flush?.() ?? '') : '';
      const got = last ? [...chunk.lines, last] : chunk.lines;
      read += got.length;
      const found = got.filter(isError);
      if (found.length > 0) return { ok: false, reason: errorReport(src.name, found, src.when()) };
      if (chunk.behind) {
        if (over && ++extra > FILE_CATCH_UP_READS) {
          return {
            ok: false,
            reason: `${src.name} grows faster than it can be read; stopped scanning after the window`
          };
        }
        if (signal.aborted) throw new Fail('cancelled');
        continue;
      }
      if (over) return { ok: true, reason: src.passed(read) };
      await pause(Math.min(POLL_MS, src.end - Date.now()), signal);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// file-fresh
// ---------------------------------------------------------------------------------------------

/**
 * `file-fresh`: the file's modification time (`stat -L -c %Y`) against the host's own clock
 * (`date +%s` in the same script, so the runner's clock does not matter). Whole seconds.
 */
export function fileFreshProbe(check: FileFreshCheck, host: HostContext): Probe {
  return guarded(async signal => {
    const path = check.path;
    const script = lines(
      sh`now=$(date +%s)`,
      sh`if m=$(stat -L -c %Y -- ${path} 2>&1); then echo "mtime=$m"`,
      sh`elif [ -e ${path} ] || [ -L ${path} ]; then echo "error=$m"`,
      sh`else echo missing; fi`,
      sh`echo "now=$now"`
    );
    const kv = keyValues(await execOk(host, script, `stat ${path}`, check.timeoutMs, signal));
    const error = kv.get('error');
    if (error !== undefined) {
      return { ok: false, reason: `cannot stat ${path}: ${clip(error.replace(/^stat: /, ''), 120)}` };
    }
    if (!kv.has('mtime')) return { ok: false, reason: `${path} does not exist on the host` };
    const ageMs = (Number(kv.get('now')) - Number(kv.get('mtime'))) * 1000;
    if (!Number.isFinite(ageMs)) return { ok: false, reason: `could not read the age of ${path}` };
    // Whole seconds on both sides: "0 s", not "0 ms".
    const age = (ms: number) => (ms < 120_000 ? `${ms / 1000} s` : human(ms));
    const limit = `(limit ${human(check.maxAgeMs)})`;
    if (ageMs < 0) {
      return { ok: true, reason: `modified ${age(-ageMs)} in the future by the host's clock ${limit}` };
    }
    return { ok: ageMs <= check.maxAgeMs, reason: `modified ${age(ageMs)} ago ${limit}` };
  });
}
