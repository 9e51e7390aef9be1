/**
 * Whether a version check's answer (an endpoint's body, a command's output, local or on a host)
 * reports the release or commit just deployed. One rule for every kind of version check, so the
 * same output cannot pass on one path and fail on another.
 */
import type { VersionCheck } from '../settings/types.js';

/** Characters of a release id besides `.`: a release id found inside a longer one is not it. */
const TOKEN = /[A-Za-z0-9_-]/;

/**
 * `needle` occurs in `text` as a whole token. Release ids are made of letters, digits and
 * `. _ -`, so a neighbour from that set makes a longer id (`2026-11-26.1` is not in `…26.10`,
 * `v1` is not in `app-v1` or `v1-rc`); a `.` after it counts only when more of an id follows
 * (`release v1.` at the end of a sentence reports v1).
 */
function containsToken(text: string, needle: string): boolean {
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
    const before = text[at - 1] ?? '';
    const after = text.slice(at + needle.length, at + needle.length + 2);
    const beforeOk = !before || !(TOKEN.test(before) || before === '.');
    const afterOk = !after || !(TOKEN.test(after[0]!) || /^\.[A-Za-z0-9]/.test(after));
    if (beforeOk && afterOk) return true;
  }
  return false;
}

/**
 * Hex words of 7 to 64 characters (SHA-1 or SHA-256), lowercased: standing on their own, or after
 * git describe's `-g` (`v1.2-3-g0123abc`). Hex inside a longer word (`x0123abc`) is not a sha.
 */
export function shaWords(text: string): string[] {
  const re = /(?:(?<![0-9A-Za-z])|(?<=-g))([0-9a-fA-F]{7,64})(?![0-9A-Za-z])/g;
  return [...text.matchAll(re)].map(m => m[1]!.toLowerCase());
}

/**
 * Does `text` report `expected`? A commit (7 to 64 hex digits) is reported by itself or any 7+
 * character prefix of it, as a word of its own; a release id (or anything else) as a whole token.
 * Nothing to compare with (an empty `expected`) is never reported.
 */
export function reportsVersion(text: string, expected: string, kind: VersionCheck['expect']): boolean {
  if (!expected) return false;
  if (kind === 'commit' && /^[0-9a-f]{7,64}$/i.test(expected)) {
    const full = expected.toLowerCase();
    return shaWords(text).some(w => full.startsWith(w));
  }
  return containsToken(text, expected);
}
