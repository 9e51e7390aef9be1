/**
 * The run's private directory and the files in it: a new directory per process, files created
 * new (never through a symlink, never over an existing file), mode 0600.
 */
import {
  chmodSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { privateDir, writeFileNoFollow, writePrivateFile } from '../../src/io/private-dir.js';

let scratch: string;
beforeEach(() => {
  scratch = mkdtempSync(join(tmpdir(), 'dg-private-test-'));
});
afterEach(() => rmSync(scratch, { recursive: true, force: true }));

test('privateDir: a new 0700 directory, the same one for the whole run; RUNNER_TEMP only under Actions', () => {
  const runner = join(scratch, 'runner-temp');
  const env = { GITHUB_ACTIONS: 'true', RUNNER_TEMP: scratch };
  const dir = privateDir(env);
  expect(dir.startsWith(`${scratch}/deployguard-`)).toBe(true);
  expect(statSync(dir).mode & 0o777).toBe(0o700);
  expect(privateDir(env)).toBe(dir);
  // RUNNER_TEMP set outside Actions (the CLI sets it for its tool cache) is not used.
  const cli = privateDir({ RUNNER_TEMP: runner });
  expect(cli.startsWith(`${tmpdir()}/deployguard-`)).toBe(true);
  expect(cli).not.toBe(join(tmpdir(), 'deployguard'));
  rmSync(cli, { recursive: true });
});

test('writePrivateFile: a planted symlink is not followed and its target not touched; the next free name is used', () => {
  const victim = join(scratch, 'victim');
  writeFileSync(victim, 'precious\n');
  const dir = mkdtempSync(join(scratch, 'run-'));
  symlinkSync(victim, join(dir, 'report.sarif'));
  writeFileSync(join(dir, 'report-2.sarif'), 'an earlier file\n');
  const path = writePrivateFile(dir, 'report.sarif', '{}');
  expect(path).toBe(join(dir, 'report-3.sarif'));
  expect(readFileSync(path, 'utf8')).toBe('{}');
  expect(statSync(path).mode & 0o777).toBe(0o600);
  expect(readFileSync(victim, 'utf8')).toBe('precious\n');
  expect(lstatSync(join(dir, 'report.sarif')).isSymbolicLink()).toBe(true);
  expect(readFileSync(join(dir, 'report-2.sarif'), 'utf8')).toBe('an earlier file\n');
});

test('writePrivateFile: refuses a directory others can write to, a symlinked directory, and a path for a name', () => {
  const open = join(scratch, 'open');
  const dir = mkdtempSync(join(scratch, 'run-'));
  symlinkSync(dir, open);
  expect(() => writePrivateFile(open, 'a.md', 'x')).toThrow(/is not a private directory/);
  chmodSync(dir, 0o1777);
  expect(() => writePrivateFile(dir, 'a.md', 'x')).toThrow(/is not a private directory/);
  chmodSync(dir, 0o700);
  expect(() => writePrivateFile(dir, '../a.md', 'x')).toThrow(/not a plain file name/);
  expect(writePrivateFile(dir, 'a.md', 'x')).toBe(join(dir, 'a.md'));
});

test('writeFileNoFollow: replaces a regular file, refuses a symlink (its target untouched) and a directory', () => {
  const victim = join(scratch, 'victim');
  writeFileSync(victim, 'precious\n');
  const link = join(scratch, 'record.md');
  symlinkSync(victim, link);
  expect(() => writeFileNoFollow(link, 'x')).toThrow(/ELOOP/);
  expect(readFileSync(victim, 'utf8')).toBe('precious\n');
  expect(() => writeFileNoFollow(scratch, 'x')).toThrow();
  const plain = join(scratch, 'plain.md');
  writeFileSync(plain, 'a longer old text\n');
  writeFileNoFollow(plain, 'new\n');
  expect(readFileSync(plain, 'utf8')).toBe('new\n');
  writeFileNoFollow(join(scratch, 'fresh.md'), 'fresh\n');
  expect(statSync(join(scratch, 'fresh.md')).mode & 0o777).toBe(0o600);
});
