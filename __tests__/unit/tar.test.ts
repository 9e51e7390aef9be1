import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  closeSync,
  ftruncateSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeFileSync,
  writeSync
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type Artifact, ArtifactError, manifestText, scanArtifact } from '../../src/transfer/artifact.js';
import { SharedMembers, tarHeader, writeArchive } from '../../src/transfer/tar.js';

const MiB = 1024 * 1024;
let tmp: string;
let src: string;
let out: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'dg-tar-'));
  src = join(tmp, 'src');
  out = join(tmp, 'out');
  mkdirSync(src);
  mkdirSync(out);
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

function file(rel: string, content: string | Buffer, mode = 0o644): void {
  mkdirSync(join(src, rel, '..'), { recursive: true });
  writeFileSync(join(src, rel), content);
  chmodSync(join(src, rel), mode);
}

function link(rel: string, target: string): void {
  mkdirSync(join(src, rel, '..'), { recursive: true });
  symlinkSync(target, join(src, rel));
}

/** Pipes the archive into GNU tar exactly as the host does; fails on a non-zero exit or any warning. */
async function extract(
  artifact: Artifact,
  dest: string,
  env: NodeJS.ProcessEnv = process.env,
  opts: Parameters<typeof writeArchive>[2] = {}
): Promise<Map<string, string>> {
  const tar = spawn('tar', ['-x', '-f', '-', '-C', dest, '--no-same-owner'], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env
  });
  let stderr = '';
  tar.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    tar.on('error', reject);
    tar.on('close', resolve);
  });
  const hashes = await writeArchive(artifact, tar.stdin, opts);
  expect({ code: await exited, stderr }).toEqual({ code: 0, stderr: '' });
  return hashes;
}

type Node = {
  type: 'dir' | 'file' | 'symlink' | 'other';
  mode?: number;
  mtime?: number;
  data?: Buffer;
  target?: string;
};
/** Everything that should survive the trip: type, permission bits, mtime (s), bytes, link targets. */
function snapshot(root: string): Map<string, Node> {
  const nodes = new Map<string, Node>();
  const visit = (rel: string): void => {
    for (const name of readdirSync(join(root, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, r));
      const mtime = Math.floor(st.mtimeMs / 1000);
      if (st.isSymbolicLink()) nodes.set(r, { type: 'symlink', target: readlinkSync(join(root, r)) });
      else if (st.isDirectory()) {
        nodes.set(r, { type: 'dir', mode: st.mode & 0o7777, mtime });
        visit(r);
      } else if (st.isFile())
        nodes.set(r, { type: 'file', mode: st.mode & 0o7777, mtime, data: readFileSync(join(root, r)) });
      else nodes.set(r, { type: 'other' });
    }
  };
  visit('');
  return nodes;
}

/** `sha256sum` of every regular file, keyed by relative path. */
function sha256sums(root: string): Map<string, string> {
  const text = execFileSync('sh', ['-c', 'find . -type f -print0 | xargs -0 sha256sum'], {
    cwd: root,
    encoding: 'utf8'
  });
  return new Map(
    text
      .trim()
      .split('\n')
      .map(line => {
        const m = /^([0-9a-f]{64}) {2}\.\/(.*)$/.exec(line);
        if (!m) throw new Error(`unexpected sha256sum line ${line}`);
        return [m[2] as string, m[1] as string] as const;
      })
  );
}

/**
 * A sink that keeps a copy of every chunk: the writer reuses its buffers once a chunk is called back,
 * so a consumer that holds on to them must copy. `buffers` collects the memory each chunk lived in.
 */
function collector(): { sink: Writable; bytes: () => Buffer; buffers: Set<ArrayBufferLike> } {
  const chunks: Buffer[] = [];
  const buffers = new Set<ArrayBufferLike>();
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      buffers.add(chunk.buffer);
      chunks.push(Buffer.from(chunk));
      setImmediate(done);
    }
  });
  return { sink, bytes: () => Buffer.concat(chunks), buffers };
}

const ustarPath = `nested/${'segment-abcdefghij/'.repeat(6)}leaf-file-name.txt`; // 145 chars: prefix + name
const paxPath = `deep/${'x'.repeat(60)}/${'y'.repeat(60)}/${'z'.repeat(60)}/${'w'.repeat(60)}/${'v'.repeat(80)}.txt`;
const unicodePath = 'données/héllo wörld 日本語 🚀.txt';

/** A tree exercising every header variant, plus things the exclusions must keep out. */
function buildTree(): void {
  file('empty.txt', '');
  file('bin/run.sh', '#!/bin/sh\necho hi\n', 0o755);
  file('bin/suid', 'x', 0o4755);
  file('big.bin', randomBytes(5 * MiB + 123));
  file('exact-block.bin', randomBytes(512));
  file('-leading dash & space.txt', 'dash');
  file(ustarPath, 'ustar split');
  file(paxPath, 'pax path');
  file(unicodePath, 'unicode ✓');
  file('app.js.map', 'excluded');
  file('.git/HEAD', 'excluded');
  mkdirSync(join(src, 'empty-dir'));
  chmodSync(join(src, 'empty-dir'), 0o750);
  link('link-to-big', 'big.bin');
  link('bin/up', '../empty.txt');
  link('dirlink', 'données');
  link('long-link', paxPath); // > 100 chars: pax linkpath
  link('dangling-inside', 'not/yet/there');
  execFileSync('mkfifo', [join(src, 'bin/control.fifo')]);
  utimesSync(join(src, 'big.bin'), 1_600_000_000.75, 1_600_000_000.75);
  utimesSync(join(src, 'empty-dir'), 1_500_000_000, 1_500_000_000);
}
const EXCLUDE = ['*.map', '.git/', '*.fifo'];

describe('writeArchive + GNU tar', () => {
  test.each(['C.UTF-8', 'C'])('round-trips a tree byte for byte (LC_ALL=%s)', async locale => {
    buildTree();
    const artifact = await scanArtifact(src, { exclude: EXCLUDE });
    const progress: number[] = [];
    const sums = await extract(
      artifact,
      out,
      { ...process.env, LC_ALL: locale },
      { onProgress: n => progress.push(n) }
    );

    const expected = snapshot(src);
    for (const p of ['app.js.map', '.git', '.git/HEAD', 'bin/control.fifo']) expected.delete(p);
    const suid = expected.get('bin/suid') as Node;
    expected.set('bin/suid', { ...suid, mode: 0o755 }); // setuid stripped on purpose
    const got = snapshot(out);
    expect([...got.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [p, { data, ...meta }] of expected) {
      const { data: gotData, ...gotMeta } = got.get(p) as Node;
      expect({ p, ...gotMeta }).toEqual({ p, ...meta });
      // Buffer.equals: jest's deep equality walks big buffers byte by byte, far too slowly.
      expect(p && gotData?.equals(data as Buffer)).toBe(p && data && true);
    }
    expect(got.get('big.bin')?.mtime).toBe(1_600_000_000);
    expect(got.get('empty-dir')).toMatchObject({ mode: 0o750, mtime: 1_500_000_000 });

    expect(sums).toEqual(sha256sums(out));
    expect([...sums.keys()]).toContain(unicodePath);
    expect(sums.size).toBe(artifact.fileCount);
    // Monotonic, ends at the archive size (a whole number of blocks, two zero blocks last).
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect((progress.at(-1) as number) % 512).toBe(0);
    expect(progress.at(-1)).toBeGreaterThan(artifact.totalBytes);
  });

  test('the manifest passes sha256sum -c --strict on the host copy, and fails after tampering', async () => {
    buildTree();
    const hashes = await extract(await scanArtifact(src, { exclude: EXCLUDE }), out);
    writeFileSync(join(out, 'MANIFEST'), manifestText(hashes));
    const check = () =>
      spawnSync('sha256sum', ['-c', '--strict', '--quiet', 'MANIFEST'], { cwd: out, encoding: 'utf8' });
    expect(check()).toMatchObject({ status: 0, stdout: '', stderr: '' });

    appendFileSync(join(out, unicodePath), '!');
    const failed = check();
    expect(failed.status).toBe(1);
    expect(failed.stdout).toBe(`./${unicodePath}: FAILED\n`);
  });

  test('a single-file artifact extracts as its basename', async () => {
    file('dist/app.tar.zst', randomBytes(70_000), 0o600);
    const hashes = await extract(await scanArtifact(join(src, 'dist/app.tar.zst')), out);
    expect(readdirSync(out)).toEqual(['app.tar.zst']);
    expect(readFileSync(join(out, 'app.tar.zst'))).toEqual(readFileSync(join(src, 'dist/app.tar.zst')));
    expect(lstatSync(join(out, 'app.tar.zst')).mode & 0o777).toBe(0o600);
    expect(hashes).toEqual(sha256sums(out));
  });

  test('GNU tar lists the ustar prefix/name split, pax paths and link targets as written', async () => {
    buildTree();
    const got = collector();
    await writeArchive(await scanArtifact(src, { exclude: EXCLUDE }), got.sink);
    const archive = got.bytes();
    const listing = execFileSync('tar', ['-tv', '-f', '-'], { input: archive, encoding: 'utf8' });
    expect(listing).toContain(` ${ustarPath}\n`);
    expect(listing).toContain(` ${paxPath}\n`);
    expect(listing).toContain(` ${unicodePath}\n`);
    expect(listing).toContain(` long-link -> ${paxPath}\n`);
    expect(listing).toMatch(/^drwxr-x--- 0\/0 +0 2017-07-14 \d\d:\d\d empty-dir\/$/m);
    // The 145-char path needs no pax header; the others do.
    expect(archive.includes(`path=${ustarPath}`)).toBe(false);
    expect(archive.includes(`path=${paxPath}\n`)).toBe(true);
    expect(archive.includes(`linkpath=${paxPath}\n`)).toBe(true);
    expect(archive.length % 512).toBe(0);
    expect(archive.subarray(-1024).equals(Buffer.alloc(1024))).toBe(true);
  });
});

describe('writeArchive with members shared between uploads', () => {
  test('every upload gets the bytes of an unshared archive; only files too large to keep are read again', async () => {
    buildTree();
    const artifact = await scanArtifact(src, { exclude: EXCLUDE });
    const plain = collector();
    const plainHashes = await writeArchive(artifact, plain.sink);
    // big.bin (5 MiB) is over the limit; everything else is kept.
    const shared = new SharedMembers(32 * MiB, MiB);
    const first = collector();
    expect(await writeArchive(artifact, first.sink, { shared })).toEqual(plainHashes);
    expect(first.bytes().equals(plain.bytes())).toBe(true);
    expect(shared.bytes).toBeGreaterThan(0);
    expect(shared.bytes).toBeLessThan(MiB);

    // Same sizes, new content: a kept file is not read again, a file over the limit is.
    const oldRun = readFileSync(join(src, 'bin/run.sh'));
    writeFileSync(join(src, 'bin/run.sh'), '#!/bin/sh\necho HI\n');
    const newBig = randomBytes(5 * MiB + 123);
    writeFileSync(join(src, 'big.bin'), newBig);
    const second = await extract(artifact, out, process.env, { shared });
    expect(readFileSync(join(out, 'bin/run.sh'))).toEqual(oldRun);
    expect(second.get('bin/run.sh')).toBe(plainHashes.get('bin/run.sh'));
    expect(readFileSync(join(out, 'big.bin')).equals(newBig)).toBe(true);
    expect(second.get('big.bin')).toBe(createHash('sha256').update(newBig).digest('hex'));
    expect(second).toEqual(sha256sums(out));
    expect(snapshot(out).get('long-link')).toEqual({ type: 'symlink', target: paxPath });
  });

  test('keeps members only up to its budget, and the rest still go out whole', async () => {
    for (let i = 0; i < 20; i++) file(`f${String(i).padStart(2, '0')}.bin`, randomBytes(3000));
    const artifact = await scanArtifact(src);
    // 3,000 bytes take 3,584 with header and padding: two fit in 8 KiB, the third does not.
    const shared = new SharedMembers(8192, MiB);
    const hashes = await extract(artifact, out, process.env, { shared });
    expect(shared.bytes).toBe(2 * 3584);
    expect(hashes).toEqual(sha256sums(out));
    expect(hashes.size).toBe(20);
    rmSync(out, { recursive: true });
    mkdirSync(out);
    expect(await extract(artifact, out, process.env, { shared })).toEqual(hashes);

    // A file of exactly the size limit is kept, one byte more is not.
    expect([new SharedMembers(MiB, 3000).takes(3000), new SharedMembers(MiB, 3000).takes(3001)]).toEqual([
      true,
      false
    ]);

    // Directories count too: one 512-byte header each, two fit in 1 KiB.
    rmSync(src, { recursive: true });
    for (const d of ['d1', 'd2', 'd3']) mkdirSync(join(src, d), { recursive: true });
    file('d3/x', '');
    const dirs = new SharedMembers(1024, MiB);
    await writeArchive(await scanArtifact(src), collector().sink, { shared: dirs });
    expect(dirs.bytes).toBe(1024);
  });
});

describe('tarHeader', () => {
  const field = (b: Buffer, off: number, len: number) =>
    b.toString('ascii', off, off + len).replace(/\0.*$/s, '');
  const checksumOk = (b: Buffer) => {
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (b[i] as number);
    return parseInt(field(b, 148, 8), 8) === sum;
  };

  test('writes a plain ustar block for short ASCII paths', () => {
    const b = tarHeader({ path: 'a/b.txt', type: 'file', mode: 0o755, size: 1234, mtime: 1_700_000_000 });
    expect(b).toHaveLength(512);
    expect(field(b, 0, 100)).toBe('a/b.txt');
    expect(field(b, 100, 8)).toBe('0000755');
    expect(field(b, 108, 8)).toBe('0000000');
    expect(field(b, 124, 12)).toBe('00000002322');
    expect(field(b, 136, 12)).toBe((1_700_000_000).toString(8));
    expect(field(b, 156, 1)).toBe('0');
    expect(b.toString('ascii', 257, 265)).toBe('ustar\u000000');
    expect(field(b, 265, 32) + field(b, 297, 32)).toBe('');
    expect(checksumOk(b)).toBe(true);
  });

  test('is byte for byte the ustar block GNU tar writes for the same file, directory and symlink', () => {
    const dir = join(tmp, 'gnu');
    mkdirSync(join(dir, 'd'), { recursive: true });
    writeFileSync(join(dir, 'd', 'f.txt'), 'hello, tar');
    symlinkSync('../some/target', join(dir, 'd', 'l'));
    const when = 1_700_000_123;
    utimesSync(join(dir, 'd', 'f.txt'), when, when);
    lutimesSync(join(dir, 'd', 'l'), when, when);
    utimesSync(join(dir, 'd'), when, when);
    chmodSync(join(dir, 'd', 'f.txt'), 0o640);
    chmodSync(join(dir, 'd'), 0o751);
    const archive = join(tmp, 'gnu.tar');
    const args = ['--format=ustar', '--owner=0', '--group=0', '--numeric-owner', '--no-recursion'];
    execFileSync('tar', [...args, '-C', dir, '-cf', archive, 'd', 'd/f.txt', 'd/l']);
    const gnu = readFileSync(archive);
    const ours = [
      tarHeader({ path: 'd', type: 'dir', mode: 0o751, size: 0, mtime: when }),
      tarHeader({ path: 'd/f.txt', type: 'file', mode: 0o640, size: 10, mtime: when }),
      tarHeader({
        path: 'd/l',
        type: 'symlink',
        mode: 0o777,
        size: 0,
        mtime: when,
        linkname: '../some/target'
      })
    ];
    // GNU tar's members: the directory, the file's header and its one block of data, the link.
    for (const [i, at] of [0, 512, 1536].entries())
      expect(ours[i]!.equals(gnu.subarray(at, at + 512))).toBe(true);
  });

  test('directories get a trailing slash, symlinks their target', () => {
    const d = tarHeader({ path: 'x/y', type: 'dir', mode: 0o700, size: 0, mtime: 0 });
    expect([field(d, 0, 100), field(d, 156, 1)]).toEqual(['x/y/', '5']);
    const l = tarHeader({ path: 'l', type: 'symlink', mode: 0o777, size: 0, mtime: 0, linkname: '../t' });
    expect([field(l, 156, 1), field(l, 157, 100)]).toEqual(['2', '../t']);
    expect(checksumOk(d) && checksumOk(l)).toBe(true);
  });

  test('splits long ASCII paths into prefix and name, else falls back to pax', () => {
    const b = tarHeader({ path: ustarPath, type: 'file', mode: 0o644, size: 0, mtime: 0 });
    expect(b).toHaveLength(512);
    expect(`${field(b, 345, 155)}/${field(b, 0, 100)}`).toBe(ustarPath);
    const name101 = 'n'.repeat(101); // no '/' to split at
    const p = tarHeader({ path: name101, type: 'file', mode: 0o644, size: 0, mtime: 0 });
    expect(p).toHaveLength(1536);
    expect(field(p, 156, 1)).toBe('x');
    expect(p.toString('utf8', 512, 1024)).toMatch(new RegExp(`^111 path=${name101}\n\0+$`));
    expect(checksumOk(p) && checksumOk(p.subarray(1024))).toBe(true);
  });

  test('uses pax for sizes over 8 GiB - 1, and GNU tar reads them', () => {
    const limit = 8 * 1024 ** 3 - 1;
    expect(field(tarHeader({ path: 'f', type: 'file', mode: 0o644, size: limit, mtime: 0 }), 124, 12)).toBe(
      '77777777777'
    );
    const size = limit + 1;
    const h = tarHeader({ path: 'huge.img', type: 'file', mode: 0o644, size, mtime: 1_700_000_000 });
    expect(h.toString('utf8', 512, 1024)).toMatch(/^19 size=8589934592\n/);
    // A sparse archive: header, 8 GiB of "data" nobody writes, end blocks. tar -t seeks over the data.
    const archive = join(tmp, 'huge.tar');
    const fd = openSync(archive, 'w');
    writeSync(fd, h);
    ftruncateSync(fd, h.length + size + 1024);
    closeSync(fd);
    expect(execFileSync('tar', ['-tv', '-f', archive], { encoding: 'utf8' })).toMatch(
      / 8589934592 .* huge\.img\n$/
    );
  });
});

describe('writeArchive errors', () => {
  /** Packs into a sink that records whether it was destroyed (the other end must not see an end). */
  async function expectChanged(
    artifact: Artifact,
    message: RegExp,
    opts: Parameters<typeof writeArchive>[2] = {}
  ): Promise<void> {
    const { sink } = collector();
    let ended = false;
    sink.on('finish', () => (ended = true));
    sink.on('error', () => undefined);
    const err: unknown = await writeArchive(artifact, sink, opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArtifactError);
    expect((err as ArtifactError).message).toMatch(message);
    expect((err as ArtifactError).hint).toMatch(/nothing writes to the artifact/);
    expect({ destroyed: sink.destroyed, ended }).toEqual({ destroyed: true, ended: false });
  }

  // Kept for other hosts or not (a kept file is read whole into a buffer of its own), the same checks.
  const sharing = [
    ['', () => undefined],
    [', packed to be shared', () => new SharedMembers()]
  ] as const;

  test.each(sharing)('a file modified between scan and pack%s', async (_, shared) => {
    file('a/data.bin', 'before');
    const artifact = await scanArtifact(src);
    writeFileSync(join(src, 'a/data.bin'), 'after!!');
    await expectChanged(
      artifact,
      new RegExp(
        `^Artifact entry "a/data.bin" was modified, replaced or removed after it was scanned \\(${src}/a/data.bin\\)`
      ),
      { shared: shared() }
    );
  });

  test.each(sharing)('a file replaced by a symlink or removed after the scan%s', async (_, shared) => {
    file('a.txt', 'a');
    file('b.txt', 'b');
    const artifact = await scanArtifact(src);
    rmSync(join(src, 'a.txt'));
    symlinkSync('b.txt', join(src, 'a.txt'));
    const kept = shared();
    await expectChanged(artifact, /"a.txt" was modified, replaced or removed/, { shared: kept });
    rmSync(join(src, 'a.txt'));
    await expectChanged(artifact, /"a.txt" was modified, replaced or removed/, { shared: kept });
    expect(kept?.get('a.txt')).toBeUndefined();
  });

  // 8 MiB: larger than the writer's pool of buffers, so the first chunks are called back (and the
  // file changed) while it is still being read.
  test('a file growing while it is read', async () => {
    file('grow.bin', randomBytes(8 * MiB));
    const artifact = await scanArtifact(src);
    await expectChanged(
      artifact,
      /^Artifact file "grow.bin" changed size while being packed: it grew beyond 8388608 bytes/,
      { onProgress: () => appendFileSync(join(src, 'grow.bin'), 'more') }
    );
  });

  test('a file shrinking while it is read', async () => {
    file('shrink.bin', randomBytes(8 * MiB));
    const artifact = await scanArtifact(src);
    await expectChanged(
      artifact,
      // Whole 1 MiB chunks were read before the cut: the header's 512 bytes took the rest.
      /^Artifact file "shrink.bin" changed size while being packed: it shrank to [1-7]\d{6} bytes/,
      { onProgress: () => truncateSync(join(src, 'shrink.bin'), 10) }
    );
  });

  test('a sink that closes early (a dropped channel) rejects the archive', async () => {
    file('big.bin', randomBytes(8 * MiB));
    const sink = new Writable({
      write(_chunk, _enc, done) {
        done();
        sink.destroy();
      }
    });
    await expect(writeArchive(await scanArtifact(src), sink)).rejects.toThrow(
      'The archive stream was closed before it was complete.'
    );
  });

  test('a failing sink rejects the archive with its error', async () => {
    file('big.bin', randomBytes(8 * MiB));
    const sink = new Writable({
      write: (_chunk, _enc, done) => done(new Error('EPIPE: the host went away'))
    });
    sink.on('error', () => undefined);
    await expect(writeArchive(await scanArtifact(src), sink)).rejects.toThrow('EPIPE: the host went away');
  });
});

test('back-pressure: a slow consumer keeps reads and memory bounded (200 MiB sparse file)', async () => {
  const size = 200 * MiB;
  const fd = openSync(join(src, 'sparse.img'), 'w');
  ftruncateSync(fd, size);
  closeSync(fd);
  file('tail.txt', 'end');
  const expectedHash = execFileSync('sha256sum', ['sparse.img'], { cwd: src, encoding: 'utf8' }).slice(0, 64);
  // Bytes this process has read(2) from anywhere: independent of how the packer is written.
  const rchar = () => Number(/^rchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))?.[1]);
  const rss0 = process.memoryUsage().rss;
  const read0 = rchar();
  let consumed = 0;
  let maxAhead = 0;
  let maxRss = rss0;
  const slowSink = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _enc, done) {
      consumed += chunk.length;
      maxAhead = Math.max(maxAhead, rchar() - read0 - consumed);
      maxRss = Math.max(maxRss, process.memoryUsage().rss);
      setTimeout(done, 5);
    }
  });
  const hashes = await writeArchive(await scanArtifact(src), slowSink);

  expect(consumed).toBe(512 + size + 512 + 512 + 1024);
  // Reads stay within a few chunks (1 MiB each) of the consumer; an eager reader would be ~200 MiB ahead.
  expect(maxAhead).toBeLessThan(8 * MiB);
  expect(maxRss - rss0).toBeLessThan(64 * MiB);
  expect(hashes.get('sparse.img')).toBe(expectedHash);
});

test('the writer reuses a few buffers: 100 MiB go out through at most 4 of them', async () => {
  for (let i = 0; i < 25; i++) file(`part-${i}.bin`, randomBytes(4 * MiB));
  const artifact = await scanArtifact(src);
  const got = collector();
  const hashes = await writeArchive(artifact, got.sink);
  // A writer allocating per chunk would hand out ~100 distinct buffers and leave them to the GC.
  expect(got.buffers.size).toBeLessThanOrEqual(4);
  const archive = got.bytes();
  expect(archive.length).toBe(25 * (512 + 4 * MiB) + 1024);
  // The copies prove no chunk was overwritten before it was called back.
  const listing = execFileSync('tar', ['-t', '-f', '-'], { input: archive, encoding: 'utf8' });
  expect(listing.split('\n').filter(Boolean)).toHaveLength(25);
  const index = artifact.entries.findIndex(e => e.path === 'part-7.bin');
  const offset = index * (512 + 4 * MiB) + 512;
  expect(
    createHash('sha256')
      .update(archive.subarray(offset, offset + 4 * MiB))
      .digest('hex')
  ).toBe(hashes.get('part-7.bin'));
  expect(hashes.get('part-7.bin')).toBe(
    createHash('sha256')
      .update(readFileSync(join(src, 'part-7.bin')))
      .digest('hex')
  );
});
