/**
 * The local probes (http, tcp, command, version) against real servers and processes started
 * here on 127.0.0.1: no mocks. Retries, backoff and deadlines run through runCheck on the real
 * clock, so the flapping / slow-to-start / dying services behave as they would in a deploy.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders, type RequestListener } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { commandProbe, httpProbe, safeUrl, tcpProbe, versionProbe } from '../../src/checks/probes.js';
import { runCheck } from '../../src/checks/runner.js';
import type { CheckContext } from '../../src/checks/types.js';
import type { CheckBase, CommandCheck, HttpCheck, TcpCheck, VersionCheck } from '../../src/settings/types.js';

// ---------------------------------------------------------------------------------------------
// Helpers

const never = () => new AbortController().signal;
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

function base(name: string, over: Partial<CheckBase> = {}): CheckBase {
  return {
    name,
    stages: ['post'],
    timeoutMs: 2000,
    retries: 0,
    intervalMs: 100,
    backoff: 1,
    deadlineMs: 0,
    ...over
  };
}

function httpCheck(url: string, over: Partial<HttpCheck> = {}): HttpCheck {
  return {
    ...base('http'),
    type: 'http',
    url,
    method: 'GET',
    headers: {},
    expectStatus: [200],
    followRedirects: 0,
    insecureTls: false,
    ...over
  };
}

function commandCheck(run: string, over: Partial<CommandCheck> = {}): CommandCheck {
  return { ...base('command'), type: 'command', run, on: 'local', env: {}, ...over };
}

function versionCheck(over: Partial<VersionCheck>): VersionCheck {
  return { ...base('version'), type: 'version', on: 'local', expect: 'commit', ...over };
}

interface Served {
  readonly url: string;
  readonly port: number;
  /** Headers of every request, in order. */
  readonly seen: { url: string; headers: IncomingHttpHeaders }[];
  close(): Promise<void>;
}

const open: Served[] = [];

/** An HTTP server on 127.0.0.1 (a random port) that records what it receives. */
async function serve(handler: RequestListener): Promise<Served> {
  const seen: Served['seen'] = [];
  const server = createHttpServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  let closed = false;
  const s: Served = {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    close: () =>
      new Promise<void>(r => {
        if (closed) return r();
        closed = true;
        server.close(() => r());
        server.closeAllConnections();
      })
  };
  open.push(s);
  return s;
}

afterAll(async () => {
  await Promise.all(open.map(s => s.close()));
});

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const srv = createTcpServer();
  await new Promise<void>(r => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise(r => srv.close(r));
  return port;
}

/** Is the process gone (no such pid, or only a zombie left for init to reap)? */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

async function waitUntil(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(20);
  }
  return cond();
}

const tmp = mkdtempSync(path.join(tmpdir(), 'deployguard-checks-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// safeUrl

describe('safeUrl', () => {
  test('hides credentials and query values, drops the fragment', () => {
    expect(safeUrl('https://admin:hunter22@example.com:8443/health?token=abc&v=1&flag#frag')).toBe(
      'https://***@example.com:8443/health?token=***&v=***&***'
    );
    expect(safeUrl('http://example.com/health')).toBe('http://example.com/health');
    expect(safeUrl('not a url with secret-ish text')).toBe('(not a valid URL)');
  });
});

// ---------------------------------------------------------------------------------------------
// HTTP

describe('http probe', () => {
  let app: Served;
  beforeAll(async () => {
    app = await serve((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      switch (u.pathname) {
        case '/ok':
          res.end('all good: ok');
          return;
        case '/500':
          res.writeHead(500).end('database connection refused');
          return;
        case '/slow':
          setTimeout(() => res.end('late'), 1500).unref();
          return;
        case '/slow-body':
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('starting…');
          setTimeout(() => res.end(' done ok'), 400).unref();
          return;
        case '/stalled-body':
          res.writeHead(200);
          res.write('partial');
          return; // never ends
        case '/cut':
          res.writeHead(200, { 'content-length': '100' });
          res.write('only part of it');
          setTimeout(() => res.socket?.destroy(), 50).unref();
          return;
        case '/degraded':
          res.end(`status: degraded ${'x'.repeat(500)}`);
          return;
        case '/json': {
          const state = u.searchParams.get('db') ?? 'up';
          res.setHeader('content-type', 'application/json');
          res.end(
            JSON.stringify({ checks: { db: { status: state, latency: 3, primary: true } }, note: null })
          );
          return;
        }
        case '/not-json':
          res.end('<html>oops</html>');
          return;
        case '/echo':
          // Echoes the credential back in a failing body, as a misbehaving service might.
          res
            .writeHead(401)
            .end(
              `denied for token=${req.headers['x-token']} auth=${req.headers.authorization} bare=${req.headers.authorization?.split(' ')[1]}`
            );
          return;
        default:
          res.writeHead(404).end('not found');
      }
    });
  });

  test('200 passes with the time it took', async () => {
    const r = await httpProbe(httpCheck(`${app.url}/ok`))(never());
    expect(r).toEqual({ ok: true, reason: expect.stringMatching(/^HTTP 200 in \d+ ms$/) });
  });

  test('500 fails with the status, the expected status and a body snippet', async () => {
    const r = await httpProbe(httpCheck(`${app.url}/500`))(never());
    expect(r.ok).toBe(false);
    expect(r.reason).toBe('HTTP 500, expected 200; body: database connection refused');
    // An expected 500 is a pass.
    expect((await httpProbe(httpCheck(`${app.url}/500`, { expectStatus: [500, 503] }))(never())).ok).toBe(
      true
    );
  });

  test('the method is sent as configured', async () => {
    const before = app.seen.length;
    const r = await httpProbe(httpCheck(`${app.url}/ok`, { method: 'HEAD' }))(never());
    expect(r.ok).toBe(true);
    expect(app.seen.length).toBe(before + 1);
  });

  test('a server slower than the timeout fails at the timeout', async () => {
    const t = Date.now();
    const r = await httpProbe(httpCheck(`${app.url}/slow`, { timeoutMs: 300 }))(never());
    expect(Date.now() - t).toBeLessThan(1000);
    expect(r).toEqual({ ok: false, reason: `no answer from ${app.url}/slow within 300 ms (timeout)` });
  });

  test('the timeout covers the body, not just the headers', async () => {
    const r = await httpProbe(httpCheck(`${app.url}/stalled-body`, { timeoutMs: 300 }))(never());
    expect(r).toEqual({
      ok: false,
      reason: `the body of ${app.url}/stalled-body was still arriving after 300 ms (timeout)`
    });
  });

  test('a connection closed mid-body fails', async () => {
    const r = await httpProbe(httpCheck(`${app.url}/cut`))(never());
    expect(r).toEqual({
      ok: false,
      reason: 'HTTP 200, but the connection closed before the body was complete'
    });
  });

  test('max-latency: a complete answer slower than the limit fails with measured vs limit', async () => {
    const slow = await httpProbe(httpCheck(`${app.url}/slow-body`, { maxLatencyMs: 150 }))(never());
    expect(slow.ok).toBe(false);
    const ms = Number(/in (\d+) ms, over the max-latency of 150 ms$/.exec(slow.reason)?.[1]);
    expect(ms).toBeGreaterThanOrEqual(390);
    const fast = await httpProbe(httpCheck(`${app.url}/slow-body`, { maxLatencyMs: 2000 }))(never());
    expect(fast.ok).toBe(true);
  });

  test('body-contains and body-matches: a wrong body fails with a truncated snippet', async () => {
    const lacks = await httpProbe(httpCheck(`${app.url}/degraded`, { bodyContains: 'healthy' }))(never());
    expect(lacks.ok).toBe(false);
    expect(lacks.reason).toMatch(/^HTTP 200 but the body lacks "healthy": status: degraded x+…$/);
    expect(lacks.reason.length).toBeLessThan(200);

    const noMatch = await httpProbe(httpCheck(`${app.url}/degraded`, { bodyMatches: 'status:\\s*up' }))(
      never()
    );
    expect(noMatch.ok).toBe(false);
    expect(noMatch.reason).toContain('the body does not match /status:\\s*up/');

    const matches = await httpProbe(
      httpCheck(`${app.url}/ok`, { bodyMatches: 'good:\\s+ok$', bodyContains: 'ok' })
    )(never());
    expect(matches.ok).toBe(true);
  });

  test('an invalid body-matches regex is a failed check, not a crash', async () => {
    const probe = httpProbe(httpCheck(`${app.url}/ok`, { bodyMatches: 'status: (up' }));
    const r = await probe(never());
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(/^body-matches is not a valid regular expression: .*status: \(up/);
    const before = app.seen.length;
    await probe(never());
    expect(app.seen.length).toBe(before); // nothing was sent
  });

  test('json: a field equal to the expected value passes, another value fails saying what it was', async () => {
    const equals = (path: string, value: string | number | boolean | null, q = '') =>
      httpProbe(httpCheck(`${app.url}/json${q}`, { json: { path, equals: value } }))(never());
    expect((await equals('checks.db.status', 'up')).ok).toBe(true);
    expect((await equals('checks.db.latency', 3)).ok).toBe(true);
    expect((await equals('checks.db.primary', true)).ok).toBe(true);
    expect((await equals('note', null)).ok).toBe(true);

    expect(await equals('checks.db.status', 'up', '?db=down')).toEqual({
      ok: false,
      reason: 'JSON field checks.db.status is "down", expected "up"'
    });
    // Types matter: 3 is not "3".
    expect((await equals('checks.db.latency', '3')).reason).toBe(
      'JSON field checks.db.latency is 3, expected "3"'
    );
    const missing = await equals('checks.cache.status', 'up');
    expect(missing.ok).toBe(false);
    expect(missing.reason).toMatch(/^JSON field checks\.cache\.status is missing, expected "up"; body: \{/);
  });

  test('json: a body that is not JSON fails', async () => {
    const r = await httpProbe(httpCheck(`${app.url}/not-json`, { json: { path: 'status', equals: 'up' } }))(
      never()
    );
    expect(r).toEqual({ ok: false, reason: 'HTTP 200 but the body is not JSON: <html>oops</html>' });
  });

  test('configured headers reach the server, and their values never appear in a reason', async () => {
    const token = 'tok-3f9a8c7e55d1';
    const bearer = 'eyJhbGciOiJIUzI1NiJ9.payload.sig';
    const before = app.seen.length;
    const r = await httpProbe(
      httpCheck(`${app.url}/echo`, {
        headers: { 'X-Token': token, Authorization: `Bearer ${bearer}`, 'X-Debug': '1' }
      })
    )(never());
    const got = app.seen[before]!.headers;
    expect(got['x-token']).toBe(token);
    expect(got.authorization).toBe(`Bearer ${bearer}`);
    expect(got['user-agent']).toBe('deployguard');
    expect(got['x-debug']).toBe('1');
    expect(r.ok).toBe(false);
    expect(r.reason).toBe('HTTP 401, expected 200; body: denied for token=*** auth=*** bare=***');
    expect(r.reason).not.toContain(token);
    expect(r.reason).not.toContain(bearer);
  });

  test('credentials in the URL are used but shown as ***', async () => {
    const before = app.seen.length;
    const url = `http://monitor:hunter22-pw@127.0.0.1:${app.port}/500?key=query-secret-1`;
    const r = await httpProbe(httpCheck(url))(never());
    expect(app.seen[before]!.headers.authorization).toBe(
      `Basic ${Buffer.from('monitor:hunter22-pw').toString('base64')}`
    );
    expect(r.ok).toBe(false);
    expect(r.reason).not.toContain('hunter22');
    expect(r.reason).not.toContain('query-secret');
    const refused = await httpProbe(
      httpCheck(`http://monitor:hunter22-pw@127.0.0.1:${await closedPort()}/?key=query-secret-1`)
    )(never());
    expect(refused.reason).toMatch(
      /^request to http:\/\/\*\*\*@127\.0\.0\.1:\d+\/\?key=\*\*\* failed: .*ECONNREFUSED/
    );
  });

  test('a refused connection fails with the error, never throws', async () => {
    const port = await closedPort();
    const r = await httpProbe(httpCheck(`http://127.0.0.1:${port}/health`))(never());
    expect(r.ok).toBe(false);
    expect(r.reason).toContain(`request to http://127.0.0.1:${port}/health failed:`);
    expect(r.reason).toContain('ECONNREFUSED');
  });

  test('an aborted signal cancels a request in flight', async () => {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 100);
    const t = Date.now();
    const r = await httpProbe(httpCheck(`${app.url}/slow`, { timeoutMs: 5000 }))(ctl.signal);
    expect(r).toEqual({ ok: false, reason: 'cancelled' });
    expect(Date.now() - t).toBeLessThan(1000);
  });
});

// ---------------------------------------------------------------------------------------------
// Redirects

describe('http redirects', () => {
  let a: Served;
  let b: Served;
  const token = 'redirect-secret-77aa';
  beforeAll(async () => {
    b = await serve((_req, res) => res.end('landed ok'));
    a = await serve((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      const to: Record<string, string> = {
        '/relative': 'target', // relative to /relative: /target
        '/absolute-same': `${a.url}/target`,
        '/cross': `${b.url}/landing`,
        '/two': '/relative',
        '/loop': '/loop?sig=redirect-query-secret'
      };
      const location = to[u.pathname];
      if (location) res.writeHead(302, { location }).end();
      else if (u.pathname === '/target') res.end('target ok');
      else res.writeHead(404).end();
    });
  });
  const check = (p: string, over: Partial<HttpCheck> = {}) =>
    httpCheck(`${a.url}${p}`, { headers: { 'X-Token': token }, ...over });

  test('follow-redirects 0: the 3xx is the answer compared with the expected status', async () => {
    const r = await httpProbe(check('/relative'))(never());
    expect(r).toEqual({
      ok: false,
      reason: `HTTP 302 (a redirect to ${a.url}/target; follow-redirects is 0), expected 200; body: (empty)`
    });
    expect((await httpProbe(check('/relative', { expectStatus: [302] }))(never())).ok).toBe(true);
  });

  test('relative and same-origin absolute Locations are followed, with the headers', async () => {
    const before = a.seen.length;
    const rel = await httpProbe(check('/two', { followRedirects: 2, bodyContains: 'target ok' }))(never());
    expect(rel).toEqual({
      ok: true,
      reason: expect.stringMatching(
        new RegExp(`^HTTP 200 at ${a.url}/target \\(after 2 redirects\\) in \\d+ ms$`)
      )
    });
    const abs = await httpProbe(check('/absolute-same', { followRedirects: 1 }))(never());
    expect(abs.ok).toBe(true);
    const hits = a.seen.slice(before);
    expect(hits.map(h => h.url)).toEqual(['/two', '/relative', '/target', '/absolute-same', '/target']);
    expect(hits.every(h => h.headers['x-token'] === token)).toBe(true);
  });

  test('a cross-origin redirect is followed without the configured headers', async () => {
    const beforeA = a.seen.length;
    const beforeB = b.seen.length;
    const r = await httpProbe(check('/cross', { followRedirects: 1, bodyContains: 'landed' }))(never());
    expect(r.ok).toBe(true);
    expect(a.seen[beforeA]!.headers['x-token']).toBe(token);
    const landed = b.seen[beforeB]!;
    expect(landed.url).toBe('/landing');
    expect(landed.headers['x-token']).toBeUndefined();
    expect(landed.headers['user-agent']).toBe('deployguard');
  });

  test('more redirects than allowed fail clearly', async () => {
    const before = a.seen.length;
    const r = await httpProbe(check('/loop', { followRedirects: 3 }))(never());
    expect(r).toEqual({
      ok: false,
      reason: `more than 3 redirect(s) (follow-redirects): ${a.url}/loop?sig=*** answered 302 → ${a.url}/loop?sig=***`
    });
    expect(a.seen.length - before).toBe(4);
  });
});

// ---------------------------------------------------------------------------------------------
// TLS

describe('https and TLS verification', () => {
  let url: string;
  let otherUrl: string;
  let caPath: string;
  let close: () => Promise<void>;
  beforeAll(async () => {
    const dir = path.join(tmp, 'tls');
    mkdirSync(dir, { recursive: true });
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    ssl(
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=deployguard test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign'
    );
    ssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
    writeFileSync(
      path.join(dir, 'ext.cnf'),
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n'
    );
    ssl(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.pem',
      '-days',
      '2',
      '-extfile',
      'ext.cnf'
    );
    caPath = path.join(dir, 'ca.pem');
    writeFileSync(path.join(dir, 'garbage.pem'), 'this is not a certificate\n');
    const server = createHttpsServer(
      { key: readFileSync(path.join(dir, 'server.key')), cert: readFileSync(path.join(dir, 'server.pem')) },
      (_req, res) => res.end('secure ok')
    );
    await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as { port: number }).port}/health`;
    // The same certificate (valid for 127.0.0.1 and localhost) served on another loopback address.
    const other = createHttpsServer(
      { key: readFileSync(path.join(dir, 'server.key')), cert: readFileSync(path.join(dir, 'server.pem')) },
      (_req, res) => res.end('secure ok')
    );
    await new Promise<void>(r => other.listen(0, '127.0.0.2', r));
    otherUrl = `https://127.0.0.2:${(other.address() as { port: number }).port}/health`;
    close = async () => {
      for (const srv of [server, other]) {
        await new Promise<void>(r => {
          srv.close(() => r());
          srv.closeAllConnections();
        });
      }
    };
  });
  afterAll(() => close());

  test('a certificate from an unknown CA fails verification by default, saying so', async () => {
    const r = await httpProbe(httpCheck(url))(never());
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(
      new RegExp(
        `^TLS certificate of ${url.replace(/[.]/g, '\\.')} not trusted: .*UNABLE_TO_VERIFY_LEAF_SIGNATURE`
      )
    );
    expect(r.reason).toContain('set ca-file');
  });

  test('ca-file (relative to the working directory) makes it trusted', async () => {
    const relative = path.relative(process.cwd(), caPath);
    expect(path.isAbsolute(relative)).toBe(false);
    const r = await httpProbe(httpCheck(url, { caFile: relative, bodyContains: 'secure ok' }))(never());
    expect(r).toEqual({ ok: true, reason: expect.stringMatching(/^HTTP 200 in \d+ ms$/) });
  });

  test('a trusted certificate for another name fails, saying so', async () => {
    const r = await httpProbe(httpCheck(otherUrl, { caFile: caPath }))(never());
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(
      /^TLS certificate of https:\/\/127\.0\.0\.2:\d+\/health is not valid for 127\.0\.0\.2: /
    );
    expect(r.reason).toContain('ERR_TLS_CERT_ALTNAME_INVALID');
  });

  test('insecure-tls skips verification', async () => {
    const r = await httpProbe(httpCheck(url, { insecureTls: true }))(never());
    expect(r.ok).toBe(true);
  });

  test('an unreadable or non-PEM ca-file is a failed check with a clear reason', async () => {
    const missing = await httpProbe(httpCheck(url, { caFile: path.join(tmp, 'nope.pem') }))(never());
    expect(missing).toEqual({
      ok: false,
      reason: `ca-file ${path.join(tmp, 'nope.pem')} cannot be read (ENOENT)`
    });
    const garbage = path.join(tmp, 'tls', 'garbage.pem');
    expect(await httpProbe(httpCheck(url, { caFile: garbage }))(never())).toEqual({
      ok: false,
      reason: `ca-file ${garbage} holds no PEM certificate`
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Retries, backoff and deadlines on the real clock

describe('runCheck with real services', () => {
  test('a flapping service (500, 200, 500, …) passes on the second attempt', async () => {
    let n = 0;
    const s = await serve((_req, res) => {
      n++;
      res.writeHead(n % 2 === 1 ? 500 : 200).end(n % 2 === 1 ? 'flap: down' : 'flap: up');
    });
    const check = httpCheck(`${s.url}/`, { ...base('flappy', { retries: 3, intervalMs: 100 }) });
    const r = await runCheck(check, 'post', httpProbe(check));
    expect(r).toMatchObject({ name: 'flappy', stage: 'post', ok: true, attempts: 2 });
    expect(r.durationMs).toBeGreaterThanOrEqual(100);
    // Without retries the next (failing) answer is the verdict.
    const once = httpCheck(`${s.url}/`, { ...base('flappy-once') });
    const r2 = await runCheck(once, 'post', httpProbe(once));
    expect(r2).toMatchObject({ ok: false, attempts: 1, reason: 'HTTP 500, expected 200; body: flap: down' });
  });

  test('a service healthy only after 1 s passes once it is, after several attempts', async () => {
    const up = Date.now() + 1000;
    const s = await serve((_req, res) => {
      if (Date.now() < up) res.writeHead(503).end('starting');
      else res.end('ready');
    });
    const check = httpCheck(`${s.url}/`, {
      ...base('warmup', { retries: 10, intervalMs: 200, backoff: 1.5 })
    });
    const r = await runCheck(check, 'post', httpProbe(check));
    expect(r.ok).toBe(true);
    // 200 + 300 + 450 = 950 ms of waits before the 4th attempt, + 675 before the 5th.
    expect(r.attempts).toBeGreaterThanOrEqual(4);
    expect(r.attempts).toBeLessThanOrEqual(5);
    expect(r.durationMs).toBeGreaterThanOrEqual(900);
    expect(s.seen.length).toBe(r.attempts);
  });

  test('the deadline stops the retries of a service that is not up yet', async () => {
    const s = await serve((_req, res) => res.writeHead(503).end('starting'));
    // Attempts at ~0 and ~200 ms; at ~600 ms the next wait (800 ms) would pass the 800 ms deadline.
    const check = httpCheck(`${s.url}/`, {
      ...base('deadline', { retries: 10, intervalMs: 200, backoff: 2, deadlineMs: 800 })
    });
    const r = await runCheck(check, 'post', httpProbe(check));
    expect(r).toMatchObject({
      ok: false,
      attempts: 3,
      reason: 'HTTP 503, expected 200; body: starting (deadline of 800 ms reached)'
    });
    expect(r.durationMs).toBeLessThan(800);
  });

  test('a service that dies after 1 s: passes before, fails after with every retry used', async () => {
    const s = await serve((_req, res) => res.end('alive'));
    const died = sleep(1000).then(() => s.close());
    const check = httpCheck(`${s.url}/`, { ...base('mortal', { retries: 2, intervalMs: 100, backoff: 2 }) });
    const before = await runCheck(check, 'post', httpProbe(check));
    expect(before).toMatchObject({ ok: true, attempts: 1 });
    await died;
    const after = await runCheck(check, 'post', httpProbe(check));
    expect(after.ok).toBe(false);
    expect(after.attempts).toBe(3);
    expect(after.reason).toContain('ECONNREFUSED');
    expect(after.durationMs).toBeGreaterThanOrEqual(300); // 100 + 200 ms of backoff
  });
});

// ---------------------------------------------------------------------------------------------
// TCP

describe('tcp probe', () => {
  let server: TcpServer;
  let port: number;
  beforeAll(async () => {
    server = createTcpServer(sock => sock.end());
    await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise(r => server.close(r)));
  const tcp = (p: number): TcpCheck => ({ ...base('tcp'), type: 'tcp', host: '127.0.0.1', port: p });

  test('an open port passes', async () => {
    const r = await tcpProbe(tcp(port))(never());
    expect(r).toEqual({
      ok: true,
      reason: expect.stringMatching(new RegExp(`^connected to 127\\.0\\.0\\.1:${port} in \\d+ ms$`))
    });
  });

  test('a closed port fails', async () => {
    const p = await closedPort();
    expect(await tcpProbe(tcp(p))(never())).toEqual({
      ok: false,
      reason: `connect to 127.0.0.1:${p} failed: ECONNREFUSED`
    });
  });

  test('an already aborted signal is honoured', async () => {
    const ctl = new AbortController();
    ctl.abort();
    expect(await tcpProbe(tcp(port))(ctl.signal)).toEqual({ ok: false, reason: 'cancelled' });
  });
});

// ---------------------------------------------------------------------------------------------
// Local commands

describe('command probe', () => {
  test('exit 0 passes', async () => {
    const r = await commandProbe(commandCheck('true'))(never());
    expect(r).toEqual({ ok: true, reason: expect.stringMatching(/^exited with code 0 in \d+ ms$/) });
  });

  test('exit 3 fails with the code and the last lines of stdout and stderr', async () => {
    const r = await commandProbe(
      commandCheck('for i in $(seq 1 15); do echo "line $i"; done; echo "fatal: disk full" >&2; exit 3')
    )(never());
    expect(r.ok).toBe(false);
    const lines = r.reason.split('\n');
    expect(lines[0]).toBe('exited with code 3; last output:');
    expect(lines.slice(1)).toEqual([
      ...Array.from({ length: 9 }, (_, i) => `line ${i + 7}`),
      'fatal: disk full'
    ]);
  });

  test('a failure without output says so', async () => {
    expect(await commandProbe(commandCheck('exit 1'))(never())).toEqual({
      ok: false,
      reason: 'exited with code 1 (no output)'
    });
  });

  test('a timeout kills the whole process group', async () => {
    const pidFile = path.join(tmp, 'bg.pid');
    const t = Date.now();
    const r = await commandProbe(
      commandCheck(`sleep 30 & echo $! > ${pidFile}; echo started; wait`, { timeoutMs: 500 })
    )(never());
    expect(Date.now() - t).toBeLessThan(2000);
    expect(r).toEqual({
      ok: false,
      reason: 'timed out after 500 ms (its process group was killed); last output:\nstarted'
    });
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(pid).toBeGreaterThan(1);
    expect(await waitUntil(() => gone(pid), 1000)).toBe(true);
  });

  test('an abort kills the command too', async () => {
    const pidFile = path.join(tmp, 'abort.pid');
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 300);
    const r = await commandProbe(commandCheck(`sleep 30 & echo $! > ${pidFile}; wait`, { timeoutMs: 10000 }))(
      ctl.signal
    );
    expect(r).toEqual({ ok: false, reason: 'cancelled' });
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(await waitUntil(() => gone(pid), 1000)).toBe(true);
  });

  test('env reaches the command (with the rest of the environment) and is redacted from reasons', async () => {
    const env = { API_TOKEN: 'tk-9a8b7c6d5e4f', DB_PASSWORD: 'pa55-w0rd-xyz' };
    const ok = await commandProbe(
      commandCheck(
        'test "$API_TOKEN" = tk-9a8b7c6d5e4f && test "$DB_PASSWORD" = pa55-w0rd-xyz && test -n "$PATH"',
        {
          env
        }
      )
    )(never());
    expect(ok.ok).toBe(true);
    const bad = await commandProbe(
      commandCheck('echo "using token $API_TOKEN"; echo "password=$DB_PASSWORD" >&2; exit 2', { env })
    )(never());
    expect(bad).toEqual({
      ok: false,
      reason: 'exited with code 2; last output:\nusing token ***\npassword=***'
    });
  });

  test('a command that leaves a background process holding its output still finishes', async () => {
    const pidFile = path.join(tmp, 'leftover.pid');
    const t = Date.now();
    const r = await commandProbe(
      commandCheck(`(sleep 5 & echo $! > ${pidFile}; wait) & echo done`, { timeoutMs: 3000 })
    )(never());
    expect(r.ok).toBe(true);
    expect(Date.now() - t).toBeLessThan(1500);
    try {
      process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    } catch {
      // already gone
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Version

describe('version probe', () => {
  const sha = '3f9c2a1b7d4e5f60718293a4b5c6d7e8f9012345';
  const ctx: CheckContext = { release: '2026-11-26.1', commit: sha };
  let s: Served;
  beforeAll(async () => {
    s = await serve((req, res) => {
      const bodies: Record<string, string> = {
        '/full': JSON.stringify({ version: '1.4.0', commit: sha }),
        '/short': `build ${sha.slice(0, 7)} (main)`,
        '/describe': `v1.4.0-3-g${sha.slice(0, 9)}`,
        '/six': `commit ${sha.slice(0, 6)}`,
        '/other': JSON.stringify({ commit: 'deadbeefcafe1234' }),
        '/release': JSON.stringify({ release: '2026-11-26.1' }),
        '/release-10': JSON.stringify({ release: '2026-11-26.10' })
      };
      const body = bodies[req.url ?? ''];
      if (body === undefined) res.writeHead(500).end(`internal error, commit ${sha}`);
      else res.end(body);
    });
  });
  const byUrl = (p: string, expect: VersionCheck['expect'] = 'commit') =>
    versionProbe(versionCheck({ url: `${s.url}${p}`, expect }), ctx)(never());

  test('url, commit: the full sha or a 7+ character prefix as a whole word passes', async () => {
    expect(await byUrl('/full')).toEqual({ ok: true, reason: `${s.url}/full reports commit ${sha}` });
    expect((await byUrl('/short')).ok).toBe(true);
    expect((await byUrl('/describe')).ok).toBe(true);
  });

  test('url, commit: another commit or a too short prefix fails with what was reported', async () => {
    expect(await byUrl('/other')).toEqual({
      ok: false,
      reason: `${s.url}/other reports deadbeefcafe1234, expected commit ${sha}`
    });
    const six = await byUrl('/six');
    expect(six.ok).toBe(false);
    expect(six.reason).toBe(`${s.url}/six reports "commit ${sha.slice(0, 6)}", expected commit ${sha}`);
  });

  test('url, release: the release id passes, a longer id does not', async () => {
    expect((await byUrl('/release', 'release')).ok).toBe(true);
    expect(await byUrl('/release-10', 'release')).toEqual({
      ok: false,
      reason: `${s.url}/release-10 reports "{"release":"2026-11-26.10"}", expected release 2026-11-26.1`
    });
  });

  test('url: a non-2xx answer fails even if it mentions the version', async () => {
    const r = await byUrl('/broken');
    expect(r.ok).toBe(false);
    expect(r.reason).toMatch(
      /^HTTP 500 from http:\/\/127\.0\.0\.1:\d+\/broken, expected 2xx; body: internal error/
    );
  });

  test('url: the timeout applies', async () => {
    const slow = await serve((_req, res) => setTimeout(() => res.end(sha), 1500).unref());
    const r = await versionProbe(versionCheck({ url: `${slow.url}/v`, timeoutMs: 300 }), ctx)(never());
    expect(r).toEqual({ ok: false, reason: `no complete answer from ${slow.url}/v within 300 ms (timeout)` });
  });

  test('run: the command output reports the commit or the release', async () => {
    const run = (cmd: string, expect: VersionCheck['expect']) =>
      versionProbe(versionCheck({ run: cmd, expect }), ctx)(never());
    expect(await run(`echo "myapp ${sha.slice(0, 12)}"`, 'commit')).toEqual({
      ok: true,
      reason: `the version command reports commit ${sha}`
    });
    expect((await run(`echo "release: 2026-11-26.1" >&2`, 'release')).ok).toBe(true);
    expect(await run('echo "release: 2026-11-25.3"', 'release')).toEqual({
      ok: false,
      reason: 'the version command reports "release: 2026-11-25.3", expected release 2026-11-26.1'
    });
    expect(await run('echo "no such file" >&2; exit 1', 'commit')).toEqual({
      ok: false,
      reason: 'the version command exited with code 1; last output:\nno such file'
    });
  });

  test('no known commit is a failed check', async () => {
    const r = await versionProbe(versionCheck({ run: 'echo x' }), { release: 'r1', commit: '' })(never());
    expect(r).toEqual({ ok: false, reason: 'no commit is known to compare with' });
  });
});

describe('local command environment', () => {
  test('a local check command never sees the action inputs or the SSH key variables', async () => {
    process.env['INPUT_SSH-KEY'] = 'input-secret-value';
    process.env.DEPLOYGUARD_SSH_KEY = 'env-secret-value';
    process.env.DEPLOYGUARD_VISIBLE = 'fine';
    try {
      const probe = commandProbe({
        type: 'command',
        name: 'env',
        run: "env | grep -E '^(INPUT_|DEPLOYGUARD_)'; exit 1",
        on: 'local',
        env: {},
        stages: ['post'],
        timeoutMs: 5000,
        retries: 0,
        intervalMs: 0,
        backoff: 1,
        deadlineMs: 0
      });
      const r = await probe(new AbortController().signal);
      expect(r.reason).toContain('DEPLOYGUARD_VISIBLE=fine');
      expect(r.reason).not.toContain('input-secret-value');
      expect(r.reason).not.toContain('env-secret-value');
    } finally {
      delete process.env['INPUT_SSH-KEY'];
      delete process.env.DEPLOYGUARD_SSH_KEY;
      delete process.env.DEPLOYGUARD_VISIBLE;
    }
  });
});
