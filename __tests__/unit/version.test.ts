/**
 * The one rule for "this output reports the version just deployed", shared by the local and
 * the host version checks. Until issue 15 each had its own; the cases marked "host used to pass"
 * are the ones where the host check said yes and the local check said no (the local rule won).
 */
import { reportsVersion, shaWords } from '../../src/checks/version.js';

const SHA = '0123456789abcdef0123456789abcdef01234567';

describe('commit', () => {
  test.each([
    ['the full sha', `commit ${SHA}`],
    ['a 7 character prefix', 'release=v7 commit=0123456'],
    ['a 12 character prefix in JSON', '{"commit":"0123456789ab"}'],
    ['upper case', `COMMIT ${SHA.slice(0, 10).toUpperCase()}`],
    ["git describe's -g<sha>", 'v1.2-3-g0123456'],
    ['a prefix at the very start and end', '0123456789']
  ])('reported: %s', (_, text) => {
    expect(reportsVersion(text, SHA, 'commit')).toBe(true);
  });

  test.each([
    ['a 6 character prefix', 'commit 012345'],
    ['another commit', 'commit fedcba9876543210'],
    ['a longer hex word that starts like it', `commit ${SHA}00`],
    // host used to pass: any hex run, even inside a longer word, counted
    ['hex glued after a letter (host used to pass)', 'build x0123456'],
    ['hex glued before letters (host used to pass)', 'build 0123456zz'],
    ['hex inside an identifier (host used to pass)', 'id_v0123456789']
  ])('not reported: %s', (_, text) => {
    expect(reportsVersion(text, SHA, 'commit')).toBe(false);
  });
});

describe('release', () => {
  test.each([
    ['alone', 'v7', 'v7'],
    ['after a key', 'release=v7 commit=0123456', 'v7'],
    ['in JSON', '{"release":"2026-11-26.1"}', '2026-11-26.1'],
    ['at the end of a sentence', 'running release v7.', 'v7'],
    ['on stderr-like lines', 'release: 2026-11-26.1\n', '2026-11-26.1']
  ])('reported: %s', (_, text, expected) => {
    expect(reportsVersion(text, expected, 'release')).toBe(true);
  });

  test.each([
    ['a longer id (v70)', 'release=v70', 'v7'],
    ['a longer id (….10)', '{"release":"2026-11-26.10"}', '2026-11-26.1'],
    ['another release', 'release: 2026-11-25.3', '2026-11-26.1'],
    ['a minor version after it', 'v7.1', 'v7'],
    // host used to pass: `-`, `_` and `.` before, and a lone `-` or `_` after, ended the token
    ['the tail of a longer id (host used to pass)', 'release 2026-11-26.1', '26.1'],
    ['after a dot (host used to pass)', 'node v2.1', '1'],
    ['after a dash (host used to pass)', 'image app-v7', 'v7'],
    ['after an underscore (host used to pass)', 'build_v7', 'v7'],
    ['before a trailing dash (host used to pass)', 'release v7-', 'v7'],
    ['before a trailing underscore (host used to pass)', 'release v7_ done', 'v7']
  ])('not reported: %s', (_, text, expected) => {
    expect(reportsVersion(text, expected, 'release')).toBe(false);
  });
});

test('nothing to compare with is never reported (the local rule’s own function said yes; only its caller guarded)', () => {
  expect(reportsVersion('', '', 'release')).toBe(false);
  expect(reportsVersion('anything', '', 'commit')).toBe(false);
});

test('a release id made of hex digits is matched as a release when the check expects a release', () => {
  expect(reportsVersion('release deadbeef1', 'deadbeef', 'release')).toBe(false);
  expect(reportsVersion('release deadbeef', 'deadbeef', 'release')).toBe(true);
});

test('shaWords: hex words of 7 to 64 characters, standing alone or after -g', () => {
  expect(shaWords(`a ${SHA} x0123456 v1-g89abcde 0123456789abcde-dirty 012345`)).toEqual([
    SHA,
    '89abcde',
    '0123456789abcde'
  ]);
});
