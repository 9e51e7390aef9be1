import { posix } from 'node:path';
import type { TargetSettings } from '../settings/types.js';

/**
 * Where things live on a host. With `releases`, everything is under the base path; with
 * `in-place`, the target directory is the live tree itself, so deployguard keeps its own state in
 * a hidden sibling directory and never writes into the tree the service reads.
 */
export interface Layout {
  readonly strategy: TargetSettings['strategy'];
  readonly base: string;
  readonly releasesDir: string;
  readonly current: string;
  readonly sharedDir: string;
  readonly stateDir: string;
  readonly lockDir: string;
  readonly statusDir: string;
  /** Append-only record of every deploy to this target, one JSON object per line. */
  readonly deploymentsLog: string;
  /** Each release's SHA-256 manifest, kept so a release can be verified again before reuse. */
  readonly manifestsDir: string;
}

export function layoutFor(target: TargetSettings): Layout {
  const base = target.path;
  if (target.strategy === 'in-place') {
    const stateDir = posix.join(posix.dirname(base), `.${posix.basename(base)}.deployguard`);
    return {
      strategy: 'in-place',
      base,
      releasesDir: posix.dirname(base),
      current: base,
      sharedDir: posix.join(stateDir, 'shared'),
      stateDir,
      lockDir: posix.join(stateDir, 'lock'),
      statusDir: posix.join(stateDir, 'status'),
      deploymentsLog: posix.join(stateDir, 'deployments.jsonl'),
      manifestsDir: posix.join(stateDir, 'manifests')
    };
  }
  const stateDir = posix.join(base, '.deployguard');
  return {
    strategy: 'releases',
    base,
    releasesDir: posix.join(base, 'releases'),
    current: posix.join(base, 'current'),
    sharedDir: posix.join(base, 'shared'),
    stateDir,
    lockDir: posix.join(stateDir, 'lock'),
    statusDir: posix.join(stateDir, 'status'),
    deploymentsLog: posix.join(stateDir, 'deployments.jsonl'),
    manifestsDir: posix.join(stateDir, 'manifests')
  };
}

/** Where a release's manifest is kept. */
export function manifestPath(layout: Layout, releaseId: string): string {
  return posix.join(layout.manifestsDir, `${releaseId}.sha256`);
}

/** The directory a release lives in (releases strategy). */
export function releaseDir(layout: Layout, releaseId: string): string {
  return posix.join(layout.releasesDir, releaseId);
}

/** Upload target: never the live tree, so a cut connection leaves only a partial staging dir. */
export function stagingDir(layout: Layout, releaseId: string): string {
  return posix.join(layout.stateDir, 'staging', releaseId);
}

/** `<target>.backup-YYYYmmdd-HHMMSS`, the copy an in-place deploy restores on rollback. */
export function backupPath(layout: Layout, at: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp =
    `${at.getUTCFullYear()}${p(at.getUTCMonth() + 1)}${p(at.getUTCDate())}-` +
    `${p(at.getUTCHours())}${p(at.getUTCMinutes())}${p(at.getUTCSeconds())}`;
  return `${layout.base}.backup-${stamp}`;
}
