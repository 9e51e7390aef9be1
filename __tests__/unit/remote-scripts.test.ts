/**
 * The scripts that fold several steps into one round trip, run by a local POSIX sh exactly as a
 * host runs them (`sh -c 'set -eu; ...'`): marks, exit codes, and the upload's own hashes.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
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
import {
  LOCK_BUSY,
  LOCK_GO,
  LOCK_LOST,
  hasherFor,
  LOCK_NO_GO,
  PARALLEL_LINKS,
  lockAcquire,
  lockHeld,
  lockRefresh,
  lockRelease,
  lockThenProbe,
  preflightScript,
  previousReleaseFacts,
  PREVIOUS_MARK,
  probe,
  pruneReleases,
  releaseListing,
  STEP_MARK,
  stepGroup,
  STAGED_MARK,
  sumsPath,
  uploadScript,
  verifyManifest,
  verifySent,
  withCode
} from '../../src/remote/commands.js';
import { lines, sh } from '../../src/remote/shell.js';
import { splitReleases } from '../../src/execute/state.js';
import { parseReleaseList } from '../../src/plan/plan.js';
import { layoutFor } from '../../src/remote/layout.js';
import { preflightProbe } from '../../src/preflight.js';
import { BASE_INPUTS, settingsFrom } from '../helpers/settings.js';

function run(script: { text: string }, input?: Buffer | string, env?: NodeJS.ProcessEnv) {
  const r = spawnSync('sh', ['-c', `set -eu\n${script.text}`], { input, ...(env ? { env } : {}) });
  return { code: r.status ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** A PATH holding every program of /usr/bin and /bin but `missing`: a host without that tool. */
function pathWithout(missing: string): string {
  const bin = mkdtempSync(join(tmpdir(), 'dg-bin-'));
  for (const from of ['/usr/bin', '/bin'])
    for (const name of readdirSync(from))
      if (name !== missing && !existsSync(join(bin, name))) symlinkSync(join(from, name), join(bin, name));
  return bin;
}

// Root may write and delete anything, so scripts whose point is a permission run as `nobody`.
// Switching users takes root: elsewhere those tests cannot run, and are skipped saying so (CI runs
// as root).
const asRoot = process.getuid?.() === 0;
function asNobody(script: { text: string }, input?: Buffer) {
  const r = spawnSync('runuser', ['-u', 'nobody', '--', 'sh', '-c', `set -eu\n${script.text}`], { input });
  return { code: r.status ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dg-scripts-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('stepGroup', () => {
  test('marks each step that succeeded; the first failure ends the group with its code', () => {
    const r = run(stepGroup([sh`echo one`, sh`exit 0`, sh`false`, sh`echo never`]));
    expect(r.code).toBe(1);
    const marks = r.stdout.split('\n').filter(l => l.startsWith(STEP_MARK));
    expect(marks.map(l => l.split(' ')[1])).toEqual(['start', '0', '1']);
    expect(r.stdout).toContain('one\n');
    expect(r.stdout).not.toContain('never');
  });

  test('each mark carries the host uptime in seconds, read without starting a process', () => {
    const r = run(stepGroup([sh`sleep 0.05`, sh`:`]));
    const times = r.stdout
      .split('\n')
      .filter(l => l.startsWith(STEP_MARK))
      .map(l => Number(l.split(' ')[2]));
    const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    expect(times).toHaveLength(3);
    for (const t of times) expect(t).toBeGreaterThan(uptime - 60);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(0.04);
    expect(times[2]).toBeGreaterThanOrEqual(times[1]!);
    expect(stepGroup([sh`:`]).text).not.toMatch(/\bdate\b/);
  });

  test('an exit inside a step ends only that step', () => {
    const r = run(stepGroup([sh`exit 0; echo skipped`, sh`echo two`], sh`echo after`));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/two\n.*\nafter\n$/s);
    expect(r.stdout).not.toContain('skipped');
  });
});

describe('lockThenProbe and withCode', () => {
  const go = `${LOCK_GO}\n`;
  test('a busy lock exits with its own code and never probes', () => {
    const r = run(lockThenProbe(sh`echo busy; exit 75`, sh`echo probed`), go);
    expect(r.code).toBe(75);
    expect(r.stdout).toBe('busy\n');
  });

  test("a failing probe is reported after the lock's answer, with errexit inside it", () => {
    const r = run(lockThenProbe(sh`echo acquired`, sh`printf 'cut short'; false; echo not-reached`), go);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('acquired\n--deployguard-probe--\ncut short\nprobe-rc=1\n');
  });

  test('without the go line on stdin (the connection gone before it started), nothing is taken', () => {
    const marker = join(dir, 'taken');
    for (const input of [undefined, '', 'something else\n']) {
      const r = run(lockThenProbe(sh`mkdir -- ${marker}`, sh`echo probed`), input);
      expect(r).toMatchObject({ code: LOCK_NO_GO, stdout: '' });
      expect(existsSync(marker)).toBe(false);
    }
    expect(run(lockThenProbe(sh`mkdir -- ${marker}`, sh`echo probed`), go).code).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });

  test('withCode keeps the script around it going', () => {
    const r = run(sh`${withCode(sh`exit 3`, 'a-rc')}\necho next`);
    expect(r.stdout).toBe('\na-rc=3\nnext\n');
  });
});

describe('the lock', () => {
  const layout = () =>
    layoutFor({ path: join(dir, 'app'), strategy: 'releases', keepReleases: 2, shared: [] });
  const owner = (token: string) => JSON.stringify({ token, run: '1', at: '2026-12-03T00:00:00Z' });

  test('taken once; released and refreshed only while its owner file carries the token', () => {
    const l = layout();
    expect(run(lockAcquire(l, owner('tok-a'), 600))).toMatchObject({ code: 0, stdout: 'acquired\n' });
    expect(existsSync(l.statusDir) && existsSync(l.manifestsDir)).toBe(true);
    expect(run(lockAcquire(l, owner('tok-b'), 600)).code).toBe(LOCK_BUSY);
    // Another deploy's token neither refreshes nor frees it.
    expect(run(lockRefresh(l, 'tok-b')).code).toBe(LOCK_LOST);
    expect(run(lockRelease(l, 'tok-b'))).toMatchObject({ code: 0, stdout: '' });
    expect(existsSync(l.lockDir)).toBe(true);
    expect(run(lockRefresh(l, 'tok-a')).code).toBe(0);
    expect(run(lockRelease(l, 'tok-a'))).toMatchObject({ code: 0, stdout: 'released\n' });
    expect(existsSync(l.lockDir)).toBe(false);
    // Gone, or with no owner file: not ours.
    expect(run(lockRefresh(l, 'tok-a')).code).toBe(LOCK_LOST);
    mkdirSync(l.lockDir);
    expect(run(lockRelease(l, 'tok-a'))).toMatchObject({ code: 0, stdout: '' });
    expect(run(sh`if ${lockHeld(l, 'tok-a')}; then echo held; else echo free; fi`).stdout).toBe('free\n');
  });
});

describe('the preflight facts', () => {
  test('free space is read where the deploy will write: the nearest directory that exists', () => {
    const facts = (path: string) => {
      const s = settingsFrom(
        { ...BASE_INPUTS, 'target-path': path },
        'version: 1\nservice: { manager: none }'
      );
      return run(preflightScript(layoutFor(s.target), preflightProbe(s)));
    };
    const r = facts(join(dir, 'not', 'there', 'yet'));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`disk-dir=${dir}\n`);
    expect(r.stdout).toMatch(/^disk-free-kb=\d+$/m);
    expect(r.stdout).not.toContain('unwritable=');
    // Up to the root when nothing on the way exists.
    expect(facts('/dg-none-1/a/b').stdout).toContain('disk-dir=/\n');
  });
});

describe('upload and verify', () => {
  const sha = (p: string) => execFileSync('sha256sum', [p]).toString().slice(0, 64);
  const tarOf = (src: string) =>
    execFileSync('tar', ['-c', '-f', '-', '-C', src, 'a.txt', 'sub', 'sub/b.txt', 'link']);

  // OpenSSL where it is asked for and the host has it, sha256sum where it has not or is asked for.
  test.each([
    ['openssl', 'openssl', undefined],
    ['sha256sum', 'openssl', 'openssl'],
    ['sha256sum', 'sha256sum', undefined]
  ] as const)(
    'the upload hashes the files as they land (%s, asked for %s); verify then passes, and catches a changed file',
    (tool, asked, missing) => {
      const bin = missing ? pathWithout(missing) : undefined;
      const env = bin ? { ...process.env, PATH: bin } : undefined;
      const src = join(dir, 'src');
      mkdirSync(join(src, 'sub'), { recursive: true });
      writeFileSync(join(src, 'a.txt'), 'alpha\n');
      writeFileSync(join(src, 'sub', 'b.txt'), 'beta\n');
      execFileSync('ln', ['-s', '/dev/zero', join(src, 'link')]);
      const staging = join(dir, 'state', 'staging', 'r1');
      const up = run(uploadScript(staging, undefined, asked), tarOf(src), env);
      expect(up.code).toBe(0);
      // Regular files only: the symlink (to a device) is never read.
      const sums = readFileSync(sumsPath(staging), 'utf8');
      const sep = tool === 'openssl' ? ' *' : '  ';
      expect(sums).toContain(`${sha(join(src, 'a.txt'))}${sep}./a.txt\n`);
      expect(sums).toContain(`${sha(join(src, 'sub', 'b.txt'))}${sep}./sub/b.txt\n`);
      expect(sums).not.toContain('link');
      const manifest = `${sha(join(src, 'a.txt'))}  ./a.txt\n${sha(join(src, 'sub', 'b.txt'))}  ./sub/b.txt\n`;
      const keep = join(dir, 'state', 'manifests', 'r1.sha256');
      // A file changed after it was hashed on the way in is hashed again only if its line is missing:
      // a wrong line in the head start is never trusted.
      writeFileSync(
        sumsPath(staging),
        sums.replace(/^[0-9a-f]{64}( {2}| \*)\.\/a\.txt$/m, `${'0'.repeat(64)}$1./a.txt`)
      );
      // The hashes taken as the files landed are what the verification compares, in either tool's
      // format: sub/b.txt, edited since it landed, is not read again (its line matched).
      writeFileSync(join(staging, 'sub', 'b.txt'), 'BETA\n');
      const ok = run(verifyManifest(staging, 2, keep), manifest, env);
      expect(ok).toMatchObject({ code: 0, stdout: 'count=2\n' });
      writeFileSync(join(staging, 'sub', 'b.txt'), 'beta\n');
      expect(readFileSync(keep, 'utf8')).toBe(manifest);
      expect(readFileSync(keep.replace(/\.sha256$/, '.stat'), 'utf8')).toMatch(
        /^\d+ 6 \d+\.\d+ \.\/a\.txt$/m
      );
      writeFileSync(join(staging, 'a.txt'), 'changed\n');
      expect(run(verifyManifest(staging, 2, keep), manifest, env).code).not.toBe(0);
      if (bin) rmSync(bin, { recursive: true, force: true });
    }
  );

  test('OpenSSL hashes an upload only where its batches of 256 files hold 2 MB or more', () => {
    expect(hasherFor(550_000, 100)).toBe('sha256sum'); // the small fixture
    expect(hasherFor(96_861_055, 3020)).toBe('openssl'); // the benchmark's tree: 12 batches of 8 MB
    expect(hasherFor(123_000, 30)).toBe('sha256sum'); // 30 changed files
    expect(hasherFor(2_000_000, 256)).toBe('openssl');
    expect(hasherFor(1_999_999, 256)).toBe('sha256sum');
    expect(hasherFor(3_999_999, 257)).toBe('sha256sum'); // two batches
    expect(hasherFor(50_000_000, 1)).toBe('openssl');
    expect(hasherFor(0, 0)).toBe('sha256sum');
  });

  test('a to-do list an earlier verification left behind is not read', () => {
    const staging = join(dir, 'staging', 'r4');
    mkdirSync(staging, { recursive: true });
    writeFileSync(join(staging, 'a.txt'), 'alpha\n');
    const line = `${sha(join(staging, 'a.txt'))}  ./a.txt\n`;
    writeFileSync(sumsPath(staging), line);
    const keep = join(dir, 'manifests', 'r4.sha256');
    mkdirSync(join(dir, 'manifests'));
    writeFileSync(`${keep}.todo`, `${'0'.repeat(64)}  ./a.txt\n`);
    expect(run(verifyManifest(staging, 1, keep), line)).toMatchObject({ code: 0, stdout: 'count=1\n' });
    expect(existsSync(`${keep}.todo`)).toBe(false);
    expect(existsSync(sumsPath(staging))).toBe(false);
    // The count is the tree's: a file the manifest does not name fails it.
    writeFileSync(join(staging, 'extra.txt'), 'x\n');
    const extra = run(verifyManifest(staging, 1, keep), line);
    expect(extra.code).toBe(4);
    expect(extra.stderr).toContain('file count 2, expected 1');
  });

  test('with no hashes from the upload (nothing sent: every file linked), verify hashes every line', () => {
    const staging = join(dir, 'staging', 'r3');
    mkdirSync(staging, { recursive: true });
    writeFileSync(join(staging, 'kept.txt'), 'edited on the host\n');
    writeFileSync(sumsPath(staging), '');
    const keep = join(dir, 'manifests', 'r3.sha256');
    const r = run(verifyManifest(staging, 1, keep), `${'0'.repeat(64)}  ./kept.txt\n`);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toContain('./kept.txt: FAILED');
  });

  // Below PARALLEL_LINKS files one cp links them all; from it on, one per core, directories first.
  test.each([
    ['one copy', 20],
    ['parallel copies', 45]
  ])('an incremental upload links every listed file, in nested directories (%s)', (_, perDir) => {
    // The previous release: 12 nested directories, one of them with an odd name.
    const prev = join(dir, 'releases', 'r1');
    const dirs = Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? `d${i}` : `d${i - (i % 3)}/s ${i}`));
    for (const d of dirs) {
      mkdirSync(join(prev, d), { recursive: true });
      for (let f = 0; f < perDir; f++) writeFileSync(join(prev, d, `f${f}`), `${d}/${f}\n`);
    }
    // The new release changes d0/f0: it is not linked but sent, in the tar stream after the lists.
    // Interleaved across the directories, so that every parallel copy needs every directory: made
    // by the copies themselves, two would race to create the same one.
    const linked = Array.from({ length: perDir }, (_, f) => dirs.map(d => `${d}/f${f}`))
      .flat()
      .filter(f => f !== 'd0/f0');
    const parallel = linked.length >= PARALLEL_LINKS;
    expect(parallel).toBe(perDir === 45);
    const dirList = parallel ? Buffer.from(dirs.map(d => `${d}\0`).join('')) : Buffer.alloc(0);
    const fileList = Buffer.from(linked.map(f => `${f}\0`).join(''));
    const src = join(dir, 'src');
    mkdirSync(join(src, 'd0'), { recursive: true, mode: 0o750 });
    chmodSync(join(src, 'd0'), 0o750);
    writeFileSync(join(src, 'd0', 'f0'), 'new\n');
    const staging = join(dir, 'staging', 'r2');
    const script = uploadScript(staging, {
      from: prev,
      dirBytes: dirList.length,
      bytes: fileList.length,
      count: linked.length,
      parallel
    });
    expect(script.text.includes('-P "$cores"')).toBe(parallel);
    const tar = execFileSync('tar', ['-c', '-f', '-', '-C', src, 'd0', 'd0/f0']);
    const up = run(script, Buffer.concat([dirList, fileList, tar]));
    // Nothing per linked file comes back: the verification checks them on the host.
    expect(up).toMatchObject({ code: 0, stderr: '', stdout: `${STAGED_MARK}\n` });
    for (const f of linked) {
      // A hard link: the same inode as the previous release's file, not a copy.
      expect(statSync(join(staging, f)).ino).toBe(statSync(join(prev, f)).ino);
    }
    expect(readFileSync(join(staging, 'd0', 'f0'), 'utf8')).toBe('new\n');
    // A directory made before or by the copies gets the artifact's mode from tar.
    expect(statSync(join(staging, 'd0')).mode & 0o777).toBe(0o750);
    expect(readFileSync(join(prev, 'd0', 'f0'), 'utf8')).toBe('d0/0\n');
    // Nothing left beside the staging directory but the hashes taken as the files landed.
    expect(readdirSync(join(dir, 'staging')).sort()).toEqual(['r2', 'r2.sums']);
  });

  // As root every directory is writable: run as `nobody` (see asNobody).
  (asRoot ? test.each : test.skip.each)([
    ['one copy', false],
    ['parallel copies', true]
  ])(
    'a read-only directory of the previous release takes the changed files sent into it (%s, not root)',
    (_, parallel) => {
      const base = join(dir, 'ro');
      const prev = join(base, 'releases', 'r1');
      mkdirSync(join(prev, 'd'), { recursive: true });
      writeFileSync(join(prev, 'd', 'kept'), 'kept\n');
      writeFileSync(join(prev, 'd', 'changed'), 'old\n');
      chmodSync(join(prev, 'd'), 0o555);
      const src = join(base, 'src');
      mkdirSync(join(src, 'd'), { recursive: true });
      writeFileSync(join(src, 'd', 'changed'), 'new\n');
      chmodSync(join(src, 'd'), 0o555);
      const staging = join(base, 'staging', 'r2');
      mkdirSync(join(base, 'staging'));
      chmodSync(dir, 0o755);
      execFileSync('chown', ['-R', 'nobody:', base]);
      const dirList = parallel ? Buffer.from('d\0') : Buffer.alloc(0);
      const fileList = Buffer.from('d/kept\0');
      const script = uploadScript(staging, {
        from: prev,
        dirBytes: dirList.length,
        bytes: fileList.length,
        count: 1,
        parallel
      });
      const tar = execFileSync('tar', ['-c', '-f', '-', '-C', src, 'd', 'd/changed']);
      const r = asNobody(script, Buffer.concat([dirList, fileList, tar]));
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(statSync(join(staging, 'd', 'kept')).ino).toBe(statSync(join(prev, 'd', 'kept')).ino);
      expect(readFileSync(join(staging, 'd', 'changed'), 'utf8')).toBe('new\n');
      // The artifact's mode, set by tar once the files are in.
      expect(statSync(join(staging, 'd')).mode & 0o777).toBe(0o555);
    }
  );

  test('a tar that fails fails the upload', () => {
    const staging = join(dir, 'staging', 'r2');
    const up = run(uploadScript(staging), Buffer.from('not a tar archive at all'.repeat(40)));
    expect(up.code).not.toBe(0);
  });
});

describe('previousReleaseFacts', () => {
  test('reads the live release with one readlink after the probe, and on its own too', () => {
    const layout = layoutFor({ path: join(dir, 'app'), strategy: 'releases', keepReleases: 2, shared: [] });
    const live = join(layout.releasesDir, 'b7');
    mkdirSync(join(live, 'sub'), { recursive: true });
    writeFileSync(join(live, 'sub', 'f'), 'x');
    chmodSync(join(live, 'sub', 'f'), 0o640);
    symlinkSync(live, layout.current);
    mkdirSync(layout.manifestsDir, { recursive: true });
    writeFileSync(join(layout.manifestsDir, 'b7.sha256'), `${'a'.repeat(64)}  ./sub/f\n`);
    // readlink through a wrapper that counts its calls.
    const bin = pathWithout('readlink');
    const calls = join(dir, 'readlink-calls');
    writeFileSync(join(bin, 'readlink'), `#!/bin/sh\necho x >> '${calls}'\nexec /usr/bin/readlink "$@"\n`);
    chmodSync(join(bin, 'readlink'), 0o755);
    const env = { ...process.env, PATH: bin };
    const facts = `${PREVIOUS_MARK}\nb7\n${'a'.repeat(64)}  ./sub/f\n--modes--\n640 sub/f\n`;
    const both = run(lines(probe(layout), previousReleaseFacts(layout)), undefined, env);
    expect(both.code).toBe(0);
    expect(both.stdout).toContain(`current=${live}\n`);
    expect(both.stdout.endsWith(facts)).toBe(true);
    expect(readFileSync(calls, 'utf8')).toBe('x\n');
    rmSync(calls);
    expect(run(previousReleaseFacts(layout), undefined, env)).toMatchObject({ code: 0, stdout: facts });
    expect(readFileSync(calls, 'utf8')).toBe('x\n');
    rmSync(bin, { recursive: true, force: true });
  });
});

describe('releaseListing', () => {
  test('lists each release with its status line between two marks, which the probe reader takes apart', () => {
    const layout = layoutFor({ path: join(dir, 'app'), strategy: 'releases', keepReleases: 2, shared: [] });
    const probe = sh`echo current=x; echo lines=0`;
    // No releases directory yet (a first deploy): an empty listing, the rest of the probe intact.
    const none = run(lines(releaseListing(layout), probe));
    expect(none.code).toBe(0);
    expect(splitReleases(none.stdout)).toEqual({ releases: '', rest: 'current=x\nlines=0\n' });
    for (const id of ['b1', 'b2', 'b3']) mkdirSync(join(layout.releasesDir, id), { recursive: true });
    mkdirSync(layout.statusDir, { recursive: true });
    writeFileSync(join(layout.statusDir, 'b1'), 'good 2026-01-01T00:00:00.000Z abc\n');
    writeFileSync(join(layout.statusDir, 'b2'), 'failed 2026-01-02T00:00:00.000Z abc\n');
    writeFileSync(join(layout.releasesDir, 'not-a-release'), '');
    // b4's status file is empty (a write cut short by a full disk), b3 has none.
    mkdirSync(join(layout.releasesDir, 'b4'));
    writeFileSync(join(layout.statusDir, 'b4'), '');
    const r = run(lines(releaseListing(layout), probe));
    expect(r.stderr).toBe('');
    const split = splitReleases(r.stdout);
    expect(split.rest).toBe('current=x\nlines=0\n');
    expect(parseReleaseList(split.releases!)).toEqual([
      { id: 'b1', status: 'good', at: '2026-01-01T00:00:00.000Z' },
      { id: 'b2', status: 'failed', at: '2026-01-02T00:00:00.000Z' },
      { id: 'b3', status: 'unknown', at: undefined },
      { id: 'b4', status: 'unknown', at: undefined }
    ]);
    // An answer without the listing, or without its closing mark (a listing that failed), has none.
    expect(splitReleases('current=x\n')).toEqual({ rest: 'current=x\n' });
    expect(splitReleases(`--deployguard-releases--\nb1\tgood\n`)).toEqual({
      rest: `--deployguard-releases--\nb1\tgood\n`
    });
  });
});

describe('pruneReleases', () => {
  test('the old release leaves the releases at once; its files are deleted in the background', async () => {
    const layout = layoutFor({ path: join(dir, 'app'), strategy: 'releases', keepReleases: 2, shared: [] });
    const old = join(layout.releasesDir, 'b1');
    const kept = join(layout.releasesDir, 'b2');
    for (const r of [old, kept]) {
      mkdirSync(join(r, 'lib'), { recursive: true });
      for (let i = 0; i < 50; i++) writeFileSync(join(r, 'lib', `f${i}`), 'x');
    }
    mkdirSync(layout.statusDir, { recursive: true });
    writeFileSync(join(layout.statusDir, 'b1'), 'good\n');
    const r = run(pruneReleases(layout, [old], [join(layout.statusDir, 'b1')]));
    expect(r).toMatchObject({ code: 0, stdout: '', stderr: '' });
    expect(readdirSync(layout.releasesDir)).toEqual(['b2']);
    expect(existsSync(join(layout.statusDir, 'b1'))).toBe(false);
    expect(readdirSync(join(kept, 'lib'))).toHaveLength(50);
    // The detached deletion empties the trash soon after.
    const trash = join(layout.stateDir, 'trash');
    for (let i = 0; i < 100 && existsSync(trash); i++) await new Promise(res => setTimeout(res, 50));
    expect(existsSync(trash)).toBe(false);
  });
});

describe('pruneReleases with leftovers', () => {
  // Run as `nobody`, because root may delete anything (see asNobody).
  /** An app directory owned by nobody, with release b1 and a trash leftover `b0.123` holding `f`. */
  const leftover = () => {
    const layout = layoutFor({ path: join(dir, 'app'), strategy: 'releases', keepReleases: 2, shared: [] });
    const old = join(layout.releasesDir, 'b1');
    mkdirSync(old, { recursive: true });
    writeFileSync(join(old, 'f'), 'x');
    const stuck = join(layout.stateDir, 'trash', 'b0.123');
    mkdirSync(stuck, { recursive: true });
    writeFileSync(join(stuck, 'f'), 'x');
    execFileSync('chown', ['-R', 'nobody:', dir]);
    execFileSync('chmod', ['755', dir]);
    return { layout, old, stuck };
  };

  (asRoot ? test : test.skip)(
    "a leftover the deploy user cannot delete fails the prune with rm's error; the prune still deletes its release",
    () => {
      const { layout, old, stuck } = leftover();
      // Another user's directory inside the leftover: not the deploy user's to empty.
      execFileSync('chown', ['-R', 'root:', stuck]);
      const r = asNobody(pruneReleases(layout, [old], []));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/cannot remove .*b0\.123\/f.*Permission denied/);
      expect(r.stderr).toContain("could not delete an earlier prune's leftovers");
      expect(existsSync(old)).toBe(false);
    }
  );

  (asRoot ? test : test.skip)(
    'a leftover with read-only directories (as tar may make them) is deleted',
    () => {
      const { layout, old, stuck } = leftover();
      execFileSync('chmod', ['555', stuck]);
      const r = asNobody(pruneReleases(layout, [old], []));
      expect(r).toMatchObject({ code: 0, stderr: '' });
      expect(existsSync(stuck)).toBe(false);
      expect(readdirSync(layout.releasesDir)).toEqual([]);
    }
  );

  test('a trash an earlier deletion left is emptied before the script returns', () => {
    const layout = layoutFor({ path: join(dir, 'app'), strategy: 'releases', keepReleases: 2, shared: [] });
    const leftover = join(layout.stateDir, 'trash', 'b0.123', 'deep', 'er');
    mkdirSync(leftover, { recursive: true });
    for (let i = 0; i < 200; i++) writeFileSync(join(leftover, `f${i}`), 'x');
    mkdirSync(join(layout.releasesDir, 'b1'), { recursive: true });
    const r = run(pruneReleases(layout, [join(layout.releasesDir, 'b1')], []));
    expect(r.code).toBe(0);
    expect(existsSync(join(layout.stateDir, 'trash', 'b0.123'))).toBe(false);
  });
});

describe('verifySent', () => {
  const sha = (text: string) => createHash('sha256').update(text).digest('hex');
  const files: Record<string, string> = {
    'a.txt': 'alpha\n',
    'sub/b c.txt': 'beta\n',
    'sub/c.txt': 'gamma\n'
  };
  const manifestOf = (f: Record<string, string>) =>
    Object.keys(f)
      .sort()
      .map(p => `${sha(f[p]!)}  ./${p}\n`)
      .join('');
  let prev: string;
  let staging: string;
  let record: string;
  let keep: string;
  /** r1 verified as a full upload (its record written), r2 staged from it: b c.txt linked, a.txt and new.txt sent. */
  beforeEach(() => {
    prev = join(dir, 'releases', 'r1');
    for (const [p, content] of Object.entries(files)) {
      mkdirSync(join(prev, p, '..'), { recursive: true });
      writeFileSync(join(prev, p), content);
    }
    const manifests = join(dir, 'manifests');
    record = join(manifests, 'r1.stat');
    expect(run(verifyManifest(prev, 3, join(manifests, 'r1.sha256')), manifestOf(files)).code).toBe(0);
    expect(readFileSync(record, 'utf8')).toMatch(
      new RegExp(`^${statSync(join(prev, 'sub', 'b c.txt')).ino} 5 \\d+\\.\\d+ \\./sub/b c\\.txt$`, 'm')
    );
    staging = join(dir, 'staging', 'r2');
    mkdirSync(join(staging, 'sub'), { recursive: true });
    execFileSync('cp', [
      '-al',
      join(prev, 'sub', 'b c.txt'),
      join(prev, 'sub', 'c.txt'),
      join(staging, 'sub')
    ]);
    writeFileSync(join(staging, 'a.txt'), 'ALPHA\n');
    writeFileSync(join(staging, 'new.txt'), 'new\n');
    keep = join(manifests, 'r2.sha256');
  });
  const next = { ...files, 'a.txt': 'ALPHA\n', 'new.txt': 'new\n' };
  const input = (manifest: string) =>
    `${manifest}--check--\n${manifest
      .split('\n')
      .filter(l => / \.\/(a|new)\.txt$/.test(l))
      .map(l => `${l}\n`)
      .join('')}`;

  test('linked files that are the previous release own, by its record, are not hashed again', () => {
    // A manifest line no linked file matches: trusted here, because the record vouches for the file.
    const manifest = manifestOf(next).replace(sha('gamma\n'), '0'.repeat(64));
    const r = run(verifySent(staging, 4, keep, record), input(manifest));
    expect(r).toMatchObject({ code: 0, stdout: 'linked-changed=0\ncount=4\n' });
    expect(readFileSync(keep, 'utf8')).toBe(manifest);
    expect(
      readFileSync(keep.replace(/\.sha256$/, '.stat'), 'utf8')
        .trim()
        .split('\n')
    ).toHaveLength(4);
  });

  test('a linked file touched on the host since: every file is hashed, and passes when content is the same', () => {
    execFileSync('touch', ['-d', '2001-01-01', join(prev, 'sub', 'c.txt')]);
    const r = run(verifySent(staging, 4, keep, record), input(manifestOf(next)));
    expect(r).toMatchObject({ code: 0, stdout: 'linked-changed=1\ncount=4\n' });
    // Now the line that matches no file is caught.
    const wrong = manifestOf(next).replace(sha('gamma\n'), '0'.repeat(64));
    execFileSync('touch', ['-d', '2001-01-02', join(prev, 'sub', 'c.txt')]);
    const bad = run(verifySent(staging, 4, keep, record), input(wrong));
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('linked-changed=1\n');
    expect(bad.stdout).toContain('./sub/c.txt: FAILED');
  });

  test('a linked file edited on the host, even to the same size, fails the verification', () => {
    writeFileSync(join(prev, 'sub', 'b c.txt'), 'BETA\n');
    const r = run(verifySent(staging, 4, keep, record), input(manifestOf(next)));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^linked-changed=1$/m);
    expect(r.stdout).toContain('./sub/b c.txt: FAILED');
  });

  test('with no record of the previous release, every file is hashed', () => {
    rmSync(record);
    const wrong = manifestOf(next).replace(sha('gamma\n'), '0'.repeat(64));
    const r = run(verifySent(staging, 4, keep, record), input(wrong));
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^linked-changed=all$/m);
    expect(run(verifySent(staging, 4, keep, record), input(manifestOf(next)))).toMatchObject({
      code: 0,
      stdout: 'linked-changed=all\ncount=4\n'
    });
  });
});
