import { DeployError, describeError } from '../errors.js';
import {
  LOCK_BUSY,
  LOCK_GO,
  LOCK_LOST,
  PROBE_MARK,
  lockRefresh,
  lockRelease,
  lockThenProbe
} from '../remote/commands.js';
import { layoutFor } from '../remote/layout.js';
import type { Shell } from '../remote/shell.js';
import type { HostSettings } from '../settings/types.js';
import { lockScript } from '../plan/plan.js';
import { probeScript } from './state.js';
import { withCodeOf } from './steps.js';
import {
  StepFailed,
  tail,
  type DeployContext,
  type HostSession,
  runRecorded,
  recordDone,
  execOk,
  inBatches,
  throwFirst
} from './session.js';

/**
 * The host lock: taken with an atomic `mkdir` before anything is read, refreshed by a heartbeat
 * while the deploy runs, taken over only when abandoned, and released on every path.
 */
export const LOCK_STEP = { id: 'lock', title: 'Lock the host' } as const;

export const hostKey = (h: HostSettings) => `${h.host}:${String(h.port).padStart(5, '0')}`;

export const compareText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Locks every host. Uncontended (the usual case) a fleet is locked at once, `per` hosts at a
 * time, one round trip each. If any host is busy, the locks just taken are released and the
 * hosts are locked one by one, waiting for each, in an order every deploy shares (by address and
 * port, not config order): two deploys racing for the same fleet then queue behind each other
 * instead of each holding half of it.
 */
export async function lockHosts(
  ctx: DeployContext,
  runs: readonly HostSession[],
  per: number
): Promise<void> {
  const { settings, deps, layout, token } = ctx;
  // The host state is read in the same round trip, under the lock just taken.
  const script = () => lockThenProbe(lockScript(settings, layout, token, deps.now()), probeScript(ctx));
  if (runs.length > 1 && per > 1) {
    const taken = new Map<HostSession, { at: number; ms: number }>();
    const settled = await inBatches(runs, per, async run => {
      const at = deps.now().getTime();
      const t0 = Date.now();
      if (await acquireLock(script(), run, false)) taken.set(run, { at, ms: Date.now() - t0 });
    });
    if (taken.size === runs.length) {
      for (const run of runs) recordDone(run, LOCK_STEP, taken.get(run)!.ms, taken.get(run)!.at);
      return;
    }
    await Promise.all([...taken.keys()].map(run => unlock(run)));
    throwFirst(settled);
    deps.log.info(
      `${runs
        .filter(r => !taken.has(r))
        .map(r => r.host.name)
        .join(', ')}: locked by another deploy; locking the hosts one by one, in order`
    );
  }
  // One order for every deploy, whatever order its config lists the hosts in.
  const ordered = [...runs].sort((a, b) => compareText(hostKey(a.host), hostKey(b.host)));
  for (const run of ordered) {
    await runRecorded(run, LOCK_STEP, async () => {
      await acquireLock(script(), run, true);
    });
  }
}

export async function acquireLock(
  script: Shell,
  run: HostSession,
  /** Wait for a busy lock (up to `lock.wait`); without, a busy lock returns false at once. */
  wait: boolean
): Promise<boolean> {
  const { settings, deps, token } = run.ctx;
  const deadline = Date.now() + settings.lock.waitMs;
  for (;;) {
    // Until the script says "taken" or "busy", the lock may be ours on the host: a link that
    // drops under it loses the answer, not the mkdir. The release at the end removes it if so
    // (it only ever removes a lock carrying our token).
    run.lockUnsure = true;
    const answer = await run.shell.exec(script, { stdin: `${LOCK_GO}\n` });
    run.lockUnsure = answer.code !== 0 && answer.code !== LOCK_BUSY;
    const r = splitProbe(run, answer);
    if (r.code === 0) {
      run.locked = true;
      startHeartbeat(run);
      deps.onLock?.(run.host, true, token);
      if (r.stdout.startsWith('taken-over')) {
        run.abandoned = r.stdout.split('\n').slice(2).join('\n').trim();
        deps.log.warn(
          `${run.host.name}: took over an abandoned lock (older than the TTL). Previous owner: ${r.stdout.split('\n').slice(1).join(' ').trim()}`
        );
      }
      return true;
    }
    if (r.code !== LOCK_BUSY)
      throw new StepFailed(
        `${run.host.name}: could not take the lock (exit ${r.code}): ${tail(r.stderr)}`,
        'deploy',
        `deployguard keeps its lock and records in ${layoutFor(settings.target).stateDir}; the user ${run.host.user} must be able to create it (for in-place deploys, that means write access to the target's parent directory).`
      );
    if (!wait) return false;
    const owner = r.stdout.trim().split('\n').slice(1).join(' ');
    if (Date.now() >= deadline) {
      throw new DeployError(
        `${run.host.name}: another deploy holds the lock: ${owner || '(owner unknown)'}`,
        'deploy',
        `Wait for it to finish. A deploy refreshes its lock while it runs; if it died, the lock is taken over ${Math.round(settings.lock.ttlMs / 1000)} s after its last refresh (deploy.lock-ttl). Or remove ${run.plan?.layout.lockDir ?? 'the lock directory'} on the host after checking nothing runs.`
      );
    }
    deps.log.info(`${run.host.name}: waiting for the lock held by ${owner}`);
    await deps.sleep(Math.min(5000, Math.max(200, deadline - Date.now())));
  }
}

/**
 * The lock's own answer, with the probe's (when the script carried one, see `lockThenProbe`) kept
 * on the session for the read of the host state.
 */
function splitProbe(
  run: HostSession,
  r: { readonly code: number; readonly stdout: string; readonly stderr: string }
): { readonly code: number; readonly stdout: string; readonly stderr: string } {
  const mark = r.stdout.indexOf(`${PROBE_MARK}\n`);
  if (r.code !== 0 || mark < 0 || (mark > 0 && r.stdout[mark - 1] !== '\n')) return r;
  const rest = r.stdout.slice(mark + PROBE_MARK.length + 1);
  run.probed = { ...withCodeOf(rest, 'probe-rc'), stderr: r.stderr };
  return { ...r, stdout: r.stdout.slice(0, mark) };
}

/**
 * Refreshes a held lock a few times per TTL. A lock nobody refreshes for the TTL belongs to a
 * deploy that died (a killed runner), and the next deploy takes it over; so a live deploy keeps
 * its lock however long it runs. When the refresh finds the lock taken over, the deploy stops
 * before its next step.
 */
export function startHeartbeat(run: HostSession): void {
  const { settings, deps, token } = run.ctx;
  stopHeartbeat(run);
  const every = Math.max(1000, Math.min(30_000, Math.floor(settings.lock.ttlMs / 4)));
  const refresh = lockRefresh(layoutFor(settings.target), token);
  let busy = false;
  run.heartbeat = setInterval(() => {
    if (busy || run.lockLost) return;
    busy = true;
    run.shell
      .exec(refresh, { timeoutMs: every })
      .then(r => {
        if (r.code !== LOCK_LOST) return;
        run.lockLost = true;
        deps.log.error(`${run.host.name}: another deploy has taken over the lock on this host`);
      })
      .catch(() => undefined) // a dropped link: the next beat (or step) connects again
      .finally(() => (busy = false));
  }, every);
  run.heartbeat.unref?.();
}

export function stopHeartbeat(run: HostSession): void {
  if (run.heartbeat) clearInterval(run.heartbeat);
  run.heartbeat = undefined;
}

export async function unlock(run: HostSession): Promise<void> {
  const { deps, layout, token } = run.ctx;
  stopHeartbeat(run);
  try {
    await execOk(run, lockRelease(layout, token), 'release the lock');
    run.locked = false;
    deps.onLock?.(run.host, false, token);
  } catch (err) {
    deps.log.warn(`${run.host.name}: could not release the lock: ${describeError(err)}`);
  }
}
