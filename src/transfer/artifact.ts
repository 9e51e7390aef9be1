import { isUtf8 } from 'node:buffer';
import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, join, posix, resolve } from 'node:path';
import { compileExclude, ExcludePatternError, type ExcludeMatcher } from './exclude.js';

/** One thing to ship. Paths are POSIX, relative to the artifact root, without a leading './'. */
export type ArtifactEntry =
  | { kind: 'dir'; path: string; mode: number }
  | {
      kind: 'file';
      path: string;
      mode: number;
      size: number;
      /** With `identify`: the file as the scan found it, by {@link fileIdentity}. */
      id?: string;
    }
  | { kind: 'symlink'; path: string; target: string };

/** The result of {@link scanArtifact}: metadata only, never file contents. */
export interface Artifact {
  /** Absolute path of the scanned file or directory. */
  root: string;
  /** True when the artifact is a single file (then `entries` holds exactly that file, named by its basename). */
  isFile: boolean;
  /** Sorted by path; a directory always precedes its contents. */
  entries: readonly ArtifactEntry[];
  fileCount: number;
  totalBytes: number;
  /** With `identify`: when the scan began (ms since the epoch), for the hash cache's settle rule. */
  scannedAt?: number;
}

/**
 * A file's identity for the hash cache: device, inode, size, mtime and ctime to the nanosecond, as
 * `dev:ino:size:mtimeNs:ctimeNs`. The hashing thread (`transfer/delta.ts`) writes the same format
 * from its own fstat, so what the scan saw and what the cache kept compare as strings.
 */
export function fileIdentity(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** An artifact that cannot be shipped safely. `message` says what and where, `hint` what to do about it. */
export class ArtifactError extends Error {
  override name = 'ArtifactError';
  constructor(
    message: string,
    /** What the user should do to fix it. */
    readonly hint: string,
    /** The offending path (absolute or artifact-relative), when there is one. */
    readonly path?: string
  ) {
    super(message);
  }
}

/** Same limit as Linux's MAXSYMLINKS. */
const MAX_SYMLINK_HOPS = 40;

const EXCLUDE_HINT = 'or list it in the exclude patterns';
// Only for names that are not UTF-8 (to match them against the exclude patterns); a leading
// byte order mark is kept, as for valid names.
const utf8Lossy = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * Scans a file or a directory tree without reading file contents.
 *
 * Rejects (with {@link ArtifactError}) anything the deploy cannot reproduce faithfully or verify:
 * special files, symlinks that are absolute or lead outside the artifact, names that are not UTF-8 or
 * contain control characters or backslashes, a missing path, and an artifact with no files.
 * `exclude` holds gitignore-style patterns (see {@link compileExclude}); excluded entries are skipped
 * before any check and excluded directories are not descended into. Bad patterns are an error even for
 * a single-file artifact, to which they do not apply.
 */
export async function scanArtifact(
  path: string,
  opts: {
    exclude?: readonly string[];
    /** Give each file of a directory its {@link fileIdentity} (the lstat the scan takes anyway, to the nanosecond). */
    identify?: boolean;
  } = {}
): Promise<Artifact> {
  const scannedAt = Date.now();
  const excluded = excludeMatcher(opts.exclude ?? []);
  if (typeof path !== 'string' || path.trim() === '') {
    throw new ArtifactError(
      'Artifact path is empty.',
      'Set the artifact input to the build output file or directory.'
    );
  }
  const root = resolve(path);
  // stat, not lstat: the artifact path itself may be a symlink (e.g. `current -> build-42`).
  const st = await stat(root).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') {
      throw new ArtifactError(
        `Artifact path does not exist: ${root}`,
        'Check the artifact input and that the build step produced it.',
        root
      );
    }
    throw fsError(err, root);
  });

  if (st.isFile()) {
    const name = checkChars(basename(root), '', root);
    const entry: ArtifactEntry = { kind: 'file', path: name, mode: permissions(st.mode), size: st.size };
    return { root, isFile: true, entries: [entry], fileCount: 1, totalBytes: st.size };
  }
  if (!st.isDirectory()) {
    throw new ArtifactError(
      `Artifact path is a ${specialKind(st)}, not a file or directory: ${root}`,
      'Point the artifact input at the build output.',
      root
    );
  }

  const entries = walk(root, excluded, opts.identify === true);
  entries.sort((a, b) => comparePaths(a.path, b.path));
  checkSymlinkChains(entries, root);
  let fileCount = 0;
  let totalBytes = 0;
  for (const e of entries) {
    if (e.kind === 'file') {
      fileCount++;
      totalBytes += e.size;
    }
  }
  if (fileCount === 0) {
    throw new ArtifactError(
      `Artifact directory contains no files${opts.exclude?.length ? ' (after exclusions)' : ''}: ${root}`,
      'Check that the build step ran and wrote its output there, and that the exclude patterns are not too broad.',
      root
    );
  }
  return { root, isFile: false, entries, fileCount, totalBytes, ...(opts.identify ? { scannedAt } : {}) };
}

/** The exclude predicate, or an {@link ArtifactError} listing every bad pattern. */
function excludeMatcher(patterns: readonly string[]): ExcludeMatcher {
  try {
    return compileExclude(patterns);
  } catch (err) {
    if (err instanceof ExcludePatternError)
      throw new ArtifactError(`invalid exclude pattern: ${err.message}`, err.hint);
    throw err;
  }
}

/** Absolute path on the local disk of the entry at `entryPath`. */
export function entrySourcePath(artifact: Artifact, entryPath: string): string {
  return artifact.isFile ? artifact.root : join(artifact.root, entryPath);
}

/**
 * A manifest for `sha256sum -c --strict`, run in the directory the artifact was extracted into:
 * one `<hex>  ./<path>` line per file, sorted by path. The './' keeps names starting with '-' or ' '
 * from being misread.
 */
export function manifestText(hashes: ReadonlyMap<string, string>): string {
  return [...hashes]
    .sort(([a], [b]) => comparePaths(a, b))
    .map(([path, hash]) => {
      if (!/^[0-9a-f]{64}$/.test(hash)) throw new Error(`Not a SHA-256 hex digest for ${path}: ${hash}`);
      // sha256sum escapes such names, so a plain line would not match; scanArtifact never produces them.
      if (/[\\\n\r]/.test(path))
        throw new Error(`Path cannot be listed in a manifest: ${JSON.stringify(path)}`);
      return `${hash}  ./${path}\n`;
    })
    .join('');
}

/**
 * Lists the tree under root. Synchronous on purpose: for thousands of small entries, one lstat(2)
 * each from the page cache is several times faster than the same calls through the thread pool.
 */
function walk(root: string, excluded: ExcludeMatcher, identify: boolean): ArtifactEntry[] {
  const entries: ArtifactEntry[] = [];
  const attempt = <T>(abs: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      throw fsError(err as NodeJS.ErrnoException, abs);
    }
  };

  const visit = (relDir: string): void => {
    const absDir = relDir === '' ? root : join(root, relDir);
    const under = absDir.endsWith('/') ? absDir : `${absDir}/`;
    // Buffer names: a string readdir would silently turn invalid UTF-8 into U+FFFD.
    const dirents = attempt(absDir, () => readdirSync(absDir, { encoding: 'buffer', withFileTypes: true }));
    for (const d of dirents) {
      const raw = d.name;
      // One decode for the usual valid name. Exclusion is decided first (on a lossy decode when
      // the name is not UTF-8), so an excluded odd name is not an error.
      const valid = isUtf8(raw);
      const loose = valid ? raw.toString('utf8') : utf8Lossy.decode(raw);
      if (excluded(joinRel(relDir, loose), d.isDirectory())) continue;
      if (!valid) throw notUtf8(raw, relDir, root);
      const name = checkChars(loose, relDir, root);
      const rel = joinRel(relDir, name);
      const abs = under + name;
      const st = attempt(abs, () => lstatSync(abs, { bigint: identify }));
      if (st.isDirectory()) {
        entries.push({ kind: 'dir', path: rel, mode: permissions(Number(st.mode)) });
        visit(rel);
      } else if (st.isFile()) {
        const mode = permissions(Number(st.mode));
        const size = Number(st.size);
        entries.push(
          identify
            ? { kind: 'file', path: rel, mode, size, id: fileIdentity(st as BigIntStats) }
            : { kind: 'file', path: rel, mode, size }
        );
      } else if (st.isSymbolicLink()) {
        const target = attempt(abs, () => readlinkSync(abs, { encoding: 'buffer' }));
        entries.push({ kind: 'symlink', path: rel, target: checkSymlinkTarget(rel, target, abs) });
      } else {
        throw new ArtifactError(
          `Artifact contains a ${specialKind(st)} at "${rel}" (${abs}).`,
          `Only regular files, directories and relative symlinks can be deployed; remove it ${EXCLUDE_HINT}.`,
          rel
        );
      }
    }
  };

  visit('');
  return entries;
}

/**
 * Setuid/setgid are stripped: a remote extracting as root (even with --no-same-owner) would otherwise
 * create setuid-root executables, and such bits in a build output are almost always accidental.
 * The sticky bit is harmless and kept.
 */
function permissions(mode: number): number {
  return mode & 0o7777 & ~0o6000;
}

/** The error for a name that is not UTF-8: it cannot be carried in a pax header or shown to the user. */
function notUtf8(raw: Buffer, relDir: string, root: string): ArtifactError {
  const shown = joinRel(relDir, escapeBytes(raw));
  return new ArtifactError(
    `Artifact file name is not valid UTF-8: "${shown}" in ${root}.`,
    `Rename it to a UTF-8 name ${EXCLUDE_HINT}.`,
    shown
  );
}

/**
 * Returns the (decoded) name or throws. Newlines, CRs and backslashes make sha256sum escape the
 * name in its output and manifests, and other control characters make names unreadable in logs.
 */
function checkChars(name: string, relDir: string, root: string): string {
  const bad = /[\\\u0000-\u001f\u007f-\u009f]/.exec(name);
  if (bad) {
    const what =
      bad[0] === '\n'
        ? 'a newline'
        : bad[0] === '\r'
          ? 'a carriage return'
          : bad[0] === '\\'
            ? 'a backslash'
            : `the control character U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
    const shown = JSON.stringify(joinRel(relDir, name));
    throw new ArtifactError(
      `Artifact file name contains ${what}: ${shown} in ${root}.`,
      `Rename it (such names break the sha256sum manifest) ${EXCLUDE_HINT}.`,
      joinRel(relDir, name)
    );
  }
  return name;
}

/** Checks one link on its own: UTF-8, relative, and lexically inside the artifact. */
function checkSymlinkTarget(rel: string, raw: Buffer, abs: string): string {
  // Not a TextDecoder: it would drop a leading byte order mark, and the link would change.
  const target = isUtf8(raw) ? raw.toString('utf8') : '';
  if (target === '' || /[\u0000-\u001f\u007f-\u009f]/.test(target)) {
    throw new ArtifactError(
      `Artifact symlink "${rel}" has an empty, non-UTF-8 or control-character target: "${escapeBytes(raw)}" (${abs}).`,
      `Fix the link ${EXCLUDE_HINT}.`,
      rel
    );
  }
  if (target.startsWith('/')) {
    throw new ArtifactError(
      `Artifact symlink "${rel}" points to the absolute path "${target}" (${abs}).`,
      `Make it a relative link to something inside the artifact, remove it ${EXCLUDE_HINT}.`,
      rel
    );
  }
  const resolved = posix.normalize(posix.join(posix.dirname(rel), target));
  if (resolved === '..' || resolved.startsWith('../')) {
    throw outsideError(rel, target, abs);
  }
  return target;
}

function outsideError(rel: string, target: string, abs: string, via = ''): ArtifactError {
  return new ArtifactError(
    `Artifact symlink "${rel}" -> "${target}" points outside the artifact${via} (${abs}).`,
    `Only links to something inside the artifact can be deployed; copy the target into the artifact, remove the link ${EXCLUDE_HINT}.`,
    rel
  );
}

/**
 * The per-link lexical check misses chains: with `a/b -> ..`, the link `c -> a/b/..` normalises to `a`
 * but the kernel resolves it to the root's parent. Resolve every link like the kernel would, following
 * links that are part of the artifact (what will exist on the host).
 */
function checkSymlinkChains(entries: readonly ArtifactEntry[], root: string): void {
  const links = new Map<string, string>();
  for (const e of entries) if (e.kind === 'symlink') links.set(e.path, e.target);
  for (const [path, target] of links) {
    const stack: string[] = [];
    const pending = [...posix.dirname(path).split('/'), ...target.split('/')].reverse();
    let hops = 0;
    while (pending.length > 0) {
      const part = pending.pop() as string;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (stack.length === 0)
          throw outsideError(path, target, join(root, path), ' through another symlink');
        stack.pop();
        continue;
      }
      stack.push(part);
      const next = links.get(stack.join('/'));
      if (next === undefined) continue;
      if (++hops > MAX_SYMLINK_HOPS) {
        throw new ArtifactError(
          `Artifact symlink "${path}" -> "${target}" loops (too many levels of symbolic links).`,
          `Fix the link ${EXCLUDE_HINT}.`,
          path
        );
      }
      stack.pop();
      pending.push(...next.split('/').reverse());
    }
  }
}

function specialKind(st: {
  isFIFO(): boolean;
  isSocket(): boolean;
  isBlockDevice(): boolean;
  isCharacterDevice(): boolean;
}): string {
  if (st.isFIFO()) return 'FIFO (named pipe)';
  if (st.isSocket()) return 'socket';
  if (st.isBlockDevice()) return 'block device';
  if (st.isCharacterDevice()) return 'character device';
  return 'special file';
}

function fsError(err: NodeJS.ErrnoException, path: string): ArtifactError {
  const changed = err.code === 'ENOENT' || err.code === 'ENOTDIR';
  return new ArtifactError(
    `Cannot read ${path} while scanning the artifact: ${err.code ?? err.message}`,
    changed
      ? 'The artifact changed during the scan; make sure the build has finished before deploying.'
      : 'Check the file permissions of the artifact.',
    path
  );
}

function escapeBytes(raw: Buffer): string {
  let out = '';
  for (const b of raw)
    out +=
      b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return out;
}

function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** Plain code-unit order: deterministic, and a directory sorts before everything below it. */
function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
