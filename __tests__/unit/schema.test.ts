import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { absPath, localPath } from '../../src/settings/config.js';
import {
  arr,
  bool,
  DEFAULT_MAX_ITEMS,
  describeValue,
  duration,
  enumOf,
  formatDuration,
  formatIssues,
  int,
  MAX_DEPTH,
  MAX_ISSUES,
  obj,
  optional,
  parseDuration,
  record,
  str,
  suggest,
  tagged,
  toJsonSchema,
  union,
  validate,
  type AnySchema,
  type Infer,
  type InferInput,
  type SchemaIssue
} from '../../src/settings/schema.js';

/** The issues of a validation that must fail. */
function issues(schema: AnySchema, value: unknown, rootPath?: string): readonly SchemaIssue[] {
  const r = validate(schema, value, rootPath);
  if (r.ok) throw new Error(`expected validation to fail, got ${JSON.stringify(r.value)}`);
  return r.errors;
}

/** The value of a validation that must succeed. */
function valid<S extends AnySchema>(schema: S, value: unknown): Infer<S> {
  const r = validate(schema, value);
  if (!r.ok) throw new Error(`expected validation to pass:\n${formatIssues(r.errors)}`);
  return r.value;
}

const only = (schema: AnySchema, value: unknown) => {
  const all = issues(schema, value);
  expect(all).toHaveLength(1);
  return all[0]!;
};

// Compile-time equality. ts-jest only transpiles (isolatedModules), so the last test of this file runs
// the type checker over it: a wrong inferred type fails `npm test`, not just `tsc`.
type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends <T>() => T extends Y ? 1 : 2 ? true : false;
const assertType = <T extends true>(_ok: T) => undefined;

describe('str', () => {
  test('accepts strings and rejects other types with a quoting hint', () => {
    expect(valid(str(), 'web1')).toBe('web1');
    expect(only(str(), 1.1)).toEqual({
      path: '',
      message: 'expected a string, got the number 1.1; put it in quotes to make it text',
      example: 'example'
    });
    expect(only(str(), ['a']).message).toBe('expected a string, got a list of 1 item');
  });

  test('pattern, custom phrase and length bounds', () => {
    const host = str({
      pattern: /^[a-z][a-z0-9.-]*$/,
      maxLength: 10,
      example: 'web1',
      expected: 'a hostname'
    });
    expect(valid(host, 'web1.lan')).toBe('web1.lan');
    expect(only(host, 'Web1').message).toBe('expected a hostname, got "Web1" (a string)');
    expect(only(host, 'abcdefghijk').message).toBe(
      'expected at most 10 characters, got "abcdefghijk" (a string)'
    );
    expect(only(str({ minLength: 1 }), '').message).toBe('expected 1 to 10000 characters, got "" (a string)');
    expect(only(str({ pattern: /^x+$/, example: 'xx' }), 'y').message).toBe(
      'expected a string matching /^x+$/, got "y" (a string)'
    );
  });

  test('counts code points, not UTF-16 units', () => {
    expect(valid(str({ maxLength: 2 }), '😀😀')).toBe('😀😀');
    expect(issues(str({ maxLength: 2 }), '😀😀😀')).toHaveLength(1);
  });

  test('rejects NUL, other control characters and bidi overrides; multiline allows only line breaks', () => {
    expect(only(str(), 'a\u0000b').message).toBe(
      'contains the control character U+0000 at position 1, which is not allowed here'
    );
    expect(only(str(), 'line1\nline2').message).toContain('U+000A at position 5');
    expect(only(str(), 'x\u202Ey').message).toContain('U+202E');
    expect(only(str(), 'a\u007F').message).toContain('U+007F');
    const script = str({ multiline: true });
    expect(valid(script, 'set -e\r\n\tmake\n')).toBe('set -e\r\n\tmake\n');
    expect(only(script, 'a\u0000').message).toContain('U+0000');
    expect(only(script, 'a\u001b[31m').message).toContain('U+001B');
  });

  test('caps string length by default, and shows huge values truncated', () => {
    const huge = 'a'.repeat(20_001);
    const issue = only(str(), huge);
    expect(issue.message).toBe(
      `expected at most 10000 characters, got "${'a'.repeat(40)}…" (a string of 20001 characters)`
    );
  });

  test('invalid schema definitions fail when the schema is built', () => {
    expect(() => str({ pattern: /^\d+$/ })).toThrow(/schema example is invalid/);
    expect(() => str({ pattern: /^a$/g, example: 'a' })).toThrow(/may only use the u flag/);
    expect(() => str({ pattern: /^a$/i, example: 'a' })).toThrow(/may only use the u flag/);
  });
});

describe('int', () => {
  const keep = int({ min: 1, max: 100, example: 5 });

  test('range, fractions, quoted numbers', () => {
    expect(valid(keep, 1)).toBe(1);
    expect(valid(keep, 100)).toBe(100);
    expect(only(keep, 0).message).toBe('expected an integer from 1 to 100, got the number 0');
    expect(only(keep, 101).message).toBe('expected an integer from 1 to 100, got the number 101');
    expect(only(keep, 1.5).message).toBe('expected an integer from 1 to 100, got the number 1.5');
    expect(only(keep, 'five').message).toBe('expected an integer from 1 to 100, got "five" (a string)');
    expect(only(keep, '5').message).toBe(
      'expected an integer from 1 to 100, got "5" (a string); remove the quotes'
    );
    expect(only(int(), Number.NaN).message).toBe('expected an integer, got the number NaN');
    expect(only(int(), 2 ** 60).message).toContain('expected an integer, got the number');
    expect(only(int({ min: 1 }), 0).message).toBe('expected an integer of at least 1, got the number 0');
    expect(only(int({ max: 9 }), 10).message).toBe('expected an integer of at most 9, got the number 10');
  });

  test('auto example respects the range', () => {
    expect(int().example).toBe(0);
    expect(int({ min: 1 }).example).toBe(1);
    expect(int({ max: -3 }).example).toBe(-3);
    expect(() => int({ min: 1, example: 0 })).toThrow(/schema example is invalid/);
  });
});

describe('bool', () => {
  test('accepts only real booleans, with a hint for YAML 1.1 words', () => {
    expect(valid(bool(), false)).toBe(false);
    expect(only(bool(), 'yes').message).toBe(
      'expected true or false, got "yes" (a string); write true or false, without quotes'
    );
    expect(only(bool(), 1).message).toBe('expected true or false, got the number 1');
  });
});

describe('duration', () => {
  test.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1h30m', 5_400_000],
    ['2s500ms', 2500],
    ['1h2m3s4ms', 3_723_004],
    ['0s', 0]
  ])('parses %s', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
    expect(valid(duration(), text)).toBe(ms);
  });

  test.each([
    '5',
    '5x',
    '-1s',
    '1.5s',
    '',
    's',
    '1s1m',
    '30 s',
    '30S',
    '1m 30s',
    '1d',
    ' 30s',
    '9'.repeat(41) + 's'
  ])('rejects %p', text => {
    expect(parseDuration(text)).toBeUndefined();
    expect(issues(duration(), text)).toHaveLength(1);
  });

  test('rejects unsafe totals', () => {
    expect(parseDuration('99999999999999999h')).toBeUndefined();
  });

  test('bare numbers are rejected with a unit suggestion', () => {
    expect(only(duration(), 30).message).toBe(
      'expected a duration like `30s`, got the number 30; add a unit, e.g. `30s` for seconds or `30ms` for milliseconds'
    );
    expect(only(duration(), '5').message).toContain('add a unit, e.g. `5s`');
    expect(only(duration(), '1.5s').message).toBe(
      'expected a duration like `30s`, got "1.5s" (a string); write whole numbers with units h, m, s, ms, e.g. `1m30s`'
    );
    expect(only(duration(), 1.5).message).toBe('expected a duration like `30s`, got the number 1.5');
  });

  test('bounds are duration text and show up in the message', () => {
    const window = duration({ min: '1s', max: '10m', example: '2m' });
    expect(valid(window, '10m')).toBe(600_000);
    expect(only(window, '500ms').message).toBe(
      'expected a duration from 1s to 10m like `2m`, got "500ms" (a string)'
    );
    expect(duration({ min: '1m' }).example).toBe('1m');
    expect(duration({ max: '10s' }).example).toBe('10s');
    expect(() => duration({ min: '1 minute' })).toThrow(/is not a duration/);
  });

  test('formatDuration round-trips', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(90_000)).toBe('1m30s');
    expect(formatDuration(3_723_004)).toBe('1h2m3s4ms');
    for (const ms of [1, 999, 1000, 61_001, 86_400_000]) expect(parseDuration(formatDuration(ms))).toBe(ms);
  });
});

describe('enumOf', () => {
  const strategy = enumOf(['releases', 'in-place']);

  test('accepts the values, infers the literal type, suggests close ones', () => {
    const value = valid(strategy, 'in-place');
    assertType<Equal<typeof value, 'releases' | 'in-place'>>(true);
    expect(value).toBe('in-place');
    expect(only(strategy, 'Releases').message).toBe(
      'expected one of `releases`, `in-place`, got "Releases" (a string); did you mean `releases`?'
    );
    expect(only(strategy, 'inplace').message).toContain('did you mean `in-place`?');
    expect(only(strategy, 'blue-green').message).toBe(
      'expected one of `releases`, `in-place`, got "blue-green" (a string)'
    );
    expect(only(strategy, 3).message).toBe('expected one of `releases`, `in-place`, got the number 3');
  });
});

describe('arr', () => {
  test('validates items with indexed paths and freezes the output', () => {
    const ports = arr(int({ min: 1, max: 65535, example: 22 }), { minItems: 1 });
    const out = valid(ports, [22, 2222]);
    expect(out).toEqual([22, 2222]);
    expect(Object.isFrozen(out)).toBe(true);
    expect(issues(ports, [22, 0, 'x'], 'ports')).toEqual([
      { path: 'ports[1]', message: 'expected an integer from 1 to 65535, got the number 0', example: '- 22' },
      {
        path: 'ports[2]',
        message: 'expected an integer from 1 to 65535, got "x" (a string)',
        example: '- 22'
      }
    ]);
    expect(only(ports, []).message).toBe('expected a list of 1 to 1000 items, got a list of 0 items');
    expect(only(ports, 22).message).toBe('expected a list, got the number 22');
  });

  test('huge lists are rejected with one issue, without visiting the items', () => {
    const list = Array.from({ length: DEFAULT_MAX_ITEMS + 1 }, () => 'not a number');
    expect(only(arr(int()), list).message).toBe(
      'expected a list of at most 1000 items, got a list of 1001 items'
    );
    expect(only(arr(int(), { maxItems: 2 }), [1, 2, 3]).message).toBe(
      'expected a list of at most 2 items, got a list of 3 items'
    );
  });

  test('the number of reported issues is capped', () => {
    const errors = issues(
      arr(int()),
      Array.from({ length: 500 }, () => 'x')
    );
    expect(errors).toHaveLength(MAX_ISSUES + 1);
    expect(errors[MAX_ISSUES]).toEqual({ path: '', message: 'and 400 more issues not shown', example: '' });
  });

  test('a mapping with a huge number of unknown keys stays cheap and capped', () => {
    // Did-you-mean costs (key length x known key lengths); it must stop once nothing more is shown.
    const known = Object.fromEntries(
      Array.from({ length: 20 }, (_, i) => [`known-key-number-${i}`, optional(int())])
    );
    const hostile = Object.fromEntries(
      Array.from({ length: 20_000 }, (_, i) => [`${i}`.padStart(64, 'k'), i])
    );
    const started = Date.now();
    const errors = issues(obj(known), hostile);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(errors).toHaveLength(MAX_ISSUES + 1);
    expect(errors[MAX_ISSUES]!.message).toBe('and 19900 more issues not shown');
  });
});

describe('obj', () => {
  const target = obj({
    path: str({ pattern: /^\//, example: '/srv/app' }),
    'keep-releases': optional(int({ min: 1, max: 100, example: 5 }), 5),
    strategy: optional(enumOf(['releases', 'in-place']), 'releases'),
    user: optional(str({ example: 'deploy' }))
  });

  test('applies defaults, leaves optional fields without default absent, freezes', () => {
    const out = valid(target, { path: '/srv/app' });
    expect(out).toEqual({ path: '/srv/app', 'keep-releases': 5, strategy: 'releases' });
    expect('user' in out).toBe(false);
    expect(Object.isFrozen(out)).toBe(true);
    // An empty YAML value (`user:`) is null, and means "not set" for optional fields.
    expect(valid(target, { path: '/srv/app', 'keep-releases': null, user: null })).toEqual({
      path: '/srv/app',
      'keep-releases': 5,
      strategy: 'releases'
    });
  });

  test('outputs have no prototype, so no inherited keys leak into lookups', () => {
    const out = valid(target, { path: '/srv/app' }) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBeNull();
    expect(out['toString']).toBeUndefined();
  });

  test('collects all issues, with paths and examples', () => {
    const errors = issues(
      target,
      { 'keep-releases': 'five', strategy: 'atomic', keep_releases: 3 },
      'target'
    );
    expect(errors).toEqual([
      {
        path: 'target.keep_releases',
        message: 'unknown key `keep_releases`; did you mean `keep-releases`? (keys are kebab-case)',
        example: 'keep-releases: 5'
      },
      {
        path: 'target.path',
        message: 'missing required key `path`, expected a string matching /^\\//',
        example: 'path: /srv/app'
      },
      {
        path: 'target.keep-releases',
        message: 'expected an integer from 1 to 100, got "five" (a string)',
        example: 'keep-releases: 5'
      },
      {
        path: 'target.strategy',
        message: 'expected one of `releases`, `in-place`, got "atomic" (a string)',
        example: 'strategy: releases'
      }
    ]);
  });

  test('did you mean: typos, camelCase, snake_case, case; none for unrelated keys', () => {
    const message = (key: string) => only(target, { path: '/a', [key]: 1 }).message;
    expect(message('keepReleases')).toBe(
      'unknown key `keepReleases`; did you mean `keep-releases`? (keys are kebab-case)'
    );
    expect(message('KEEP_RELEASES')).toContain('did you mean `keep-releases`? (keys are kebab-case)');
    expect(message('keep-relases')).toBe('unknown key `keep-relases`; did you mean `keep-releases`?');
    expect(message('stratgey')).toBe('unknown key `stratgey`; did you mean `strategy`?');
    expect(message('usr')).toBe('unknown key `usr`; did you mean `user`?');
    expect(message('color')).toBe(
      'unknown key `color`; known keys: `path`, `keep-releases`, `strategy`, `user`'
    );
    expect(message('a b\nc')).toBe(
      'unknown key "a b\\nc"; known keys: `path`, `keep-releases`, `strategy`, `user`'
    );
    expect(suggest('x'.repeat(65), ['x'.repeat(64)])).toBeUndefined();
    expect(suggest('hots', ['hosts', 'port'])).toBe('hosts');
    expect(suggest('prot', ['hosts', 'port'])).toBe('port');
    expect(suggest('abc', ['xyz'])).toBeUndefined();
  });

  test('nested objects and lists report full paths; nested defaults apply through a default {}', () => {
    const config = obj({
      hosts: arr(
        obj({ name: str({ example: 'web1' }), port: optional(int({ min: 1, max: 65535, example: 22 }), 22) })
      ),
      'post-deploy': optional(obj({ 'stability-window': optional(duration({ example: '30s' }), '30s') }), {})
    });
    expect(valid(config, { hosts: [{ name: 'a' }] })).toEqual({
      hosts: [{ name: 'a', port: 22 }],
      'post-deploy': { 'stability-window': 30_000 }
    });
    const errors = issues(config, {
      hosts: [{ name: 'a', port: 0 }, { nmae: 'b' }],
      'post-deploy': { 'stability-window': 30 }
    });
    expect(errors.map(e => [e.path, e.example])).toEqual([
      ['hosts[0].port', 'port: 22'],
      ['hosts[1].nmae', 'name: web1'],
      ['post-deploy.stability-window', 'stability-window: 30s']
    ]);
    expect(errors[2]!.message).toBe(
      'expected a duration like `30s`, got the number 30; add a unit, e.g. `30s` for seconds or `30ms` for milliseconds'
    );
  });

  test('values that are not plain mappings are wrong types', () => {
    const schema = obj({ a: optional(str()) });
    expect(only(schema, new Date('2024-01-02T03:04:05Z')).message).toBe(
      'expected a mapping (key: value lines), got a date (2024-01-02T03:04:05.000Z)'
    );
    expect(only(schema, new Map([['a', 'b']])).message).toContain('got a Map object');
    expect(only(schema, ['a']).message).toContain('got a list of 1 item');
    expect(only(schema, null).message).toContain('got null (an empty value)');
    expect(only(schema, 'a: b').message).toContain('got "a: b" (a string)');
    expect(valid(schema, Object.assign(Object.create(null), { a: 'x' }))).toEqual({ a: 'x' });
    expect(only(str(), new Date(0)).message).toBe(
      'expected a string, got a date (1970-01-01T00:00:00.000Z); put it in quotes to make it text'
    );
  });

  test('prototype pollution keys are unknown keys and never reach a prototype', () => {
    const schema = obj({ name: optional(str()) });
    const hostile = JSON.parse(
      '{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}'
    );
    const errors = issues(schema, hostile);
    expect(errors.map(e => e.path)).toEqual(['__proto__', 'constructor']);
    expect(errors[0]!.message).toBe('unknown key `__proto__`; known keys: `name`');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  test('invalid defaults fail when the schema is built', () => {
    expect(() => optional(int({ min: 1 }), 0)).toThrow(/the default is invalid/);
    expect(() => optional(duration(), '30')).toThrow(/add a unit/);
  });
});

describe('record', () => {
  const env = record(str({ example: 'production' }), {
    keyPattern: /^[A-Z_][A-Z0-9_]*$/,
    example: { NODE_ENV: 'production' }
  });

  test('free-form keys into a frozen null-prototype object', () => {
    const out = valid(env, { NODE_ENV: 'production', PORT: '8080' });
    expect(out).toEqual({ NODE_ENV: 'production', PORT: '8080' });
    expect(Object.getPrototypeOf(out)).toBeNull();
    expect(Object.isFrozen(out)).toBe(true);
  });

  test('bad keys, reserved keys and bad values, all reported', () => {
    const hostile = JSON.parse('{"__proto__": "x", "lower": "y", "OK": 1}');
    expect(issues(env, hostile, 'env')).toEqual([
      {
        path: 'env.__proto__',
        message: 'key `__proto__` is not allowed; keys must match /^[A-Z_][A-Z0-9_]*$/',
        example: 'env: { NODE_ENV: production }'
      },
      {
        path: 'env.lower',
        message: 'key `lower` is not allowed; keys must match /^[A-Z_][A-Z0-9_]*$/',
        example: 'env: { NODE_ENV: production }'
      },
      {
        path: 'env.OK',
        message: 'expected a string, got the number 1; put it in quotes to make it text',
        example: 'OK: production'
      }
    ]);
    const plain = record(int());
    expect(issues(plain, { constructor: 1, 'a.b': 'x' }).map(e => e.path)).toEqual([
      'constructor',
      '["a.b"]'
    ]);
    expect(issues(plain, { 'a\u0000': 1 })[0]!.message).toBe('key "a\\u0000" is not allowed');
    expect(only(record(int(), { maxKeys: 1 }), { a: 1, b: 2 }).message).toBe(
      'expected a mapping of at most 1 key, got a mapping with 2 keys'
    );
  });
});

describe('union', () => {
  const hosts = union([str({ example: 'web1' }), arr(str({ example: 'web1' }), { minItems: 1 })]);

  test('accepts any branch', () => {
    expect(valid(hosts, 'web1')).toBe('web1');
    expect(valid(hosts, ['a', 'b'])).toEqual(['a', 'b']);
    assertType<Equal<Infer<typeof hosts>, string | readonly string[]>>(true);
  });

  test('reports the detailed issues of the one branch with the right shape, else one summary issue', () => {
    expect(issues(hosts, ['a', 3], 'hosts')).toEqual([
      {
        path: 'hosts[1]',
        message: 'expected a string, got the number 3; put it in quotes to make it text',
        example: '- web1'
      }
    ]);
    expect(only(hosts, 3).message).toBe('expected a string or a list, got the number 3');
    const either = union([enumOf(['auto']), duration()]);
    expect(only(either, 'soon').message).toBe(
      'expected one of `auto` or a duration like `30s`, got "soon" (a string)'
    );
  });
});

describe('tagged', () => {
  const service = tagged('manager', {
    none: {},
    systemd: { name: str({ example: 'app.service' }), settle: optional(duration(), '5s') }
  });

  test('picks the variant by tag and infers a discriminated union', () => {
    const out = valid(service, { manager: 'systemd', name: 'app.service' });
    expect(out).toEqual({ manager: 'systemd', name: 'app.service', settle: 5000 });
    assertType<
      Equal<
        typeof out,
        | { readonly manager: 'none' }
        | { readonly manager: 'systemd'; readonly name: string; readonly settle: number }
      >
    >(true);
    if (out.manager === 'systemd') expect(out.settle).toBe(5000);
    expect(valid(service, { manager: 'none' })).toEqual({ manager: 'none' });
  });

  test('issues speak about the chosen variant, the tag, or its absence', () => {
    expect(issues(service, { manager: 'none', name: 'x' }).map(e => e.message)).toEqual([
      'unknown key `name`; known keys: `manager`'
    ]);
    expect(issues(service, { manager: 'systemd' }).map(e => e.path)).toEqual(['name']);
    expect(only(service, { manager: 'systemD' })).toEqual({
      path: 'manager',
      message: 'expected one of `none`, `systemd`, got "systemD" (a string); did you mean `systemd`?',
      example: 'manager: none'
    });
    expect(only(service, {})).toEqual({
      path: 'manager',
      message: 'missing required key `manager`, expected one of `none`, `systemd`',
      example: 'manager: none'
    });
    expect(only(service, 'systemd').message).toBe(
      'expected a mapping with `manager: none | systemd`, got "systemd" (a string)'
    );
  });
});

describe('hostile input', () => {
  test('input nested deeper than the schema is a wrong type at the leaf, never recursed into', () => {
    let value: unknown = 1;
    for (let i = 0; i < 100_000; i++) value = [value];
    expect(only(arr(int()), value)).toEqual({
      path: '[0]',
      message: 'expected an integer, got a list of 1 item',
      example: '- 0'
    });
  });

  test('schemas deeper than the depth limit are refused when built', () => {
    let schema: AnySchema = int();
    for (let i = 0; i < MAX_DEPTH - 1; i++) schema = arr(schema);
    expect(() => arr(schema)).toThrow(`is nested more than ${MAX_DEPTH} levels deep`);
  });

  test('describeValue never prints raw control characters or long values', () => {
    expect(describeValue('a\u0000\u202Eb')).toBe('"a\\u0000\\u202eb" (a string)');
    expect(describeValue(undefined)).toBe('nothing');
    expect(describeValue(10n)).toBe('the number 10');
    expect(describeValue(new Date(Number.NaN))).toBe('a date (invalid)');
    expect(describeValue(new Uint8Array(2))).toBe('a Uint8Array object');
    expect(describeValue({ a: 1 })).toBe('a mapping with 1 key');
    expect(describeValue(() => 1)).toBe('a function');
  });
});

describe('formatIssues', () => {
  test('one line per issue with path, message and example', () => {
    const schema = obj({ target: obj({ 'keep-releases': int({ min: 1, max: 100, example: 5 }) }) });
    expect(formatIssues(issues(schema, { target: { 'keep-releases': 'five' }, tagret: 1 }))).toBe(
      [
        '`tagret`: unknown key `tagret`; did you mean `target`? Example: target: { keep-releases: 5 }',
        '`target.keep-releases`: expected an integer from 1 to 100, got "five" (a string). Example: keep-releases: 5'
      ].join('\n')
    );
    expect(formatIssues(issues(int(), 'x'))).toBe(
      '(top level): expected an integer, got "x" (a string). Example: 0'
    );
    expect(formatIssues([{ path: 'a', message: 'bad', example: '' }])).toBe('`a`: bad');
  });

  test('examples are valid YAML: ambiguous strings are quoted', () => {
    const schema = obj({
      a: str({ example: 'true' }),
      b: str({ example: '1.10' }),
      c: str({ example: 'x: y' }),
      d: str({ example: '2024-01-01' }),
      e: str({ example: 'web-1.example.com' })
    });
    expect(formatIssues(issues(schema, 1))).toBe(
      '(top level): expected a mapping (key: value lines), got the number 1. ' +
        'Example: { a: "true", b: "1.10", c: "x: y", d: "2024-01-01", e: web-1.example.com }'
    );
  });
});

describe('type inference', () => {
  const schema = obj({
    name: str(),
    port: optional(int(), 22),
    user: optional(str()),
    timeout: optional(duration(), '10s'),
    tags: arr(enumOf(['a', 'b'])),
    env: optional(record(str())),
    nested: obj({ on: bool() })
  });

  test('fields with defaults are present, others optional, everything readonly', () => {
    type Expected = {
      readonly name: string;
      readonly port: number;
      readonly user?: string;
      readonly timeout: number;
      readonly tags: readonly ('a' | 'b')[];
      readonly env?: Readonly<Record<string, string>>;
      readonly nested: { readonly on: boolean };
    };
    assertType<Equal<Infer<typeof schema>, Expected>>(true);
    // Durations are text on the YAML side and every optional field may be omitted there.
    assertType<Equal<InferInput<typeof schema>['timeout'], string | undefined>>(true);
    const input: InferInput<typeof schema> = { name: 'x', tags: ['a'], nested: { on: true } };
    const out: Expected = valid(schema, input);
    expect(out.port).toBe(22);
    expect(() => {
      // @ts-expect-error outputs are readonly (and frozen at runtime)
      out.port = 1;
    }).toThrow(TypeError);
  });
});

describe('toJsonSchema', () => {
  test('emits draft 2020-12 with descriptions, examples, defaults, bounds and closed objects', () => {
    const schema = obj(
      {
        host: str({ pattern: /^[a-z0-9.-]+$/, example: 'web1', description: 'Host name.' }),
        port: optional(int({ min: 1, max: 65535, example: 22 }), 22),
        strategy: optional(enumOf(['releases', 'in-place'])),
        window: optional(duration({ max: '1h', example: '30s', description: 'Wait.' }), '30s'),
        hosts: union([str({ example: 'a' }), arr(str({ example: 'a' }), { maxItems: 5 })])
      },
      { description: 'Target.' }
    );
    const json = toJsonSchema(schema, { title: 'deployguard.yml' });
    expect(json).toEqual({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      title: 'deployguard.yml',
      type: 'object',
      description: 'Target.',
      additionalProperties: false,
      required: ['host', 'hosts'],
      properties: {
        host: {
          type: 'string',
          description: 'Host name.',
          examples: ['web1'],
          pattern: '^[a-z0-9.-]+$',
          maxLength: 10_000
        },
        port: { type: 'integer', examples: [22], minimum: 1, maximum: 65535, default: 22 },
        strategy: { type: 'string', enum: ['releases', 'in-place'], examples: ['releases'] },
        window: {
          type: 'string',
          pattern: '^(?=\\d)(?:(\\d+)h)?(?:(\\d+)m)?(?:(\\d+)s)?(?:(\\d+)ms)?$',
          description: 'Wait. A duration of at most 1h, e.g. 30s, 1m30s or 500ms.',
          examples: ['30s'],
          default: '30s'
        },
        hosts: {
          anyOf: [
            { type: 'string', examples: ['a'], maxLength: 10_000 },
            {
              type: 'array',
              examples: [['a']],
              items: { type: 'string', examples: ['a'], maxLength: 10_000 },
              maxItems: 5
            }
          ],
          examples: ['a']
        }
      }
    });
    // The duration pattern in the JSON Schema is the one the validator uses.
    const pattern = new RegExp(
      (json['properties'] as Record<string, { pattern: string }>)['window']!.pattern
    );
    expect(['1m30s', '500ms'].every(d => pattern.test(d))).toBe(true);
    expect(['30', '1.5s', ''].some(d => pattern.test(d))).toBe(false);
  });

  test('records and tagged unions', () => {
    expect(record(int(), { keyPattern: /^[A-Z]+$/, example: { A: 1 } }).json()).toEqual({
      type: 'object',
      examples: [{ A: 1 }],
      additionalProperties: { type: 'integer', examples: [0] },
      propertyNames: { pattern: '^[A-Z]+$' },
      maxProperties: 1000
    });
    const json = tagged('type', { tcp: { port: int({ example: 80 }) } }).json();
    expect(json).toEqual({
      oneOf: [
        {
          type: 'object',
          properties: {
            type: { type: 'string', enum: ['tcp'], examples: ['tcp'] },
            port: { type: 'integer', examples: [80] }
          },
          required: ['type', 'port'],
          additionalProperties: false
        }
      ]
    });
  });
});

test('this file type-checks, so the compile-time assertions above hold', () => {
  const file = fileURLToPath(import.meta.url);
  const dir = path.dirname(file);
  // The project's compiler options (test config if there is one), plus the jest globals this file uses.
  const configPath =
    ts.findConfigFile(dir, ts.sys.fileExists, 'tsconfig.test.json') ??
    ts.findConfigFile(dir, ts.sys.fileExists, 'tsconfig.json')!;
  const { config } = ts.readConfigFile(configPath, ts.sys.readFile);
  const { options } = ts.parseJsonConfigFileContent(config, ts.sys, path.dirname(configPath));
  const types = [...new Set([...(options.types ?? []), 'node', 'jest'])];
  const program = ts.createProgram([file], { ...options, types, noEmit: true });
  const messages = ts.getPreEmitDiagnostics(program).map(d => {
    const line = d.file ? d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1 : 0;
    return `${d.file ? path.basename(d.file.fileName) : ''}:${line} ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
  expect(messages).toEqual([]);
}, 60_000);

describe('path nodes of deployguard.yml refuse `.` and `..` (issue 13)', () => {
  test.each([
    ['/srv/app', true],
    ['/srv/app/', true],
    ['/srv/.env', true],
    ['/srv/app..bak/x', true],
    ['/srv/../etc', false],
    ['/srv/..', false],
    ['/..', false],
    ['/srv/./app', false],
    ['/srv/app/.', false],
    ['srv/app', false],
    ['/srv/a b', false]
  ])('absPath %j: %s', (path, ok) => {
    expect(validate(absPath, path).ok).toBe(ok);
  });

  test.each([
    ['certs/ca.pem', true],
    ['./certs/ca.pem', true],
    ['/etc/ssl/ca.pem', true],
    ['.github/gitleaks.toml', true],
    ['..hidden/x', true],
    ['../ca.pem', false],
    ['certs/../../ca.pem', false],
    ['certs/..', false],
    ['C:\\tools\\..\\ca.pem', false],
    ['My Certs/ca.pem', true]
  ])('localPath %j: %s', (path, ok) => {
    expect(validate(localPath, path).ok).toBe(ok);
  });

  test('the message says what the pattern enforces', () => {
    const r = validate(absPath, '/srv/../etc', 'target.path');
    expect(r.ok ? '' : formatIssues(r.errors)).toMatch(/without `\.\.`, got "\/srv\/\.\.\/etc"/);
  });
});

test('a misspelt required key is one error (did you mean), not also "missing required key"', () => {
  const s = obj({ url: str({ example: 'https://x' }), name: optional(str({ example: 'a' })) });
  const r = validate(s, { ulr: 'https://example.com' });
  expect(r.ok).toBe(false);
  const messages = r.ok ? [] : r.errors.map(e => e.message);
  expect(messages).toEqual(['unknown key `ulr`; did you mean `url`?']);
  // A key that is really missing is still reported.
  const missing = validate(s, { name: 'x' });
  expect(missing.ok ? [] : missing.errors.map(e => e.message)).toEqual([
    expect.stringMatching(/^missing required key `url`/)
  ]);
});
