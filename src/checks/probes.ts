import { connect } from 'node:net';
import type { HttpCheck, TcpCheck } from '../settings/types.js';
import type { Probe } from './types.js';

/** Shows a URL without its credentials or query string values, which may hold tokens. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '***';
      u.password = '';
    }
    for (const k of [...u.searchParams.keys()]) u.searchParams.set(k, '***');
    return u.toString();
  } catch {
    return '<invalid url>';
  }
}

/** An HTTP request whose status and body are compared with what the check expects. */
export function httpProbe(check: HttpCheck): Probe {
  return async signal => {
    const started = Date.now();
    const timeout = AbortSignal.timeout(check.timeoutMs);
    let res: Response;
    try {
      res = await fetch(check.url, {
        method: check.method,
        redirect: 'manual',
        signal: AbortSignal.any([signal, timeout])
      });
    } catch (err) {
      if (timeout.aborted) return { ok: false, reason: `no answer within ${check.timeoutMs} ms` };
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      return {
        ok: false,
        reason: `request failed: ${cause?.code ?? cause?.message ?? (err as Error).message}`
      };
    }
    let body: string;
    try {
      body = await res.text();
    } catch {
      return { ok: false, reason: `HTTP ${res.status}, body not read within ${check.timeoutMs} ms` };
    }
    const ms = Date.now() - started;
    if (!check.expectStatus.includes(res.status)) {
      return {
        ok: false,
        reason: `HTTP ${res.status}, expected ${check.expectStatus.join(' or ')}; body: ${snippet(body)}`
      };
    }
    if (check.bodyContains !== undefined && !body.includes(check.bodyContains)) {
      return {
        ok: false,
        reason: `HTTP ${res.status} but the body lacks "${check.bodyContains}": ${snippet(body)}`
      };
    }
    return { ok: true, reason: `HTTP ${res.status} in ${ms} ms` };
  };
}

function snippet(body: string): string {
  const flat = body.replace(/\s+/g, ' ').trim();
  return flat.length > 120 ? `${flat.slice(0, 120)}…` : flat || '(empty)';
}

/** A TCP connect to a port. */
export function tcpProbe(check: TcpCheck): Probe {
  return signal =>
    new Promise(resolve => {
      const started = Date.now();
      const sock = connect({ host: check.host, port: check.port });
      const done = (ok: boolean, reason: string) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        sock.destroy();
        resolve({ ok, reason });
      };
      const onAbort = () => done(false, 'cancelled');
      const timer = setTimeout(
        () => done(false, `no connection within ${check.timeoutMs} ms`),
        check.timeoutMs
      );
      signal.addEventListener('abort', onAbort);
      sock.once('connect', () => done(true, `connected in ${Date.now() - started} ms`));
      sock.once('error', (e: NodeJS.ErrnoException) => done(false, `connect failed: ${e.code ?? e.message}`));
    });
}
