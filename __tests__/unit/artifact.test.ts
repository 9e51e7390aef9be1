import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArtifactError, manifestText, scanArtifact } from '../../src/transfer/artifact.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dg-artifact-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Creates files (string content), dirs (trailing '/') and symlinks ({ link }) under `dir`. */
function tree(spec: Record<string, string | { link: string } | { mode: number; content?: string }>): void {
  for (const [rel, v] of Object.entries(spec)) {
    const abs = join(dir, rel);
    if (rel.endsWith('/')) {
      mkdirSync(abs, { recursive: true });
      continue;
    }
    mkdirSync(join(abs, '..'), { recursive: true });
    if (typeof v === 'string') writeFileSync(abs, v);
    else if ('link' in v) symlinkSync(v.link, abs);
    else {
      writeFileSync(abs, v.content ?? '');
      chmodSync(abs, v.mode);
    }
  }
}

async function rejection(p: Promise<unknown>): Promise<ArtifactError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e
  );
  expect(err).toBeInstanceOf(ArtifactError);
  return err as ArtifactError;
}

describe('scanArtifact', () => {
  test('walks a tree into sorted, relative POSIX entries with permissions and sizes', async () => {
    tree({
      'b/c/d.txt': 'hello',
      'b/empty/': '',
      'a.txt': '',
      'run.sh': { mode: 0o755, content: '#!/bin/sh\n' },
      suid: { mode: 0o6755 },
      'sticky/': '',
      'b/link': { link: 'c/d.txt' },
      'b/up': { link: '../a.txt' }
    });
    chmodSync(join(dir, 'b'), 0o750);
    chmodSync(join(dir, 'sticky'), 0o1777);

    const a = await scanArtifact(dir);
    expect(a).toEqual({
      root: dir,
      isFile: false,
      fileCount: 4,
      totalBytes: 15,
      entries: [
        { kind: 'file', path: 'a.txt', mode: 0o644, size: 0 },
        { kind: 'dir', path: 'b', mode: 0o750 },
        { kind: 'dir', path: 'b/c', mode: 0o755 },
        { kind: 'file', path: 'b/c/d.txt', mode: 0o644, size: 5 },
        { kind: 'dir', path: 'b/empty', mode: 0o755 },
        { kind: 'symlink', path: 'b/link', target: 'c/d.txt' },
        { kind: 'symlink', path: 'b/up', target: '../a.txt' },
        { kind: 'file', path: 'run.sh', mode: 0o755, size: 10 },
        { kind: 'dir', path: 'sticky', mode: 0o1777 },
        // setuid/setgid stripped, the rest kept
        { kind: 'file', path: 'suid', mode: 0o755, size: 0 }
      ]
    });
  });

  test('a single file yields one entry named by its basename', async () => {
    tree({ 'out/app.tgz': 'x'.repeat(100) });
    chmodSync(join(dir, 'out/app.tgz'), 0o600);
    const a = await scanArtifact(join(dir, 'out', '.', 'app.tgz'));
    expect(a).toEqual({
      root: join(dir, 'out/app.tgz'),
      isFile: true,
      fileCount: 1,
      totalBytes: 100,
      entries: [{ kind: 'file', path: 'app.tgz', mode: 0o600, size: 100 }]
    });
  });

  test('follows a symlink given as the artifact path itself, but not links inside it', async () => {
    tree({
      'build-1/index.html': '<html>',
      'build-1/x': { link: 'index.html' },
      current: { link: 'build-1' }
    });
    const a = await scanArtifact(join(dir, 'current'));
    expect(a.entries.map(e => `${e.kind}:${e.path}`)).toEqual(['file:index.html', 'symlink:x']);
  });

  test('exclude patterns prune files and whole directories', async () => {
    tree({
      'app.js': '1',
      'app.js.map': '2',
      'lib/x.js.map': '3',
      'lib/x.js': '4',
      'node_modules/pkg/index.js': '5',
      'lib/node_modules/kept.js': '6',
      '.git/HEAD': '7',
      'sub/.git/HEAD': '8',
      '.gitkeep': '9',
      'debug.log': '10',
      'logs/deep/er.log': '11',
      'logs/keep.txt': '12'
    });
    const a = await scanArtifact(dir, { exclude: ['*.map', 'node_modules/**', '.git/', '**/*.log'] });
    expect(a.entries.map(e => e.path)).toEqual([
      '.gitkeep',
      'app.js',
      'lib',
      'lib/node_modules',
      'lib/node_modules/kept.js',
      'lib/x.js',
      'logs',
      'logs/deep',
      'logs/keep.txt',
      // As in git, 'node_modules/**' is what is inside: the directory itself stays (empty).
      'node_modules',
      'sub'
    ]);
    expect(a.fileCount).toBe(5);
  });

  test('negation re-includes, except inside an excluded directory; braces expand', async () => {
    tree({
      'app.js': '1',
      'app.js.map': '2',
      'app.ts': '3',
      'vendor/lib.js.map': '4',
      'debug.log': '5',
      'keep.log': '6',
      'logs/keep.log': '7',
      'logs/other.txt': '8',
      'cache/a/keep.log': '9',
      'node_modules/pkg/index.js': '10',
      'node_modules/keep.js': '11'
    });
    const a = await scanArtifact(dir, {
      exclude: [
        '*.{map,ts}',
        '!vendor/*.map',
        '*.log',
        '!keep.log',
        'logs/',
        'node_modules/**',
        '!node_modules/keep.js'
      ]
    });
    expect(a.entries.filter(e => e.kind === 'file').map(e => e.path)).toEqual([
      'app.js',
      'cache/a/keep.log',
      'keep.log',
      'node_modules/keep.js',
      'vendor/lib.js.map'
    ]);
  });

  test('a hostile pattern against 4 KiB paths and the longest names scans in well under a second', async () => {
    // 15 levels of 250-character names: a 3.8 KiB relative path, near PATH_MAX with the temp dir.
    const name = 'a'.repeat(250);
    const deep = Array(15).fill(name).join('/');
    tree({ [`${deep}/${name}`]: 'x', [`${name}.map`]: 'y' });
    // The pattern of issue 13: on main, one 40-character name took more than a minute.
    const hostile = `${'*a'.repeat(21)}*b`;
    const start = process.hrtime.bigint();
    const a = await scanArtifact(dir, { exclude: [hostile, `**/${hostile}`, `a*/**/${hostile}`, '*.map'] });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    expect(a.fileCount).toBe(1);
    expect(a.entries.at(-1)?.path).toBe(`${deep}/${name}`);
    expect(ms).toBeLessThan(1000);
  });

  test('bad exclude patterns are refused before the artifact is even looked at', async () => {
    for (const path of [dir, join(dir, 'missing'), join(dir, 'single.txt')]) {
      writeFileSync(join(dir, 'single.txt'), 'x');
      const err = await rejection(scanArtifact(path, { exclude: ['*.map', 'a/**/b/**/c', '*.{js,ts'] }));
      expect(err.message).toBe(
        'invalid exclude pattern: `exclude[1]` "a/**/b/**/c": has 2 "**" before its last segment; at most one ' +
          'is allowed (a trailing "/**" is free), because each one multiplies the matching work by the depth of ' +
          'the tree. To drop a whole directory wherever it is, name it: "node_modules/". Example: "src/**/*.test.js"; ' +
          '`exclude[2]` "*.{js,ts": has a "{" that is never closed; write "\\{" for a literal brace. Example: "*.{map,ts}"'
      );
      expect(err.hint).toMatch(
        /^Exclude patterns use gitignore syntax plus \{a,b\} alternatives\. Example: exclude: \[/
      );
    }
  });

  test('walks 3,000+ files quickly', async () => {
    for (let d = 0; d < 60; d++) {
      mkdirSync(join(dir, `d${d}`, 'sub'), { recursive: true });
      for (let f = 0; f < 25; f++) {
        writeFileSync(join(dir, `d${d}`, `f${f}`), 'x');
        writeFileSync(join(dir, `d${d}`, 'sub', `g${f}`), '');
      }
    }
    const started = performance.now();
    const a = await scanArtifact(dir);
    expect(a.fileCount).toBe(3000);
    expect(a.entries).toHaveLength(3120);
    expect(a.totalBytes).toBe(1500);
    expect(performance.now() - started).toBeLessThan(3000);
  });
});

describe('scanArtifact rejects', () => {
  test('an empty path', async () => {
    const err = await rejection(scanArtifact(''));
    expect(err.message).toBe('Artifact path is empty.');
    expect(err.hint).toMatch(/artifact input/);
    await rejection(scanArtifact('   '));
  });

  test('a missing path', async () => {
    const err = await rejection(scanArtifact(join(dir, 'nope')));
    expect(err.message).toBe(`Artifact path does not exist: ${join(dir, 'nope')}`);
    expect(err.hint).toMatch(/build step/);
  });

  test('a directory without files, also after exclusion', async () => {
    tree({ 'a/b/': '' });
    expect((await rejection(scanArtifact(dir))).message).toBe(`Artifact directory contains no files: ${dir}`);
    tree({ 'a/x.map': '' });
    const err = await rejection(scanArtifact(dir, { exclude: ['*.map'] }));
    expect(err.message).toMatch(/no files \(after exclusions\)/);
    expect(err.hint).toMatch(/exclude patterns/);
  });

  test('a FIFO, unless excluded', async () => {
    tree({ 'ok.txt': '', 'run/': '' });
    execFileSync('mkfifo', [join(dir, 'run/pipe')]);
    const err = await rejection(scanArtifact(dir));
    expect(err.message).toBe(
      `Artifact contains a FIFO (named pipe) at "run/pipe" (${join(dir, 'run/pipe')}).`
    );
    expect(err.hint).toMatch(/remove it or list it in the exclude patterns/);
    expect(err.path).toBe('run/pipe');
    expect((await scanArtifact(dir, { exclude: ['pipe'] })).fileCount).toBe(1);
    // as the artifact path itself
    expect((await rejection(scanArtifact(join(dir, 'run/pipe')))).message).toMatch(
      /is a FIFO \(named pipe\), not a file/
    );
  });

  test('a socket', async () => {
    tree({ 'ok.txt': '' });
    const server: Server = createServer();
    await new Promise<void>(r => server.listen(join(dir, 'app.sock'), r));
    try {
      expect((await rejection(scanArtifact(dir))).message).toMatch(/contains a socket at "app.sock"/);
    } finally {
      await new Promise(r => server.close(r));
    }
  });

  test('an absolute symlink', async () => {
    tree({ 'ok.txt': '', 'etc/passwd': { link: '/etc/passwd' } });
    const err = await rejection(scanArtifact(dir));
    expect(err.message).toBe(
      `Artifact symlink "etc/passwd" points to the absolute path "/etc/passwd" (${join(dir, 'etc/passwd')}).`
    );
    expect(err.hint).toMatch(/relative link/);
  });

  test.each([
    ['up', '..'],
    ['a/b/up2', '../../..'],
    ['a/sneaky', 'b/../../../x'],
    ['a/x', '../../etc']
  ])('a symlink %s -> %s leading outside the artifact', async (link, target) => {
    tree({ 'ok.txt': '', 'a/b/': '', [link]: { link: target } });
    const err = await rejection(scanArtifact(dir));
    expect(err.message).toBe(
      `Artifact symlink "${link}" -> "${target}" points outside the artifact (${join(dir, link)}).`
    );
    expect(err.hint).toMatch(/inside the artifact/);
  });

  test('accepts links that climb but stay inside', async () => {
    tree({
      'ok.txt': '',
      'a/b/l': { link: '../../ok.txt' },
      'a/b/r': { link: '..' },
      'a/dot': { link: '.' }
    });
    expect((await scanArtifact(dir)).entries.filter(e => e.kind === 'symlink')).toHaveLength(3);
  });

  test('a link escaping through another link', async () => {
    // a/b is the root, so a/b/.. is the root's parent, though it normalises to "a".
    tree({ 'ok.txt': '', 'a/b': { link: '..' }, c: { link: 'a/b/..' } });
    const err = await rejection(scanArtifact(dir));
    expect(err.message).toBe(
      `Artifact symlink "c" -> "a/b/.." points outside the artifact through another symlink (${join(dir, 'c')}).`
    );
  });

  test('a symlink loop', async () => {
    tree({ 'ok.txt': '', x: { link: 'y/z' }, y: { link: 'x/..' } });
    expect((await rejection(scanArtifact(dir))).message).toMatch(/loops \(too many levels/);
  });

  test.each([
    ['bad\nname', 'a newline', '"d/bad\\nname"'],
    ['bad\rname', 'a carriage return', '"d/bad\\rname"'],
    ['bad\\name', 'a backslash', '"d/bad\\\\name"'],
    ['tab\tname', 'the control character U+0009', '"d/tab\\tname"'],
    ['del\u007f', 'the control character U+007F', '"d/del\u007f"'],
    ['c1\u0085', 'the control character U+0085', '"d/c1\u0085"']
  ])('a name with a bad character: %j', async (name, what, shown) => {
    tree({ 'ok.txt': '', [`d/${name}`]: 'x' });
    const err = await rejection(scanArtifact(dir));
    expect(err.message).toBe(`Artifact file name contains ${what}: ${shown} in ${dir}.`);
    expect(err.hint).toMatch(/^Rename it .*sha256sum/);
    // Excluded entries are skipped before any check.
    expect((await scanArtifact(dir, { exclude: ['d/'] })).fileCount).toBe(1);
  });

  test('a name that is not valid UTF-8', async () => {
    tree({ 'ok.txt': '', 'd/': '' });
    writeFileSync(
      Buffer.concat([Buffer.from(`${dir}/d/caf`), Buffer.from([0xe9, 0x2e, 0x74])]),
      'latin1 name'
    );
    const err = await rejection(scanArtifact(dir));
    expect(err.message).toBe(`Artifact file name is not valid UTF-8: "d/caf\\xe9.t" in ${dir}.`);
    expect(err.hint).toMatch(/UTF-8 name/);
    expect((await scanArtifact(dir, { exclude: ['caf*'] })).fileCount).toBe(1);
  });

  test('a name starting with a byte order mark keeps it (it is part of the name)', async () => {
    tree({ '\uFEFFbom.txt': 'x', 'd/\uFEFF': 'y', link: { link: '\uFEFFbom.txt' } });
    const a = await scanArtifact(dir);
    expect(a.entries.map(e => e.path)).toEqual(['d', 'd/\uFEFF', 'link', '\uFEFFbom.txt']);
    expect(a.entries.find(e => e.path === 'link')).toMatchObject({ target: '\uFEFFbom.txt' });
    expect(a.totalBytes).toBe(2);
  });

  test('a name that is not UTF-8 is matched against the patterns with its byte order mark', async () => {
    tree({ 'ok.txt': '' });
    // A byte order mark, "x", then a byte that is not UTF-8: the name starts with the mark, as a
    // valid name would, so "x*" does not exclude it and "?x*" does.
    writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0xef, 0xbb, 0xbf, 0x78, 0xff])]), '');
    expect((await rejection(scanArtifact(dir, { exclude: ['x*'] }))).message).toMatch(/not valid UTF-8/);
    expect((await scanArtifact(dir, { exclude: ['?x*'] })).fileCount).toBe(1);
  });

  test('a bad name as the artifact path itself', async () => {
    tree({ 'x\ny': '' });
    expect((await rejection(scanArtifact(join(dir, 'x\ny')))).message).toMatch(/contains a newline: "x\\ny"/);
  });
});

describe('manifestText', () => {
  const h = (c: string) => c.repeat(64);
  test('lists ./path lines sorted by path', () => {
    const text = manifestText(
      new Map([
        ['b/c.txt', h('b')],
        ['-dash', h('d')],
        ['a.txt', h('a')],
        ['ünï côde.txt', h('e')]
      ])
    );
    expect(text).toBe(
      `${h('d')}  ./-dash\n${h('a')}  ./a.txt\n${h('b')}  ./b/c.txt\n${h('e')}  ./ünï côde.txt\n`
    );
    expect(manifestText(new Map())).toBe('');
  });

  test('refuses malformed hashes and unlistable paths', () => {
    expect(() => manifestText(new Map([['a', 'XYZ']]))).toThrow(/Not a SHA-256 hex digest for a/);
    expect(() => manifestText(new Map([['a\nb', h('a')]]))).toThrow(/cannot be listed/);
  });
});
