import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { CommandCheck, HttpCheck, TcpCheck, VersionCheck } from '../settings/types.js';
import type { CheckContext, Probe } from './types.js';

const MAX_BODY = 64 * 1024;

/**
 * An HTTP request whose status and body are compared with what the check expects. Every attempt
 * uses a new connection: a pooled keep-alive socket may still point at the process a restart or
 * rollback just replaced, and would fail (or pass) for the wrong reason.
 */
export function httpProbe(check: HttpCheck): Probe {
  return signal =>
    new Promise(resolve => {
      const started = Date.now();
      let settled = false;
      const done = (ok: boolean, reason: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        req.destroy();
        resolve({ ok, reason });
      };
      const onAbort = () => done(false, 'cancelled');
      const url = new URL(check.url);
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(
        url,
        { method: check.method, agent: false, headers: { 'user-agent': 'deployguard' } },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            if (size < MAX_BODY) chunks.push(c);
            size += c.length;
          });
          res.on('error', err => done(false, `response failed: ${err.message}`));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const body = Buffer.concat(chunks).toString('utf8');
            if (!check.expectStatus.includes(status)) {
              done(
                false,
                `HTTP ${status}, expected ${check.expectStatus.join(' or ')}; body: ${snippet(body)}`
              );
            } else if (check.bodyContains !== undefined && !body.includes(check.bodyContains)) {
              done(false, `HTTP ${status} but the body lacks "${check.bodyContains}": ${snippet(body)}`);
            } else {
              done(true, `HTTP ${status} in ${Date.now() - started} ms`);
            }
          });
        }
      );
      const timer = setTimeout(() => done(false, `no answer within ${check.timeoutMs} ms`), check.timeoutMs);
      signal.addEventListener('abort', onAbort);
      req.on('error', (err: NodeJS.ErrnoException) =>
        done(false, `request failed: ${err.code ?? err.message}`)
      );
      req.end();
    });
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

/** PLACEHOLDER (being implemented): a local command; exit 0 passes. */
export function commandProbe(_check: CommandCheck): Probe {
  return async () => ({ ok: false, reason: 'not implemented yet' });
}

/** PLACEHOLDER (being implemented): an HTTP endpoint or local command reports the deployed version. */
export function versionProbe(_check: VersionCheck, _ctx: CheckContext): Probe {
  return async () => ({ ok: false, reason: 'not implemented yet' });
}
