import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type ClientRequest, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { rootCertificates } from 'node:tls';
import { processEnv, runShell } from '../io/process.js';
import type { CommandCheck, HttpCheck, TcpCheck, VersionCheck } from '../settings/types.js';
import type { CheckContext, Probe, ProbeResult } from './types.js';
import { reportsVersion, shaWords } from './version.js';

/** How much of a response body is kept for matching (the rest is read and dropped). */
const MAX_BODY = 1024 * 1024;
/** How much of a command's combined output is kept (its tail). */
const MAX_OUTPUT = 64 * 1024;
/** Lines of a failed command's output shown in the reason. */
const TAIL_LINES = 10;
/** Length of body and output snippets in reasons. */
const SNIPPET = 120;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Certificate verification failures, which get a reason that says so (and how to fix it). */
const TLS_TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA'
]);

const fail = (reason: string): ProbeResult => ({ ok: false, reason });
const pass = (reason: string): ProbeResult => ({ ok: true, reason });

/**
 * A URL fit for a reason or a log line: `user:password@` becomes `***@`, every query value becomes
 * `***` (tokens travel in query strings), and the fragment is dropped. Not a URL: a placeholder,
 * never the text itself (it may be a credential-bearing URL that merely failed to parse).
 */
export function safeUrl(url: string | URL): string {
  let u: URL;
  try {
    u = new URL(String(url));
  } catch {
    return '(not a valid URL)';
  }
  if (u.username || u.password) {
    u.username = '***';
    u.password = '';
  }
  const query = u.search.slice(1);
  u.search = '';
  u.hash = '';
  if (!query) return u.href;
  const masked = query
    .split('&')
    .map(part => {
      const eq = part.indexOf('=');
      // A bare `?token` may itself be the secret.
      return eq < 0 ? (part ? '***' : part) : `${part.slice(0, eq)}=***`;
    })
    .join('&');
  return `${u.href}?${masked}`;
}

/** Replaces every occurrence of each value with `***`, longest first (so no secret is half-masked). */
function redactor(values: Iterable<string>): (text: string) => string {
  const list = [...new Set([...values].filter(v => v.length > 0))].sort((a, b) => b.length - a.length);
  return text => list.reduce((t, v) => t.split(v).join('***'), text);
}

/** Redacted first (truncation could cut a secret in half), then flattened and truncated. */
function snippet(text: string, redact: (t: string) => string = t => t, max = SNIPPET): string {
  const flat = redact(text).replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat || '(empty)';
}

/** The last `lines` lines of a command's output, redacted, each line cut to a sane width. */
function tailLines(text: string, redact: (t: string) => string, lines = TAIL_LINES): string {
  const all = redact(text).replace(/\r\n?/g, '\n').trimEnd().split('\n');
  return all
    .slice(-lines)
    .map(l => (l.length > 200 ? `${l.slice(0, 200)}…` : l))
    .join('\n');
}

function errorCode(err: unknown): string | undefined {
  const e = err as NodeJS.ErrnoException;
  if (e?.code) return e.code;
  // Happy-eyeballs connects (autoSelectFamily) fail with an AggregateError of the per-address errors.
  if (err instanceof AggregateError) return (err.errors[0] as NodeJS.ErrnoException | undefined)?.code;
  return undefined;
}

function errorText(err: unknown): string {
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  if (!code) return message || 'unknown error';
  return message && !message.includes(code) ? `${code}: ${message}` : message || code;
}

// ---------------------------------------------------------------------------------------------
// HTTP

/** Header values are credentials more often than not: each one, and the credential part of an
 * `Authorization: <scheme> <credentials>`-shaped value (also decoded, for Basic), is secret. */
function headerSecrets(headers: Readonly<Record<string, string>>): string[] {
  const out: string[] = [];
  for (const raw of Object.values(headers)) {
    const v = raw.trim();
    out.push(raw, v);
    const m = /^[A-Za-z][\w.+-]*\s+(\S.*)$/.exec(v);
    if (!m?.[1]) continue;
    out.push(m[1]);
    if (/^basic\s/i.test(v)) {
      const decoded = Buffer.from(m[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0 && /^[\x20-\x7e]+$/.test(decoded)) out.push(decoded, decoded.slice(colon + 1));
    }
  }
  return out.filter(s => s.length > 0);
}

/** Values in the configured URL that safeUrl hides, so an echo of them in a body is hidden too. */
function urlSecrets(url: URL | undefined): string[] {
  if (!url) return [];
  const password = [url.password, safeDecode(url.password)].filter(s => s.length >= 4);
  const query: string[] = [];
  for (const [, v] of url.searchParams) query.push(v);
  for (const part of url.search.slice(1).split('&')) query.push(part.slice(part.indexOf('=') + 1));
  // Short query values (`?v=1`, `?db=down`, `?verbose=true`) are parameters, not tokens: masking
  // them in bodies would mangle reasons. (safeUrl still hides every query value in URLs.)
  return [...password, ...query.filter(s => s.length >= 8)];
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

interface TlsOptions {
  readonly rejectUnauthorized: boolean;
  readonly ca?: string[];
}

/** Reads `caFile` once: PEM certificates added to (not replacing) the trusted roots. */
function loadCa(caFile: string): { ca: string[] } | { error: string } {
  const path = resolvePath(process.cwd(), caFile);
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    return { error: `ca-file ${caFile} cannot be read (${errorCode(err) ?? errorText(err)})` };
  }
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return { error: `ca-file ${caFile} holds no PEM certificate` };
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (err) {
      return { error: `ca-file ${caFile} holds a certificate that does not parse (${errorText(err)})` };
    }
  }
  // Node's `ca` option replaces the default trust store: keep the bundled roots so public
  // endpoints still verify, and add the file's CAs on top.
  return { ca: [...rootCertificates, ...blocks] };
}

interface Answer {
  readonly status: number;
  readonly location?: string;
  readonly body: string;
  /** The body was longer than what was kept for matching. */
  readonly truncated: boolean;
}

/** A failed exchange; its message is (part of) the reason. */
class ExchangeFailed extends Error {}

interface Exchange {
  readonly url: URL;
  readonly method: string;
  readonly headers: OutgoingHttpHeaders;
  readonly tls: TlsOptions;
  /** A response the caller will not read the body of (a redirect it follows). */
  readonly skipBody: (status: number, location: string | undefined) => boolean;
  /** Aborting it destroys the connection; the caller knows why (timeout or cancel). */
  readonly stop: AbortSignal;
  /** Told when the headers are in and the body starts, for the timeout's reason. */
  readonly onBody: () => void;
}

/** One request and its response on a new connection (see httpProbe for why never a pooled one). */
function exchange(x: Exchange): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    if (x.stop.aborted) return reject(new ExchangeFailed('stopped'));
    let req: ClientRequest | undefined;
    let settled = false;
    const finish = (settle: () => void) => {
      if (settled) return;
      settled = true;
      x.stop.removeEventListener('abort', onStop);
      req?.destroy();
      settle();
    };
    const onStop = () => finish(() => reject(new ExchangeFailed('stopped')));
    const send = x.url.protocol === 'https:' ? httpsRequest : httpRequest;
    try {
      req = send(
        x.url,
        {
          method: x.method,
          headers: x.headers,
          agent: false,
          ...(x.url.protocol === 'https:' ? x.tls : {})
        },
        res => {
          const status = res.statusCode ?? 0;
          const location = typeof res.headers.location === 'string' ? res.headers.location : undefined;
          if (x.skipBody(status, location)) {
            finish(() => resolve({ status, location, body: '', truncated: false }));
            return;
          }
          x.onBody();
          const chunks: Buffer[] = [];
          let kept = 0;
          let truncated = false;
          res.on('data', (c: Buffer) => {
            if (kept < MAX_BODY) {
              chunks.push(c);
              kept += c.length;
            } else truncated = true;
          });
          res.on('end', () => {
            const body = Buffer.concat(chunks).subarray(0, MAX_BODY);
            finish(() =>
              resolve({
                status,
                location,
                body: body.toString('utf8'),
                truncated: truncated || kept > MAX_BODY
              })
            );
          });
          const cut = () =>
            finish(() =>
              reject(
                new ExchangeFailed(`HTTP ${status}, but the connection closed before the body was complete`)
              )
            );
          res.on('error', cut);
          res.on('close', () => {
            if (!res.complete) cut();
          });
        }
      );
    } catch (err) {
      // Bad header names or values are refused synchronously (the message names the header, not its value).
      return finish(() => reject(new ExchangeFailed(`request not sent: ${errorText(err)}`)));
    }
    x.stop.addEventListener('abort', onStop);
    req.on('error', err => finish(() => reject(new ExchangeFailed(describeRequestError(err, x.url)))));
    req.end();
  });
}

function describeRequestError(err: unknown, url: URL): string {
  const code = errorCode(err);
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `TLS certificate of ${safeUrl(url)} is not valid for ${url.hostname}: ${errorText(err)}`;
  }
  if (code && TLS_TRUST_CODES.has(code)) {
    return (
      `TLS certificate of ${safeUrl(url)} not trusted: ${errorText(err)}. ` +
      'If it is signed by a private CA, set ca-file to that CA (PEM)'
    );
  }
  return `request to ${safeUrl(url)} failed: ${errorText(err)}`;
}

/** Walks a dot path (`checks.db.status`; numeric parts index arrays). */
function jsonAt(value: unknown, path: string): { found: true; value: unknown } | { found: false } {
  let cur = value;
  for (const key of path.split('.')) {
    if (Array.isArray(cur) && /^\d+$/.test(key) && Number(key) < cur.length) cur = cur[Number(key)];
    else if (cur !== null && typeof cur === 'object' && !Array.isArray(cur) && Object.hasOwn(cur, key))
      cur = (cur as Record<string, unknown>)[key];
    else return { found: false };
  }
  return { found: true, value: cur };
}

/** A Location header resolved against the URL that sent it (relative Locations are common). */
function resolveLocation(location: string | undefined, base: URL): URL | undefined {
  if (location === undefined) return undefined;
  try {
    return new URL(location, base);
  } catch {
    return undefined;
  }
}

/**
 * An HTTP request whose status, body and latency are compared with what the check expects.
 * Every attempt uses a new connection: a pooled keep-alive socket may still point at the process a
 * restart or rollback just replaced, and would fail (or pass) for the wrong reason.
 * `timeoutMs` bounds the whole attempt: connect, redirects, headers and the full body;
 * `maxLatencyMs` is compared with the same span, measured.
 */
export function httpProbe(check: HttpCheck): Probe {
  // Everything that can be wrong with the settings themselves is found once, here, and reported
  // as a failed check on every attempt (never a crash).
  let origin: URL | undefined;
  let setupError: string | undefined;
  try {
    origin = new URL(check.url);
    if (origin.protocol !== 'http:' && origin.protocol !== 'https:')
      setupError = `url ${safeUrl(origin)} is not http(s)`;
  } catch {
    setupError = 'url is not a valid URL';
  }
  let matcher: RegExp | undefined;
  if (check.bodyMatches !== undefined && !setupError) {
    try {
      matcher = new RegExp(check.bodyMatches);
    } catch (err) {
      setupError = `body-matches is not a valid regular expression: ${errorText(err)}`;
    }
  }
  let tls: TlsOptions = { rejectUnauthorized: !check.insecureTls };
  if (check.caFile !== undefined && !setupError) {
    const loaded = loadCa(check.caFile);
    if ('error' in loaded) setupError = loaded.error;
    else tls = { ...tls, ca: loaded.ca };
  }

  const headerValues = headerSecrets(check.headers);
  // Server-originated text (bodies, Locations, error messages) is masked with every header value
  // and the URL's credentials; the finished reason once more with everything of 4+ characters
  // (shorter header values, like `1`, would otherwise turn "HTTP 500" into "HTTP 5***0").
  const maskServer = redactor([...headerValues, ...urlSecrets(origin)]);
  const maskReason = redactor([...headerValues, ...urlSecrets(origin)].filter(s => s.length >= 4));

  const configured: OutgoingHttpHeaders = { ...check.headers };
  const hasUserAgent = Object.keys(check.headers).some(k => k.toLowerCase() === 'user-agent');
  const withHeaders: OutgoingHttpHeaders = hasUserAgent
    ? configured
    : { 'user-agent': 'deployguard', ...configured };
  const withoutHeaders: OutgoingHttpHeaders = { 'user-agent': 'deployguard' };

  const judge = (a: Answer, ms: number, at: URL, hops: number): ProbeResult => {
    const where = hops > 0 ? ` at ${safeUrl(at)} (after ${hops} redirect${hops === 1 ? '' : 's'})` : '';
    const body = () => snippet(a.body, maskServer);
    if (!check.expectStatus.includes(a.status)) {
      const to = REDIRECT_STATUSES.has(a.status) ? resolveLocation(a.location, at) : undefined;
      const redirect = to
        ? ` (a redirect to ${maskServer(safeUrl(to))}; follow-redirects is ${check.followRedirects})`
        : '';
      return fail(
        `HTTP ${a.status}${where}${redirect}, expected ${check.expectStatus.join(' or ')}; body: ${body()}`
      );
    }
    if (check.maxLatencyMs !== undefined && ms > check.maxLatencyMs) {
      return fail(`HTTP ${a.status}${where} in ${ms} ms, over the max-latency of ${check.maxLatencyMs} ms`);
    }
    const searched = a.truncated ? ` (first ${MAX_BODY / 1024} KiB searched)` : '';
    if (check.bodyContains !== undefined && !a.body.includes(check.bodyContains)) {
      return fail(
        `HTTP ${a.status}${where} but the body lacks "${check.bodyContains}"${searched}: ${body()}`
      );
    }
    if (matcher && !matcher.test(a.body)) {
      return fail(
        `HTTP ${a.status}${where} but the body does not match /${check.bodyMatches}/${searched}: ${body()}`
      );
    }
    if (check.json) {
      let doc: unknown;
      try {
        doc = JSON.parse(a.body);
      } catch {
        return fail(`HTTP ${a.status}${where} but the body is not JSON: ${body()}`);
      }
      const want = JSON.stringify(check.json.equals);
      const got = jsonAt(doc, check.json.path);
      if (!got.found) {
        return fail(`JSON field ${check.json.path} is missing, expected ${want}; body: ${body()}`);
      }
      if (got.value !== check.json.equals) {
        const shown = snippet(JSON.stringify(got.value) ?? String(got.value), maskServer, 60);
        return fail(`JSON field ${check.json.path} is ${shown}, expected ${want}`);
      }
    }
    return pass(`HTTP ${a.status}${where} in ${ms} ms`);
  };

  const attempt = async (signal: AbortSignal, start: URL): Promise<ProbeResult> => {
    const started = Date.now();
    const stop = attemptStop(signal, check.timeoutMs);
    // Written from the exchange's callback, read when a timeout hits: what was being waited for.
    const progress: { phase: 'response' | 'body' } = { phase: 'response' };
    let url = start;
    try {
      let method = check.method;
      let hops = 0;
      const follows = (status: number, location: string | undefined) =>
        check.followRedirects > 0 && REDIRECT_STATUSES.has(status) && location !== undefined;
      for (;;) {
        progress.phase = 'response';
        // The configured headers (tokens, cookies, Host) are meant for the service the check
        // names. A redirect, which the server (or whoever controls an open redirect on it)
        // chooses, must never carry them to another origin: only the original origin gets them,
        // as browsers and curl do with Authorization.
        const headers = url.origin === start.origin ? withHeaders : withoutHeaders;
        const answer = await exchange({
          url,
          method,
          headers,
          tls,
          skipBody: follows,
          stop: stop.signal,
          onBody: () => {
            progress.phase = 'body';
          }
        });
        if (!follows(answer.status, answer.location)) {
          return judge(answer, Date.now() - started, url, hops);
        }
        const next = resolveLocation(answer.location, url);
        if (!next) {
          return fail(`HTTP ${answer.status} from ${safeUrl(url)} redirects to an invalid Location`);
        }
        const hop = `${safeUrl(url)} answered ${answer.status} → ${maskServer(safeUrl(next))}`;
        if (hops >= check.followRedirects) {
          return fail(`more than ${check.followRedirects} redirect(s) (follow-redirects): ${hop}`);
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          return fail(`redirect to a non-HTTP URL: ${hop}`);
        }
        if ((answer.status === 303 && method !== 'HEAD') || (answer.status <= 302 && method === 'POST')) {
          method = 'GET';
        }
        url = next;
        hops++;
      }
    } catch (err) {
      if (stop.timedOut()) {
        return fail(
          progress.phase === 'body'
            ? `the body of ${safeUrl(url)} was still arriving after ${check.timeoutMs} ms (timeout)`
            : `no answer from ${safeUrl(url)} within ${check.timeoutMs} ms (timeout)`
        );
      }
      if (signal.aborted) return fail('cancelled');
      return fail(
        maskServer(err instanceof ExchangeFailed ? err.message : `request failed: ${errorText(err)}`)
      );
    } finally {
      stop.dispose();
    }
  };

  return async signal => {
    if (setupError !== undefined || !origin) return fail(setupError ?? 'url is not a valid URL');
    if (signal.aborted) return fail('cancelled');
    try {
      const r = await attempt(signal, origin);
      return { ok: r.ok, reason: maskReason(r.reason) };
    } catch (err) {
      return fail(maskReason(maskServer(`check failed unexpectedly: ${errorText(err)}`)));
    }
  };
}

// ---------------------------------------------------------------------------------------------
// TCP

/** A TCP connect to a port; the connection is closed as soon as it is made. */
export function tcpProbe(check: TcpCheck): Probe {
  const target = `${check.host}:${check.port}`;
  return signal =>
    new Promise<ProbeResult>(resolve => {
      if (signal.aborted) return resolve(fail('cancelled'));
      const started = Date.now();
      let settled = false;
      const done = (r: ProbeResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        sock.destroy();
        resolve(r);
      };
      const onAbort = () => done(fail('cancelled'));
      const timer = setTimeout(
        () => done(fail(`no connection to ${target} within ${check.timeoutMs} ms (timeout)`)),
        check.timeoutMs
      );
      const sock = connect({ host: check.host, port: check.port });
      signal.addEventListener('abort', onAbort);
      sock.once('connect', () => done(pass(`connected to ${target} in ${Date.now() - started} ms`)));
      sock.once('error', err =>
        done(fail(`connect to ${target} failed: ${errorCode(err) ?? errorText(err)}`))
      );
    });
}

// ---------------------------------------------------------------------------------------------
// Local commands

interface LocalRun {
  readonly outcome: 'exit' | 'timeout' | 'cancelled' | 'error';
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The tail of stdout and stderr, interleaved as they arrived. */
  readonly output: string;
  readonly error?: string;
  readonly ms: number;
}

/**
 * Runs `/bin/sh -c command` with the given extra environment. The shell leads its own process
 * group (detached), so a timeout or cancel kills the whole group: the command and whatever it
 * started, not just the shell (killing only `sh` would leave e.g. a hung curl running).
 */
async function runLocal(
  command: string,
  env: Readonly<Record<string, string>>,
  timeoutMs: number,
  signal: AbortSignal
): Promise<LocalRun> {
  let output = '';
  const text = new StringDecoder('utf8');
  const r = await runShell(command, {
    env: processEnv(inheritedEnv(), { set: env }),
    timeoutMs,
    signal,
    onOutput: chunk => {
      output += text.write(chunk);
      if (output.length > 2 * MAX_OUTPUT) output = output.slice(-MAX_OUTPUT);
    }
  });
  const outcome = r.outcome === 'overflow' ? 'error' : r.outcome;
  return {
    outcome,
    code: r.code,
    signal: r.signal,
    output,
    ...(r.outcome === 'error' ? { error: `could not run /bin/sh: ${errorText(r.error)}` } : {}),
    ms: r.ms
  };
}

/** "exited with code 3" / "timed out after 500 ms (killed)" / …, for a run that did not succeed. */
function describeRun(r: LocalRun, timeoutMs: number): string {
  switch (r.outcome) {
    case 'timeout':
      return `timed out after ${timeoutMs} ms (its process group was killed)`;
    case 'cancelled':
      return 'cancelled';
    case 'error':
      return r.error ?? 'could not run';
    case 'exit':
      return r.signal ? `killed by ${r.signal}` : `exited with code ${r.code}`;
  }
}

function withOutput(what: string, output: string, redact: (t: string) => string): string {
  return output.trim() ? `${what}; last output:\n${tailLines(output, redact)}` : `${what} (no output)`;
}

/** A local command; exit 0 passes. */
export function commandProbe(check: CommandCheck): Probe {
  // The environment's values came from secrets more often than not; none may reach a reason.
  const redact = redactor(Object.values(check.env));
  return async signal => {
    if (check.on !== 'local') return fail('a host command check was given to the local command probe');
    try {
      const r = await runLocal(check.run, check.env, check.timeoutMs, signal);
      if (r.outcome === 'exit' && r.code === 0) return pass(`exited with code 0 in ${r.ms} ms`);
      if (r.outcome === 'cancelled') return fail('cancelled');
      return fail(withOutput(describeRun(r, check.timeoutMs), r.output, redact));
    } catch (err) {
      return fail(`check failed unexpectedly: ${redact(errorText(err))}`);
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Version

/** What the endpoint or command seems to report, for a mismatch's reason. */
function reported(text: string, kind: VersionCheck['expect']): string {
  const shas = kind === 'commit' ? [...new Set(shaWords(text))] : [];
  return shas.length > 0 && shas.length <= 3 ? shas.join(', ') : `"${snippet(text, undefined, 80)}"`;
}

/** An HTTP endpoint (GET) or a local command reports the release or commit just deployed. */
export function versionProbe(check: VersionCheck, ctx: CheckContext): Probe {
  const expected = (check.expect === 'release' ? ctx.release : ctx.commit).trim();
  const shownExpected = snippet(expected, undefined, 64);
  const verdict = (source: string, text: string): ProbeResult =>
    reportsVersion(text, expected, check.expect)
      ? pass(`${source} reports ${check.expect} ${shownExpected}`)
      : fail(`${source} reports ${reported(text, check.expect)}, expected ${check.expect} ${shownExpected}`);

  return async signal => {
    if (!expected) return fail(`no ${check.expect} is known to compare with`);
    if (signal.aborted) return fail('cancelled');
    try {
      if (check.url !== undefined) return await versionOverHttp(check, signal, verdict);
      if (check.run !== undefined) {
        if (check.on !== 'local') return fail('a host version check was given to the local version probe');
        const r = await runLocal(check.run, {}, check.timeoutMs, signal);
        if (r.outcome === 'cancelled') return fail('cancelled');
        if (r.outcome !== 'exit' || r.code !== 0) {
          return fail(withOutput(`the version command ${describeRun(r, check.timeoutMs)}`, r.output, t => t));
        }
        return verdict('the version command', r.output);
      }
      return fail('a version check needs url or run');
    } catch (err) {
      return fail(`check failed unexpectedly: ${errorText(err)}`);
    }
  };
}

/** GET the version URL on a new connection; a 2xx answer's body must report the version. */
async function versionOverHttp(
  check: VersionCheck,
  signal: AbortSignal,
  verdict: (source: string, text: string) => ProbeResult
): Promise<ProbeResult> {
  let url: URL;
  try {
    url = new URL(check.url!);
  } catch {
    return fail('url is not a valid URL');
  }
  const mask = redactor(urlSecrets(url));
  const stop = attemptStop(signal, check.timeoutMs);
  try {
    const a = await exchange({
      url,
      method: 'GET',
      headers: { 'user-agent': 'deployguard' },
      tls: { rejectUnauthorized: true },
      skipBody: () => false,
      stop: stop.signal,
      onBody: () => {}
    });
    if (a.status < 200 || a.status > 299) {
      return fail(`HTTP ${a.status} from ${safeUrl(url)}, expected 2xx; body: ${snippet(a.body, mask)}`);
    }
    const r = verdict(safeUrl(url), a.body);
    return { ok: r.ok, reason: mask(r.reason) };
  } catch (err) {
    if (stop.timedOut())
      return fail(`no complete answer from ${safeUrl(url)} within ${check.timeoutMs} ms (timeout)`);
    if (signal.aborted) return fail('cancelled');
    return fail(mask(err instanceof ExchangeFailed ? err.message : errorText(err)));
  } finally {
    stop.dispose();
  }
}

/**
 * One HTTP attempt's stop signal: aborted by the caller or by the attempt's own timeout, and it
 * says which, so the reason can tell "cancelled" from "no answer within N ms".
 */
function attemptStop(
  caller: AbortSignal,
  timeoutMs: number
): { signal: AbortSignal; timedOut(): boolean; dispose(): void } {
  const stop = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stop.abort();
  }, timeoutMs);
  const onAbort = () => stop.abort();
  caller.addEventListener('abort', onAbort);
  if (caller.aborted) stop.abort();
  return {
    signal: stop.signal,
    timedOut: () => timedOut,
    dispose: () => {
      clearTimeout(timer);
      caller.removeEventListener('abort', onAbort);
    }
  };
}

/**
 * The environment a local check command inherits: ours, minus the action's inputs and
 * deployguard's own secret variables (the SSH key is one of them), which a check has no use for
 * and could print.
 */
function inheritedEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('INPUT_') && !/^DEPLOYGUARD_SSH_/.test(k))
  );
}
