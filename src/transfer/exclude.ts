import ignore from 'ignore';

/**
 * The exclude patterns of `deployguard.yml`: gitignore rules (matched by the `ignore` package) plus
 * brace expansion, checked up front so that a pattern that cannot match, or that could make the
 * matching slow, is a config error naming it instead of a silent no-op or a hung deploy.
 *
 * Why the limits: `ignore` turns each rule into a backtracking RegExp. It keeps runs of `*` inside
 * one name linear, but every `**` in the middle of a pattern multiplies the work by the depth of the
 * path, and so does every further segment after one; two of them took seconds on a deep tree.
 */

/** Whether `relPath` (artifact-relative, POSIX, no leading './') is excluded. */
export type ExcludeMatcher = (relPath: string, isDir: boolean) => boolean;

/** Longest pattern accepted, in characters: far beyond any real one, short enough to stay cheap. */
export const MAX_PATTERN_LENGTH = 1024;
/** Most path segments in one pattern. */
export const MAX_SEGMENTS = 16;
/** Most rules all patterns together may expand to (`{a,b}{c,d}` is four). */
export const MAX_EXPANDED = 256;

const EXAMPLE = `exclude: ['*.map', 'node_modules/', 'src/**/*.test.{js,ts}', '!keep.map']`;

/** Invalid exclude patterns, every problem listed (one per pattern at most). */
export class ExcludePatternError extends Error {
  override name = 'ExcludePatternError';
  readonly hint = `Exclude patterns use gitignore syntax plus {a,b} alternatives. Example: ${EXAMPLE}`;
  constructor(readonly problems: readonly string[]) {
    super(problems.join('; '));
  }
}

/**
 * Checks and compiles exclude patterns into one predicate, the only exclude decision of a deploy:
 * the scan applies it, and the full upload, the incremental upload and the manifest all take the
 * scan's entries. Semantics are git's:
 * - a pattern without a `/` (other than a trailing one) matches a name at any depth (`*.map`);
 *   one with a `/` is anchored at the artifact root (`/build`, `src/*.ts`; a leading `./` is read as `/`);
 * - a trailing `/` matches directories only (`logs/`);
 * - `*` and `?` stay within a name, `**` spans directories (`a/**` is everything inside `a`);
 * - `[abc]`, `[a-z]`, `[!a]` classes, and `\` escapes the next character;
 * - `!pattern` re-includes what an earlier pattern excluded (the last matching pattern wins),
 *   except below an excluded directory: its contents stay excluded, as in git;
 * - `{a,b}` alternatives (nestable) are expanded first: `*.{map,ts}` is `*.map` and `*.ts`.
 *
 * Leading spaces and unescaped trailing spaces are dropped. Throws {@link ExcludePatternError}
 * listing each pattern that is empty, cannot match anything, or exceeds the limits above.
 */
export function compileExclude(patterns: readonly string[]): ExcludeMatcher {
  const rules = expandPatterns(patterns);
  if (rules.length === 0) return () => false;
  const ig = ignore({ ignorecase: false }).add(rules);
  return (relPath, isDir) => ig.ignores(isDir ? `${relPath}/` : relPath);
}

/** The problems {@link compileExclude} would throw for, as text; empty when the patterns are fine. */
export function excludeProblems(patterns: readonly string[]): string[] {
  try {
    expandPatterns(patterns);
    return [];
  } catch (err) {
    if (err instanceof ExcludePatternError) return [...err.problems];
    throw err;
  }
}

/** The gitignore rules the patterns stand for, in order; throws on any bad pattern. */
function expandPatterns(patterns: readonly string[]): string[] {
  const rules: string[] = [];
  const problems: string[] = [];
  patterns.forEach((raw, i) => {
    const shown = typeof raw === 'string' && raw.length > 60 ? `${raw.slice(0, 60)}…` : raw;
    const where = `\`exclude[${i}]\` ${JSON.stringify(shown)}`;
    const problem = checkAndExpand(raw, rules);
    if (problem !== undefined) problems.push(`${where}: ${problem}`);
  });
  if (problems.length > 0) throw new ExcludePatternError(problems);
  return rules;
}

/** Appends the rules of one pattern to `out`, or returns what is wrong with it. */
function checkAndExpand(raw: unknown, out: string[]): string | undefined {
  if (typeof raw !== 'string') return `expected a string, got ${typeof raw}. Example: "*.map"`;
  const pattern = trimPattern(raw);
  if (pattern === '') return 'the pattern is empty; remove it. Example: "*.map"';
  if (pattern.length > MAX_PATTERN_LENGTH)
    return `longer than ${MAX_PATTERN_LENGTH} characters; shorten it or split it into several patterns. Example: "*.{map,ts}"`;
  if (/[\u0000-\u001f\u007f]/.test(pattern))
    return 'contains a control character, which no artifact file name can contain; remove it. Example: "*.map"';

  const negated = pattern.startsWith('!');
  const body = negated ? pattern.slice(1) : pattern;
  let alternatives: string[];
  try {
    alternatives = expandBraces(body, MAX_EXPANDED - out.length);
  } catch (err) {
    if (err instanceof BraceError) return err.message;
    throw err;
  }
  for (const alt of alternatives) {
    const problem = checkRule(alt);
    if (problem !== undefined) return problem;
  }
  for (const alt of alternatives) out.push(toRule(alt, negated));
  return undefined;
}

/** Without leading whitespace and without trailing spaces and tabs unless escaped (`a\\ `), as git reads them. */
function trimPattern(raw: string): string {
  const p = raw.trimStart();
  let end = p.length;
  while (end > 0 && (p[end - 1] === ' ' || p[end - 1] === '\t')) end--;
  // A blank after an odd number of backslashes is escaped: it stays, the blanks after it go.
  let slashes = 0;
  while (end - slashes > 0 && p[end - slashes - 1] === '\\') slashes++;
  if (slashes % 2 === 1 && end < p.length) end++;
  return p.slice(0, end);
}

/**
 * The rule `ignore` gets for one expanded pattern: `./` read as `/`, and a first character that
 * gitignore would take for a comment or a second negation made literal (a list entry is never a comment).
 */
function toRule(alt: string, negated: boolean): string {
  let body = alt.replace(/^(?:\.\/)+/, '/');
  if (body.startsWith('#') || body.startsWith('!')) body = `\\${body}`;
  return negated ? `!${body}` : body;
}

/** What is wrong with one expanded pattern (no braces left), if anything. */
function checkRule(alt: string): string | undefined {
  const body = alt.replace(/^(?:\.\/)+/, '/');
  const example = 'Example: "src/**/*.test.js"';
  if (/(?:^|[^\\])(?:\\\\)*\\$/.test(body))
    return 'ends with a lone "\\", which escapes nothing and matches nothing; remove it. Example: "*.map"';
  const segments = splitSegments(body);
  if (segments[0] === '') segments.shift(); // anchored: '/build'
  if (segments.length > 0 && segments[segments.length - 1] === '') segments.pop(); // dir-only: 'logs/'
  if (segments.length === 0) return `matches nothing (no name in it). ${example}`;
  if (segments.length > MAX_SEGMENTS)
    return `has ${segments.length} path segments, more than the ${MAX_SEGMENTS} allowed. ${example}`;
  for (const seg of segments) {
    if (seg === '') return `contains "//", which matches nothing; write one "/". ${example}`;
    if (seg === '.' || seg === '..')
      return `contains a "${seg}" segment, which matches nothing (paths are matched as written in the artifact). ${example}`;
    const bad = checkClasses(seg);
    if (bad !== undefined) return bad;
  }
  const globstars = segments.slice(0, -1).filter(s => s === '**').length;
  if (globstars > 1)
    return (
      `has ${globstars} "**" before its last segment; at most one is allowed (a trailing "/**" is free), ` +
      `because each one multiplies the matching work by the depth of the tree. ` +
      `To drop a whole directory wherever it is, name it: "node_modules/". ${example}`
    );
  return undefined;
}

/** Splits on unescaped slashes outside character classes (a class cannot hold a slash in git). */
function splitSegments(body: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    if (body[i] === '\\') i++;
    else if (body[i] === '/') {
      out.push(body.slice(start, i));
      start = i + 1;
    }
  }
  out.push(body.slice(start));
  return out;
}

/** Checks the `[...]` classes of one segment: closed, and no range that runs backwards. */
function checkClasses(seg: string): string | undefined {
  for (let i = 0; i < seg.length; i++) {
    if (seg[i] === '\\') {
      i++;
      continue;
    }
    if (seg[i] !== '[') continue;
    const end = classEnd(seg, i);
    if (end < 0)
      return `has a "[" that is never closed, which matches nothing; write "\\[" for a literal bracket. Example: "[abc].log"`;
    const members = unescapeMembers(seg.slice(i + 1, end).replace(/^[!^]/, ''));
    for (let m = 1; m + 1 < members.length; m++) {
      const from = members[m - 1] as string;
      const to = members[m + 1] as string;
      if (members[m] === '-' && from.length === 1 && to.length === 1 && from > to)
        return `has the range "${from}-${to}", which runs backwards and matches nothing. Example: "[a-z].log"`;
    }
    i = end;
  }
  return undefined;
}

/** The members of a class body, one string each: a character, or a whole `[:name:]`. */
function unescapeMembers(inner: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < inner.length; i++) {
    if (inner[i] === '\\' && i + 1 < inner.length) out.push(inner[++i] as string);
    else if (inner.startsWith('[:', i) && inner.indexOf(':]', i + 2) > 0) {
      const close = inner.indexOf(':]', i + 2) + 2;
      out.push(inner.slice(i, close));
      i = close - 1;
    } else out.push(inner[i] as string);
  }
  return out;
}

/**
 * Index of the `]` closing the class opened at `open`, or -1. As in git: a `]` right after `[`, `[!`
 * or `[^` is a member, `\` escapes, and `[:alpha:]` is one member.
 */
function classEnd(s: string, open: number): number {
  let i = open + 1;
  if (s[i] === '!' || s[i] === '^') i++;
  if (s[i] === ']') i++;
  for (; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s.startsWith('[:', i) && s.indexOf(':]', i + 2) > 0) i = s.indexOf(':]', i + 2) + 1;
    else if (s[i] === ']') return i;
  }
  return -1;
}

class BraceError extends Error {}

/** A parsed pattern: literal text, or a choice between sequences. */
type Item = string | Item[][];

/**
 * Expands `{a,b}` alternatives (nested ones too) like a shell: `*.{js,ts}` gives `*.js` and `*.ts`,
 * `{a}`, `{}`, a `}` without its `{`, `\{` and braces inside `[...]` stay literal, escapes are kept
 * for gitignore, and a `{` never closed is an error (most likely a typo). The number of results is
 * counted before anything is built; more than `limit` is an error.
 */
export function expandBraces(pattern: string, limit = MAX_EXPANDED): string[] {
  let pos = 0;
  // Reads a sequence up to a ',' or '}' of the enclosing group (or the end at the top level).
  const sequence = (depth: number): Item[] => {
    const items: Item[] = [];
    while (pos < pattern.length) {
      const c = pattern[pos] as string;
      if (c === '\\') {
        items.push(pattern.slice(pos, pos + 2));
        pos += 2;
      } else if (c === '[' && classEnd(pattern, pos) > 0) {
        const end = classEnd(pattern, pos);
        items.push(pattern.slice(pos, end + 1));
        pos = end + 1;
      } else if (c === '{') {
        pos++;
        items.push(...group(depth + 1));
      } else if ((c === '}' || c === ',') && depth > 0) {
        break;
      } else {
        items.push(c);
        pos++;
      }
    }
    return items;
  };
  // Reads the alternatives of a group whose '{' was just consumed, up to and including its '}'.
  const group = (depth: number): Item[] => {
    const alternatives: Item[][] = [sequence(depth)];
    while (pattern[pos] === ',') {
      pos++;
      alternatives.push(sequence(depth));
    }
    if (pattern[pos] !== '}')
      throw new BraceError(
        `has a "{" that is never closed; write "\\{" for a literal brace. Example: "*.{map,ts}"`
      );
    pos++;
    // Like a shell: without a comma the braces are plain text.
    return alternatives.length === 1 ? ['{', ...(alternatives[0] as Item[]), '}'] : [alternatives];
  };

  const items = sequence(0);
  const total = count(items);
  if (total > limit)
    throw new BraceError(
      `expands to ${Number.isFinite(total) ? total : 'too many'} patterns, more than the ` +
        (limit === MAX_EXPANDED
          ? `${limit} allowed`
          : `${limit} left of the ${MAX_EXPANDED} all patterns may expand to`) +
        `; use fewer or smaller {a,b} groups. Example: "*.{map,ts}"`
    );
  return build(items);
}

function count(items: readonly Item[]): number {
  let n = 1;
  for (const item of items) {
    if (typeof item !== 'string') n *= item.reduce((sum, alt) => sum + count(alt), 0);
    // Stop early: a long product of groups could overflow to Infinity (still over any limit).
    if (n > Number.MAX_SAFE_INTEGER) return Infinity;
  }
  return n;
}

function build(items: readonly Item[]): string[] {
  let results = [''];
  for (const item of items) {
    if (typeof item === 'string') results = results.map(r => r + item);
    else {
      const tails = item.flatMap(build);
      results = results.flatMap(r => tails.map(t => r + t));
    }
  }
  return results;
}
