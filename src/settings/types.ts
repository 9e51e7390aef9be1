/**
 * The typed, readonly settings every other module reads. Produced once by `settings/parse.ts`
 * from action inputs (or CLI flags), environment variables and deployguard.yml.
 */

export interface HostSettings {
  /** Readable alias used in every log line, summary and error (never `***`). */
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Pins for this host: known_hosts lines and/or `SHA256:` fingerprints. */
  readonly knownHosts: readonly string[];
  readonly fingerprints: readonly string[];
}

export interface SshSettings {
  readonly privateKey?: string;
  readonly passphrase?: string;
  readonly password?: string;
  /** Explicit opt-out of host key pinning; warned about on every run. */
  readonly insecureSkipHostKeyCheck: boolean;
  readonly connectTimeoutMs: number;
  readonly connectRetries: number;
}

export type Strategy = 'releases' | 'in-place';

export interface TargetSettings {
  readonly path: string;
  readonly strategy: Strategy;
  readonly keepReleases: number;
  /** Entries linked from `<path>/shared/` into each release; a trailing `/` marks a directory. */
  readonly shared: readonly string[];
}

export type ServiceSettings =
  | { readonly manager: 'none' }
  | {
      readonly manager: 'systemd';
      readonly name: string;
      readonly sudo: boolean;
      /** How long the main PID must stay the same before the service counts as running. */
      readonly settleMs: number;
      readonly startTimeoutMs: number;
    }
  | {
      readonly manager: 'command';
      readonly start: string;
      readonly stop?: string;
      readonly status?: string;
      readonly pidfile?: string;
      readonly stopGraceMs: number;
      readonly settleMs: number;
      readonly startTimeoutMs: number;
    };

export type Stage = 'pre' | 'post' | 'schedule';

export interface HttpCheck {
  readonly type: 'http';
  readonly name: string;
  readonly url: string;
  readonly method: string;
  readonly expectStatus: readonly number[];
  readonly bodyContains?: string;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly intervalMs: number;
  readonly stages: readonly Stage[];
}

export interface TcpCheck {
  readonly type: 'tcp';
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number;
  readonly retries: number;
  readonly intervalMs: number;
  readonly stages: readonly Stage[];
}

export type CheckSettings = HttpCheck | TcpCheck;

export interface LockSettings {
  /** How long to wait for another deploy's lock before failing. */
  readonly waitMs: number;
  /** A lock older than this is considered abandoned and taken over, with a warning. */
  readonly ttlMs: number;
}

export interface RunContext {
  /** Who and what, written into the lock and the deployment record. */
  readonly runId: string;
  readonly commit: string;
  readonly ref: string;
  readonly actor: string;
  readonly runUrl?: string;
}

export interface Settings {
  readonly configPath?: string;
  readonly environment: string;
  readonly artifact: string;
  readonly exclude: readonly string[];
  readonly releaseId: string;
  readonly target: TargetSettings;
  readonly hosts: readonly HostSettings[];
  readonly ssh: SshSettings;
  readonly service: ServiceSettings;
  readonly checks: readonly CheckSettings[];
  readonly beforeSwitch?: string;
  readonly lock: LockSettings;
  readonly rollback: 'auto' | 'off';
  readonly dryRun: boolean;
  readonly run: RunContext;
}
