/**
 * Secret scanning with gitleaks: the commits a deploy ships, and the artifact it uploads.
 *
 * Every run passes `--redact`, so gitleaks' report (written into a private temp dir and deleted
 * right after it is read) holds `REDACTED` where each secret was; the findings returned here carry
 * only a redacted excerpt, never the secret.
 *
 * Commits: a native gitleaks scans them with `gitleaks git --log-opts=…`. An engine without git
 * mode (the WebAssembly build used in tests has none: `pipe: not implemented on js`) gets the same
 * commits' content for real instead: the lines each commit ADDED, written per file at their
 * original line numbers into a temp dir that mirrors the repo's paths, then `gitleaks dir` on it.
 * Findings keep file and line, are attributed to their commit, and get gitleaks' own git-mode
 * fingerprint (`<commit>:<file>:<rule>:<line>`), so one `.gitleaksignore` works with both engines.
 *
 * Config: `configPath` when given, else gitleaks finds `.gitleaks.toml` in the scanned root. The
 * per-commit temp dirs are no repo: for them the repo's `.gitleaks.toml` is used when it exists
 * (and gitleaks' default rules otherwise), as native git mode would. For an artifact, the caller
 * should pass the REPO's `.gitleaks.toml` as `configPath`; without it an artifact's own
 * `.gitleaks.toml` (if it ships one) would be used.
 *
 * The temp dirs hold the added lines (secrets included): they are made private (mkdtemp, 0700)
 * and removed when the scan ends, whatever the outcome. One thing gitleaks' `dir` mode cannot be
 * kept from: it reads a `.gitleaksignore` at the root of the tree it scans, so a commit that adds
 * lines to the repo's root `.gitleaksignore` has those (global `file:rule:line`) entries applied,
 * as a native scan of a checkout holding that file would.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { SecretScanError } from '../errors.js';
import { gitEnv, runGit } from '../io/git.js';
import { runProcess } from '../io/process.js';

export interface Finding {
  readonly rule: string;
  readonly description: string;
  /** Path relative to the scanned root (repo or artifact), POSIX separators. */
  readonly file: string;
  readonly line: number;
  readonly endLine: number;
  readonly commit?: string;
  readonly author?: string;
  readonly email?: string;
  readonly date?: string;
  readonly message?: string;
  /** gitleaks' fingerprint: what `.gitleaksignore` lists. */
  readonly fingerprint: string;
  readonly source: 'commits' | 'artifact';
  /** A redacted excerpt of the match (the secret replaced by `REDACTED`): never the secret. */
  readonly redacted: string;
}

export interface ScanOptions {
  /** A gitleaks config (`.gitleaks.toml`). */
  readonly configPath?: string;
  /** A `.gitleaksignore` file, or a directory holding one. */
  readonly ignorePath?: string;
  /** Limit for each gitleaks run (default 10 minutes). */
  readonly timeoutMs?: number;
}

/** The engine: a gitleaks executable. Structurally compatible with acquire.ts' `Engine`. */
export interface GitleaksEngine {
  readonly path: string;
  readonly version: string;
  /** Whether `gitleaks git` works. Unset: tried once per engine path and remembered. */
  readonly gitleaksGitMode?: boolean;
}

const PHASE = 'pre-deploy';
const DEFAULT_TIMEOUT_MS = 10 * 60_000;
const STDERR_TAIL_LINES = 15;
/** Bytes of the engine's output kept for error messages. */
const OUTPUT_TAIL = 16_384;
const EXCERPT_MAX = 160;
/** gitleaks runs at once when a commit scan needs several. */
const LAYER_CONCURRENCY = 2;
/** gitleaks' placeholder for a redacted secret. */
const REDACTED = 'REDACTED';
/** gitleaks' default rules, as an explicit config: `useDefault` extends the built-in config. */
const DEFAULT_CONFIG = 'title = "gitleaks default rules (deployguard)"\n\n[extend]\nuseDefault = true\n';

/** Engines found to have no git mode, by path. */
const noGitMode = new Set<string>();

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/**
 * The exact argv a native gitleaks gets to scan a commit range (pure). gitleaks splits
 * `--log-opts` on spaces, so no single option may contain whitespace. No logOpts: no
 * `--log-opts`, which makes gitleaks scan the whole history of every ref.
 */
export function gitModeArgs(
  repoDir: string,
  logOpts: readonly string[],
  reportPath: string,
  opts: ScanOptions = {}
): string[] {
  for (const o of logOpts) {
    if (o === '' || /\s/.test(o)) {
      throw new SecretScanError(
        `A git log option for gitleaks is empty or contains whitespace: ${JSON.stringify(o)}`,
        PHASE,
        'gitleaks splits --log-opts on spaces: pass each option as a separate item without spaces.'
      );
    }
  }
  return [
    'git',
    ...commonArgs(reportPath, opts.configPath, opts.ignorePath),
    ...(logOpts.length > 0 ? [`--log-opts=${logOpts.join(' ')}`] : []),
    repoDir
  ];
}

/** `gitleaks dir` on an artifact directory (or a single file); paths relative to it. */
export async function scanDirectory(
  engine: GitleaksEngine,
  dir: string,
  opts: ScanOptions = {}
): Promise<Finding[]> {
  const target = path.resolve(dir);
  let isDir: boolean;
  try {
    isDir = statSync(target).isDirectory();
  } catch {
    throw new SecretScanError(
      `Cannot scan ${dir} for secrets: it does not exist.`,
      PHASE,
      'Build the artifact before the secret scan, or fix the artifact path.'
    );
  }
  // Run from the root with target '.', so gitleaks reports paths relative to the root.
  const cwd = isDir ? target : path.dirname(target);
  const arg = isDir ? '.' : path.basename(target);
  return withTempDir(async tmp => {
    const reportPath = path.join(tmp, 'report.json');
    const args = ['dir', ...commonArgs(reportPath, abs(opts.configPath), abs(opts.ignorePath)), arg];
    const raw = await runEngine(engine, args, cwd, reportPath, opts.timeoutMs);
    return raw.map(r => toFinding(r, 'artifact', {}));
  });
}

/**
 * Scans the commits going out (`commits`: full or abbreviated SHAs, in `repoDir`).
 *
 * Native engine: `gitleaks git --log-opts=<logOpts>`, where logOpts default to
 * `--no-walk <commits>`. Given logOpts must describe the same commits (a range like
 * `base..head`): the engine without git mode scans `commits`, or, when that is empty, the
 * commits `git rev-list <logOpts>` lists.
 *
 * Without git mode, `.gitleaksignore` entries (from `ignorePath`, else the repo's own
 * `.gitleaksignore`) are applied here, both `<commit>:<file>:<rule>:<line>` and the global
 * `<file>:<rule>:<line>` form, as gitleaks does in git mode. Merge commits contribute the lines
 * the merge itself introduced (new relative to every parent).
 */
export async function scanCommits(
  engine: GitleaksEngine,
  repoDir: string,
  commits: readonly string[],
  opts: ScanOptions & { readonly logOpts?: readonly string[] } = {}
): Promise<Finding[]> {
  const repo = path.resolve(repoDir);
  const bad = commits.find(c => !/^[^\s-][^\s]*$/.test(c));
  if (bad !== undefined) {
    throw new SecretScanError(`Not a commit to scan: ${JSON.stringify(bad)}`, PHASE, 'Pass commit SHAs.');
  }
  const logOpts = opts.logOpts ?? (commits.length > 0 ? ['--no-walk', ...commits] : []);
  if (logOpts.length === 0) return [];

  const gitMode = engine.gitleaksGitMode ?? !noGitMode.has(engine.path);
  if (gitMode) {
    const native = await withTempDir(async tmp => {
      const reportPath = path.join(tmp, 'report.json');
      const args = gitModeArgs(repo, logOpts, reportPath, {
        configPath: abs(opts.configPath),
        ignorePath: abs(opts.ignorePath)
      });
      try {
        const raw = await runEngine(engine, args, repo, reportPath, opts.timeoutMs);
        return raw.map(r => toFinding(r, 'commits', {}));
      } catch (err) {
        // The WebAssembly build has no git mode; remember that and fall back, unless told it has one.
        if (engine.gitleaksGitMode === undefined && err instanceof EngineRunError && err.noGitMode) {
          noGitMode.add(engine.path);
          return undefined;
        }
        throw err;
      }
    });
    if (native) return native;
  }

  const shas =
    commits.length > 0
      ? await resolveCommits(repo, commits)
      : (await git(repo, ['rev-list', ...logOpts])).toString('utf8').split('\n').filter(Boolean);
  return scanAddedLines(engine, repo, shas, opts);
}

// ---------------------------------------------------------------------------------------------
// The engine without git mode: the lines each commit added, scanned as files
// ---------------------------------------------------------------------------------------------

interface CommitInfo {
  readonly sha: string;
  readonly author: string;
  readonly email: string;
  readonly date: string;
  readonly message: string;
}

/** Files of one or more commits whose paths do not collide, scanned in one gitleaks run. */
interface Layer {
  readonly files: Map<string, string>; // path -> commit sha
  readonly dirs: Set<string>;
}

async function scanAddedLines(
  engine: GitleaksEngine,
  repo: string,
  shas: readonly string[],
  opts: ScanOptions
): Promise<Finding[]> {
  if (shas.length === 0) return [];
  const infos = await commitInfos(repo, shas);
  const ignore = await readIgnore(opts.ignorePath ? path.resolve(opts.ignorePath) : repo);
  const repoConfig = path.join(repo, '.gitleaks.toml');

  return withTempDir(async tmp => {
    let configPath = abs(opts.configPath);
    if (!configPath && existsSync(repoConfig)) configPath = repoConfig;
    if (!configPath) {
      // Explicit, so a `.gitleaks.toml` fragment a commit added is never taken for the config.
      configPath = path.join(tmp, 'default.gitleaks.toml');
      await writeFile(configPath, DEFAULT_CONFIG, { mode: 0o600 });
    }
    // The engine gets an empty ignore file: entries are applied below, against commit fingerprints.
    const emptyIgnore = path.join(tmp, 'empty.gitleaksignore');
    await writeFile(emptyIgnore, '', { mode: 0o600 });

    // Commits touching different paths share a layer (one gitleaks run); a path added to again by
    // a later commit goes to the next layer, so every file holds exactly one commit's lines.
    const layers: Layer[] = [];
    for (const sha of shas) {
      const added = parseAddedLines(await git(repo, showArgs(sha)));
      if (added.size === 0) continue;
      let index = layers.findIndex(l => [...added.keys()].every(p => fits(l, p)));
      if (index < 0) index = layers.push({ files: new Map(), dirs: new Set() }) - 1;
      const layer = layers[index]!;
      const root = path.join(tmp, `layer-${index}`);
      for (const [file, lines] of added) {
        place(layer, file, sha);
        await writeAddedFile(root, file, lines);
      }
    }

    // Each run is mostly the engine starting up: two at a time.
    const reports = await inParallel(layers, LAYER_CONCURRENCY, async (_, index) => {
      const root = path.join(tmp, `layer-${index}`);
      const reportPath = path.join(tmp, `report-${index}.json`);
      const args = ['dir', ...commonArgs(reportPath, configPath, emptyIgnore), '.'];
      return runEngine(engine, args, root, reportPath, opts.timeoutMs);
    });
    const findings: Finding[] = [];
    for (const [index, layer] of layers.entries()) {
      for (const r of reports[index]!) {
        const file = posix(r.File);
        const sha = layer.files.get(file);
        if (!sha) {
          throw new SecretScanError(
            `gitleaks reported a file the scan did not write: ${file}`,
            PHASE,
            'This is a bug in deployguard: please report it.'
          );
        }
        const info = infos.get(sha)!;
        const finding = toFinding(r, 'commits', { file, info });
        const global = `${file}:${finding.rule}:${finding.line}`;
        if (ignore.has(global) || ignore.has(finding.fingerprint)) continue;
        findings.push(finding);
      }
    }
    return findings;
  });
}

/**
 * Runs `fn` over the items, at most `limit` at a time; results in the items' order. After a
 * failure no new item starts, and the first error is thrown once the running ones have ended
 * (so no engine is still running when the temp dir is removed).
 */
async function inParallel<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>
): Promise<R[]> {
  const results = new Array<R>(items.length);
  const errors: unknown[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length && errors.length === 0) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length > 0) throw errors[0];
  return results;
}

function fits(layer: Layer, file: string): boolean {
  if (layer.files.has(file) || layer.dirs.has(file)) return false;
  // A file where another commit of this layer needs a directory, or the other way round.
  return ancestors(file).every(d => !layer.files.has(d));
}

function place(layer: Layer, file: string, sha: string): void {
  layer.files.set(file, sha);
  for (const d of ancestors(file)) layer.dirs.add(d);
}

function ancestors(file: string): string[] {
  const parts = file.split('/');
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
}

/** The added lines at their line numbers; every other line empty. Bytes kept as they were. */
async function writeAddedFile(root: string, file: string, lines: Map<number, string>): Promise<void> {
  const target = path.resolve(root, ...file.split('/'));
  if (!target.startsWith(root + path.sep)) {
    throw new SecretScanError(`git reported a path outside the repository: ${file}`, PHASE);
  }
  const last = Math.max(...lines.keys());
  const out: string[] = new Array<string>(last).fill('');
  for (const [n, text] of lines) out[n - 1] = text;
  await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
  await writeFile(target, Buffer.from(out.join('\n') + '\n', 'latin1'), { mode: 0o600 });
}

/** `git show` of one commit: the diff only, no context, no colour, user config neutralised. */
function showArgs(sha: string): string[] {
  return [
    '-c',
    'core.quotePath=false',
    '-c',
    'diff.noprefix=false',
    '-c',
    'diff.mnemonicPrefix=false',
    'show',
    '--format=',
    '-U0',
    '--no-color',
    '--no-ext-diff',
    '--no-textconv',
    '--src-prefix=a/',
    '--dst-prefix=b/',
    sha,
    '--'
  ];
}

/**
 * The lines a commit added, by file (repo-relative POSIX path) and line number in the new file.
 * Handles ordinary diffs (the root commit's too: git shows it against the empty tree) and the
 * combined diff of a merge, where a line counts as added only when it is new to every parent.
 * Text is kept byte for byte (latin1 is a lossless byte <-> char mapping).
 */
export function parseAddedLines(diff: Buffer): Map<string, Map<number, string>> {
  const files = new Map<string, Map<number, string>>();
  let file: string | undefined;
  let inHunk = false;
  let parents = 1;
  let line = 0;
  for (const text of diff.toString('latin1').split('\n')) {
    if (text.startsWith('diff ')) {
      file = undefined;
      inHunk = false;
      continue;
    }
    if (!inHunk) {
      if (text.startsWith('+++ ')) file = diffPath(text.slice(4));
      else if (text.startsWith('@@')) inHunk = true;
      if (!inHunk) continue;
    }
    if (text.startsWith('@@')) {
      const at = /^(@@+) /.exec(text);
      parents = at ? at[1]!.length - 1 : 1;
      const ranges = text
        .slice(at ? at[1]!.length : 2)
        .trim()
        .split(' ');
      const plus = ranges.slice(0, parents + 1).find(r => r.startsWith('+'));
      line = plus ? Number(plus.slice(1).split(',')[0]) : 0;
      continue;
    }
    if (text.startsWith('\\')) continue; // "\ No newline at end of file"
    const prefix = text.slice(0, parents);
    if (prefix.length < parents || /[^ +-]/.test(prefix)) continue;
    if (prefix.includes('-')) continue; // not in the new file
    if (file !== undefined && prefix === '+'.repeat(parents) && line > 0) {
      let lines = files.get(file);
      if (!lines) files.set(file, (lines = new Map()));
      lines.set(line, text.slice(parents));
    }
    line++;
  }
  return files;
}

/** The path of a `+++ ` header (latin1 text of UTF-8 bytes), or undefined for /dev/null. */
function diffPath(raw: string): string | undefined {
  let p = raw.replace(/\t$/, '');
  if (p === '/dev/null') return undefined;
  if (p.startsWith('"') && p.endsWith('"')) p = unquoteC(p.slice(1, -1));
  if (!p.startsWith('b/')) return undefined;
  return Buffer.from(p.slice(2), 'latin1').toString('utf8');
}

/** git's C-style quoting (octal escapes are bytes), back to latin1 text. */
function unquoteC(s: string): string {
  const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', f: '\f', v: '\v' };
  return s.replace(/\\([0-7]{3}|.)/g, (_, e: string) =>
    e.length === 3 ? String.fromCharCode(parseInt(e, 8)) : (map[e] ?? e)
  );
}

/** Full SHAs of the given revisions, in order, without duplicates. */
async function resolveCommits(repo: string, commits: readonly string[]): Promise<string[]> {
  const out = await git(repo, ['rev-parse', ...commits.map(c => `${c}^{commit}`)]);
  return [...new Set(out.toString('utf8').split('\n').filter(Boolean))];
}

/** Author, email, date (RFC 3339, UTC, as gitleaks reports it) and message of each commit. */
async function commitInfos(repo: string, shas: readonly string[]): Promise<Map<string, CommitInfo>> {
  const out = await git(repo, [
    'log',
    '--no-walk=unsorted',
    '--format=%H%x00%an%x00%ae%x00%aI%x00%B%x1e',
    ...shas
  ]);
  const infos = new Map<string, CommitInfo>();
  for (const rec of out.toString('utf8').split('\x1e')) {
    const [sha, author, email, date, message] = rec.replace(/^\n/, '').split('\x00');
    if (!sha || author === undefined || email === undefined || date === undefined) continue;
    const iso = new Date(date).toISOString().replace(/\.\d{3}Z$/, 'Z');
    infos.set(sha, { sha, author, email, date: iso, message: (message ?? '').trim() });
  }
  return infos;
}

/** `.gitleaksignore` entries (a file, or a directory holding one); none when there is none. */
async function readIgnore(fileOrDir: string): Promise<Set<string>> {
  let file = fileOrDir;
  try {
    if (statSync(fileOrDir).isDirectory()) file = path.join(fileOrDir, '.gitleaksignore');
  } catch {
    return new Set();
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return new Set();
  }
  const entries = new Set<string>();
  for (const raw of text.split(/\r?\n/)) {
    const l = raw.trim();
    if (l === '' || l.startsWith('#')) continue;
    entries.add(l.replace(/\\/g, '/'));
  }
  return entries;
}

// ---------------------------------------------------------------------------------------------
// Running gitleaks and reading its report
// ---------------------------------------------------------------------------------------------

/** The fields of a gitleaks JSON report entry that deployguard reads. */
interface RawFinding {
  RuleID: string;
  Description: string;
  StartLine: number;
  EndLine: number;
  Match: string;
  Secret: string;
  File: string;
  Commit: string;
  Author: string;
  Email: string;
  Date: string;
  Message: string;
  Fingerprint: string;
}

class EngineRunError extends SecretScanError {
  constructor(
    message: string,
    hint: string,
    readonly noGitMode: boolean
  ) {
    super(message, PHASE, hint);
  }
}

function commonArgs(reportPath: string, configPath?: string, ignorePath?: string): string[] {
  return [
    '--no-banner',
    '--redact',
    '--exit-code',
    '1',
    '--report-format',
    'json',
    '--report-path',
    reportPath,
    ...(configPath ? ['--config', configPath] : []),
    ...(ignorePath ? ['--gitleaks-ignore-path', ignorePath] : [])
  ];
}

/**
 * Runs gitleaks and returns its report. Exit 0: clean. Exit 1 with a report holding findings:
 * those findings. Anything else (a fatal error also exits 1, but writes no report): an error
 * with the tail of gitleaks' output.
 */
async function runEngine(
  engine: GitleaksEngine,
  args: readonly string[],
  cwd: string,
  reportPath: string,
  timeoutMs = DEFAULT_TIMEOUT_MS
): Promise<RawFinding[]> {
  const { code, signal, output, timedOut, spawnError } = await run(engine.path, args, cwd, timeoutMs);
  const tail = tailOf(output);
  const what = `gitleaks ${args[0]}`;
  if (spawnError) {
    throw new EngineRunError(
      `Could not start gitleaks (${engine.path}): ${spawnError.message}`,
      'Check the gitleaks-path input, or that gitleaks is installed on the runner.',
      false
    );
  }
  if (timedOut) {
    throw new EngineRunError(
      `${what} did not finish within ${Math.round(timeoutMs / 1000)} s.${tail}`,
      'Scan fewer commits, exclude large generated files with a .gitleaks.toml allowlist, or raise the timeout.',
      false
    );
  }
  if (code === 0) return existsSync(reportPath) ? readReport(reportPath) : [];
  const noGitMode = /not implemented on js|could not create git log cmd/i.test(output);
  if (code === 1 && existsSync(reportPath)) {
    const findings = await readReport(reportPath);
    if (findings.length > 0) return findings;
  }
  throw new EngineRunError(
    `${what} failed (${signal ? `signal ${signal}` : `exit code ${code}`}).${tail}`,
    'Check the gitleaks config (.gitleaks.toml) and the paths given to the scan; the lines above are gitleaks’ own output.',
    noGitMode
  );
}

/** Reads, validates and deletes a report; each Secret/Match is dropped once `redacted` is built. */
async function readReport(reportPath: string): Promise<RawFinding[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(reportPath, 'utf8'));
  } catch (err) {
    throw new SecretScanError(
      `Could not read gitleaks' report: ${err instanceof Error ? err.message : String(err)}`,
      PHASE,
      'Use gitleaks 8.x (the JSON report format changed in 8.0).'
    );
  } finally {
    await rm(reportPath, { force: true });
  }
  if (!Array.isArray(parsed)) {
    throw new SecretScanError("gitleaks' report is not a JSON array.", PHASE, 'Use gitleaks 8.x.');
  }
  return parsed.map((e: unknown) => {
    const o = (e ?? {}) as Record<string, unknown>;
    const str = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : '');
    const num = (k: string) => (typeof o[k] === 'number' ? (o[k] as number) : 0);
    return {
      RuleID: str('RuleID'),
      Description: str('Description'),
      StartLine: num('StartLine'),
      EndLine: num('EndLine'),
      Match: str('Match'),
      Secret: str('Secret'),
      File: str('File'),
      Commit: str('Commit'),
      Author: str('Author'),
      Email: str('Email'),
      Date: str('Date'),
      Message: str('Message'),
      Fingerprint: str('Fingerprint')
    };
  });
}

/**
 * One finding. With `--redact`, Secret is `REDACTED` and the Match has it replaced already; an
 * engine that ignored the flag still gets its secret cut out here, and Secret/Match go no further.
 */
function toFinding(
  r: RawFinding,
  source: Finding['source'],
  over: { file?: string; info?: CommitInfo }
): Finding {
  const file = over.file ?? posix(r.File);
  const info = over.info;
  const commit = info?.sha ?? (r.Commit || undefined);
  const line = r.StartLine;
  const fingerprint = info ? `${info.sha}:${file}:${r.RuleID}:${line}` : r.Fingerprint;
  return {
    rule: r.RuleID,
    description: r.Description,
    file,
    line,
    endLine: Math.max(r.EndLine, line),
    ...(commit ? { commit } : {}),
    ...optional('author', info?.author ?? r.Author),
    ...optional('email', info?.email ?? r.Email),
    ...optional('date', info?.date ?? r.Date),
    ...optional('message', info?.message ?? r.Message),
    fingerprint,
    source,
    redacted: excerpt(r.Match, r.Secret)
  };
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value ? ({ [key]: value } as Record<K, string>) : {};
}

/** The match on one line, the secret replaced, shortened. Never the secret. */
function excerpt(match: string, secret: string): string {
  let text = match;
  if (secret && secret !== REDACTED) {
    text = text.split(secret).join(REDACTED);
    for (const l of secret.split(/\r?\n/))
      if (l.trim().length >= 4) text = text.split(l.trim()).join(REDACTED);
  }
  text = text.replace(/\s+/g, ' ').trim();
  if (text.length > EXCERPT_MAX) {
    // Keep the REDACTED marker in view.
    const at = Math.max(0, text.indexOf(REDACTED) - 40);
    text = `${at > 0 ? '…' : ''}${text.slice(at, at + EXCERPT_MAX)}…`;
  }
  return text || REDACTED;
}

function posix(p: string): string {
  return p.replace(/\\/g, '/').replace(/^\.\//, '');
}

function abs(p: string | undefined): string | undefined {
  return p ? path.resolve(p) : undefined;
}

function tailOf(output: string): string {
  const lines = output
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split(/\r?\n/)
    .map(l => l.trimEnd())
    .filter(Boolean);
  return lines.length ? `\n${lines.slice(-STDERR_TAIL_LINES).join('\n')}` : '';
}

async function withTempDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'deployguard-gitleaks-'));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Runs the engine; stdout and stderr together (only their tail is kept, for error messages). Its
 * environment is git's (io/git.ts): gitleaks runs `git log` itself, and must read the same
 * repository as the range it was given.
 */
async function run(cmd: string, args: readonly string[], cwd: string, timeoutMs: number) {
  let output = '';
  const r = await runProcess(cmd, args, {
    cwd,
    env: gitEnv(process.env),
    timeoutMs,
    overflow: 'tail',
    maxOutputBytes: 0,
    onOutput: chunk => {
      output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
    }
  });
  return {
    code: r.code,
    signal: r.signal,
    output,
    timedOut: r.outcome === 'timeout',
    spawnError: r.outcome === 'error' ? r.error : undefined
  };
}

/** Runs git in the repo (io/git.ts); its stdout, or a SecretScanError with its stderr. */
async function git(repo: string, args: readonly string[]): Promise<Buffer> {
  const r = await runGit(repo, args, { timeoutMs: DEFAULT_TIMEOUT_MS });
  if (r.code === 0) return r.stdout;
  if (r.notFound)
    throw new SecretScanError('Could not run git: spawn git ENOENT', PHASE, 'Install git on the runner.');
  throw new SecretScanError(
    `git ${args.find((a, i) => a !== '-c' && args[i - 1] !== '-c')} failed in ${repo}:${tailOf(r.stderr.slice(-4096))}`,
    PHASE,
    'The commits to scan must be in the checkout: fetch them (actions/checkout with fetch-depth: 0).'
  );
}
