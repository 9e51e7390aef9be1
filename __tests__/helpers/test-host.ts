/**
 * The one way integration tests start a host: a sandbox sshd (the demo's, logging in as an
 * unprivileged user), a harness sshd (root, with extra config), or a harness systemd host. Each
 * comes with what the tests set up around it every time: a work directory on this machine, a run
 * directory the host's login user owns (for the hosts that share this machine's filesystem), a
 * target path for deploys, a free port for the sample app, and a stop() that undoes all of it.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startSandbox, type Sandbox, type SandboxOptions } from '../../src/demo/sandbox.js';
import {
  startSshd,
  startSystemdHost,
  type SystemdHost,
  type TestHost as SshdHost
} from '../harness/hosts.js';
import { killPidfile } from './deploy.js';

interface Common<H> {
  /** The host itself. */
  readonly host: H;
  /** A fresh directory on this machine (mode 755), removed by stop(). */
  readonly work: string;
  /** Where deploys go, as the host sees it. */
  readonly target: string;
  /** A port nobody listened on when the host started, for the sample app. */
  readonly appPort: number;
  /** Stops the app started from the run directory, the host, and removes the work directory. Idempotent. */
  stop(): Promise<void>;
}

/** A host that shares this machine's filesystem (a sandbox or a harness sshd). */
export interface LocalTestHost<H extends Sandbox | SshdHost = Sandbox> extends Common<H> {
  /** `<work>/run`, owned by the host's login user: the app's pidfile and log go here. */
  readonly runDir: string;
  /** Makes `dir` (and missing parents) and gives it to the host's login user; returns `dir`. */
  ownedDir(dir: string): Promise<string>;
}

/** A systemd host has its own root: `target` is `/srv/app` inside it, and there is no run directory. */
export type SystemdTestHost = Common<SystemdHost>;

/** The sandbox is what most tests deploy to, so it is the shape `TestHost` names. */
export type TestHost = LocalTestHost<Sandbox>;

interface Named {
  /** Names the work directory (`dg-<prefix>-XXXX`); defaults to the host's name. */
  readonly prefix?: string;
}

export interface SandboxHostOptions extends Named, Pick<SandboxOptions, 'logLevel'> {
  readonly kind?: 'sandbox';
  readonly prefix: string;
  /**
   * Mounts the run directory on this path in the sshd's own mount namespace (made on this machine
   * if missing), so several hosts can deploy to one path without seeing each other's files.
   */
  readonly runDirAt?: string;
}

export interface SshdHostOptions extends Named {
  readonly kind: 'sshd';
  readonly name: string;
  /** sshd_config lines placed before the harness's own. */
  readonly extraConfig?: readonly string[];
  /** The host key's type (the harness uses ed25519 unless told). */
  readonly hostKey?: 'ed25519' | 'ecdsa';
}

export interface SystemdHostOptions extends Named {
  readonly kind: 'systemd';
  readonly name: string;
}

/** Where deploys go on a systemd host. */
export const SYSTEMD_TARGET = '/srv/app';

export function startTestHost(opts: SandboxHostOptions): Promise<LocalTestHost<Sandbox>>;
export function startTestHost(opts: SshdHostOptions): Promise<LocalTestHost<SshdHost>>;
export function startTestHost(opts: SystemdHostOptions): Promise<SystemdTestHost>;
export async function startTestHost(
  opts: SandboxHostOptions | SshdHostOptions | SystemdHostOptions
): Promise<LocalTestHost<Sandbox> | LocalTestHost<SshdHost> | SystemdTestHost> {
  const prefix = opts.prefix ?? (opts.kind === 'sshd' || opts.kind === 'systemd' ? opts.name : 'host');
  const work = await mkdtemp(join(tmpdir(), `dg-${prefix}-`));
  const runDir = join(work, 'run');
  let host: Sandbox | SshdHost | SystemdHost | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (opts.kind !== 'systemd') killPidfile(join(runDir, 'app.pid'));
      try {
        await host?.stop();
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    })());
  try {
    await chmod(work, 0o755);
    if (opts.kind === 'systemd') {
      const booted = await startSystemdHost({ name: opts.name });
      host = booted;
      return { host: booted, work, target: SYSTEMD_TARGET, appPort: await freePort(), stop };
    }
    await mkdir(runDir);
    let target = join(runDir, 'srv', 'app');
    if (opts.kind === 'sshd') {
      host = await startSshd({ name: opts.name, extraConfig: opts.extraConfig, hostKey: opts.hostKey });
    } else {
      if (opts.runDirAt) {
        await mkdir(opts.runDirAt, { recursive: true });
        target = join(opts.runDirAt, 'srv', 'app');
      }
      host = await startSandbox({
        logLevel: opts.logLevel,
        ...(opts.runDirAt ? { bind: { source: runDir, target: opts.runDirAt } } : {})
      });
    }
    const user = host.user;
    const ownedDir = async (dir: string): Promise<string> => {
      await mkdir(dir, { recursive: true });
      if (process.getuid?.() === 0) execFileSync('chown', [`${user}:`, dir]);
      return dir;
    };
    await ownedDir(runDir);
    return { host, work, runDir, target, appPort: await freePort(), ownedDir, stop } as
      LocalTestHost<Sandbox> | LocalTestHost<SshdHost>;
  } catch (e) {
    await stop();
    throw e;
  }
}
