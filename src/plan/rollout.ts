import type { RolloutSettings } from '../settings/types.js';

/**
 * The order a fleet is deployed in, as data: canaries first (in batches of their own), then the
 * other hosts in batches of `max-parallel`. A batch starts only when the one before passed its
 * post-deploy checks and stability window.
 */

/** Hosts at once: the count, or the percentage of the fleet rounded up; at least one. */
export function batchSize(hosts: number, rollout: RolloutSettings): number {
  const n =
    typeof rollout.maxParallel === 'number'
      ? rollout.maxParallel
      : Math.ceil((hosts * rollout.maxParallel.percent) / 100);
  return Math.max(1, Math.min(n, Math.max(1, hosts)));
}

/** How many of the batches are canaries. */
export function canaryBatches(hosts: number, rollout: RolloutSettings): number {
  const canary = Math.min(rollout.canary, hosts);
  return canary === 0 ? 0 : Math.ceil(canary / batchSize(hosts, rollout));
}

/** Host indexes, batch by batch. */
export function rolloutBatches(hosts: number, rollout: RolloutSettings): number[][] {
  const per = batchSize(hosts, rollout);
  const canary = Math.min(rollout.canary, hosts);
  const out: number[][] = [];
  const chunk = (from: number, to: number) => {
    for (let i = from; i < to; i += per)
      out.push(Array.from({ length: Math.min(per, to - i) }, (_, k) => i + k));
  };
  chunk(0, canary);
  chunk(canary, hosts);
  return out;
}
