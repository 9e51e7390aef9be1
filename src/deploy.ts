import { connectHost, ReconnectingShell } from './io/ssh.js';
import type { Logger } from './io/log.js';
import { checksFor, runChecks } from './checks/runner.js';
import { deploy } from './execute/execute.js';
import { hashCacheDir } from './execute/upload.js';
import type { DeployDeps } from './execute/session.js';
import type { DeployMode, DeployResult } from './execute/result.js';
import { lockScript, planHost } from './plan/plan.js';
import { probe } from './remote/commands.js';
import { layoutFor } from './remote/layout.js';
import { preflightProbe } from './preflight.js';
import { remoteCommandLine } from './remote/shell.js';
import { judgesEachHost, type HostSettings, type Settings } from './settings/types.js';
import { blueGreenOf, readLiveColour } from './remote/blue-green.js';
import { ArtifactError, scanArtifact, type Artifact } from './transfer/artifact.js';
import { ConfigError } from './errors.js';

/**
 * Scans the artifact before any host is contacted: a bad artifact is a config problem. With
 * `identify`, each file carries what the hash cache compares (see `hashArtifact`).
 */
export async function readArtifact(settings: Settings, identify = false): Promise<Artifact> {
  let artifact: Artifact;
  try {
    artifact = await scanArtifact(settings.artifact, { exclude: settings.exclude, identify });
  } catch (err) {
    if (err instanceof ArtifactError) throw new ConfigError(`artifact: ${err.message}`, err.hint);
    throw err;
  }
  // The env file replaces that path in the release: a file of the artifact there would be lost,
  // and the release would no longer match its manifest (a later rollback to it would be refused).
  const envFile = settings.env.file;
  const clash = settings.env.vars.length
    ? artifact.entries.find(e => e.path === envFile || (e.kind !== 'dir' && envFile.startsWith(`${e.path}/`)))
    : undefined;
  if (clash)
    throw new ConfigError(
      `artifact: it holds ${clash.path}, where the \`env:\` variables are written (env-file: ${envFile})`,
      `Leave it out of the artifact (exclude: ['/${envFile}']) or write the variables elsewhere (env-file: .env.production).`
    );
  return artifact;
}

export interface RunOptions {
  readonly log: Logger;
  readonly signal?: AbortSignal;
  /** The last gate before anything changes (the secret scan), with the hosts' last good commit. */
  readonly beforeChanges?: DeployDeps['beforeChanges'];
  readonly onLock?: (host: HostSettings, held: boolean, token: string) => void;
  /** Why this deploy happens, for the hosts' records. */
  readonly why?: string;
  /** Applied to the hosts' records before they are written (secrets out). */
  readonly redact?: (text: string) => string;
  /** Where the artifact's file hashes are kept between runs (see `hashArtifact`). */
  readonly hashCache?: string;
}

/**
 * The whole guarded deploy (or one phase of it: `mode`), wired to real SSH, real HTTP and the
 * real clock. The artifact is read first for the phases that ship one.
 */
export async function runDeploy(
  settings: Settings,
  opts: RunOptions,
  mode: DeployMode = { kind: 'full' }
): Promise<DeployResult> {
  let artifact: Artifact | undefined;
  if (mode.kind === 'full' || mode.kind === 'switch') {
    // With a hash cache, the scan's own lstat tells which files it knows.
    artifact = await readArtifact(settings, hashCacheDir(settings, opts.hashCache) !== undefined);
    opts.log.info(
      `artifact ${settings.artifact}: ${artifact.fileCount} files, ${(artifact.totalBytes / 1e6).toFixed(1)} MB`
    );
  }
  return deploy(
    settings,
    artifact,
    {
      log: opts.log,
      // A dropped link is reopened for the commands after it: the rollback, the record and the
      // unlock still reach the host.
      connect: async host =>
        new ReconnectingShell(
          await connectHost(host, settings.ssh, opts.log),
          () => connectHost(host, settings.ssh, opts.log),
          opts.log
        ),
      runChecks: (stage, hosts, release) =>
        runChecks(
          checksForDeployStage(settings, stage).filter(c => !release.eachHostOnly || judgesEachHost(c)),
          stage,
          {
            context: { release: release.id, commit: release.commit },
            hosts,
            // A cancelled job stops waiting on checks at once, leaving its seconds for the rollback.
            // Rollback verification runs to the end: it is what proves the host is safe.
            signal: stage === 'rollback' ? undefined : opts.signal
          }
        ),
      now: () => new Date(),
      sleep: ms => new Promise(r => setTimeout(r, ms)),
      signal: opts.signal,
      beforeChanges: opts.beforeChanges,
      onLock: opts.onLock,
      why: opts.why,
      redact: opts.redact,
      hashCache: opts.hashCache
    },
    mode
  );
}

/**
 * The checks of a deploy stage. Rollback verification runs the post-deploy checks against the
 * restored release, except version checks: those expect the release that was just rolled back.
 */
export function checksForDeployStage(settings: Settings, stage: 'pre' | 'post' | 'rollback') {
  const checks = checksFor(settings.checks, stage === 'pre' ? 'pre' : 'post');
  return stage === 'rollback' ? checks.filter(c => c.type !== 'version') : checks;
}

/** The plan as text: every step and remote command, with no connection made. */
export async function dryRun(settings: Settings): Promise<string> {
  const artifact = await readArtifact(settings);
  const layout = layoutFor(settings.target);
  const bg = blueGreenOf(settings.service);
  const plan = planHost(
    settings,
    layout,
    {
      previous: layout.strategy === 'releases' ? `${layout.releasesDir}/<current release>` : layout.current,
      // blue-green: shown as if blue were live; the real deploy reads the colour from the host.
      ...(bg ? { colour: 'blue' as const } : {})
    },
    // As on the first host: with `run-once`, its step shows where it runs (there only).
    { now: new Date(), fileCount: artifact.fileCount, runOnce: true }
  );
  const lock = lockScript(settings, layout, '<lock token>', new Date());
  const out = [
    `Dry run: release ${settings.releaseId} to ${settings.hosts.map(h => `${h.name} (${h.user}@${h.host}:${h.port}${h.jump ? ` via ${h.jump.user}@${h.jump.host}:${h.jump.port}` : ''})`).join(', ')}`,
    `Artifact: ${artifact.root} (${artifact.fileCount} files, ${artifact.totalBytes} bytes)`,
    `Nothing was changed and no host was contacted. On each host, in order:`,
    '',
    '0. Lock the host',
    ...indent(remoteCommandLine(lock)),
    '0b. Read the host state, with the preflight (tools, write access, free disk, unit, sudo); a failure stops here',
    ...indent(remoteCommandLine(probe(layout, preflightProbe(settings), bg && readLiveColour(bg))))
  ];
  if (bg)
    out.push(
      '',
      `blue-green: shown as if blue were live (${bg.upstreamFile} names the live colour on each host); the new release starts on green.`
    );
  if (!settings.ssh.insecureSkipHostKeyCheck) {
    const unpinned = (h: HostSettings) => h.fingerprints.length === 0 && h.knownHosts.length === 0;
    for (const h of settings.hosts.flatMap(h => [h, ...(h.jump ? [h.jump] : [])]).filter(unpinned)) {
      out.splice(
        3,
        0,
        `WARNING: ${h.name} has no pinned host key; a real deploy will refuse it and show the key it offers.`
      );
    }
  }
  plan.steps.forEach((s, i) => {
    out.push(`${i + 1}. ${s.title}`);
    if ('script' in s.action) out.push(...indent(remoteCommandLine(s.action.script)));
    else if (s.action.kind === 'checks') {
      const post = checksFor(settings.checks, 'post').filter(
        c => s.action.kind !== 'checks' || s.action.on !== 'colour' || judgesEachHost(c)
      );
      out.push(
        `     (runs ${post.length} post-deploy checks: ${post.map(c => c.name).join(', ') || 'none'})`
      );
    }
    if (s.undo && 'script' in s.undo.action) {
      out.push(`   on failure later: ${s.undo.title}`, ...indent(remoteCommandLine(s.undo.action.script)));
    }
  });
  out.push(
    '',
    'After every host passed:',
    ...plan.finalize.map(s => `- ${s.title}`),
    '- prune old releases',
    '- release the lock'
  );
  return out.join('\n');
}

function indent(text: string): string[] {
  return text.split('\n').map(l => `     ${l}`);
}
