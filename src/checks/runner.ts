import type { RemoteShell } from '../io/ssh.js';
import { blueGreenOf, colourService } from '../remote/blue-green.js';
import { layoutFor } from '../remote/layout.js';
import type { CheckSettings, Colour, HostSettings, Settings, Stage } from '../settings/types.js';
import { judgesEachHost, runsOnHost, URL_PLACEHOLDER } from '../settings/types.js';
import {
  fileFreshProbe,
  hostCommandProbe,
  hostVersionProbe,
  logsProbe,
  processProbe
} from './host-probes.js';
import { commandProbe, httpProbe, tcpProbe, versionProbe } from './probes.js';
import type { CheckContext, CheckResult, HostContext, Probe } from './types.js';

export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise(resolve => {
      if (signal?.aborted) return resolve();
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done);
    })
};

/** The probe for one check: local checks need nothing, host checks need the host's connection. */
export function probeFor(check: CheckSettings, ctx: CheckContext, host?: HostContext): Probe {
  if (runsOnHost(check) && !host) {
    return async () => ({ ok: false, reason: 'runs on a host, but no host connection was given' });
  }
  if ((check.type === 'http' || check.type === 'version') && check.url && URL_PLACEHOLDER.test(check.url)) {
    const url = fillUrl(check.url, host);
    if (!url.ok) return async () => ({ ok: false, reason: url.reason });
    check = { ...check, url: url.value };
  }
  switch (check.type) {
    case 'http':
      return httpProbe(check);
    case 'tcp':
      return tcpProbe(check);
    case 'command':
      return check.on === 'host' ? hostCommandProbe(check, host!) : commandProbe(check);
    case 'process':
      return processProbe(check, host!);
    case 'logs':
      return logsProbe(check, host!);
    case 'file-fresh':
      return fileFreshProbe(check, host!);
    case 'version':
      return check.run && check.on === 'host'
        ? hostVersionProbe(check, ctx, host!)
        : versionProbe(check, ctx);
  }
}

/**
 * What the checks of one host judge: its connection and service, and for blue-green the given
 * colour's instance and port (no colour: the template itself, and `{port}` checks fail).
 */
export function hostContextOf(
  settings: Settings,
  host: HostSettings,
  shell: RemoteShell,
  colour?: Colour
): HostContext {
  const bg = blueGreenOf(settings.service);
  return {
    name: host.name,
    shell,
    service: colourService(settings.service, colour),
    layout: layoutFor(settings.target),
    address: host.host,
    ...(bg && colour ? { port: bg.ports[colour] } : {})
  };
}

/** `{host}` and `{port}` in a url: the host's address and the port of the colour being judged. */
function fillUrl(
  url: string,
  host: HostContext | undefined
): { ok: true; value: string } | { ok: false; reason: string } {
  if (/\{host\}/.test(url) && !host?.address)
    return { ok: false, reason: 'the url names {host}, but no host was given' };
  if (/\{port\}/.test(url) && host?.port === undefined)
    return {
      ok: false,
      reason: 'the url names {port}, the port of a blue-green colour, but no colour is live on this host'
    };
  return {
    ok: true,
    value: url.replace(/\{host\}/g, host?.address ?? '').replace(/\{port\}/g, String(host?.port ?? ''))
  };
}

/**
 * Runs one check until it passes or gives up: at most 1 + retries attempts, waiting `interval`
 * (times `backoff` after each failure) between them, and starting no attempt past the deadline.
 * The last failure's reason is kept: it is the one a person needs.
 */
export async function runCheck(
  check: CheckSettings,
  stage: CheckResult['stage'],
  probe: Probe,
  opts: { clock?: Clock; signal?: AbortSignal; host?: string } = {}
): Promise<CheckResult> {
  const clock = opts.clock ?? realClock;
  const signal = opts.signal ?? new AbortController().signal;
  const started = clock.now();
  const result = (ok: boolean, attempts: number, reason: string): CheckResult => ({
    name: check.name,
    ...(opts.host ? { host: opts.host } : {}),
    stage,
    ok,
    attempts,
    durationMs: clock.now() - started,
    reason
  });
  let reason = 'not run';
  let wait = check.intervalMs;
  const attempts = check.retries + 1;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const r = await probe(signal).catch((err: unknown) => ({
      ok: false,
      reason: `check crashed: ${(err as Error).message}`
    }));
    if (r.ok) return result(true, attempt, r.reason);
    reason = r.reason;
    if (signal.aborted) return result(false, attempt, `${reason} (cancelled)`);
    if (attempt === attempts) return result(false, attempt, reason);
    if (check.deadlineMs > 0 && clock.now() - started + wait >= check.deadlineMs) {
      return result(false, attempt, `${reason} (deadline of ${check.deadlineMs} ms reached)`);
    }
    await clock.sleep(wait, signal);
    wait = Math.min(wait * check.backoff, 10 * 60_000);
  }
  return result(false, attempts, reason);
}

/** The checks that apply to a stage. */
export function checksFor(checks: readonly CheckSettings[], stage: Stage): CheckSettings[] {
  return checks.filter(c => c.stages.includes(stage));
}

export interface RunChecksOptions {
  readonly context: CheckContext;
  /** Hosts for the checks that run on hosts; each such check runs once per host. */
  readonly hosts?: readonly HostContext[];
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
}

/**
 * Runs every check in parallel (host checks once per host); one failure never hides the others'
 * results. The order of the results is the order of the checks.
 */
export async function runChecks(
  checks: readonly CheckSettings[],
  stage: CheckResult['stage'],
  opts: RunChecksOptions
): Promise<CheckResult[]> {
  const jobs = checks.flatMap(check =>
    judgesEachHost(check)
      ? (opts.hosts ?? [undefined]).map(host =>
          runCheck(check, stage, probeFor(check, opts.context, host), {
            ...opts,
            host: host?.name ?? '(no host)'
          })
        )
      : [runCheck(check, stage, probeFor(check, opts.context), opts)]
  );
  return Promise.all(jobs);
}

/** "N/M checks passed". */
export function tally(results: readonly CheckResult[]): string {
  return `${results.filter(r => r.ok).length}/${results.length} checks passed`;
}
