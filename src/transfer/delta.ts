import { createHash } from 'node:crypto';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { entrySourcePath, type Artifact } from './artifact.js';

/**
 * Incremental deploys: only the files whose content (or mode) differs from the previous release
 * on the host are sent; the others are hard-linked from it on the host. The result is checked
 * against the full manifest like any upload, so a previous release changed on the host since it
 * was verified is caught (and the deploy falls back to sending everything).
 */

/** Read size; one buffer is reused for every file. */
const CHUNK = 1024 * 1024;
/** The event loop runs again after about this many bytes (timers, the other hosts' connections). */
const YIELD_BYTES = 8 * CHUNK;

interface Hashing {
  readonly result: Promise<Map<string, string>>;
  stopped: boolean;
}
const computed = new WeakMap<Artifact, Hashing>();

/**
 * SHA-256 of every file of the artifact, read from disk into one reused 1 MiB buffer (never whole
 * in memory). Computed once per scanned artifact: every host of a fleet compares against the same
 * result, and a deploy may start it early (while it connects) and pick it up later. Synchronous
 * reads from the page cache are several times faster here than streams, whose per-file buffers cost
 * more to allocate and collect than the hashing itself.
 */
export function hashArtifact(artifact: Artifact): Promise<Map<string, string>> {
  let hashing = computed.get(artifact);
  if (!hashing) {
    const state = { stopped: false };
    hashing = Object.assign(state, { result: hashFiles(artifact, state) });
    // Whoever started it early may never await it.
    hashing.result.catch(() => undefined);
    computed.set(artifact, hashing);
  }
  return hashing.result;
}

/** Stops a hashing started early that turned out to be needless (no host has a release to link from). */
export function abandonHashing(artifact: Artifact): void {
  const hashing = computed.get(artifact);
  if (hashing) hashing.stopped = true;
}

async function hashFiles(artifact: Artifact, state: { stopped: boolean }): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const buf = Buffer.allocUnsafe(CHUNK);
  let sinceYield = 0;
  for (const entry of artifact.entries) {
    if (entry.kind !== 'file') continue;
    const hash = createHash('sha256');
    const fd = openSync(entrySourcePath(artifact, entry.path), constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      for (let n: number; (n = readSync(fd, buf, 0, CHUNK, null)) > 0;) {
        hash.update(buf.subarray(0, n));
        sinceYield += n;
      }
    } finally {
      closeSync(fd);
    }
    out.set(entry.path, hash.digest('hex'));
    if ((sinceYield += 512) >= YIELD_BYTES) {
      sinceYield = 0;
      await new Promise(resolve => setImmediate(resolve));
      if (state.stopped) throw new Error('hashing the artifact was abandoned');
    }
  }
  return out;
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
