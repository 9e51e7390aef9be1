import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { type Artifact, ArtifactError, entrySourcePath } from './artifact.js';

const BLOCK = 512;
/** Read size and stream high-water mark: large reads keep syscall and SSH packet overhead low. */
const CHUNK = 1024 * 1024;
/** Headers and small files are coalesced up to this size, so 3,000 small files are not 9,000 tiny writes. */
const BATCH = 64 * 1024;
/** The largest value an 11-digit octal ustar field holds (8 GiB - 1 for sizes); beyond it pax is needed. */
const MAX_OCTAL = 8 ** 11 - 1;
const ZEROS = Buffer.alloc(2 * BLOCK);

/** The fields of one archive member. */
export interface TarHeader {
  path: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  linkname?: string;
}

/**
 * Streams a POSIX (pax) tar archive of the artifact and hashes each file with SHA-256 from the very bytes
 * that go into the archive, so the manifest matches what was sent even if a file is rewritten meanwhile.
 *
 * The stream is pull-based: files are read (1 MiB at a time) only as fast as the consumer drains it.
 * It is destroyed with an {@link ArtifactError} naming the file when a file differs in size from the scan
 * or changes size while being read. `hashes` (entry path -> hex digest) resolves once the archive has
 * been fully read, and rejects if the stream fails or is destroyed early.
 * `onProgress` receives the cumulative number of archive bytes (headers and padding included, so slightly
 * more than `artifact.totalBytes`) taken by the stream so far.
 * Owner is uid/gid 0 with empty names: the host extracts with `--no-same-owner`.
 */
export function packArtifact(
  artifact: Artifact,
  opts: { onProgress?: (bytesSent: number) => void } = {}
): { stream: Readable; hashes: Promise<Map<string, string>> } {
  let settle!: { resolve: (h: Map<string, string>) => void; reject: (e: unknown) => void };
  const hashes = new Promise<Map<string, string>>((resolve, reject) => (settle = { resolve, reject }));
  // Failures surface on the stream; don't also crash the process if nobody awaits `hashes`.
  hashes.catch(() => undefined);

  async function* run(): AsyncGenerator<Buffer> {
    const result = new Map<string, string>();
    let completed = false;
    try {
      yield* archive(artifact, result, opts.onProgress);
      completed = true;
      settle.resolve(result);
    } catch (err) {
      // Readable.from throws an AbortError into the generator when the stream is destroyed.
      settle.reject((err as Error).name === 'AbortError' ? closedEarly() : err);
      throw err;
    } finally {
      if (!completed) settle.reject(closedEarly());
    }
  }
  // objectMode false makes highWaterMark count bytes: Readable.from only pulls the next chunk once
  // fewer than CHUNK bytes are buffered, which is the back-pressure towards the file reads.
  const stream = Readable.from(run(), { objectMode: false, highWaterMark: CHUNK });
  return { stream, hashes };
}

async function* archive(
  artifact: Artifact,
  hashes: Map<string, string>,
  onProgress: ((bytesSent: number) => void) | undefined
): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let sent = 0;
  function* out(buf: Buffer, flush = false): Generator<Buffer> {
    if (buf.length < BATCH) {
      pending.push(buf);
      pendingBytes += buf.length;
      if (pendingBytes < BATCH && !flush) return;
      buf = Buffer.concat(pending, pendingBytes);
    } else if (pendingBytes > 0) {
      yield* out(Buffer.alloc(0), true);
    }
    pending = [];
    pendingBytes = 0;
    if (buf.length === 0) return;
    yield buf;
    // Resumed: the stream has taken the chunk.
    sent += buf.length;
    onProgress?.(sent);
  }

  for (const entry of artifact.entries) {
    const source = entrySourcePath(artifact, entry.path);
    if (entry.kind !== 'file') {
      const st = await lstat(source).catch(() => undefined);
      if (!st || !(entry.kind === 'dir' ? st.isDirectory() : st.isSymbolicLink())) {
        throw changedSinceScan(entry.path, source);
      }
      const mtime = Math.floor(st.mtimeMs / 1000);
      yield* entry.kind === 'dir'
        ? out(tarHeader({ path: entry.path, type: 'dir', mode: entry.mode, size: 0, mtime }))
        : out(
            tarHeader({
              path: entry.path,
              type: 'symlink',
              mode: 0o777,
              size: 0,
              mtime,
              linkname: entry.target
            })
          );
      continue;
    }

    // O_NOFOLLOW: a file swapped for a symlink after the scan must not pull in data from elsewhere.
    const fh = await open(source, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => {
      throw changedSinceScan(entry.path, source);
    });
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.size !== entry.size) throw changedSinceScan(entry.path, source);
      const size = entry.size;
      yield* out(
        tarHeader({
          path: entry.path,
          type: 'file',
          mode: entry.mode,
          size,
          mtime: Math.floor(st.mtimeMs / 1000)
        })
      );
      const hash = createHash('sha256');
      let pos = 0;
      while (pos < size) {
        // A fresh buffer per chunk: the previous one may still sit in the stream's queue.
        const buf = Buffer.allocUnsafe(Math.min(CHUNK, size - pos));
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) throw changedWhileReading(entry.path, source, `shrank to ${pos} bytes`);
        const chunk = bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
        hash.update(chunk);
        pos += bytesRead;
        yield* out(chunk);
      }
      // The header already promised `size` bytes, so growth must fail the upload too.
      if ((await fh.read(Buffer.alloc(1), 0, 1, size)).bytesRead > 0) {
        throw changedWhileReading(entry.path, source, `grew beyond ${size} bytes`);
      }
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (pad > 0) yield* out(ZEROS.subarray(0, pad));
      hashes.set(entry.path, hash.digest('hex'));
    } finally {
      await fh.close();
    }
  }
  yield* out(ZEROS, true);
}

function closedEarly(): Error {
  return new Error('The archive stream was closed before it was complete.');
}

function changedSinceScan(path: string, source: string): ArtifactError {
  return new ArtifactError(
    `Artifact entry "${path}" was modified, replaced or removed after it was scanned (${source}).`,
    'Make sure nothing writes to the artifact while deploying (e.g. the build has finished), then retry.',
    path
  );
}

function changedWhileReading(path: string, source: string, how: string): ArtifactError {
  return new ArtifactError(
    `Artifact file "${path}" changed size while being packed: it ${how} (${source}).`,
    'Make sure nothing writes to the artifact while deploying (e.g. the build has finished), then retry.',
    path
  );
}

/**
 * Encodes the header block(s) of one member: a ustar header, preceded by a pax extended header
 * (typeflag 'x') when the path or link target is non-ASCII or too long for ustar, or the size exceeds
 * 8 GiB - 1. Directory paths get the conventional trailing '/'.
 * @internal Exported for tests.
 */
export function tarHeader(h: TarHeader): Buffer {
  const path = h.type === 'dir' ? `${h.path}/` : h.path;
  const pax: [string, string][] = [];
  let split = isAscii(path) ? splitUstarPath(path) : undefined;
  if (!split) {
    pax.push(['path', path]);
    split = fallbackName(path);
  }
  let linkname = h.linkname ?? '';
  if (!isAscii(linkname) || linkname.length > 100) {
    pax.push(['linkpath', linkname]);
    linkname = asciiOnly(linkname).slice(0, 100);
  }
  let size = h.size;
  if (size > MAX_OCTAL) {
    pax.push(['size', String(size)]);
    size = 0; // ignored by pax readers, which take the 'size' record
  }
  const mtime = Math.min(Math.max(h.mtime, 0), MAX_OCTAL);
  const typeflag = h.type === 'file' ? '0' : h.type === 'dir' ? '5' : '2';
  const header = ustarBlock({ ...split, mode: h.mode, size, mtime, typeflag, linkname });
  if (pax.length === 0) return header;

  const records = Buffer.from(pax.map(([k, v]) => paxRecord(k, v)).join(''), 'utf8');
  const paxName = `PaxHeaders/${asciiOnly(posix.basename(path)).slice(0, 89)}`;
  const paxHeader = ustarBlock({
    name: paxName,
    prefix: '',
    mode: 0o644,
    size: records.length,
    mtime,
    typeflag: 'x',
    linkname: ''
  });
  const padded = Buffer.alloc(Math.ceil(records.length / BLOCK) * BLOCK);
  records.copy(padded);
  return Buffer.concat([paxHeader, padded, header]);
}

function ustarBlock(f: {
  name: string;
  prefix: string;
  mode: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
}): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(f.name, 0, 100, 'ascii');
  octal(b, 100, 8, f.mode);
  octal(b, 108, 8, 0); // uid
  octal(b, 116, 8, 0); // gid
  octal(b, 124, 12, f.size);
  octal(b, 136, 12, f.mtime);
  b.write(f.typeflag, 156, 1, 'ascii');
  b.write(f.linkname, 157, 100, 'ascii');
  b.write('ustar\u000000', 257, 8, 'ascii'); // magic "ustar\0" + version "00"
  // uname/gname (265, 297) stay empty.
  octal(b, 329, 8, 0); // devmajor
  octal(b, 337, 8, 0); // devminor
  b.write(f.prefix, 345, 155, 'ascii');
  // The checksum is computed with its own field read as eight spaces.
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'ascii');
  return b;
}

/** Zero-padded octal digits followed by a NUL terminator, filling the field. */
function octal(b: Buffer, offset: number, length: number, value: number): void {
  const digits = value.toString(8).padStart(length - 1, '0');
  if (digits.length > length - 1) throw new RangeError(`${value} does not fit a ${length}-byte tar field`);
  b.write(`${digits}\u0000`, offset, length, 'ascii');
}

/** ustar holds a path as name (100 bytes) or prefix (155) + '/' + name; undefined when it cannot. */
function splitUstarPath(path: string): { name: string; prefix: string } | undefined {
  if (path.length <= 100) return { name: path, prefix: '' };
  // The last byte is never a usable split point: a directory's trailing '/' would leave an empty name.
  for (let i = Math.min(155, path.length - 2); i >= path.length - 101; i--) {
    if (path[i] === '/') return { prefix: path.slice(0, i), name: path.slice(i + 1) };
  }
  return undefined;
}

/** What non-pax readers see when the real path is in a pax record. */
function fallbackName(path: string): { name: string; prefix: string } {
  const ascii = asciiOnly(path);
  return splitUstarPath(ascii) ?? { name: ascii.slice(-100), prefix: '' };
}

/** A pax record is "<length> <key>=<value>\n", where length counts the whole record including itself. */
function paxRecord(key: string, value: string): string {
  const rest = Buffer.byteLength(` ${key}=${value}\n`);
  let len = rest + 1;
  while (String(len).length + rest !== len) len = String(len).length + rest;
  return `${len} ${key}=${value}\n`;
}

function isAscii(s: string): boolean {
  return /^[\x20-\x7e]*$/.test(s);
}

function asciiOnly(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '_');
}
