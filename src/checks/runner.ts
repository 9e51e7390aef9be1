import type { CheckSettings, Stage } from '../settings/types.js';
import { httpProbe, tcpProbe } from './probes.js';
import type { CheckResult, Probe } from './types.js';

export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise(resolve => {
      const t = setTimeout(resolve, ms);
      signal?.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      });
    })
};

export function probeFor(check: CheckSettings): Probe {
  switch (check.type) {
    case 'http':
      return httpProbe(check);
    case 'tcp':
      return tcpProbe(check);
  }
}

/**
 * Runs one check until it passes or its attempts run out (1 + retries), waiting `interval`
 * between attempts. The last failure's reason is kept: it is the one a person needs.
 */
export async function runCheck(
  check: CheckSettings,
  stage: CheckResult['stage'],
  probe: Probe = probeFor(check),
  clock: Clock = realClock,
  signal: AbortSignal = new AbortController().signal
): Promise<CheckResult> {
  const started = clock.now();
  let reason = 'not run';
  const attempts = check.retries + 1;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const r = await probe(signal);
    if (r.ok)
      return {
        name: check.name,
        stage,
        ok: true,
        attempts: attempt,
        durationMs: clock.now() - started,
        reason: r.reason
      };
    reason = r.reason;
    if (attempt < attempts && !signal.aborted) await clock.sleep(check.intervalMs, signal);
    if (signal.aborted)
      return {
        name: check.name,
        stage,
        ok: false,
        attempts: attempt,
        durationMs: clock.now() - started,
        reason: `${reason} (cancelled)`
      };
  }
  return { name: check.name, stage, ok: false, attempts, durationMs: clock.now() - started, reason };
}

/** The checks that apply to a stage. */
export function checksFor(checks: readonly CheckSettings[], stage: Stage): CheckSettings[] {
  return checks.filter(c => c.stages.includes(stage));
}

/** Runs checks in parallel; one failure never hides the others' results. */
export async function runChecks(
  checks: readonly CheckSettings[],
  stage: CheckResult['stage'],
  clock: Clock = realClock
): Promise<CheckResult[]> {
  return Promise.all(checks.map(c => runCheck(c, stage, probeFor(c), clock)));
}
