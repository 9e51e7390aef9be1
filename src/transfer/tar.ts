import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import type { Writable } from 'node:stream';
import { type Artifact, type ArtifactEntry, ArtifactError, entrySourcePath } from './artifact.js';

const BLOCK = 512;
/** The size of each pooled buffer: headers and small files share one, large files fill several. */
const CHUNK = 1024 * 1024;
/** Every this many chunks the writer lets the event loop run (timers, other hosts' connections). */
const YIELD_EVERY = 8;
/** The largest value an 11-digit octal ustar field holds (8 GiB - 1 for sizes); beyond it pax is needed. */
const MAX_OCTAL = 8 ** 11 - 1;
const ZEROS = Buffer.alloc(2 * BLOCK);
const ONE = Buffer.alloc(1);

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
 * Writes a POSIX (pax) tar archive of the artifact into `sink` and ends it; resolves with the SHA-256
 * of each file (entry path -> hex digest), hashed from the very bytes written, so the manifest matches
 * what was sent even if a file is rewritten meanwhile.
 *
 * Files are read synchronously into a small pool of 1 MiB buffers; a buffer is reused only once the
 * sink has called back for the chunk that used it (Writable's contract: the chunk was consumed). An SSH
 * channel or a pipe copies the bytes before that callback. A sink that keeps references to the chunks
 * it was given would see them overwritten: such a consumer must copy. The pool is also the
 * back-pressure: at most {@link POOL} chunks are ever in flight, whatever the artifact's size.
 *
 * Rejects with an {@link ArtifactError} naming the file when a file differs from the scan or changes
 * size while being read (the sink is then destroyed with that error), and with an error when the sink
 * closes or fails before the archive is complete.
 * `onProgress` receives the cumulative number of archive bytes (headers and padding included, so slightly
 * more than `artifact.totalBytes`) the sink has taken so far.
 * Owner is uid/gid 0 with empty names: the host extracts with `--no-same-owner`.
 */
export async function writeArchive(
  artifact: Artifact,
  sink: Writable,
  opts: { onProgress?: (bytesSent: number) => void; shared?: SharedMembers } = {}
): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  const out = new PooledWriter(sink, opts.onProgress);
  const shared = opts.shared;
  try {
    for (const entry of artifact.entries) {
      let member = shared?.get(entry.path);
      if (!member) {
        const source = entrySourcePath(artifact, entry.path);
        if (entry.kind === 'file' && !shared?.takes(entry.size)) {
          await out.file(entry, source, hashes);
          continue;
        }
        member =
          entry.kind === 'file'
            ? packFile(entry, source)
            : { bytes: otherHeader(entry, source), hash: undefined };
        shared?.keep(entry.path, member);
      }
      await out.put(member.bytes);
      if (member.hash !== undefined) hashes.set(entry.path, member.hash);
    }
    await out.put(ZEROS);
    await out.finish();
  } catch (err) {
    out.abort(err);
    throw err;
  }
  return hashes;
}

/** One archive member, encoded: its header block(s), its content and padding; a file's SHA-256. */
interface Member {
  readonly bytes: Buffer;
  readonly hash: string | undefined;
}

/**
 * Archive members packed once for all the hosts of one deploy, which mostly get the same files:
 * every directory and symlink, and each file of up to `maxFile` bytes while the kept bytes stay
 * within `budget`. The first upload to pack an entry keeps it; the uploads after it copy the kept
 * bytes instead of opening, reading and hashing the file again (with 20 hosts, 19 times in 20).
 * So every host gets the same bytes for a kept file, even if it changes on disk during the deploy.
 */
export class SharedMembers {
  private readonly kept = new Map<string, Member>();
  private held = 0;

  constructor(
    readonly budget = 32 * 1024 * 1024,
    readonly maxFile = 256 * 1024
  ) {}

  get(path: string): Member | undefined {
    return this.kept.get(path);
  }

  /** Whether a file of `size` bytes is packed to be kept (its header and padding fit the budget too). */
  takes(size: number): boolean {
    return size <= this.maxFile && this.held + size + 2 * BLOCK <= this.budget;
  }

  /** Keeps a member `get` did not have (writeArchive packs it with no await in between). */
  keep(path: string, member: Member): void {
    if (this.held + member.bytes.length > this.budget) return;
    this.kept.set(path, member);
    this.held += member.bytes.length;
  }

  /** The bytes kept (for tests). */
  get bytes(): number {
    return this.held;
  }
}

/** A whole file member in one buffer of its own (to be kept): header, content, zero padding. */
function packFile(entry: Extract<ArtifactEntry, { kind: 'file' }>, source: string): Member {
  const { fd, header } = openFile(entry, source);
  try {
    const size = entry.size;
    // Zeroed: the padding after the content goes to the hosts as it is.
    const bytes = Buffer.alloc(header.length + size + padding(size));
    header.copy(bytes);
    let pos = 0;
    while (pos < size) {
      const n = readSync(fd, bytes, header.length + pos, size - pos, pos);
      if (n === 0) throw changedWhileReading(entry.path, source, `shrank to ${pos} bytes`);
      pos += n;
    }
    checkNotGrown(fd, entry.path, source, size);
    const hash = createHash('sha256')
      .update(bytes.subarray(header.length, header.length + size))
      .digest('hex');
    return { bytes, hash };
  } finally {
    closeSync(fd);
  }
}

/** The header of a directory or symlink entry, which must still be what the scan saw. */
function otherHeader(entry: Exclude<ArtifactEntry, { kind: 'file' }>, source: string): Buffer {
  let st: Stats | undefined;
  try {
    st = lstatSync(source);
  } catch {
    st = undefined;
  }
  if (!st || !(entry.kind === 'dir' ? st.isDirectory() : st.isSymbolicLink())) {
    throw changedSinceScan(entry.path, source);
  }
  const mtime = Math.floor(st.mtimeMs / 1000);
  return entry.kind === 'dir'
    ? tarHeader({ path: entry.path, type: 'dir', mode: entry.mode, size: 0, mtime })
    : tarHeader({ path: entry.path, type: 'symlink', mode: 0o777, size: 0, mtime, linkname: entry.target });
}

/**
 * Opens a file entry for packing: still a regular file (not followed through a symlink) of the size
 * the scan saw. Returns the descriptor and the member's header.
 */
function openFile(
  entry: Extract<ArtifactEntry, { kind: 'file' }>,
  source: string
): { fd: number; header: Buffer } {
  let fd: number;
  try {
    // O_NOFOLLOW: a file swapped for a symlink after the scan must not pull in data from elsewhere.
    fd = openSync(source, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    throw changedSinceScan(entry.path, source);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size !== entry.size) throw changedSinceScan(entry.path, source);
    const mtime = Math.floor(st.mtimeMs / 1000);
    return {
      fd,
      header: tarHeader({ path: entry.path, type: 'file', mode: entry.mode, size: entry.size, mtime })
    };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** The header already promised `size` bytes, so growth must fail the upload too. */
function checkNotGrown(fd: number, path: string, source: string, size: number): void {
  if (readSync(fd, ONE, 0, 1, size) > 0) throw changedWhileReading(path, source, `grew beyond ${size} bytes`);
}

/** Zero bytes after `size` bytes of content, up to a whole block. */
function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Chunks in flight at most (each CHUNK bytes): the memory bound of an upload. */
const POOL = 4;

/** Fills pooled buffers and hands each to the sink once full; see {@link writeArchive}. */
class PooledWriter {
  private readonly free: Buffer[] = [];
  private allocated = 0;
  private cur: Buffer | undefined;
  private used = 0;
  private sent = 0;
  private flushes = 0;
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private readonly onEnd: (err?: Error) => void;

  constructor(
    private readonly sink: Writable,
    private readonly onProgress: ((bytesSent: number) => void) | undefined
  ) {
    this.onEnd = (err?: Error) => {
      this.failure ??= err instanceof Error ? err : closedEarly();
      this.wake?.();
    };
    sink.on('error', this.onEnd);
    sink.on('close', this.onEnd);
  }

  /** Appends bytes to the archive. */
  async put(data: Buffer): Promise<void> {
    let off = 0;
    while (off < data.length) {
      const buf = await this.space();
      const n = Math.min(data.length - off, buf.length - this.used);
      data.copy(buf, this.used, off, off + n);
      this.used += n;
      off += n;
    }
  }

  /** Appends one file's header, content and padding, hashing the content as it goes. */
  async file(
    entry: Extract<ArtifactEntry, { kind: 'file' }>,
    source: string,
    hashes: Map<string, string>
  ): Promise<void> {
    const { fd, header } = openFile(entry, source);
    try {
      const size = entry.size;
      await this.put(header);
      const hash = createHash('sha256');
      let pos = 0;
      while (pos < size) {
        const buf = await this.space();
        const want = Math.min(buf.length - this.used, size - pos);
        const n = readSync(fd, buf, this.used, want, pos);
        if (n === 0) throw changedWhileReading(entry.path, source, `shrank to ${pos} bytes`);
        hash.update(buf.subarray(this.used, this.used + n));
        this.used += n;
        pos += n;
      }
      checkNotGrown(fd, entry.path, source, size);
      const pad = padding(size);
      if (pad > 0) await this.put(ZEROS.subarray(0, pad));
      hashes.set(entry.path, hash.digest('hex'));
    } finally {
      closeSync(fd);
    }
  }

  /** Writes what is buffered, waits until the sink has taken every chunk, then ends it. */
  async finish(): Promise<void> {
    if (this.used > 0) this.flush();
    while (this.free.length < this.allocated) await this.waitFree();
    this.sink.off('close', this.onEnd);
    this.sink.end();
  }

  /** Stops: the sink is destroyed with the error, so the other end sees an incomplete archive. */
  abort(err: unknown): void {
    this.failure ??= err instanceof Error ? err : new Error(String(err));
    if (!this.sink.destroyed) this.sink.destroy(err instanceof Error ? err : new Error(String(err)));
  }

  /** The current buffer with room left in it, waiting for one to come back when all are in flight. */
  private async space(): Promise<Buffer> {
    this.check();
    if (this.cur && this.used < this.cur.length) return this.cur;
    if (this.cur) {
      this.flush();
      if (++this.flushes % YIELD_EVERY === 0) await new Promise(resolve => setImmediate(resolve));
    }
    while (this.free.length === 0 && this.allocated >= POOL) await this.waitFree();
    this.cur = this.free.pop() ?? (this.allocated++, Buffer.allocUnsafe(CHUNK));
    this.used = 0;
    return this.cur;
  }

  private flush(): void {
    const buf = this.cur!;
    const len = this.used;
    this.cur = undefined;
    this.used = 0;
    this.sink.write(buf.subarray(0, len), err => {
      if (err) return this.onEnd(err);
      if (this.failure) return; // stopped: no more progress, nothing to reuse
      this.sent += len;
      this.onProgress?.(this.sent);
      this.free.push(buf);
      this.wake?.();
    });
  }

  private async waitFree(): Promise<void> {
    this.check();
    await new Promise<void>(resolve => (this.wake = resolve));
    this.wake = undefined;
    this.check();
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }
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
  // Fields named one by one: a spread of `split` here was the slowest line of packing a small file.
  const header = ustarBlock({
    name: split.name,
    prefix: split.prefix,
    mode: h.mode,
    size,
    mtime,
    typeflag,
    linkname
  });
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

/**
 * What every ustar block of ours shares: owner 0/0 with empty names, the magic and version, device
 * numbers 0, and the checksum field as the eight spaces it counts as. Each block starts as a copy.
 */
const TEMPLATE = Buffer.alloc(BLOCK);
octal(TEMPLATE, 108, 8, 0); // uid
octal(TEMPLATE, 116, 8, 0); // gid
ascii(TEMPLATE, 257, 8, 'ustar\u000000'); // magic "ustar\0" + version "00"; uname/gname (265, 297) stay empty
octal(TEMPLATE, 329, 8, 0); // devmajor
octal(TEMPLATE, 337, 8, 0); // devminor
TEMPLATE.fill(0x20, 148, 156);
const TEMPLATE_SUM = TEMPLATE.reduce((sum, byte) => sum + byte, 0);

/**
 * One ustar block. Fields are written byte by byte and summed as they go. A deploy writes one header
 * per file: with `Buffer.write` (argument checks on every call), a sum over all 512 bytes and an
 * object spread in `tarHeader`, the 3,020 headers of the benchmark's tree took 40-80 ms of a fresh
 * process, about a sixth of packing it; written this way, 15-30 ms.
 */
function ustarBlock(f: {
  name: string;
  prefix: string;
  mode: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
}): Buffer {
  const b = Buffer.allocUnsafe(BLOCK);
  TEMPLATE.copy(b);
  const sum =
    TEMPLATE_SUM +
    ascii(b, 0, 100, f.name) +
    octal(b, 100, 8, f.mode) +
    octal(b, 124, 12, f.size) +
    octal(b, 136, 12, f.mtime) +
    ascii(b, 156, 1, f.typeflag) +
    ascii(b, 157, 100, f.linkname) +
    ascii(b, 345, 155, f.prefix);
  // The checksum: six octal digits, a NUL and a space, as GNU tar writes it.
  octal(b, 148, 7, sum);
  b[155] = 0x20;
  return b;
}

/**
 * Zero-padded octal digits followed by a NUL terminator, filling the field; returns the sum of the
 * bytes written (the terminator adds nothing).
 */
function octal(b: Buffer, offset: number, length: number, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > 8 ** (length - 1) - 1)
    throw new RangeError(`${value} does not fit a ${length}-byte tar field`);
  let sum = 0;
  let v = value;
  for (let i = offset + length - 2; i >= offset; i--) {
    const digit = 0x30 + (v % 8);
    b[i] = digit;
    sum += digit;
    v = Math.floor(v / 8);
  }
  b[offset + length - 1] = 0;
  return sum;
}

/**
 * Copies an ASCII string into a field of `max` bytes (the rest of the block is already zero) and
 * returns the sum of its bytes. Callers pass ASCII only (`isAscii`, `asciiOnly`).
 */
function ascii(b: Buffer, offset: number, max: number, s: string): number {
  if (s.length > max) throw new RangeError(`"${s}" does not fit a ${max}-byte tar field`);
  let sum = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    b[offset + i] = c;
    sum += c;
  }
  return sum;
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
