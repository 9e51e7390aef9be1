/**
 * A small, dependency-free schema DSL for deployguard.yml. One definition gives three things that
 * must never drift apart: validation with messages a person can act on, the static type of the
 * validated settings, and a JSON Schema (draft 2020-12) for editor completion.
 *
 * Input is untrusted YAML output. The validator only recurses as deep as the schema (and schemas
 * deeper than MAX_DEPTH are refused when built), so hostile nesting cannot exhaust the stack; list
 * sizes, string lengths and the number of reported issues are capped; outputs are frozen
 * null-prototype objects holding only validated keys, so `__proto__` and friends never reach a
 * prototype; Dates, Maps and other non-plain values are wrong types.
 */

/** One problem found in the input. */
export interface SchemaIssue {
  /** Where in the document, e.g. `hosts[0].port`; '' is the document itself. */
  readonly path: string;
  /** What is wrong, with a safe, truncated rendering of the received value. */
  readonly message: string;
  /** A valid one-line YAML snippet for that location, e.g. `keep-releases: 5` ('' when none applies). */
  readonly example: string;
}

export type ValidationResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly errors: readonly SchemaIssue[] };

export type JsonSchema = { [keyword: string]: unknown };

/** Mutable state of one validation run; only builders need it. */
export interface CheckContext {
  readonly issues: SchemaIssue[];
  dropped: number;
  depth: number;
}

const INVALID: unique symbol = Symbol('invalid');
type Checked<T> = T | typeof INVALID;

export interface Schema<Out = unknown, In = Out> {
  readonly kind:
    'string' | 'integer' | 'boolean' | 'duration' | 'enum' | 'array' | 'object' | 'record' | 'union';
  readonly description: string | undefined;
  /** A valid input value, as it would be written in YAML. */
  readonly example: In;
  /** Noun phrase for messages, e.g. "an integer from 1 to 100". */
  readonly expected: string;
  /** Type-level only (never set): the validated output and the YAML input type. */
  readonly _types?: { readonly output: Out; readonly input: In };
  /** Shallow shape test (a string? a list? a mapping?) so a union can tell which branch was meant. */
  readonly accepts: (value: unknown) => boolean;
  /** Validates one value, reporting into `ctx`. Call {@link validate} instead. */
  readonly check: (value: unknown, path: string, ctx: CheckContext) => Checked<Out>;
  /** This node as JSON Schema. Call {@link toJsonSchema} instead. */
  readonly json: () => JsonSchema;
}

export type AnySchema = Schema<unknown, unknown>;
/** The validated (output) type of a schema. */
export type Infer<S extends AnySchema> = NonNullable<S['_types']>['output'];
/** The type of the YAML input a schema accepts (durations are strings here, numbers in the output). */
export type InferInput<S extends AnySchema> = NonNullable<S['_types']>['input'];

/** Limits against hostile input; per-schema options (maxItems, maxLength, maxKeys) override the defaults. */
export const MAX_DEPTH = 32;
export const MAX_ISSUES = 100;
export const DEFAULT_MAX_ITEMS = 1000;
export const DEFAULT_MAX_LENGTH = 10_000;
const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

interface Common<In> {
  description?: string;
  example?: In;
}

// ---------------------------------------------------------------- rendering helpers

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}…` : s);
/** JSON quoting, plus escapes for characters that reorder or break a terminal line (bidi, U+2028). */
const hex = (c: string) => c.charCodeAt(0).toString(16).padStart(4, '0');
const quote = (s: string) =>
  JSON.stringify(s).replace(/[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, c => `\\u${hex(c)}`);
const showKey = (k: string) => (/^[\w-]{1,40}$/.test(k) ? `\`${k}\`` : quote(clip(k, 40)));
const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** Only `{}`-style mappings count: YAML can also produce Dates, Maps and byte arrays. */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A short, safe description of any received value, e.g. `"five" (a string)` or `the number 30`. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null (an empty value)';
  if (typeof v === 'string')
    return `${quote(clip(v, 40))} (a string${v.length > 40 ? ` of ${v.length} characters` : ''})`;
  if (typeof v === 'number' || typeof v === 'bigint') return `the number ${v}`;
  if (typeof v === 'boolean') return `the boolean ${v}`;
  if (typeof v === 'undefined') return 'nothing';
  if (Array.isArray(v)) return `a list of ${plural(v.length, 'item')}`;
  if (isPlainObject(v)) return `a mapping with ${plural(Object.keys(v).length, 'key')}`;
  if (v instanceof Date) return `a date (${Number.isNaN(v.getTime()) ? 'invalid' : v.toISOString()})`;
  if (typeof v === 'object') return `a ${Object.prototype.toString.call(v).slice(8, -1)} object`;
  return `a ${typeof v}`;
}

// Plain scalars that YAML would read as something other than the same string must be quoted.
const PLAIN = /^[\w./][\w./@+-]*$/;
const NOT_A_STRING =
  /^(?:true|false|null|yes|no|on|off|y|n|[-+.]?\d[\d_.]*(?:e[-+]?\d+)?|0x[\da-f]+|0o[0-7]+|\.inf|\.nan|\d{4}-\d\d-\d\d.*)$/i;

/** One-line YAML (flow style) for an example value. */
function toFlow(v: unknown): string {
  if (typeof v === 'string') return PLAIN.test(v) && !NOT_A_STRING.test(v) ? v : quote(v);
  if (Array.isArray(v)) return `[${v.map(toFlow).join(', ')}]`;
  if (isPlainObject(v)) {
    const parts = Object.entries(v).map(([k, x]) => `${toFlow(k)}: ${toFlow(x)}`);
    return parts.length ? `{ ${parts.join(', ')} }` : '{}';
  }
  return String(v);
}

/** `path` plus one key or index; odd keys are bracket-quoted so the path stays unambiguous. */
function child(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (!/^[\w-]+$/.test(key)) return `${path}[${quote(clip(key, 40))}]`;
  return path ? `${path}.${key}` : key;
}

/** The example as it would sit at `path`: `port: 22`, `- web1` for a list item, bare at the root. */
function snippet(path: string, example: unknown): string {
  if (path === '') return toFlow(example);
  if (/\[\d+\]$/.test(path)) return `- ${toFlow(example)}`;
  const m = /(?:^|\.)([\w-]+)$|\[("(?:[^"\\]|\\.)*")\]$/.exec(path);
  return `${m?.[1] ?? m?.[2] ?? '?'}: ${toFlow(example)}`;
}

// ---------------------------------------------------------------- did you mean

const normalizeKey = (k: string) =>
  k
    .replace(/([a-z\d])([A-Z])/g, '$1-$2')
    .replace(/[_\s]+/g, '-')
    .toLowerCase();

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d = Math.min(d, before[j - 2]! + 1);
      cur.push(d);
    }
    [before, prev] = [prev, cur];
  }
  return prev[b.length]!;
}

/**
 * The closest candidate, if close enough: case, `_`/camelCase vs kebab-case differences are free,
 * and the allowed typo distance grows with the length (1 for short words, at most 3).
 */
export function suggest(input: string, candidates: readonly string[]): string | undefined {
  if (input.length > 64) return undefined; // quadratic cost; a 64+ character key is no typo
  const n = normalizeKey(input);
  let best: string | undefined;
  let bestDistance = Math.min(3, Math.max(1, Math.floor(n.length / 3))) + 1;
  for (const c of candidates) {
    const d = editDistance(n, normalizeKey(c));
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

// ---------------------------------------------------------------- core

function report(ctx: CheckContext, path: string, message: string, example: string): typeof INVALID {
  if (ctx.issues.length < MAX_ISSUES) ctx.issues.push({ path, message, example });
  else ctx.dropped++;
  return INVALID;
}

const fail = (ctx: CheckContext, s: AnySchema, path: string, message: string): typeof INVALID =>
  report(ctx, path, message, snippet(path, s.example));

function run<T>(s: Schema<T, unknown>, value: unknown, path: string, ctx: CheckContext): Checked<T> {
  if (ctx.depth >= MAX_DEPTH) return report(ctx, path, `is nested more than ${MAX_DEPTH} levels deep`, '');
  ctx.depth++;
  try {
    return s.check(value, path, ctx);
  } finally {
    ctx.depth--;
  }
}

/** Freezes a schema after proving its example valid, so every example shown to users is correct. */
function make<Out, In>(s: Schema<Out, In>): Schema<Out, In> {
  const r = validate(s, s.example);
  if (!r.ok) throw new Error(`schema example is invalid:\n${formatIssues(r.errors)}`);
  return Object.freeze(s);
}

/** Drops undefined keywords so the JSON Schema stays clean. */
const clean = (o: JsonSchema): JsonSchema =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
const clamp = (x: number, min = -Infinity, max = Infinity) => Math.min(Math.max(x, min), max);
const isString = (v: unknown) => typeof v === 'string';
const got = (expected: string, v: unknown) => `expected ${expected}, got ${describeValue(v)}`;
/** " from 1 to 5", " of at least 1", " of at most 5" or "". */
function between(min: number | undefined, max: number | undefined, show = (n: number) => `${n}`): string {
  if (min !== undefined && max !== undefined) return ` from ${show(min)} to ${show(max)}`;
  if (min !== undefined) return ` of at least ${show(min)}`;
  return max === undefined ? '' : ` of at most ${show(max)}`;
}
/** "3 items", "1 to 5 items" or "at most 5 items" (maxima always exist: they default to a cap). */
function count(min: number, max: number, unit: string): string {
  if (min === max) return plural(min, unit);
  return min > 0 ? `${min} to ${plural(max, unit)}` : `at most ${plural(max, unit)}`;
}
/** JSON Schema patterns have no flags, and `g`/`y` would make RegExp.test stateful. */
function noFlags(re: RegExp | undefined, where: string): void {
  if (re && /[^u]/.test(re.flags)) throw new Error(`${where}: ${re} may only use the u flag`);
}

const base = (kind: Schema['kind'], opts: Common<unknown>, expected: string, accepts: Schema['accepts']) => ({
  kind,
  description: opts.description,
  expected,
  accepts
});

interface ScalarSpec<Out, In> extends Pick<Schema<Out, In>, 'kind' | 'example' | 'expected' | 'accepts'> {
  /** The output, or a message saying what is wrong. */
  parse: (v: unknown) => { value: Out } | string;
  json: JsonSchema;
}

function scalar<Out, In>(opts: Common<In>, spec: ScalarSpec<Out, In>): Schema<Out, In> {
  const s: Schema<Out, In> = {
    ...base(spec.kind, opts, spec.expected, spec.accepts),
    example: spec.example,
    check(v, path, ctx) {
      const r = spec.parse(v);
      return typeof r === 'string' ? fail(ctx, s, path, r) : r.value;
    },
    json: () => clean({ description: opts.description, examples: [spec.example], ...spec.json })
  };
  return make(s);
}

// ---------------------------------------------------------------- scalar builders

/** C0/C1 controls, DEL and bidi overrides (which make a log line lie); tab, CR, LF only if multiline. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
// As above, minus tab, LF and CR.
const CONTROL_MULTILINE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

export interface StrOptions extends Common<string> {
  /** Tested with RegExp.test (anchor it yourself); no flags except `u`. */
  pattern?: RegExp;
  minLength?: number;
  /** In code points; defaults to {@link DEFAULT_MAX_LENGTH}. */
  maxLength?: number;
  /** Allow tab, CR and LF (e.g. scripts); other control characters are always rejected. */
  multiline?: boolean;
  /** Phrase for messages instead of "a string matching /…/", e.g. "a hostname". */
  expected?: string;
}

/** A string. Control characters are rejected: these values end up in shell commands and logs. */
export function str(opts: StrOptions = {}): Schema<string> {
  const { pattern, minLength = 0, maxLength = DEFAULT_MAX_LENGTH, multiline = false } = opts;
  noFlags(pattern, 'str()');
  const expected = opts.expected ?? (pattern ? `a string matching /${pattern.source}/` : 'a string');
  return scalar(opts, {
    kind: 'string',
    example: opts.example ?? 'example'.slice(0, maxLength).padEnd(minLength, 'x'),
    expected,
    accepts: isString,
    parse(v) {
      if (typeof v !== 'string') {
        const typed = typeof v === 'number' || typeof v === 'boolean' || v instanceof Date;
        return got(expected, v) + (typed ? '; put it in quotes to make it text' : '');
      }
      // A string of 2n UTF-16 units has at least n code points: no need to count huge ones.
      const length = v.length > 2 * maxLength ? v.length : [...v].length;
      if (length < minLength || length > maxLength) return got(count(minLength, maxLength, 'character'), v);
      const at = v.search(multiline ? CONTROL_MULTILINE : CONTROL);
      const code = `U+${hex(v[at] ?? '').toUpperCase()}`;
      if (at >= 0)
        return `contains the control character ${code} at position ${at}, which is not allowed here`;
      return pattern && !pattern.test(v) ? got(expected, v) : { value: v };
    },
    json: { type: 'string', pattern: pattern?.source, minLength: minLength || undefined, maxLength }
  });
}

/** A safe integer. Quoted numbers are rejected with a hint, since YAML already types them. */
export function int(opts: Common<number> & { min?: number; max?: number } = {}): Schema<number> {
  const { min, max } = opts;
  const expected = `an integer${between(min, max)}`;
  return scalar(opts, {
    kind: 'integer',
    example: opts.example ?? clamp(0, min, max),
    expected,
    accepts: v => typeof v === 'number',
    parse(v) {
      if (typeof v === 'number' && Number.isSafeInteger(v) && clamp(v, min, max) === v) return { value: v };
      return (
        got(expected, v) + (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? '; remove the quotes' : '')
      );
    },
    json: { type: 'integer', minimum: min, maximum: max }
  });
}

/** `true` or `false`. YAML 1.2 reads `yes`/`on` as strings, so those get a hint rather than a guess. */
export function bool(opts: Common<boolean> = {}): Schema<boolean> {
  return scalar(opts, {
    kind: 'boolean',
    example: opts.example ?? true,
    expected: 'true or false',
    accepts: v => typeof v === 'boolean',
    parse(v) {
      if (typeof v === 'boolean') return { value: v };
      const wordy = typeof v === 'string' && /^(?:yes|no|on|off|y|n|true|false)$/i.test(v);
      return got('true or false', v) + (wordy ? '; write true or false, without quotes' : '');
    },
    json: { type: 'boolean' }
  });
}

/** Whole numbers with units in the order h, m, s, ms; `(?=\d)` rules out the empty string. */
const DURATION = /^(?=\d)(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;
const UNITS = Object.entries({ h: 3_600_000, m: 60_000, s: 1000, ms: 1 });

/**
 * Parses `500ms`, `30s`, `5m`, `1h` or combinations such as `1m30s` into milliseconds. Bare numbers
 * (is `30` seconds or ms?), fractions (`1.5s`: write `1500ms`), signs, spaces and upper case: undefined.
 */
export function parseDuration(text: string): number | undefined {
  const m = text.length <= 40 ? DURATION.exec(text) : null;
  const total = m?.slice(1).reduce((sum, n, i) => sum + Number(n ?? 0) * UNITS[i]![1], 0);
  return total !== undefined && Number.isSafeInteger(total) ? total : undefined;
}

/** Milliseconds (a non-negative integer) as the shortest duration text: 90000 -> `1m30s`, 0 -> `0s`. */
export function formatDuration(ms: number): string {
  let [rest, out] = [ms, ''];
  for (const [unit, size] of UNITS) {
    const n = Math.floor(rest / size);
    if (n > 0) [out, rest] = [out + n + unit, rest - n * size];
  }
  return out || '0s';
}

/** A duration string (see {@link parseDuration}) validated into milliseconds; bounds are text too. */
export function duration(opts: Common<string> & { min?: string; max?: string } = {}): Schema<number, string> {
  const [min, max] = [opts.min, opts.max].map(b => {
    const ms = b === undefined ? undefined : parseDuration(b);
    if (b !== undefined && ms === undefined)
      throw new Error(`duration(): bound ${quote(b)} is not a duration`);
    return ms;
  });
  const example = opts.example ?? formatDuration(clamp(30_000, min, max));
  const range = between(min, max, formatDuration);
  const expected = `a duration${range} like \`${example}\``;
  return scalar(opts, {
    kind: 'duration',
    example,
    expected,
    accepts: isString,
    parse(v) {
      const ms = typeof v === 'string' ? parseDuration(v) : undefined;
      if (ms !== undefined && clamp(ms, min, max) === ms) return { value: ms };
      if (/^\d+$/.test(typeof v === 'number' || typeof v === 'string' ? String(v) : '')) {
        return `${got(expected, v)}; add a unit, e.g. \`${v}s\` for seconds or \`${v}ms\` for milliseconds`;
      }
      const form = typeof v === 'string' && ms === undefined;
      return got(expected, v) + (form ? '; write whole numbers with units h, m, s, ms, e.g. `1m30s`' : '');
    },
    json: {
      type: 'string',
      pattern: DURATION.source,
      // Editors show the description, so it names the format and the range JSON Schema cannot express.
      description: [opts.description, `A duration${range}, e.g. 30s, 1m30s or 500ms.`]
        .filter(Boolean)
        .join(' ')
    }
  });
}

/** One of a fixed set of strings; the output type is the union of the literals. */
export function enumOf<const T extends readonly [string, ...string[]]>(
  values: T,
  opts: Common<T[number]> = {}
): Schema<T[number]> {
  const expected = `one of ${values.map(v => `\`${v}\``).join(', ')}`;
  return scalar(opts, {
    kind: 'enum',
    example: opts.example ?? values[0],
    expected,
    accepts: isString,
    parse(v) {
      if (typeof v === 'string' && (values as readonly string[]).includes(v))
        return { value: v as T[number] };
      const near = typeof v === 'string' ? suggest(v, values) : undefined;
      return got(expected, v) + (near ? `; did you mean \`${near}\`?` : '');
    },
    json: { type: 'string', enum: [...values] }
  });
}

// ---------------------------------------------------------------- composite builders

const meta = (s: AnySchema) => ({ description: s.description, examples: [s.example] });

/** A list; the output is a frozen array. Lists over `maxItems` are rejected without visiting items. */
export function arr<S extends AnySchema>(
  item: S,
  opts: Common<readonly InferInput<S>[]> & { minItems?: number; maxItems?: number } = {}
): Schema<readonly Infer<S>[], readonly InferInput<S>[]> {
  const { minItems = 0, maxItems = DEFAULT_MAX_ITEMS } = opts;
  const sizes = `a list of ${count(minItems, maxItems, 'item')}`;
  const s: Schema<readonly Infer<S>[], readonly InferInput<S>[]> = {
    ...base('array', opts, 'a list', Array.isArray),
    example: opts.example ?? Array.from({ length: clamp(1, minItems, maxItems) }, () => item.example),
    check(v, path, ctx) {
      if (!Array.isArray(v)) return fail(ctx, s, path, got('a list', v));
      if (v.length > maxItems) return fail(ctx, s, path, got(sizes, v));
      if (v.length < minItems) fail(ctx, s, path, got(sizes, v));
      const out = v.map((x: unknown, i) => run(item, x, child(path, i), ctx));
      return v.length < minItems || out.includes(INVALID)
        ? INVALID
        : (Object.freeze(out) as readonly Infer<S>[]);
    },
    json: () =>
      clean({ type: 'array', ...meta(s), items: item.json(), minItems: minItems || undefined, maxItems })
  };
  return make(s);
}

/** An object field that may be left out (or left empty, i.e. null, in YAML). */
export interface Optional<S extends AnySchema = AnySchema, D extends boolean = boolean> {
  readonly kind: 'optional';
  readonly schema: S;
  readonly hasDefault: D;
  /** The default as written in YAML (what JSON Schema shows). */
  readonly default: InferInput<S> | undefined;
  /** The validated default that goes into the output. */
  readonly value: Infer<S> | undefined;
}

/**
 * Marks an object field optional. With a default (written as in YAML, e.g. `'30s'`), the field is
 * always present in the output and non-optional in the type; the default is validated right here.
 */
export function optional<S extends AnySchema>(schema: S): Optional<S, false>;
export function optional<S extends AnySchema>(schema: S, dflt: InferInput<S>): Optional<S, true>;
export function optional(schema: AnySchema, ...dflt: [unknown?]): Optional {
  const r = dflt.length ? validate(schema, dflt[0]) : undefined;
  if (r && !r.ok) throw new Error(`optional(): the default is invalid:\n${formatIssues(r.errors)}`);
  return Object.freeze({ kind: 'optional', schema, hasDefault: !!r, default: dflt[0], value: r?.value });
}

export type Fields = { readonly [key: string]: AnySchema | Optional };
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type FieldOut<F> = F extends Optional<infer S> ? Infer<S> : F extends AnySchema ? Infer<F> : never;
type FieldIn<F> = F extends Optional<infer S> ? InferInput<S> : F extends AnySchema ? InferInput<F> : never;
type KeysWhere<F, Cond> = { [K in keyof F]: F[K] extends Cond ? K : never }[keyof F];
/** `obj(fields)` output: readonly; `?:` only for optional fields without a default. */
export type ObjOutput<F extends Fields> = Simplify<
  { readonly [K in Exclude<keyof F, KeysWhere<F, Optional<AnySchema, false>>>]: FieldOut<F[K]> } & {
    readonly [K in KeysWhere<F, Optional<AnySchema, false>>]?: FieldOut<F[K]>;
  }
>;
/** `obj(fields)` input (YAML side): every optional field may be left out. */
export type ObjInput<F extends Fields> = Simplify<
  { readonly [K in Exclude<keyof F, KeysWhere<F, Optional>>]: FieldIn<F[K]> } & {
    readonly [K in KeysWhere<F, Optional>]?: FieldIn<F[K]>;
  }
>;

const unwrap = (f: AnySchema | Optional) => (f.kind === 'optional' ? f.schema : f);

/** The unknown-key issue, with a did-you-mean from the known keys when one is close enough. */
/** Reports an unknown key; returns the key it probably meant, when one is close. */
function unknownKey(
  ctx: CheckContext,
  s: AnySchema,
  fields: Fields,
  path: string,
  key: string
): string | undefined {
  // Past the cap nothing is shown, so skip the edit distances: a mapping may have 100k hostile keys.
  if (ctx.issues.length >= MAX_ISSUES) return void ctx.dropped++;
  const known = Object.keys(fields);
  const near = suggest(key, known);
  if (near === undefined) {
    const shown = known.slice(0, 15).map(k => `\`${k}\``);
    if (known.length > 15) shown.push('…');
    const message = `unknown key ${showKey(key)}; known keys: ${shown.join(', ')}`;
    return void report(ctx, child(path, key), message, snippet(path, s.example));
  }
  const style = normalizeKey(key) === near ? ' (keys are kebab-case)' : '';
  const example = snippet(child(path, near), unwrap(fields[near]!).example);
  report(ctx, child(path, key), `unknown key ${showKey(key)}; did you mean \`${near}\`?${style}`, example);
  return near;
}

/**
 * A mapping with exactly these keys (spelled as in YAML: kebab-case). Unknown keys are errors; the
 * output is a frozen null-prototype object holding only the declared keys.
 */
export function obj<F extends Fields>(
  fields: F,
  opts: Common<ObjInput<F>> = {}
): Schema<ObjOutput<F>, ObjInput<F>> {
  const entries = Object.entries(fields);
  const s: Schema<ObjOutput<F>, ObjInput<F>> = {
    ...base('object', opts, 'a mapping (key: value lines)', isPlainObject),
    example:
      opts.example ?? (Object.fromEntries(entries.map(([k, f]) => [k, unwrap(f).example])) as ObjInput<F>),
    check(v, path, ctx) {
      if (!isPlainObject(v)) return fail(ctx, s, path, got(s.expected, v));
      const unknown = Object.keys(v).filter(key => !hasOwn(fields, key));
      // A misspelt key is one mistake: "did you mean `url`?" says it; "missing `url`" would repeat it.
      const meant = new Set(unknown.map(key => unknownKey(ctx, s, fields, path, key)));
      let ok = unknown.length === 0;
      const out: Record<string, unknown> = Object.create(null);
      for (const [key, field] of entries) {
        const [raw, at, inner] = [hasOwn(v, key) ? v[key] : undefined, child(path, key), unwrap(field)];
        if (field.kind === 'optional' && (raw === undefined || raw === null)) {
          if (field.hasDefault) out[key] = field.value;
        } else if (raw === undefined) {
          ok = false;
          const message = `missing required key \`${key}\`, expected ${inner.expected}`;
          if (!meant.has(key)) report(ctx, at, message, snippet(at, inner.example));
        } else {
          const r = run(inner, raw, at, ctx);
          if (r === INVALID) ok = false;
          else out[key] = r;
        }
      }
      return ok ? (Object.freeze(out) as ObjOutput<F>) : INVALID;
    },
    json: () => {
      const prop = ([k, f]: [string, AnySchema | Optional]) =>
        [k, f.kind === 'optional' ? clean({ ...f.schema.json(), default: f.default }) : f.json()] as const;
      const required = entries.filter(([, f]) => f.kind !== 'optional').map(([k]) => k);
      return clean({
        type: 'object',
        description: s.description,
        properties: Object.fromEntries(entries.map(prop)),
        required: required.length ? required : undefined,
        additionalProperties: false
      });
    }
  };
  return make(s);
}

/**
 * A mapping with free-form keys (e.g. environment variables). Keys like `__proto__` and keys with
 * control characters are rejected; the output is a frozen null-prototype object.
 */
export function record<S extends AnySchema>(
  value: S,
  opts: Common<Readonly<Record<string, InferInput<S>>>> & { keyPattern?: RegExp; maxKeys?: number } = {}
): Schema<Readonly<Record<string, Infer<S>>>, Readonly<Record<string, InferInput<S>>>> {
  const { keyPattern, maxKeys = DEFAULT_MAX_ITEMS } = opts;
  noFlags(keyPattern, 'record()');
  const rule = keyPattern ? `; keys must match /${keyPattern.source}/` : '';
  const s: Schema<Readonly<Record<string, Infer<S>>>, Readonly<Record<string, InferInput<S>>>> = {
    ...base('record', opts, 'a mapping (key: value lines)', isPlainObject),
    example: opts.example ?? { example: value.example },
    check(v, path, ctx) {
      if (!isPlainObject(v)) return fail(ctx, s, path, got(s.expected, v));
      const keys = Object.keys(v);
      if (keys.length > maxKeys)
        return fail(ctx, s, path, got(`a mapping of at most ${plural(maxKeys, 'key')}`, v));
      const out: Record<string, unknown> = Object.create(null);
      let ok = true;
      for (const key of keys) {
        const at = child(path, key);
        const bad = RESERVED_KEYS.has(key) || CONTROL.test(key) || (keyPattern && !keyPattern.test(key));
        const r = bad
          ? report(ctx, at, `key ${showKey(key)} is not allowed${rule}`, snippet(path, s.example))
          : run(value, v[key], at, ctx);
        if (r === INVALID) ok = false;
        else out[key] = r;
      }
      return ok ? (Object.freeze(out) as Readonly<Record<string, Infer<S>>>) : INVALID;
    },
    json: () =>
      clean({
        type: 'object',
        ...meta(s),
        additionalProperties: value.json(),
        propertyNames: keyPattern && { pattern: keyPattern.source },
        maxProperties: maxKeys
      })
  };
  return make(s);
}

/**
 * Any of several schemas, e.g. `union([str(), arr(str())])`; the first that accepts the value wins.
 * On failure, if exactly one branch has the value's shape (say, it is a list), that branch's detailed
 * issues are reported; otherwise one "expected X or Y" issue.
 */
export function union<const T extends readonly [AnySchema, ...AnySchema[]]>(
  schemas: T,
  opts: Common<InferInput<T[number]>> = {}
): Schema<Infer<T[number]>, InferInput<T[number]>> {
  const expected = schemas.map(x => x.expected).join(' or ');
  const s: Schema<Infer<T[number]>, InferInput<T[number]>> = {
    ...base('union', opts, expected, v => schemas.some(x => x.accepts(v))),
    example: opts.example ?? schemas[0].example,
    check(v, path, ctx) {
      const shaped = schemas.filter(x => x.accepts(v));
      let trial: CheckContext | undefined;
      for (const branch of shaped) {
        trial = { issues: [], dropped: 0, depth: ctx.depth };
        const r = run(branch, v, path, trial);
        if (r !== INVALID) return r as Infer<T[number]>;
      }
      if (shaped.length !== 1 || !trial) return fail(ctx, s, path, got(expected, v));
      for (const i of trial.issues) report(ctx, i.path, i.message, i.example);
      ctx.dropped += trial.dropped;
      return INVALID;
    },
    json: () => clean({ anyOf: schemas.map(x => x.json()), ...meta(s) })
  };
  return make(s);
}

type Variants = { readonly [name: string]: Fields };
type WithTag<V extends Variants, K extends string, T extends keyof V> = Omit<V[T], K> & {
  readonly [P in K]: Schema<T>;
};
/** Output of `tagged(tag, variants)`: one object type per variant, each with its literal tag. */
export type TaggedOutput<K extends string, V extends Variants> = {
  [T in keyof V & string]: ObjOutput<WithTag<V, K, T>>;
}[keyof V & string];
export type TaggedInput<K extends string, V extends Variants> = {
  [T in keyof V & string]: ObjInput<WithTag<V, K, T>>;
}[keyof V & string];

/**
 * A discriminated union of mappings whose `tag` key picks the variant, e.g.
 * `tagged('manager', { none: {}, systemd: { name: str() } })`. Issues then speak about the chosen
 * variant only, instead of "expected a mapping or a mapping".
 */
export function tagged<K extends string, const V extends Variants>(
  tag: K,
  variants: V,
  opts: Common<TaggedInput<K, V>> = {}
): Schema<TaggedOutput<K, V>, TaggedInput<K, V>> {
  const names = Object.keys(variants) as [string, ...string[]];
  if (names.some(t => hasOwn(variants[t]!, tag)))
    throw new Error(`tagged(): variants must not declare ${tag}`);
  const tagSchema = enumOf(names);
  const branches = new Map(names.map(t => [t, obj({ [tag]: enumOf([t]), ...variants[t] })]));
  const s: Schema<TaggedOutput<K, V>, TaggedInput<K, V>> = {
    ...base('union', opts, `a mapping with \`${tag}: ${names.join(' | ')}\``, isPlainObject),
    example: opts.example ?? (branches.get(names[0])!.example as TaggedInput<K, V>),
    check(v, path, ctx) {
      if (!isPlainObject(v)) return fail(ctx, s, path, got(s.expected, v));
      const [t, at] = [hasOwn(v, tag) ? v[tag] : undefined, child(path, tag)];
      const branch = typeof t === 'string' ? branches.get(t) : undefined;
      if (branch) return run(branch, v, path, ctx) as Checked<TaggedOutput<K, V>>;
      if (t !== undefined && t !== null) return run(tagSchema, t, at, ctx) as typeof INVALID; // did-you-mean
      return report(
        ctx,
        at,
        `missing required key \`${tag}\`, expected ${tagSchema.expected}`,
        snippet(at, names[0])
      );
    },
    json: () => clean({ description: s.description, oneOf: [...branches.values()].map(b => b.json()) })
  };
  return make(s);
}

// ---------------------------------------------------------------- entry points

/**
 * Validates `value` (parsed YAML) against `schema`, collecting every issue (up to {@link MAX_ISSUES}).
 * `rootPath` prefixes all issue paths, e.g. when validating one section of a larger document.
 */
export function validate<S extends AnySchema>(
  schema: S,
  value: unknown,
  rootPath = ''
): ValidationResult<Infer<S>> {
  const ctx: CheckContext = { issues: [], dropped: 0, depth: 0 };
  const out = run(schema, value, rootPath, ctx);
  const more = { path: rootPath, message: `and ${plural(ctx.dropped, 'more issue')} not shown`, example: '' };
  const errors = ctx.dropped ? [...ctx.issues, more] : ctx.issues;
  return out === INVALID || errors.length ? { ok: false, errors } : { ok: true, value: out as Infer<S> };
}

/** Renders issues one per line: "`path`: message. Example: key: value". */
export function formatIssues(issues: readonly SchemaIssue[]): string {
  const line = (i: SchemaIssue) => {
    const where = i.path ? `\`${i.path}\`` : '(top level)';
    const stop = /[.?!]$/.test(i.message) ? '' : '.';
    return `${where}: ${i.message}${i.example ? `${stop} Example: ${clip(i.example, 160)}` : ''}`;
  };
  return issues.map(line).join('\n');
}

/** The schema as a draft 2020-12 JSON Schema document, for editor completion and validation. */
export function toJsonSchema(schema: AnySchema, doc: { id?: string; title?: string } = {}): JsonSchema {
  const head = { $schema: 'https://json-schema.org/draft/2020-12/schema', $id: doc.id, title: doc.title };
  return clean({ ...head, ...schema.json() });
}
