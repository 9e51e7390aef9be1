import {
  LINKED_CHANGED,
  hasherFor,
  PARALLEL_LINKS,
  STAGED_MARK,
  statPath,
  readPreviousRelease,
  uploadScript,
  verifySent,
  type LinkList
} from '../remote/commands.js';
import { layoutFor, manifestPath, releaseDir, stagingDir } from '../remote/layout.js';
import { hashArtifact, parseManifest, parseModes, planDelta, reusedHashes } from '../transfer/delta.js';
import { type Shell } from '../remote/shell.js';
import type { Settings } from '../settings/types.js';
import { manifestText, type Artifact } from '../transfer/artifact.js';
import { writeArchive } from '../transfer/tar.js';
import {
  StepFailed,
  STEP_TIMEOUT_MS,
  tail,
  type DeployContext,
  type HostSession,
  recordDone,
  recordFailed
} from './session.js';

/** Shipping the artifact: the tar stream, the incremental links, and the check on the host. */

/**
 * Streams the artifact (or, incremental, only the files that changed) as one tar stream into the
 * staging directory, hashing every file from the bytes sent.
 */
export async function uploadArtifact(run: HostSession): Promise<void> {
  const { deps, artifact, settings } = run.ctx;
  if (!artifact) throw new StepFailed(`${run.host.name}: no artifact to upload`, 'deploy');
  const layout = run.plan?.layout ?? run.ctx.layout;
  const staging = stagingDir(layout, settings.releaseId);
  const delta = run.fullUpload ? undefined : await prepareDelta(run, artifact);
  const shipped = delta?.send ?? artifact;
  const linking =
    delta && run.plan?.previousRelease
      ? linkInput(artifact, delta.link, releaseDir(layout, run.plan.previousRelease))
      : undefined;
  const script = uploadScript(staging, linking?.link, hasherFor(shipped.totalBytes, shipped.fileCount));
  let sent = 0;
  let archive: Promise<Map<string, string>> | undefined;
  const started = Date.now();
  const at = deps.now().getTime();
  // Large uploads report how far they are, so a slow link is seen as slow, not as hung.
  const progress =
    shipped.totalBytes >= PROGRESS_MIN_BYTES
      ? setInterval(
          () => deps.log.info(uploadProgress(run.host.name, sent, shipped.totalBytes, Date.now() - started)),
          PROGRESS_EVERY_MS
        )
      : undefined;
  const r = await run.shell
    .exec(script, {
      stdin: channel => {
        if (linking) channel.write(linking.stdin);
        return (archive = writeArchive(shipped, channel, {
          onProgress: bytes => (sent = bytes),
          shared: run.ctx.shared
        }));
      }
    })
    .finally(() => clearInterval(progress));
  // The staging step ran as the start of this script: recorded as its own step.
  const staged = run.staging;
  run.staging = undefined;
  if (staged) {
    if (r.code === 0 || run.shell.alive === false || r.stdout.includes(STAGED_MARK))
      recordDone(run, staged.step, 0, at);
    else recordFailed(run, staged.step, Date.now() - started, at, tail(r.stderr));
  }
  // A channel that closed early (connection drop, remote tar died) rejects the archive: the
  // writer sees the channel close and stops.
  const hashes = await (archive ?? Promise.reject(new Error('the upload never started'))).catch(
    (e: unknown) => (e instanceof Error ? e : new Error(String(e)))
  );
  if (r.code !== 0)
    throw new StepFailed(`${run.host.name}: upload failed (exit ${r.code}): ${tail(r.stderr)}`, 'deploy');
  if (hashes instanceof Error) {
    const hint = (hashes as { hint?: string }).hint;
    throw new StepFailed(
      `${run.host.name}: the artifact could not be sent: ${hashes.message}`,
      'deploy',
      hint
    );
  }
  // The files sent are hashed from the bytes sent; the linked ones by the hash they share
  // with the previous release. Verification checks the whole tree against both.
  run.hashes = delta ? new Map([...delta.local, ...hashes]) : hashes;
  run.sent = delta ? new Set(hashes.keys()) : undefined;
  const secs = Math.max(0.001, (Date.now() - started) / 1000);
  const reused = reusedHashes(artifact);
  deps.log.info(
    `${run.host.name}: ${shipped.fileCount} files, ${(shipped.totalBytes / 1e6).toFixed(1)} MB sent in ${secs.toFixed(1)} s (${(shipped.totalBytes / 1e6 / secs).toFixed(1)} MB/s)${delta ? `; ${delta.link.length} unchanged files linked from ${run.plan?.previousRelease}${reused ? ` (${reused} of the artifact's hashes from the cache)` : ''}` : ''}`
  );
}

/**
 * What an incremental upload sends before its tar stream: the artifact's directories (when the
 * host links in parallel), then the paths to link, each NUL-separated (see `uploadScript`).
 */
function linkInput(
  artifact: Artifact,
  paths: readonly string[],
  from: string
): { link: LinkList; stdin: Buffer } {
  const nul = (names: readonly string[]) => Buffer.from(names.map(n => `${n}\0`).join(''));
  const parallel = paths.length >= PARALLEL_LINKS;
  const dirs = parallel
    ? nul(artifact.entries.flatMap(e => (e.kind === 'dir' ? [e.path] : [])))
    : Buffer.alloc(0);
  const files = nul(paths);
  return {
    link: { from, dirBytes: dirs.length, bytes: files.length, count: paths.length, parallel },
    stdin: Buffer.concat([dirs, files])
  };
}

/**
 * The host checks every file of the staging directory against the hashes of the bytes sent. An
 * incremental upload that does not verify (the previous release changed on the host) is sent
 * again in full, once.
 */
export async function verifyUpload(run: HostSession, script: Shell): Promise<void> {
  const q = verifyRequest(run, script);
  const r = await run.shell.exec(q.script, { stdin: q.stdin });
  linkedChanged(run, r.stdout);
  if (r.code !== 0) await verifyFailed(run, r, script);
}

/** Says so when linked files differed from the previous release's record (see `verifySent`). */
export function linkedChanged(run: HostSession, stdout: string): void {
  const n = new RegExp(`^${LINKED_CHANGED}=(\\d+|all)$`, 'm').exec(stdout)?.[1];
  if (n === undefined || n === '0') return;
  run.ctx.deps.log.info(
    n === 'all'
      ? `${run.host.name}: ${run.plan?.previousRelease} kept no record to check the linked files by; hashing every file`
      : `${run.host.name}: ${n} linked file(s) changed on the host since ${run.plan?.previousRelease} was verified; hashing every file`
  );
}

/**
 * The verification to send: the plan's script with the whole manifest on stdin, or, after an
 * incremental upload whose linked files matched their record, only the files sent (see `verifySent`).
 * It may run on its own or as the first part of a step group (it alone reads stdin).
 */
export function verifyRequest(
  run: HostSession,
  script: Shell
): { readonly script: Shell; readonly stdin: string } {
  const { settings } = run.ctx;
  const hashes = run.hashes;
  if (!hashes) throw new StepFailed(`${run.host.name}: nothing was uploaded to verify`, 'deploy');
  // Only an incremental upload verifies only what it sent, unless `verify: full` asks for every file.
  const sent = run.delta && !run.fullUpload && settings.transfer.verify !== 'full' ? run.sent : undefined;
  const layout = run.plan?.layout ?? run.ctx.layout;
  const previous = run.plan?.previousRelease;
  if (!sent || !previous) return { script, stdin: manifestText(hashes) };
  return {
    script: verifySent(
      stagingDir(layout, settings.releaseId),
      hashes.size,
      manifestPath(layout, settings.releaseId),
      statPath(manifestPath(layout, previous))
    ),
    stdin: `${manifestText(hashes)}--check--\n${manifestText(new Map([...hashes].filter(([p]) => sent.has(p))))}`
  };
}

/**
 * A verification that did not pass. An incremental upload is sent again in full and verified once
 * more (the previous release changed on the host since it was verified); returns when that passed.
 * Anything else throws.
 */
export async function verifyFailed(
  run: HostSession,
  r: { readonly code: number; readonly stdout: string; readonly stderr: string },
  script: Shell
): Promise<void> {
  const { deps } = run.ctx;
  if (run.shell.alive === false)
    throw new StepFailed(`${run.host.name}: the connection dropped during verification`, 'deploy');
  if (run.delta && !run.fullUpload) {
    // The previous release no longer matches its manifest (changed on the host since): the
    // links carried that change. Start over and send everything.
    deps.log.warn(
      `${run.host.name}: the incremental upload did not verify (the previous release was changed on the host?); sending every file.`
    );
    run.fullUpload = true;
    if (run.plan?.steps.some(x => x.id === 'upload' && x.action.kind === 'upload')) await uploadArtifact(run);
    return verifyUpload(run, script);
  }
  const bad = r.stdout
    .split('\n')
    .filter(l => /: FAILED/.test(l))
    .slice(0, 10);
  throw new StepFailed(
    `${run.host.name}: checksum verification failed on the host; the service was not touched.\n${bad.join('\n') || tail(r.stderr)}`,
    'deploy',
    'The upload was corrupted or the staging directory was changed during the deploy. Re-run the deploy; if it repeats, check the disk on the host (df, dmesg).'
  );
}

/** Artifacts from this size on log their upload progress. */
export const PROGRESS_MIN_BYTES = 20 * 1024 * 1024;

export const PROGRESS_EVERY_MS = 5000;

/** `web-1: upload 45% (45.0/99.0 MB, 38.2 MB/s, about 2 s left)` */
export function uploadProgress(host: string, sent: number, total: number, elapsedMs: number): string {
  const done = Math.min(sent, total);
  const rate = done / Math.max(0.001, elapsedMs / 1000);
  const left = rate > 0 ? Math.ceil((total - done) / rate) : undefined;
  return `${host}: upload ${Math.floor((done / Math.max(1, total)) * 100)}% (${(done / 1e6).toFixed(1)}/${(total / 1e6).toFixed(1)} MB, ${(rate / 1e6).toFixed(1)} MB/s, ${left === undefined ? 'time left unknown' : `about ${left} s left`})`;
}

/**
 * Whether an upload may link unchanged files from the previous release: only between releases
 * (in place there is no other tree), not with a `before-switch` command (it could write into
 * linked files, which the previous release shares), and not for a single-file artifact.
 */
export function mayLink(settings: Settings, artifact: Artifact): boolean {
  return (
    layoutFor(settings.target).strategy === 'releases' &&
    settings.transfer.incremental &&
    !settings.beforeSwitch &&
    !artifact.isFile
  );
}

/**
 * Plans an incremental upload against the previous release on this host and links its unchanged
 * files into the staging directory. Undefined means "send everything": no previous release, no
 * kept manifest, a `before-switch` command (it could write into linked files, which the previous
 * release shares), or `incremental: false`.
 */
export async function prepareDelta(
  run: HostSession,
  artifact: Artifact
): Promise<{ link: readonly string[]; send: Artifact; local: Map<string, string> } | undefined> {
  const { settings, deps } = run.ctx;
  const plan = run.plan;
  const previous = plan?.previousRelease;
  if (!plan || !previous || !mayLink(settings, artifact)) return undefined;
  const prevDir = releaseDir(plan.layout, previous);
  // The local hashes are computed while the host reads its manifest (and only once per fleet).
  const hashing = localHashes(run.ctx, artifact);
  // The probe read the live release's manifest with the host state; asked again only when the
  // release to link from is another one.
  const facts =
    run.previous?.id === previous
      ? run.previous
      : await readRelease(run, prevDir, manifestPath(plan.layout, previous));
  if (run.previous?.id !== previous) run.previous = undefined;
  // A file that cannot be read is reported by the upload, with the artifact's own error.
  const local = await hashing.catch(() => undefined);
  if (!facts || !local) {
    if (!facts) deps.log.info(`${run.host.name}: no kept manifest for ${previous}; sending every file`);
    return undefined;
  }
  const delta = planDelta(
    artifact,
    local,
    parseManifest(facts.manifest),
    parseModes(facts.modes),
    settings.target.shared.map(e => e.replace(/\/+$/, ''))
  );
  if (delta.link.length === 0) return undefined;
  run.delta = true;
  const linked = new Set(delta.link);
  return { ...delta, local: new Map([...local].filter(([p]) => linked.has(p))) };
}

/**
 * The artifact's SHA-256 hashes, which decide what is linked. The CLI's hash cache answers for
 * files untouched since they were hashed (see `hashCacheDir`).
 */
export function localHashes(ctx: DeployContext, artifact: Artifact): Promise<Map<string, string>> {
  return hashArtifact(artifact, { cacheDir: hashCacheDir(ctx.settings, ctx.deps.hashCache) });
}

/** The hash cache this deploy uses: the CLI's, unless `verify: full` asks for every byte to be read. */
export function hashCacheDir(settings: Settings, dir: string | undefined): string | undefined {
  return settings.transfer.verify === 'full' ? undefined : dir;
}

/** Another release's kept manifest and file modes; undefined when either is gone. */
async function readRelease(
  run: HostSession,
  dir: string,
  manifest: string
): Promise<{ manifest: string; modes: string } | undefined> {
  const r = await run.shell.exec(readPreviousRelease(dir, manifest), { timeoutMs: STEP_TIMEOUT_MS });
  if (r.code !== 0) return undefined;
  const [manifestPart = '', modes = ''] = r.stdout.split('\n--modes--\n');
  return { manifest: manifestPart, modes };
}
