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
 */
const HASHER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { openSync, readSync, closeSync, constants } = require('node:fs');
const buf = Buffer.allocUnsafe(${CHUNK});
const out = [];
for (const file of workerData) {
  const hash = createHash('sha256');
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  out.push(hash.digest('hex'));
}
parentPort.postMessage(out);
`;

interface Hashing {
  readonly result: Promise<Map<string, string>>;
  readonly stop: () => void;
}
const computed = new WeakMap<Artifact, Hashing>();

/**
 * SHA-256 of every file of the artifact, computed once per scanned artifact: every host of a fleet
 * compares against the same result, and a deploy may start it early and pick it up later. It runs
 * on a thread of its own, so the SSH handshakes and the first steps, which mostly wait on the
 * hosts, go on meanwhile on this one instead of queueing behind it.
 */
export function hashArtifact(artifact: Artifact): Promise<Map<string, string>> {
  let hashing = computed.get(artifact);
  if (!hashing) {
    hashing = hashFiles(artifact);
    // Whoever started it early may never await it.
    hashing.result.catch(() => undefined);
    computed.set(artifact, hashing);
  }
  return hashing.result;
}

/** Stops a hashing started early that turned out to be needless (no host has a release to link from). */
export function abandonHashing(artifact: Artifact): void {
  computed.get(artifact)?.stop();
}

function hashFiles(artifact: Artifact): Hashing {
  const paths = artifact.entries.flatMap(e => (e.kind === 'file' ? [e.path] : []));
  const worker = new Worker(HASHER, {
    eval: true,
    workerData: paths.map(p => entrySourcePath(artifact, p))
  });
  // It never holds the process up on its own: whoever waits for it waits on a host too.
  worker.unref();
  let stopped = false;
  const result = new Promise<Map<string, string>>((resolve, reject) => {
    worker.once('message', (hashes: string[]) => {
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
  });
  return {
    result,
    stop: () => {
      stopped = true;
      void worker.terminate();
    }
  };
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
