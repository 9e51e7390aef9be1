import { createHash } from 'node:crypto';
import { statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { entrySourcePath, type Artifact } from './artifact.js';

/**
 * Incremental deploys: only the files whose content (or mode) differs from the previous release
 * on the host are sent; the others are hard-linked from it on the host. The result is checked
 * against the full manifest like any upload, so a previous release changed on the host since it
 * was verified is caught (and the deploy falls back to sending everything).
 */

/** Read size; one buffer is reused for every file. */
const CHUNK = 1024 * 1024;

/**
 * The hashing thread: SHA-256 of each listed file, read into one reused 1 MiB buffer (never whole in
 * memory), never through a symlink. Synchronous reads from the page cache are several times faster
 * here than streams, whose per-file buffers cost more to allocate and collect than the hashing.
 * Plain CommonJS, evaluated as the worker's source: no bundle, no file to ship beside it.
 *
 * With a cache file (the CLI keeps one per artifact directory), a file is not read again when it is
 * the very file hashed before: same device, inode, size, mtime and ctime, to the nanosecond. On the
 * local file systems the cache is used on (see `cacheDevice`) the ctime is the kernel's to set (a
 * write, a chmod, a utime that puts the mtime back: each moves it), so a file whose content changed
 * never matches. Only files whose last change lies SETTLE_MS
 * before the hashing began are kept: the kernel's clock is coarse, and two changes in one tick of
 * it would share their timestamps. The result is posted first; the cache is written after, whole
 * (a temporary file renamed into place), holding only this artifact's files.
 *
 * When the scan identified the files (`ids`, from the lstat it takes anyway, in the same format), a
 * file the cache knows by that identity is not even opened: the same rule, with the scan's start as
 * "now". Reading 3,000 unchanged files' metadata a second time cost this thread about 40 ms of CPU,
 * while the SSH handshake and the host's first commands wanted the same cores.
 */
const HASHER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const { files, ids, scannedAt, cache, settleMs, rootDev } = workerData;
const buf = Buffer.allocUnsafe(${CHUNK});
const known = new Map();
let savedAt = 0;
if (cache) {
  // Only a plain file of this user's, closed to others, with one link, never through a symlink.
  let fd;
  try {
    fd = fs.openSync(cache, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    const st = fs.fstatSync(fd);
    if (st.isFile() && st.uid === process.getuid() && !(st.mode & 0o077) && st.nlink === 1) {
      const saved = JSON.parse(fs.readFileSync(fd, 'utf8'));
      savedAt = st.mtimeMs;
      if (saved.v === 1 && Array.isArray(saved.files))
        for (const f of saved.files)
          if (Array.isArray(f) && /^[0-9a-f]{64}$/.test(f[2])) known.set(f[0], { id: f[1], hash: f[2] });
    }
  } catch {
    // None yet, or unreadable: every file is hashed.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
const toNs = ms => (BigInt(ms) - BigInt(settleMs)) * 1000000n;
const settled = toNs(Date.now());
const scanSettled = ids && scannedAt !== undefined ? toNs(scannedAt) : undefined;
// fileIdentity's format (transfer/artifact.ts): dev:ino:size:mtimeNs:ctimeNs.
const idOf = st => [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].join(':');
// An identity the cache may go by: taken on the artifact root's own file system (the one whose
// ctime was found trustworthy, see cacheDevice; one mounted inside the artifact may be a network
// or FAT mount), of a file whose last change lies before \`before\`.
const trusted = (id, before) =>
  id && id.startsWith(rootDev + ':') && BigInt(id.slice(id.lastIndexOf(':') + 1)) < before ? id : undefined;
const out = [];
const keep = [];
let reused = 0;
/** Answers for the file from the cache when it holds this very identity. */
const fromCache = (file, id) => {
  const was = id === undefined ? undefined : known.get(file);
  if (!was || was.id !== id) return false;
  out.push(was.hash);
  keep.push([file, id, was.hash]);
  reused++;
  return true;
};
for (let i = 0; i < files.length; i++) {
  const file = files[i];
  if (scanSettled !== undefined && fromCache(file, trusted(ids[i], scanSettled))) continue;
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const id = cache ? trusted(idOf(fs.fstatSync(fd, { bigint: true })), settled) : undefined;
    if (fromCache(file, id)) continue;
    const hash = createHash('sha256');
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
    const hex = hash.digest('hex');
    out.push(hex);
    // Kept only when the file did not change while it was read.
    if (id !== undefined && idOf(fs.fstatSync(fd, { bigint: true })) === id) keep.push([file, id, hex]);
  } finally {
    fs.closeSync(fd);
  }
}
parentPort.postMessage({ hashes: out, reused });
if (cache && reused === keep.length && keep.length === known.size) {
  // Nothing new: the file is only touched (at most once a day), so the prune below keeps it.
  if (Date.now() - savedAt > 86400000) try { fs.utimesSync(cache, new Date(), new Date()); } catch {}
} else if (cache) {
  const tmp = cache + '.' + process.pid + '-' + require('node:worker_threads').threadId + '.tmp';
  try {
    fs.writeFileSync(tmp, JSON.stringify({ v: 1, files: keep }), { mode: 0o600, flag: 'wx' });
    fs.renameSync(tmp, cache);
  } catch {
    try { fs.rmSync(tmp, { force: true }); } catch {}
  }
  // The caches of artifact directories not deployed for 30 days go, and temporary files left behind.
  try {
    const dir = require('node:path').dirname(cache);
    for (const name of fs.readdirSync(dir)) {
      const f = dir + '/' + name;
      const age = Date.now() - fs.lstatSync(f).mtimeMs;
      if ((name.endsWith('.json') && age > 30 * 86400000) || (name.endsWith('.tmp') && age > 3600000))
        fs.rmSync(f, { force: true });
    }
  } catch {}
}
`;

/** How long ago a file must have last changed for its hash to be kept (see HASHER). */
export const SETTLE_MS = 2000;

interface Hashing {
  readonly result: Promise<Map<string, string>>;
  readonly stop: () => void;
  /** How many files the cache answered for, once the result is in. */
  reused?: number;
}
const computed = new WeakMap<Artifact, Hashing>();

export interface HashOptions {
  /** A directory of the user's own where the hashes of this artifact's files are kept between runs. */
  readonly cacheDir?: string;
  readonly settleMs?: number;
}

/**
 * SHA-256 of every file of the artifact, computed once per scanned artifact: every host of a fleet
 * compares against the same result, and a deploy may start it early and pick it up later. It runs
 * on a thread of its own, so the SSH handshakes and the first steps, which mostly wait on the
 * hosts, go on meanwhile on this one instead of queueing behind it. The options of the first call
 * hold.
 */
export function hashArtifact(artifact: Artifact, opts: HashOptions = {}): Promise<Map<string, string>> {
  let hashing = computed.get(artifact);
  if (!hashing) {
    hashing = hashFiles(artifact, opts);
    // Whoever started it early may never await it.
    hashing.result.catch(() => undefined);
    computed.set(artifact, hashing);
  }
  return hashing.result;
}

/** How many of the artifact's hashes came from the cache (undefined before they are known). */
export function reusedHashes(artifact: Artifact): number | undefined {
  return computed.get(artifact)?.reused;
}

/** Stops a hashing started early that turned out to be needless (no host has a release to link from). */
export function abandonHashing(artifact: Artifact): void {
  computed.get(artifact)?.stop();
}

/** The cache file of an artifact: one per directory, named by a hash of its path. */
export function hashCacheFile(dir: string, artifact: Artifact): string {
  return join(dir, `${createHash('sha256').update(artifact.root).digest('hex').slice(0, 32)}.json`);
}

/**
 * File systems whose ctime is the local kernel's own, set on every change (ext2/3/4, XFS, Btrfs,
 * tmpfs, F2FS, ZFS, overlayfs), by `statfs` magic number. Not FAT (its "ctime" is a creation time
 * with 2 s steps) nor network file systems (their clock is the server's).
 */
const CTIME_FILE_SYSTEMS = new Set([
  0xef53, 0x58465342, 0x9123683e, 0x01021994, 0xf2f52010, 0x2fc12fc1, 0x794c7630
]);

/**
 * Whether the artifact's hashes may be kept: a directory (a single file is usually made anew) on
 * such a file system. Returns the root's device (through a symlink, as the scan reads it), as the
 * hashing thread prints it: only files on that device are kept.
 */
function cacheDevice(artifact: Artifact): string | undefined {
  if (artifact.isFile) return undefined;
  try {
    if (!CTIME_FILE_SYSTEMS.has(statfsSync(artifact.root).type)) return undefined;
    return String(statSync(artifact.root, { bigint: true }).dev);
  } catch {
    return undefined;
  }
}

function hashFiles(artifact: Artifact, opts: HashOptions): Hashing {
  const files = artifact.entries.filter(e => e.kind === 'file');
  const paths = files.map(e => e.path);
  const rootDev = opts.cacheDir ? cacheDevice(artifact) : undefined;
  const cache = opts.cacheDir && rootDev !== undefined ? hashCacheFile(opts.cacheDir, artifact) : undefined;
  const identified = cache !== undefined && artifact.scannedAt !== undefined;
  const worker = new Worker(HASHER, {
    eval: true,
    workerData: {
      files: paths.map(p => entrySourcePath(artifact, p)),
      ids: identified ? files.map(e => e.id ?? null) : undefined,
      scannedAt: identified ? artifact.scannedAt : undefined,
      cache,
      rootDev,
      settleMs: opts.settleMs ?? SETTLE_MS
    }
  });
  // It never holds the process up on its own: whoever waits for it waits on a host too.
  worker.unref();
  let stopped = false;
  let answered = false;
  const hashing: Hashing = {
    result: new Promise<Map<string, string>>((resolve, reject) => {
      worker.once('message', ({ hashes, reused }: { hashes: string[]; reused: number }) => {
        answered = true;
        hashing.reused = reused;
        if (hashes.length !== paths.length)
          reject(new Error('the hashing thread answered for the wrong files'));
        else resolve(new Map(paths.map((p, i) => [p, hashes[i]!])));
      });
      worker.once('error', reject);
      worker.once('exit', code =>
        reject(
          new Error(
            stopped ? 'hashing the artifact was abandoned' : `the hashing thread stopped (exit ${code})`
          )
        )
      );
    }),
    stop: () => {
      // Once it answered, it only writes its cache: left to finish (it holds nothing up).
      if (answered) return;
      stopped = true;
      void worker.terminate();
    }
  };
  return hashing;
}

/** A kept manifest (`<hex>  ./<path>` lines) as path -> hash. */
export function parseManifest(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{64}) {2}\.\/(.+)$/.exec(line);
    if (m) out.set(m[2]!, m[1]!);
  }
  return out;
}

/** `find -printf '%m %P\n'` output as path -> permission bits. */
export function parseModes(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([0-7]{1,4}) (.+)$/.exec(line);
    if (m) out.set(m[2]!, parseInt(m[1]!, 8));
  }
  return out;
}

export interface Delta {
  /** Files to hard-link from the previous release: same content, same mode. */
  readonly link: readonly string[];
  /** The artifact with only the files to send (every directory and symlink kept). */
  readonly send: Artifact;
}

/**
 * Which files can be linked and which must be sent. Shared entries are always sent: in the
 * previous release they are links to `shared/`, not the files the artifact ships.
 */
export function planDelta(
  artifact: Artifact,
  local: ReadonlyMap<string, string>,
  previous: ReadonlyMap<string, string>,
  modes: ReadonlyMap<string, number>,
  shared: readonly string[]
): Delta {
  const isShared = (p: string) => shared.some(s => p === s || p.startsWith(`${s}/`));
  const link: string[] = [];
  const entries = artifact.entries.filter(e => {
    if (e.kind !== 'file') return true;
    const same =
      !isShared(e.path) &&
      previous.get(e.path) === local.get(e.path) &&
      (modes.get(e.path) ?? -1) === (e.mode & 0o7777);
    if (same) link.push(e.path);
    return !same;
  });
  const sent = entries.filter(e => e.kind === 'file');
  return {
    link,
    send: {
      ...artifact,
      entries,
      fileCount: sent.length,
      totalBytes: sent.reduce((n, e) => n + (e.kind === 'file' ? e.size : 0), 0)
    }
  };
}
