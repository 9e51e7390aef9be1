/** The directory the CLI keeps its hash cache in: only where nobody else can write. */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trustedDir, userCacheDir } from '../../src/io/user-cache.js';

const root = process.getuid?.() === 0;
let base: string;
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'dg-user-cache-'));
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

test('made private under an absolute XDG_CACHE_HOME; found open to others, it is emptied and closed', () => {
  const dir = userCacheDir('hashes', { XDG_CACHE_HOME: base });
  expect(dir).toBe(join(base, 'deployguard', 'hashes'));
  expect(statSync(dir!).mode & 0o777).toBe(0o700);
  expect(statSync(join(base, 'deployguard')).mode & 0o777).toBe(0o700);
  execFileSync('chmod', ['0777', dir!]);
  writeFileSync(join(dir!, 'planted.json'), '{}');
  expect(userCacheDir('hashes', { XDG_CACHE_HOME: base })).toBe(dir);
  expect(statSync(dir!).mode & 0o777).toBe(0o700);
  expect(readdirSync(dir!)).toEqual([]);
});

test('a relative XDG_CACHE_HOME is not used: the home directory is', () => {
  expect(userCacheDir('hashes', { XDG_CACHE_HOME: 'relative', HOME: base })).toBe(
    join(base, '.cache', 'deployguard', 'hashes')
  );
});

test('a symlink to elsewhere, or a file, is never used', () => {
  mkdirSync(join(base, 'deployguard'));
  const elsewhere = join(base, 'elsewhere');
  mkdirSync(elsewhere, { mode: 0o700 });
  symlinkSync(elsewhere, join(base, 'deployguard', 'hashes'));
  expect(userCacheDir('hashes', { XDG_CACHE_HOME: base })).toBeUndefined();
  execFileSync('touch', [join(base, 'deployguard', 'file')]);
  expect(userCacheDir('file', { XDG_CACHE_HOME: base })).toBeUndefined();
});

test('a directory anyone may write to, anywhere above, makes the path untrusted', () => {
  const open = join(base, 'open');
  mkdirSync(open);
  execFileSync('chmod', ['0777', open]);
  expect(trustedDir(base, process.getuid!())).toBe(true);
  expect(userCacheDir('hashes', { XDG_CACHE_HOME: join(open, 'cache') })).toBeUndefined();
  expect(existsSync(join(open, 'cache'))).toBe(false);
  // Sticky, as /tmp is: others may add entries, not replace ours.
  execFileSync('chmod', ['1777', open]);
  expect(userCacheDir('hashes', { XDG_CACHE_HOME: join(open, 'cache') })).toBe(
    join(open, 'cache', 'deployguard', 'hashes')
  );
});

// Root owns everything here otherwise: only root can make a directory another account owns.
(root ? test : test.skip)(
  'another account owning a directory on the way (sudo keeping HOME): nothing is used or made',
  () => {
    const home = join(base, 'someone');
    mkdirSync(home, { mode: 0o755 });
    execFileSync('chown', ['nobody:', home]);
    expect(userCacheDir('hashes', { XDG_CACHE_HOME: join(home, '.cache') })).toBeUndefined();
    expect(existsSync(join(home, '.cache'))).toBe(false);
    const foreign = join(base, 'deployguard', 'foreign');
    mkdirSync(foreign, { recursive: true, mode: 0o700 });
    execFileSync('chown', ['nobody:', foreign]);
    expect(userCacheDir('foreign', { XDG_CACHE_HOME: base })).toBeUndefined();
  }
);
