/** The directory the CLI keeps its hash cache in: only one that is really the user's. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { userCacheDir } from '../../src/io/user-cache.js';

let base: string;
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'dg-user-cache-'));
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

test('made private under an absolute XDG_CACHE_HOME, and closed again when opened up', () => {
  const dir = userCacheDir('hashes', { XDG_CACHE_HOME: base });
  expect(dir).toBe(join(base, 'deployguard', 'hashes'));
  expect(statSync(dir!).mode & 0o777).toBe(0o700);
  execFileSync('chmod', ['0777', dir!]);
  expect(userCacheDir('hashes', { XDG_CACHE_HOME: base })).toBe(dir);
  expect(statSync(dir!).mode & 0o777).toBe(0o700);
});

test('a relative XDG_CACHE_HOME is not used: the home directory is', () => {
  expect(userCacheDir('hashes', { XDG_CACHE_HOME: 'relative' })).toBe(
    join(homedir(), '.cache', 'deployguard', 'hashes')
  );
});

test('a symlink, a file, or a directory another account owns is never used', () => {
  mkdirSync(join(base, 'deployguard'));
  const elsewhere = join(base, 'elsewhere');
  mkdirSync(elsewhere, { mode: 0o700 });
  symlinkSync(elsewhere, join(base, 'deployguard', 'hashes'));
  expect(userCacheDir('hashes', { XDG_CACHE_HOME: base })).toBeUndefined();
  execFileSync('touch', [join(base, 'deployguard', 'file')]);
  expect(userCacheDir('file', { XDG_CACHE_HOME: base })).toBeUndefined();
  if (process.getuid?.() === 0) {
    const foreign = join(base, 'deployguard', 'foreign');
    mkdirSync(foreign, { mode: 0o700 });
    execFileSync('chown', ['nobody:', foreign]);
    expect(userCacheDir('foreign', { XDG_CACHE_HOME: base })).toBeUndefined();
  }
});
