import {
  compileExclude,
  excludeProblems,
  expandBraces,
  ExcludePatternError,
  MAX_EXPANDED
} from '../../src/transfer/exclude.js';

/** Whether `path` is excluded by `patterns`; a trailing '/' on the path marks a directory. */
function excluded(patterns: string[], path: string): boolean {
  const isDir = path.endsWith('/');
  return compileExclude(patterns)(isDir ? path.slice(0, -1) : path, isDir);
}

function problems(patterns: string[]): string {
  try {
    compileExclude(patterns);
  } catch (err) {
    expect(err).toBeInstanceOf(ExcludePatternError);
    return (err as ExcludePatternError).message;
  }
  throw new Error(`no error for ${JSON.stringify(patterns)}`);
}

/** Milliseconds taken by fn, measured with process.hrtime. */
function timed(fn: () => void): number {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

describe('exclude patterns: gitignore semantics', () => {
  // pattern(s), path (trailing '/' = directory), excluded?
  const table: [patterns: string | string[], path: string, expected: boolean][] = [
    // a name without a slash matches at any depth
    ['*.map', 'app.js.map', true],
    ['*.map', 'a/b/c.map', true],
    ['*.map', 'a.map/', true],
    ['*.map', 'a.mapx', false],
    // inside an excluded directory (main answered false for the file itself)
    ['*.map', 'a.map/x', true],
    ['build', 'build/', true],
    ['build', 'a/b/build', true],
    // anchoring: a leading or middle slash ties the pattern to the root
    ['/build', 'build/', true],
    ['/build', 'a/build/', false],
    ['/*.map', 'b.map', true],
    ['/*.map', 'a/b.map', false],
    ['./*.map', 'b.map', true],
    ['./*.map', 'a/b.map', false],
    ['src/*.ts', 'src/a.ts', true],
    ['src/*.ts', 'src/a/b.ts', false],
    ['src/*.ts', 'x/src/a.ts', false],
    // directory-only patterns
    ['logs/', 'logs/', true],
    ['logs/', 'a/logs/', true],
    ['logs/', 'logs', false],
    ['logs/', 'logs/x.txt', true],
    ['.git/', '.gitignore', false],
    ['.git/', '.git', false],
    ['.git/', 'a/.git/', true],
    // * and ? stay inside a name; ** spans directories
    ['file?.txt', 'file1.txt', true],
    ['file?.txt', 'file12.txt', false],
    ['file?.txt', 'file/.txt', false],
    ['a*b', 'a/b', false],
    ['src/**/*.ts', 'src/a.ts', true],
    ['src/**/*.ts', 'src/a/b/c.ts', true],
    ['src/**/*.ts', 'lib/src/a.ts', false],
    ['**/*.log', 'a/b/x.log', true],
    ['**/*.log', 'a/b/x.log.gz', false],
    ['**/cache', 'cache/', true],
    ['**/cache', 'x/y/cache/', true],
    ['node_modules/**', 'node_modules/a/b', true],
    // git: 'a/**' is what is inside a, not a itself (main excluded the directory too)
    ['node_modules/**', 'node_modules/', false],
    ['node_modules/**', 'a/node_modules/x', false],
    ['node_modules/**', 'a/node_modules/', false],
    ['node_modules/**', 'node_modulesx/', false],
    ['docs/**', 'docs/x/y.md', true],
    ['**', 'anything/at/all', true],
    // classes and escapes
    ['[abc].txt', 'b.txt', true],
    ['[abc].txt', 'd.txt', false],
    ['[a-c]x', 'bx', true],
    ['[!a]x', 'ax', false],
    ['[!a]x', 'bx', true],
    ['\\[x]', '[x]', true],
    ['\\*.md', 'a.md', false],
    ['\\*.md', '*.md', true],
    ['(x)+[y]', '(x)+y', true],
    ['a.b', 'axb', false],
    // a list entry is never a comment; a literal '!' needs an escape
    ['#notes', '#notes', true],
    ['\\!important', '!important', true],
    // case matters, as on the host's file system
    ['Makefile', 'makefile', false],
    // spaces: leading ones and unescaped trailing ones go, an escaped one stays
    ['  *.map  ', 'x.map', true],
    ['a\\ ', 'a ', true],
    ['a\\  \t ', 'a ', true],
    ['a\\ ', 'a', false],
    // negation: the last matching pattern wins
    [['*.log', '!keep.log'], 'x.log', true],
    [['*.log', '!keep.log'], 'keep.log', false],
    [['*.log', '!keep.log'], 'deep/keep.log', false],
    [['!keep.log', '*.log'], 'keep.log', true],
    [['*.map', '!vendor/*.map'], 'vendor/lib.map', false],
    [['*.map', '!vendor/*.map'], 'app.map', true],
    [['node_modules/**', '!node_modules/keep.js'], 'node_modules/keep.js', false],
    [['node_modules/**', '!node_modules/keep.js'], 'node_modules/drop.js', true],
    // ...but nothing inside an excluded directory comes back, as in git
    [['logs/', '!logs/keep.log'], 'logs/keep.log', true],
    [['logs', '!keep.log'], 'logs/keep.log', true],
    [['/build', '!build/'], 'build/', false],
    // braces
    ['*.{map,ts}', 'a.map', true],
    ['*.{map,ts}', 'b/c.ts', true],
    ['*.{map,ts}', 'a.js', false],
    ['*.{map,ts}', '*.{map,ts}', false],
    ['{src,lib}/*.test.js', 'lib/a.test.js', true],
    ['{src,lib}/*.test.js', 'x/lib/a.test.js', false],
    ['a.{js{,.map},css}', 'a.js.map', true],
    ['a.{js{,.map},css}', 'a.css', true],
    [['*.map', '!{vendor,lib}/*.map'], 'lib/x.map', false],
    [['*.map', '!{vendor,lib}/*.map'], 'app/x.map', true],
    ['{a}', '{a}', true],
    ['{a}', 'a', false],
    ['\\{a,b}', '{a,b}', true],
    ['[{]x', '{x', true],
    ['a}b', 'a}b', true]
  ];
  test.each(table)('%j on %s -> %s', (patterns, path, expected) => {
    expect(excluded(typeof patterns === 'string' ? [patterns] : patterns, path)).toBe(expected);
  });

  test('no patterns exclude nothing', () => {
    expect(compileExclude([])('a', false)).toBe(false);
  });
});

describe('brace expansion', () => {
  test('expands alternatives, nested ones too, and keeps escapes for gitignore', () => {
    expect(expandBraces('*.{map,ts}')).toEqual(['*.map', '*.ts']);
    expect(expandBraces('{a,b}/{c,d}')).toEqual(['a/c', 'a/d', 'b/c', 'b/d']);
    expect(expandBraces('x{,y{1,2}}')).toEqual(['x', 'xy1', 'xy2']);
    expect(expandBraces('\\*.{a,b}')).toEqual(['\\*.a', '\\*.b']);
    expect(expandBraces('[{,}]')).toEqual(['[{,}]']);
    expect(expandBraces('a,b')).toEqual(['a,b']);
    expect(expandBraces('{}')).toEqual(['{}']);
  });

  test('refuses an expansion over the cap before building it', () => {
    // 2^40 results: counted, never built.
    const huge = '{a,b}'.repeat(40);
    const ms = timed(() =>
      expect(() => expandBraces(huge)).toThrow(/expands to \d+ patterns, more than the 256/)
    );
    expect(ms).toBeLessThan(1000);
    expect(problems([huge])).toMatch(/^`exclude\[0\]` "\{a,b\}.*": expands to 1099511627776 patterns/);
    // The cap is shared by all patterns.
    const half = '{a,b}'.repeat(7); // 128
    expect(() => compileExclude([half, half])).not.toThrow();
    expect(problems([half, half, 'x{1,2}'])).toMatch(
      /^`exclude\[2\]` "x\{1,2\}": expands to 2 patterns, more than the 0 left of the 256 all patterns may expand to/
    );
    expect(MAX_EXPANDED).toBe(256);
  });
});

describe('bad patterns are errors naming the pattern, with an example', () => {
  const cases: [pattern: string, message: RegExp][] = [
    ['', /is empty; remove it/],
    ['   ', /is empty; remove it/],
    ['!', /matches nothing \(no name in it\)/],
    ['/', /matches nothing \(no name in it\)/],
    ['./', /matches nothing \(no name in it\)/],
    ['a//b', /contains "\/\/"/],
    ['../x', /a "\.\." segment/],
    ['src/./a', /a "\." segment/],
    ['a\\', /lone "\\"/],
    ['a[bc', /"\[" that is never closed/],
    ['[z-a].txt', /the range "z-a", which runs backwards/],
    ['*.{map,ts', /"\{" that is never closed/],
    ['a/**/b/**/c', /has 2 "\*\*" before its last segment; at most one/],
    ['**/a/**/b', /has 2 "\*\*"/],
    ['x'.repeat(1025), /longer than 1024 characters/],
    [Array(17).fill('a').join('/'), /17 path segments, more than the 16/],
    ['a\nb', /control character/]
  ];
  test.each(cases)('%j', (pattern, message) => {
    const text = problems(['*.map', pattern]);
    expect(text).toMatch(/^`exclude\[1\]` /);
    expect(text.slice(0, 60)).toContain(JSON.stringify(pattern).slice(0, 40));
    expect(text).toMatch(message);
    expect(text).toMatch(/Example: /);
  });

  test('every bad pattern is listed in one error', () => {
    const err = (() => {
      try {
        compileExclude(['', 'ok/', 'a//b']);
      } catch (e) {
        return e as ExcludePatternError;
      }
    })();
    expect(err?.problems).toHaveLength(2);
    expect(err?.problems[0]).toMatch(/^`exclude\[0\]` ""/);
    expect(err?.problems[1]).toMatch(/^`exclude\[2\]` "a\/\/b"/);
    expect(err?.hint).toMatch(/gitignore syntax.*Example: exclude: \['\*\.map'/);
    expect(excludeProblems(['', 'ok/'])).toHaveLength(1);
    expect(excludeProblems(['ok/', '!ok/x', '**/a/**'])).toEqual([]);
  });

  test('allowed shapes at the limits', () => {
    expect(
      excludeProblems(['**/node_modules/**', 'src/**/*.test.js', '**/**', 'a/**/', 'x'.repeat(1024)])
    ).toEqual([]);
    expect(excludeProblems([Array(16).fill('a').join('/')])).toEqual([]);
  });
});

describe('hostile patterns finish quickly', () => {
  // The pattern from issue 13, and others that make backtracking matchers explode.
  const wildcards = `${'*a'.repeat(21)}*b`;
  const hostile: [label: string, pattern: string][] = [
    ['issue 13: *a*a*…*b (22 wildcards)', wildcards],
    ['the same at any depth', `**/${wildcards}`],
    ['the same as a directory', `${wildcards}/**`],
    ['the same below a **', `a/**/${wildcards}`],
    ['a ** and 16 segments of wildcards', `*a*/**/${'*a*/'.repeat(13)}b`],
    ['16 segments at any depth', `**/${'*a*/'.repeat(14)}b`],
    ['100 ?*', `${'?*'.repeat(100)}b`],
    ['100 classes and stars', `${'*[ab]'.repeat(100)}*c`],
    ['500 wildcards', `${'*a'.repeat(500)}*b`],
    ['negated', `!${wildcards}`]
  ];
  // 4 KiB paths that almost match: one long name, a deep chain of short names, and a mix.
  const paths: [string, string][] = [
    ['one 4 KiB name', 'a'.repeat(4096)],
    ['2048 levels', Array(2048).fill('a').join('/')],
    ['400 levels of 9', Array(410).fill('aaaaaaaaa').join('/')]
  ];
  test.each(hostile)('%s', (_label, pattern) => {
    for (const [, path] of paths) {
      for (const isDir of [false, true]) {
        // A fresh matcher each time: nothing cached from the previous path.
        const match = compileExclude([pattern]);
        const ms = timed(() => expect(match(path, isDir)).toBe(false));
        expect(ms).toBeLessThan(1000);
      }
    }
  });

  test('long patterns of blanks and backslashes are read and refused in linear time', () => {
    for (const junk of [`x${' \\'.repeat(50_000)}`, `x${'\\'.repeat(100_001)} `, `${' '.repeat(100_000)}x`]) {
      expect(timed(() => excludeProblems([junk]))).toBeLessThan(1000);
    }
    expect(excludeProblems([`${' '.repeat(100_000)}x`])).toEqual([]);
    expect(excludeProblems([`x${' \\'.repeat(50_000)}`])[0]).toMatch(/longer than 1024 characters/);
  });

  test('the issue 13 pattern still does its job', () => {
    const match = compileExclude([wildcards]);
    expect(match(`${'a'.repeat(25)}b`, false)).toBe(true);
    expect(match(`x/${'ab'.repeat(25)}`, false)).toBe(true);
    expect(match(`${'a'.repeat(20)}b`, false)).toBe(false);
  });
});
