// Deterministic, incompressible benchmark artifacts.
//
//   node bench/lib/fixture.mjs tree DIR            3,000 files of 0.5-8 KB in 30 directories
//                                                  plus 20 files of 4 MiB (about 99 MB)
//   node bench/lib/fixture.mjs big DIR GIB PARTS   GIB GiB split into PARTS equal files
//   node bench/lib/fixture.mjs small DIR           100 files of 0.5-8 KB (for latency-bound runs)
//   node bench/lib/fixture.mjs mutate DIR ROUND    rewrites 30 of the small files of a tree
//                                                  (1% of its files; ROUND picks which and how)
//
// Content is an AES-256-CTR keystream keyed by a seed: random-looking (gzip cannot shrink it),
// identical on every run, and produced at memory speed. Sizes and choices come from a seeded PRNG.
import { createCipheriv, createHash } from 'node:crypto';
import { mkdirSync, openSync, writeSync, closeSync, rmSync, utimesSync } from 'node:fs';
import { join } from 'node:path';

const SMALL_FILES = 3000;
const SMALL_DIRS = 30;
const LARGE_FILES = 20;
const LARGE_SIZE = 4 * 1024 * 1024;
const CHANGED = 30;

/** mulberry32: a small, well-mixed 32-bit PRNG; plenty for picking sizes. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A deterministic keystream for `label`: call with a byte count, get that many random bytes. */
function stream(label) {
  const key = createHash('sha256').update(`deployguard-bench:${label}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return n => cipher.update(Buffer.alloc(n));
}

function writeFile(path, bytes) {
  const fd = openSync(path, 'w', 0o644);
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off);
  } finally {
    closeSync(fd);
  }
}

function smallPath(dir, i) {
  return join(dir, `lib${String(i % SMALL_DIRS).padStart(2, '0')}`, `mod${String(i).padStart(4, '0')}.js`);
}

function smallSize(rand) {
  return 512 + Math.floor(rand() * (8192 - 512 + 1));
}

function tree(dir, count = SMALL_FILES, large = LARGE_FILES) {
  rmSync(dir, { recursive: true, force: true });
  const rand = prng(1);
  const bytes = stream('tree');
  for (let d = 0; d < Math.min(SMALL_DIRS, count); d++)
    mkdirSync(join(dir, `lib${String(d).padStart(2, '0')}`), { recursive: true });
  let total = 0;
  for (let i = 0; i < count; i++) {
    const size = smallSize(rand);
    writeFile(smallPath(dir, i), bytes(size));
    total += size;
  }
  if (large > 0) mkdirSync(join(dir, 'assets'), { recursive: true });
  for (let i = 0; i < large; i++) {
    writeFile(join(dir, 'assets', `blob${String(i).padStart(2, '0')}.bin`), bytes(LARGE_SIZE));
    total += LARGE_SIZE;
  }
  // Fixed timestamps: the tree is the same on every run, metadata included.
  const t = new Date('2025-01-01T00:00:00Z');
  for (let i = 0; i < count; i++) utimesSync(smallPath(dir, i), t, t);
  for (let i = 0; i < large; i++)
    utimesSync(join(dir, 'assets', `blob${String(i).padStart(2, '0')}.bin`), t, t);
  console.log(`${count + large} files, ${total} bytes in ${dir}`);
}

function big(dir, gib, parts) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const total = gib * 1024 ** 3;
  const each = Math.floor(total / parts);
  const bytes = stream('big');
  const CHUNK = 8 * 1024 * 1024;
  for (let p = 0; p < parts; p++) {
    const fd = openSync(join(dir, `part${p}.bin`), 'w', 0o644);
    try {
      for (let off = 0; off < each; off += CHUNK) {
        const buf = bytes(Math.min(CHUNK, each - off));
        let w = 0;
        while (w < buf.length) w += writeSync(fd, buf, w);
      }
    } finally {
      closeSync(fd);
    }
  }
  console.log(`${parts} files, ${each * parts} bytes in ${dir}`);
}

/** Rewrites CHANGED small files (same sizes, new bytes, new mtime): one round of a 1% change. */
function mutate(dir, round) {
  const rand = prng(1000 + round);
  const bytes = stream(`mutate-${round}`);
  const picked = new Set();
  while (picked.size < CHANGED) picked.add(Math.floor(rand() * SMALL_FILES));
  // Sizes as generated, so the tree's total size never drifts between rounds.
  const sizeRand = prng(1);
  const sizes = Array.from({ length: SMALL_FILES }, () => smallSize(sizeRand));
  // Each round's own timestamp: rsync's quick check (size and whole-second mtime) must see every
  // change, even when two rounds rewrite a file within the same second with the same size.
  const t = new Date(Date.parse('2025-01-01T00:00:00Z') + round * 3600_000);
  for (const i of picked) {
    writeFile(smallPath(dir, i), bytes(sizes[i]));
    utimesSync(smallPath(dir, i), t, t);
  }
}

const [cmd, dir, a, b] = process.argv.slice(2);
if (cmd === 'tree' && dir) tree(dir);
else if (cmd === 'small' && dir) tree(dir, 100, 0);
else if (cmd === 'big' && dir && Number(a) > 0 && Number(b) > 0) big(dir, Number(a), Number(b));
else if (cmd === 'mutate' && dir && a !== undefined) mutate(dir, Number(a));
else {
  console.error('usage: fixture.mjs tree DIR | small DIR | big DIR GIB PARTS | mutate DIR ROUND');
  process.exit(2);
}
