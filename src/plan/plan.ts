import { posix } from 'node:path';
import * as bgc from '../remote/blue-green.js';
import * as cmd from '../remote/commands.js';
import { backupPath, manifestPath, releaseDir, stagingDir, type Layout } from '../remote/layout.js';
import { lines, sh, userScript, type Shell } from '../remote/shell.js';
import type { Colour, Settings } from '../settings/types.js';

/**
 * The deploy of one host as data. A pure function of the settings and what the host reported,
 * so tests assert the exact steps and scripts, and a dry run prints them without a connection.
 */

export type Action =
  | { readonly kind: 'exec'; readonly script: Shell }
  | { readonly kind: 'upload'; readonly script: Shell }
  | { readonly kind: 'verify'; readonly script: Shell }
  /** Runs `script` with the env file's text (settings.env, never part of the plan) on its stdin. */
  | { readonly kind: 'write-env'; readonly script: Shell }
  | { readonly kind: 'await-running'; readonly script: Shell }
  /**
   * The post-deploy checks. `colour`: before a blue-green flip, only the checks that reach the
   * idle colour (with the stability window); `live`: after the flip, every check once.
   */
  | { readonly kind: 'checks'; readonly on?: 'colour' | 'live' };

/** A step that runs one remote script: every undo and finalize step is one. */
export interface ExecStep {
  readonly id: string;
  readonly title: string;
  readonly action: { readonly kind: 'exec'; readonly script: Shell };
}

export interface Step {
  readonly id: string;
  readonly title: string;
  readonly action: Action;
  /** What puts the host back the way it was, run in reverse order when a later step fails. */
  readonly undo?: ExecStep;
  /** Steps from here on run with the service stopped or the new release live. */
  readonly touchesService?: boolean;
  /**
   * The step starts the new release (a blue-green colour, before any traffic reaches it): like a
   * step that touches the service, it waits for the run-once command of its batch.
   */
  readonly startsRelease?: boolean;
  /**
   * The step changes nothing unless it succeeds (a rename, an atomic switch), so its undo is
   * registered only after it succeeded: undoing a step that failed could hit someone else's data
   * (an existing release directory, a live tree that was never moved).
   */
  readonly undoAfterSuccess?: boolean;
}

export interface HostFacts {
  /** The directory `current` points at (releases) or the live tree (in-place), if any. */
  readonly previous?: string;
  /** The commit of the newest release recorded good on this host. */
  readonly lastGoodCommit?: string;
  /** systemd: the unit's ActiveState before this deploy, to tell whether a failed stop changed it. */
  readonly serviceState?: string;
  /** blue-green: the colour the proxy's upstream file names (none before the first flip). */
  readonly colour?: Colour;
}

export interface HostPlan {
  readonly layout: Layout;
  /**
   * Undo steps of the part an earlier phase already ran (the post-deploy phase inherits those of
   * the deploy phase), registered as if this run had done them.
   */
  readonly initialUndo: readonly ExecStep[];
  /** The service was touched by an earlier phase already. */
  readonly serviceTouched: boolean;
  readonly previousRelease?: string;
  readonly steps: readonly Step[];
  /** Runs after every host passed: marks the release good; pruning follows. */
  readonly finalize: readonly ExecStep[];
  readonly backup?: string;
  /** The service's recent log lines, shown when it does not stay up. */
  readonly serviceLogs?: Shell;
  /** blue-green: the colour the release starts on, and the one live before (if any). */
  readonly colours?: { readonly idle: Colour; readonly live?: Colour };
}

/** The owner record written into the lock: enough to tell a person whose deploy holds it. */
export function lockOwner(settings: Settings, token: string, at: Date): string {
  return JSON.stringify({
    token,
    run: settings.run.runId,
    commit: settings.run.commit,
    ref: settings.run.ref,
    actor: settings.run.actor,
    release: settings.releaseId,
    url: settings.run.runUrl,
    at: at.toISOString(),
    // Refreshed while the deploy runs; abandoned once it goes this long without a refresh.
    ttl: `${Math.round(settings.lock.ttlMs / 1000)}s`
  });
}

/** The lock script for a host: taken before anything is read or planned (see `deploy`). */
export function lockScript(settings: Settings, layout: Layout, token: string, now: Date): Shell {
  return cmd.lockAcquire(layout, lockOwner(settings, token, now), Math.ceil(settings.lock.ttlMs / 1000));
}

export interface PlanOptions {
  readonly now: Date;
  readonly fileCount: number;
  /** `ship` a new release (upload, verify, promote), or `reuse` one already on the host, verified. */
  readonly source?: 'ship' | 'reuse';
  /**
   * Which part of the deploy: `all`; `switch`, up to starting the new release (the `deploy`
   * sub-action); `post`, from the running check on (`post-deploy`), with `facts.previous` being
   * the release to return to.
   */
  readonly part?: 'all' | 'switch' | 'post';
  /** This host runs the `run-once` command (the first host of the first batch). */
  readonly runOnce?: boolean;
}

/** The ids of the steps a `post` part starts with: everything before them ran in the deploy phase. */
const POST_STEPS = new Set(['running', 'checks']);

export function planHost(settings: Settings, layout: Layout, facts: HostFacts, opts: PlanOptions): HostPlan {
  const full = planAll(settings, layout, facts, opts);
  const part = opts.part ?? 'all';
  if (part === 'all') return full;
  const cut = full.steps.findIndex(s => POST_STEPS.has(s.id));
  const before = full.steps.slice(0, cut);
  if (part === 'switch') return { ...full, steps: before, finalize: [] };
  return {
    ...full,
    steps: full.steps.slice(cut),
    initialUndo: before.flatMap(s => (s.undo ? [s.undo] : [])),
    serviceTouched: before.some(s => s.touchesService)
  };
}

function planAll(settings: Settings, layout: Layout, facts: HostFacts, opts: PlanOptions): HostPlan {
  const id = settings.releaseId;
  const staging = stagingDir(layout, id);
  const release = releaseDir(layout, id);
  const service = cmd.serviceCommands(settings.service, layout);
  const steps: Step[] = [];
  const exec = (script: Shell) => ({ kind: 'exec', script }) as const;
  const ship = opts.source !== 'reuse';

  if (ship)
    steps.push({
      id: 'stage',
      title: 'Prepare a staging directory',
      action: exec(cmd.prepareStaging(staging)),
      undo: { id: 'unstage', title: 'Remove the staging directory', action: exec(cmd.removePaths([staging])) }
    });
  if (ship)
    steps.push({
      id: 'upload',
      title: 'Upload the artifact',
      // What a full upload runs (staging again included: the executor sends the stage step with it);
      // an incremental one adds the links of unchanged files (see uploadScript).
      action: { kind: 'upload', script: cmd.uploadScript(staging) }
    });
  if (ship)
    steps.push({
      id: 'verify',
      title: 'Verify the SHA-256 of every file on the host',
      action: {
        kind: 'verify',
        script: cmd.verifyManifest(staging, opts.fileCount, manifestPath(layout, id))
      }
    });
  // From here the directory that holds the new tree is `incoming` (the final release dir or,
  // in-place, the staged tree that will replace the live one).
  const incoming = layout.strategy === 'releases' ? release : staging;
  if (ship && layout.strategy === 'releases') {
    steps.push({
      id: 'promote',
      title: `Move the verified tree to releases/${id}`,
      action: exec(cmd.promote(staging, release)),
      undoAfterSuccess: true,
      undo: {
        id: 'mark-failed',
        title: `Mark release ${id} failed`,
        action: exec(cmd.markRelease(layout, id, 'failed', opts.now, settings.run.commit))
      }
    });
  }
  if (ship && settings.target.shared.length) {
    steps.push({
      id: 'shared',
      title: `Link shared entries (${settings.target.shared.join(', ')})`,
      action: exec(cmd.linkShared(layout.sharedDir, incoming, settings.target.shared))
    });
  }
  if (ship && settings.env.vars.length) {
    const names = settings.env.vars.map(v => v.name);
    const shown = names.length > 8 ? `${names.slice(0, 8).join(', ')}, …` : names.join(', ');
    steps.push({
      id: 'env',
      // Names only: the values may be secrets.
      title: `Write ${settings.env.file} (${names.length} variable${names.length === 1 ? '' : 's'}: ${shown})`,
      action: { kind: 'write-env', script: cmd.writeEnvFile(posix.join(incoming, settings.env.file)) }
    });
  }
  if (ship && settings.beforeSwitch) {
    steps.push({
      id: 'before-switch',
      title: 'Run the before-switch command in the new release',
      action: exec(cmd.beforeSwitch(incoming, id, settings.beforeSwitch))
    });
  }
  if (ship && settings.runOnce && opts.runOnce) {
    steps.push({
      id: 'run-once',
      title: 'Run the run-once command (on this host only, before any host switches)',
      action: exec(cmd.beforeSwitch(incoming, id, settings.runOnce))
    });
  }
  const svc = settings.service;
  if (svc.manager === 'systemd' && svc.blueGreen && layout.strategy === 'releases') {
    const colours = blueGreenSteps(steps, settings, svc, svc.blueGreen, layout, facts, release);
    return {
      ...finish(settings, layout, facts, opts, steps, undefined),
      colours,
      serviceLogs: cmd.serviceCommands(bgc.colourService(svc, colours.idle), layout)?.logs
    };
  }
  const reload =
    svc.manager !== 'none' && svc.switch === 'reload' && facts.previous
      ? reloadScript(settings, layout)
      : undefined;
  let backup: string | undefined;
  if (layout.strategy === 'in-place' && facts.previous) {
    backup = backupPath(layout, opts.now);
    steps.push({
      id: 'backup',
      title: `Back up the live tree to ${posix.basename(backup)}`,
      action: exec(cmd.backupTree(layout, backup))
    });
  }
  if (service && !reload) {
    steps.push({
      id: 'stop',
      title: 'Stop the service',
      action: exec(service.stop),
      touchesService: true,
      // With no release live before, there is nothing to start again.
      undo: facts.previous
        ? { id: 'restart-old', title: 'Start the service again', action: exec(service.start) }
        : undefined
    });
  }
  if (layout.strategy === 'releases') {
    steps.push({
      id: 'switch',
      title: `Switch current to ${id}`,
      action: exec(cmd.switchCurrent(layout, release, id)),
      touchesService: true,
      undoAfterSuccess: true,
      undo: facts.previous
        ? {
            id: 'switch-back',
            title: `Switch current back to ${posix.basename(facts.previous)}${reload ? ' and reload' : ''}`,
            action: exec(lines(cmd.switchCurrent(layout, facts.previous, `rollback-${id}`), reload))
          }
        : {
            id: 'unswitch',
            title: 'Remove current (there was no release before)',
            action: exec(cmd.removeCurrent(layout))
          }
    });
  } else {
    steps.push({
      id: 'switch',
      title: 'Replace the live tree with the new one',
      action: exec(cmd.replaceTree(layout, staging)),
      touchesService: true,
      undoAfterSuccess: true,
      undo: {
        id: 'restore',
        title: backup
          ? `Restore the backup ${posix.basename(backup)}${reload ? ' and reload' : ''}`
          : 'Remove the new tree (there was none before)',
        action: exec(lines(cmd.restoreTree(layout, backup), reload))
      }
    });
  }
  if (service && reload) {
    steps.push({
      id: 'reload',
      title: 'Reload the service (it picks up the new release)',
      action: exec(reload),
      touchesService: true
    });
  } else if (service) {
    steps.push({
      id: 'start',
      title: 'Start the service',
      action: exec(service.start),
      touchesService: true,
      undo: { id: 'stop-new', title: 'Stop the new release', action: exec(service.stop) }
    });
  }
  if (service) {
    steps.push({
      id: 'running',
      title: 'Service is active and its main PID alive',
      action: { kind: 'await-running', script: service.status },
      touchesService: true
    });
  }
  steps.push({
    id: 'checks',
    title: 'Post-deploy health checks',
    action: { kind: 'checks' },
    touchesService: true
  });
  return finish(settings, layout, facts, opts, steps, backup);
}

/** What every plan ends with: marking the release good, and what the host had before. */
function finish(
  settings: Settings,
  layout: Layout,
  facts: HostFacts,
  opts: PlanOptions,
  steps: Step[],
  backup: string | undefined
): HostPlan {
  const id = settings.releaseId;
  const exec = (script: Shell) => ({ kind: 'exec', script }) as const;
  const service = cmd.serviceCommands(settings.service, layout);
  const finalize: ExecStep[] = [
    {
      id: 'mark-good',
      title: `Record release ${id} as good`,
      action: exec(cmd.markRelease(layout, id, 'good', opts.now, settings.run.commit))
    }
  ];
  return {
    layout,
    initialUndo: [],
    serviceTouched: false,
    previousRelease:
      layout.strategy === 'in-place'
        ? backup
          ? posix.basename(backup)
          : undefined
        : facts.previous
          ? posix.basename(facts.previous)
          : undefined,
    steps,
    finalize,
    backup,
    serviceLogs: service?.logs
  };
}

/** `switch: reload`: what makes the running service pick up the release `current` now names. */
function reloadScript(settings: Settings, layout: Layout): Shell | undefined {
  const svc = settings.service;
  if (svc.manager === 'systemd') return sh`${cmd.sudoPrefix(svc.sudo)}${cmd.systemdWords(svc.name).reload}`;
  if (svc.manager === 'command' && svc.reload)
    return lines(sh`cd -- ${layout.current}`, userScript(svc.reload));
  return undefined;
}

/**
 * blue-green: the release starts on the idle colour and is checked there while the live colour
 * serves; then the proxy flips, the checks run through it, and the old colour drains and stops.
 * Until the drain, a rollback is a flip back to a colour that never stopped.
 */
function blueGreenSteps(
  steps: Step[],
  settings: Settings,
  svc: Extract<Settings['service'], { manager: 'systemd' }>,
  bg: NonNullable<Extract<Settings['service'], { manager: 'systemd' }>['blueGreen']>,
  layout: Layout,
  facts: HostFacts,
  release: string
): { idle: Colour; live?: Colour } {
  const id = settings.releaseId;
  const exec = (script: Shell) => ({ kind: 'exec', script }) as const;
  const sudo = cmd.sudoPrefix(svc.sudo);
  const live = facts.colour;
  const idle: Colour = live ? bgc.otherColour(live) : 'blue';
  const unit = (c: Colour) => bgc.instanceOf(svc.name, c);
  const idleCmds = cmd.serviceCommands(bgc.colourService(svc, idle), layout)!;
  steps.push({
    id: 'colour',
    title: `Point ${idle} at ${id} (port ${bg.ports[idle]})`,
    action: exec(bgc.pointColour(layout, bg, idle, release))
  });
  steps.push({
    id: 'start',
    title: `Start ${unit(idle)}, the idle colour (no traffic yet)`,
    action: exec(sh`${sudo}${bgc.colourWords(svc.name, idle).restart}`),
    startsRelease: true,
    // After a flip back, nginx's old workers may still carry requests to this colour: they
    // finish first (up to the drain time).
    undo: {
      id: 'stop-new',
      title: `Stop ${unit(idle)}`,
      action: exec(bgc.stopColour(svc.name, svc.sudo, idle, bg.drainMs))
    }
  });
  steps.push({
    id: 'running',
    title: `${unit(idle)} is active and its main PID alive`,
    action: { kind: 'await-running', script: idleCmds.status }
  });
  steps.push({
    id: 'checks',
    title: `Health checks on ${idle} before it gets traffic`,
    action: { kind: 'checks', on: 'colour' }
  });
  const back =
    live && facts.previous
      ? {
          id: 'flip-back',
          title: `Flip the proxy back to ${live} (${posix.basename(facts.previous)})`,
          action: exec(bgc.flipBack(layout, bg, svc.name, svc.sudo, live, facts.previous, `back-${id}`))
        }
      : {
          id: 'unflip',
          title: 'Put the proxy and current back as they were (no colour was live)',
          action: exec(bgc.unflip(layout, bg, svc.sudo, facts.previous))
        };
  steps.push({
    id: 'flip',
    title: `Flip the proxy to ${idle} (port ${bg.ports[idle]}) and current to ${id}`,
    action: exec(bgc.flip(layout, bg, svc.sudo, idle, release, id)),
    touchesService: true,
    // Registered before it runs: a flip that failed half-way (nginx reloaded, no new workers seen)
    // is flipped back all the same; flipping back to the live colour is harmless.
    undo: back
  });
  steps.push({
    id: 'checks-live',
    title: 'Health checks with the new release live',
    action: { kind: 'checks', on: 'live' },
    touchesService: true
  });
  if (live)
    steps.push({
      id: 'drain',
      title: `Drain ${unit(live)} for ${bg.drainMs / 1000} s, then stop it`,
      action: exec(bgc.drain(svc.name, svc.sudo, live, bg.drainMs)),
      touchesService: true,
      undo: {
        id: 'start-old',
        title: `Start ${unit(live)} again`,
        action: exec(sh`${sudo}${bgc.colourWords(svc.name, live).start}`)
      }
    });
  return { idle, live };
}

export interface ReleaseInfo {
  readonly id: string;
  readonly status: 'good' | 'failed' | 'unknown';
  readonly at?: string;
}

/** Parses the `id<TAB>status time` lines of `listReleases`. */
export function parseReleaseList(text: string): ReleaseInfo[] {
  return text
    .split('\n')
    .filter(l => l.includes('\t'))
    .map(l => {
      const [id = '', rest = ''] = l.split('\t');
      const [status = 'unknown', at] = rest.trim().split(/\s+/);
      return { id, status: status === 'good' || status === 'failed' ? status : 'unknown', at };
    });
}

/**
 * Newest release first, by the time its record gives (ISO 8601), then by id. Compared by code
 * unit, not `localeCompare`: the same order on every machine, and no locale data to load (its
 * first use costs several milliseconds at every start).
 */
export function newestFirst(a: ReleaseInfo, b: ReleaseInfo): number {
  const order = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return order(b.at ?? '', a.at ?? '') || order(b.id, a.id);
}

/**
 * Which releases to delete after a good deploy. Only good releases count toward `keep`; the
 * live one and the newest good one are never deleted; failed ones are kept only while they are
 * the newest failure (for debugging); releases with no record are left alone (not ours to judge).
 */
export function planPrune(releases: readonly ReleaseInfo[], live: string, keep: number): string[] {
  const good = releases.filter(r => r.status === 'good').sort(newestFirst);
  const failed = releases.filter(r => r.status === 'failed').sort(newestFirst);
  const keepIds = new Set<string>([
    live,
    ...good.slice(0, Math.max(1, keep)).map(r => r.id),
    ...failed.slice(0, 1).map(r => r.id)
  ]);
  return [...good, ...failed].filter(r => !keepIds.has(r.id)).map(r => r.id);
}
