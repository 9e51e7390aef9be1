/** Which files an incremental upload sends and which it links, from the two manifests. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  utimesSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Artifact, scanArtifact } from '../../src/transfer/artifact.js';
import {
  abandonHashing,
  hashArtifact,
  hashCacheFile,
  parseManifest,
  parseModes,
  planDelta,
  reusedHashes,
  SETTLE_MS
} from '../../src/transfer/delta.js';
import { localHashes } from '../../src/execute/upload.js';
import type { DeployContext } from '../../src/execute/session.js';

const H = (c: string) => c.repeat(64);
const artifact: Artifact = {
  root: '/a',
  isFile: false,
  fileCount: 5,
  totalBytes: 50,
  entries: [
    { kind: 'dir', path: 'lib', mode: 0o755 },
    { kind: 'file', path: 'lib/a.js', mode: 0o644, size: 10 },
    { kind: 'file', path: 'lib/b.js', mode: 0o644, size: 10 },
    { kind: 'file', path: 'run.sh', mode: 0o755, size: 10 },
    { kind: 'file', path: '.env', mode: 0o600, size: 10 },
    { kind: 'symlink', path: 'latest', target: 'lib' },
    { kind: 'file', path: 'new.txt', mode: 0o644, size: 10 }
  ]
};
const local = new Map([
  ['lib/a.js', H('1')],
  ['lib/b.js', H('2')],
  ['run.sh', H('3')],
  ['.env', H('4')],
  ['new.txt', H('5')]
]);

test('same content and mode is linked; changed content or mode, new files and shared entries are sent', () => {
  const previous = parseManifest(
    [
      `${H('1')}  ./lib/a.js`,
      `${H('9')}  ./lib/b.js`,
      `${H('3')}  ./run.sh`,
      `${H('4')}  ./.env`,
      `${H('7')}  ./gone.txt`,
      'garbage'
    ].join('\n')
  );
  const modes = parseModes(
    ['644 lib/a.js', '644 lib/b.js', '644 run.sh', '600 .env', '644 gone.txt'].join('\n')
  );
  const d = planDelta(artifact, local, previous, modes, ['.env']);
  expect(d.link).toEqual(['lib/a.js']);
  expect(d.send.entries.map(e => e.path)).toEqual(['lib', 'lib/b.js', 'run.sh', '.env', 'latest', 'new.txt']);
  expect(d.send.fileCount).toBe(4);
  expect(d.send.totalBytes).toBe(40);
});

test('the manifest and mode parsers read what the host prints, and nothing else', () => {
  expect([...parseManifest(`${H('a')}  ./x y/z.txt\n${H('b')} ./bad\n`)]).toEqual([['x y/z.txt', H('a')]]);
  expect([...parseModes('755 bin/run\n4755 bin/suid\nnot a line\n')]).toEqual([
    ['bin/run', 0o755],
    ['bin/suid', 0o4755]
  ]);
});

describe('hashArtifact', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dg-hash-'));
    // 18 MiB: long enough to abandon midway and to watch this thread stay free meanwhile.
    for (let i = 0; i < 6; i++) writeFileSync(join(dir, `part-${i}.bin`), randomBytes(3 * 1024 * 1024));
    writeFileSync(join(dir, 'empty.txt'), '');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('hashes every file as sha256sum does, once per scanned artifact', async () => {
    const scanned = await scanArtifact(dir);
    const first = hashArtifact(scanned);
    expect(hashArtifact(scanned)).toBe(first);
    const sums = execFileSync('sha256sum', readdirSync(dir).sort(), { cwd: dir, encoding: 'utf8' });
    const expected = new Map(
      sums
        .trim()
        .split('\n')
        .map(l => [l.slice(66), l.slice(0, 64)] as const)
    );
    expect(await first).toEqual(expected);
    // In the artifact's order, however many threads shared the work.
    expect([...(await first).keys()]).toEqual(
      scanned.entries.filter(e => e.kind === 'file').map(e => e.path)
    );
    // A fresh scan is a fresh artifact: hashed again, same result.
    const again = await scanArtifact(dir);
    expect(hashArtifact(again)).not.toBe(first);
    expect(await hashArtifact(again)).toEqual(expected);
  });

  test('runs beside this thread: timers keep firing while it hashes', async () => {
    const scanned = await scanArtifact(dir);
    let ticks = 0;
    let done = false;
    const hashing = hashArtifact(scanned).finally(() => (done = true));
    const tick = (): void => {
      ticks++;
      if (!done) setImmediate(tick);
    };
    tick();
    await hashing;
    // Hashing on this thread in 1 MiB slices would let about 18 ticks through.
    expect(ticks).toBeGreaterThan(100);
  });

  test('never reads through a symlink put in place of a scanned file', async () => {
    const scanned = await scanArtifact(dir);
    const victim = join(dir, 'empty.txt');
    rmSync(victim);
    symlinkSync('/etc/passwd', victim);
    try {
      await expect(hashArtifact(scanned)).rejects.toThrow(/ELOOP/);
    } finally {
      rmSync(victim);
      writeFileSync(victim, '');
    }
  });

  test('an abandoned hashing stops early and rejects', async () => {
    const scanned = await scanArtifact(dir);
    const hashing = hashArtifact(scanned);
    abandonHashing(scanned);
    await expect(hashing).rejects.toThrow('hashing the artifact was abandoned');
  });
});

/** The hash cache file of the artifact, as the hashing thread wrote it. */
const cacheOf = (cacheDir: string, a: Artifact) =>
  JSON.parse(readFileSync(hashCacheFile(cacheDir, a), 'utf8')) as { v: number; files: string[][] };
const sha = (path: string) => execFileSync('sha256sum', [path], { encoding: 'utf8' }).slice(0, 64);

// Without and with the scan's identities (the CLI's deploys scan with them, see readArtifact): the
// same rules either way.
describe.each([false, true])('hashArtifact with a cache of earlier hashes (identify: %s)', identify => {
  let dir: string;
  let cacheDir: string;
  const settleMs = 100;
  const settle = () => new Promise(r => setTimeout(r, settleMs + 50));
  const cached = (a: Artifact) => cacheOf(cacheDir, a);
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dg-hash-cache-'));
    cacheDir = mkdtempSync(join(tmpdir(), 'dg-hash-cache-dir-'));
    for (const name of ['a.txt', 'b.txt', 'c.bin'])
      writeFileSync(
        join(dir, name),
        name === 'c.bin' ? randomBytes(2 * 1024 * 1024) : `content of ${name}\n`
      );
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  });
  /** The cache file is written after the answer: waits until it holds `n` files. */
  async function cacheHolds(a: Artifact, n: number) {
    for (let i = 0; i < 100; i++) {
      if (existsSync(hashCacheFile(cacheDir, a)) && cached(a).files.length === n) return;
      await new Promise(r => setTimeout(r, 20));
    }
    throw new Error(`the cache never held ${n} files`);
  }
  const scan = () => scanArtifact(dir, { identify });
  const PLANTED = 'e'.repeat(64);
  /** The files hashed once and kept; returns the scan and that cache with every hash replaced by PLANTED. */
  async function keptThenPlanted(): Promise<{ first: Artifact; planted: string }> {
    await settle();
    const first = await scan();
    await hashArtifact(first, { cacheDir, settleMs });
    await cacheHolds(first, 3);
    const kept = cached(first);
    for (const f of kept.files) f[2] = PLANTED;
    return { first, planted: JSON.stringify(kept) };
  }

  test('keeps the hashes of settled files, privately, and answers from them for the very same files', async () => {
    await settle();
    const first = await scan();
    const hashes = await hashArtifact(first, { cacheDir, settleMs });
    expect(hashes.get('c.bin')).toBe(sha(join(dir, 'c.bin')));
    expect(reusedHashes(first)).toBe(0);
    await cacheHolds(first, 3);
    expect(statSync(hashCacheFile(cacheDir, first)).mode & 0o777).toBe(0o600);
    const second = await scan();
    expect(await hashArtifact(second, { cacheDir, settleMs })).toEqual(hashes);
    expect(reusedHashes(second)).toBe(3);
  });

  test('a file changed since, even to the same size with its mtime put back, is read again', async () => {
    const { first, planted } = await keptThenPlanted();
    // The cache is what answers: a hash planted for an unchanged file comes back as it is...
    writeFileSync(hashCacheFile(cacheDir, first), planted, { mode: 0o600 });
    // ...but never for a file whose content changed: same size, same mtime, only its ctime moved.
    const a = join(dir, 'a.txt');
    const before = statSync(a, { bigint: true });
    // touch -r copies the times to the nanosecond (a Date would round them to the millisecond).
    const times = join(cacheDir, 'times');
    execFileSync('touch', ['-r', a, times]);
    writeFileSync(a, 'CONTENT OF a.txt\n');
    execFileSync('touch', ['-r', times, a]);
    const after = statSync(a, { bigint: true });
    expect([after.ino, after.size, after.mtimeNs]).toEqual([before.ino, before.size, before.mtimeNs]);
    await settle();
    const second = await scan();
    const hashes = await hashArtifact(second, { cacheDir, settleMs });
    expect(hashes.get('a.txt')).toBe(sha(a));
    expect(hashes.get('b.txt')).toBe(PLANTED);
    expect(reusedHashes(second)).toBe(2);
  });

  test('a file changed just before the hashing is hashed but not kept', async () => {
    const first = await scan();
    const hashes = await hashArtifact(first, { cacheDir, settleMs: 60_000 });
    expect(hashes.get('b.txt')).toBe(sha(join(dir, 'b.txt')));
    await new Promise(r => setTimeout(r, 300));
    expect(existsSync(hashCacheFile(cacheDir, first)) ? cached(first).files : []).toEqual([]);
    await settle();
    const second = await scan();
    await hashArtifact(second, { cacheDir, settleMs });
    expect(reusedHashes(second)).toBe(0);
  });

  test('a cache file others could have written, or a link to one, is never read', async () => {
    const { first, planted } = await keptThenPlanted();
    const file = hashCacheFile(cacheDir, first);
    const real = sha(join(dir, 'b.txt'));
    // Open to others: ignored, every file read again.
    writeFileSync(file, planted, { mode: 0o644 });
    chmodSync(file, 0o644);
    const loose = await scan();
    expect((await hashArtifact(loose, { cacheDir, settleMs })).get('b.txt')).toBe(real);
    expect(reusedHashes(loose)).toBe(0);
    // That run writes a cache of its own after answering (0600, renamed over the loose one):
    // once it is there, it is replaced.
    for (let i = 0; i < 100 && (statSync(file).mode & 0o777) !== 0o600; i++)
      await new Promise(r => setTimeout(r, 20));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // A symlink in its place (to a file that would pass): not followed.
    const elsewhere = join(cacheDir, 'elsewhere');
    writeFileSync(elsewhere, planted, { mode: 0o600 });
    rmSync(file);
    symlinkSync(elsewhere, file);
    const linked = await scan();
    expect((await hashArtifact(linked, { cacheDir, settleMs })).get('b.txt')).toBe(real);
    expect(reusedHashes(linked)).toBe(0);
  });

  test('a damaged cache is ignored and written again', async () => {
    await settle();
    const first = await scan();
    writeFileSync(hashCacheFile(cacheDir, first), '{"v":1,"files":[["x"', { mode: 0o600 });
    const hashes = await hashArtifact(first, { cacheDir, settleMs });
    expect(hashes.get('a.txt')).toBe(sha(join(dir, 'a.txt')));
    await cacheHolds(first, 3);
  });

  test('verify: full reads every byte: no cache is used', async () => {
    // localHashes keeps only files settled for SETTLE_MS.
    await new Promise(r => setTimeout(r, SETTLE_MS + 100));
    const ctx = (verify: 'full' | 'sent') =>
      ({ settings: { transfer: { verify } }, deps: { hashCache: cacheDir } }) as unknown as DeployContext;
    const full = await scanArtifact(dir);
    await localHashes(ctx('full'), full);
    const sent = await scanArtifact(dir);
    await localHashes(ctx('sent'), sent);
    await cacheHolds(sent, 3);
    expect(reusedHashes(full)).toBe(0);
    const again = await scanArtifact(dir);
    await localHashes(ctx('full'), again);
    expect(reusedHashes(again)).toBe(0);
  });
});

describe("hashArtifact with the scan's identities", () => {
  let dir: string;
  let cacheDir: string;
  const settleMs = 100;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'dg-hash-ids-'));
    cacheDir = mkdtempSync(join(tmpdir(), 'dg-hash-ids-cache-'));
    for (const name of ['a.txt', 'b.txt']) {
      writeFileSync(join(dir, name), `content of ${name}\n`);
      // An mtime of its own (a fresh file's equals its ctime), so that swapping the two shows.
      utimesSync(join(dir, name), new Date(), new Date('2020-01-02T03:04:05.678Z'));
    }
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  });
  async function kept(): Promise<Artifact> {
    await new Promise(r => setTimeout(r, settleMs + 50));
    const first = await scanArtifact(dir, { identify: true });
    await hashArtifact(first, { cacheDir, settleMs });
    for (let i = 0; i < 100 && !existsSync(hashCacheFile(cacheDir, first)); i++)
      await new Promise(r => setTimeout(r, 20));
    return first;
  }

  test("the scan's identity of a file is the one the hashing thread keeps", async () => {
    const first = await kept();
    const saved = cacheOf(cacheDir, first).files;
    const ids = first.entries.flatMap(e => (e.kind === 'file' ? [[join(dir, e.path), e.id]] : []));
    expect(ids.every(([, id]) => /^\d+:\d+:\d+:\d+:\d+$/.test(id!))).toBe(true);
    expect(saved.map(f => [f[0], f[1]])).toEqual(ids);
  });

  test('a file the cache knows by the identity the scan saw is not opened again', async () => {
    const first = await kept();
    const known = new Map(cacheOf(cacheDir, first).files.map(f => [f[0]!, f[2]!]));
    // Gone between the scan and the hashing: the cache answers from what the scan saw (a file
    // linked on the host is the previous release's, which the host checks against its record).
    const second = await scanArtifact(dir, { identify: true });
    rmSync(join(dir, 'a.txt'));
    const hashes = await hashArtifact(second, { cacheDir, settleMs });
    expect(hashes.get('a.txt')).toBe(known.get(join(dir, 'a.txt')));
    expect(reusedHashes(second)).toBe(2);
    // Without them the thread opens every file, and the same gap is an error.
    writeFileSync(join(dir, 'a.txt'), 'content of a.txt\n');
    const plain = await scanArtifact(dir);
    rmSync(join(dir, 'a.txt'));
    await expect(hashArtifact(plain, { cacheDir, settleMs })).rejects.toThrow(/ENOENT/);
  });

  // Mounting takes root: skipped elsewhere (CI runs the tests as root). A tmpfs stands for the
  // network or FAT mount whose ctime could not be trusted: only the root's file system was checked.
  (process.getuid?.() === 0 ? test : test.skip)(
    'files of another file system mounted inside the artifact are always read, and never kept',
    async () => {
      const mnt = join(dir, 'mnt');
      mkdirSync(mnt);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
      try {
        writeFileSync(join(mnt, 'inner.txt'), 'on another file system\n');
        utimesSync(join(mnt, 'inner.txt'), new Date(), new Date('2020-01-02T03:04:05.678Z'));
        const first = await kept();
        const saved = cacheOf(cacheDir, first).files;
        expect(saved.map(f => f[0]).sort()).toEqual([join(dir, 'a.txt'), join(dir, 'b.txt')]);
        await new Promise(r => setTimeout(r, settleMs + 50));
        const second = await scanArtifact(dir, { identify: true });
        const hashes = await hashArtifact(second, { cacheDir, settleMs });
        expect(hashes.get('mnt/inner.txt')).toBe(sha(join(mnt, 'inner.txt')));
        expect(reusedHashes(second)).toBe(2);
      } finally {
        execFileSync('umount', [mnt]);
      }
    }
  );

  test('the identity is trusted only when the file last changed settleMs before the scan began', async () => {
    await kept();
    // The same identity, but a settle time longer than the file's age: the file is opened (and
    // here it is gone, so that shows).
    const second = await scanArtifact(dir, { identify: true });
    rmSync(join(dir, 'a.txt'));
    await expect(hashArtifact(second, { cacheDir, settleMs: 3_600_000 })).rejects.toThrow(/ENOENT/);
  });
});
