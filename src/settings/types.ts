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
  /** The host's own private key (from the variable its `ssh-key-env` names), masked on read. */
  readonly privateKey?: string;
  /** Reached through this jump host (its own pins and user), not directly. */
  readonly jump?: HostSettings;
  /** Set on a jump host: the name of the host it leads to (its pin goes under that host's `proxy-jump:`). */
  readonly jumpFor?: string;
}

export interface EnvSettings {
  /** Relative to the release, e.g. `.env`. */
  readonly file: string;
  /** In the file's order; a value may hold a secret (masked as it was read): never log it. */
  readonly vars: readonly { readonly name: string; readonly value: string }[];
}

export interface SshSettings {
  readonly privateKey?: string;
  readonly passphrase?: string;
  readonly password?: string;
  /** Explicit opt-out of host key pinning; warned about on every run. */
  readonly insecureSkipHostKeyCheck: boolean;
  readonly connectTimeoutMs: number;
  readonly connectRetries: number;
  /** zlib on the SSH stream: `auto` for public hosts only. */
  readonly compress?: boolean | 'auto';
}

export type Strategy = 'releases' | 'in-place';

export interface TargetSettings {
  readonly path: string;
  readonly strategy: Strategy;
  readonly keepReleases: number;
  /** Entries linked from `<path>/shared/` into each release; a trailing `/` marks a directory. */
  readonly shared: readonly string[];
}

/**
 * How the new release takes over. `restart`: stop, switch `current`, start (requests fail in
 * between). `reload`: switch `current`, then ask the running service to reload (it picks up the
 * new release itself, without dropping connections). `blue-green`: see BlueGreenSettings.
 */
export type SwitchMode = 'restart' | 'reload' | 'blue-green';

export type Colour = 'blue' | 'green';

/**
 * Two instances of a systemd template unit (`NAME@blue`, `NAME@green`) on two ports behind a
 * reverse proxy. The new release starts on the idle colour and is checked there while the live
 * one keeps serving; then the proxy's upstream is flipped, and the old colour is stopped after
 * the drain. Until then, a rollback is a flip back.
 */
export interface BlueGreenSettings {
  readonly ports: Readonly<Record<Colour, number>>;
  /** The file the proxy config includes inside its upstream block; deployguard rewrites it. */
  readonly upstreamFile: string;
  readonly proxy: 'nginx';
  /** How long the old colour keeps running after the flip, for requests in flight. */
  readonly drainMs: number;
}

export type ServiceSettings =
  | { readonly manager: 'none' }
  | {
      readonly manager: 'systemd';
      /** The unit; for `blue-green`, the template's name (instances `NAME@blue`, `NAME@green`). */
      readonly name: string;
      readonly sudo: boolean;
      /** How long the main PID must stay the same before the service counts as running. */
      readonly settleMs: number;
      readonly startTimeoutMs: number;
      readonly switch: SwitchMode;
      /** Set exactly when `switch` is `blue-green`. */
      readonly blueGreen?: BlueGreenSettings;
    }
  | {
      readonly manager: 'command';
      readonly start: string;
      readonly stop?: string;
      readonly status?: string;
      readonly pidfile?: string;
      /** Set when `switch` is `reload`: tells the running service to pick up the new release. */
      readonly reload?: string;
      readonly switch: 'restart' | 'reload';
      readonly stopGraceMs: number;
      readonly settleMs: number;
      readonly startTimeoutMs: number;
    };

export type Stage = 'pre' | 'post' | 'schedule';

/** What every check has: its name, when it runs, and how hard it tries. */
export interface CheckBase {
  readonly name: string;
  readonly stages: readonly Stage[];
  /** Per attempt. */
  readonly timeoutMs: number;
  /** Extra attempts after the first failure. */
  readonly retries: number;
  /** Wait before the second attempt; multiplied by `backoff` after each further failure. */
  readonly intervalMs: number;
  readonly backoff: number;
  /** No attempt starts after this much time from the check's start (0: no deadline). */
  readonly deadlineMs: number;
}

export interface HttpCheck extends CheckBase {
  readonly type: 'http';
  readonly url: string;
  readonly method: string;
  /** Header values after `${ENV}` expansion; expanded values are registered as secrets. */
  readonly headers: Readonly<Record<string, string>>;
  readonly expectStatus: readonly number[];
  readonly bodyContains?: string;
  readonly bodyMatches?: string;
  /** A JSON field (dot path, e.g. `checks.db.status`) must equal this value. */
  readonly json?: { readonly path: string; readonly equals: string | number | boolean | null };
  readonly maxLatencyMs?: number;
  /** How many redirects to follow (0: a 3xx is the answer). */
  readonly followRedirects: number;
  readonly insecureTls: boolean;
  /** A PEM file of extra CAs to trust, relative to the working directory. */
  readonly caFile?: string;
}

export interface TcpCheck extends CheckBase {
  readonly type: 'tcp';
  readonly host: string;
  readonly port: number;
}

export interface CommandCheck extends CheckBase {
  readonly type: 'command';
  readonly run: string;
  /** `local`: on the machine running deployguard; `host`: on every host over SSH. */
  readonly on: 'local' | 'host';
  /** Environment for the command after `${ENV}` expansion; expanded values are secrets. */
  readonly env: Readonly<Record<string, string>>;
}

/** The service's process: active, main PID alive, same PID and no restarts across the window. */
export interface ProcessCheck extends CheckBase {
  readonly type: 'process';
  readonly windowMs: number;
}

/** The service's logs since it (re)started must not match any error pattern during the window. */
export interface LogsCheck extends CheckBase {
  readonly type: 'logs';
  /** `journal` (the service's unit) or a log file path on the host. */
  readonly source: 'journal' | 'file';
  readonly path?: string;
  readonly windowMs: number;
  readonly patterns: readonly string[];
  readonly ignore: readonly string[];
}

/** A file on the host was written within `maxAgeMs` (data is flowing). */
export interface FileFreshCheck extends CheckBase {
  readonly type: 'file-fresh';
  readonly path: string;
  readonly maxAgeMs: number;
}

/** An HTTP endpoint or a command reports the release or commit just deployed. */
export interface VersionCheck extends CheckBase {
  readonly type: 'version';
  readonly url?: string;
  readonly run?: string;
  readonly on: 'local' | 'host';
  readonly expect: 'release' | 'commit';
}

export type CheckSettings =
  HttpCheck | TcpCheck | CommandCheck | ProcessCheck | LogsCheck | FileFreshCheck | VersionCheck;

/** Checks that run on each host over SSH rather than from where deployguard runs. */
export function runsOnHost(check: CheckSettings): boolean {
  return (
    check.type === 'process' ||
    check.type === 'logs' ||
    check.type === 'file-fresh' ||
    ((check.type === 'command' || check.type === 'version') && check.on === 'host')
  );
}

/** `{host}` or `{port}` in a check's URL: the host's address, the port of the colour being judged. */
export const URL_PLACEHOLDER = /\{(?:host|port)\}/;

/**
 * Checks that judge each host on its own: those that run on the host, and those whose URL names
 * the host or the colour's port. Only these can judge the idle colour before a blue-green flip.
 */
export function judgesEachHost(check: CheckSettings): boolean {
  return (
    runsOnHost(check) ||
    ((check.type === 'http' || check.type === 'version') &&
      check.url !== undefined &&
      URL_PLACEHOLDER.test(check.url))
  );
}

export type ScanMode = 'both' | 'commits' | 'artifact' | 'off';

export interface PreDeploySettings {
  /** `true`: unhealthy production blocks the deploy; `false`: warn and record it. */
  readonly requireHealthy: boolean;
  /** What gitleaks scans before a deploy: the commits going out, the artifact, both, or nothing. */
  readonly scan: ScanMode;
  /** A gitleaks executable to use instead of PATH or a download. */
  readonly gitleaksPath?: string;
  /** A gitleaks config other than the repository's `.gitleaks.toml`. */
  readonly gitleaksConfig?: string;
  /** Runs locally before the scan (e.g. `npm test`); a failure blocks the deploy. */
  readonly testCommand?: string;
}

export interface PostDeploySettings {
  readonly rollback: 'auto' | 'off';
  /** After the post checks pass, they keep running this long; any failure then rolls back. */
  readonly stabilityWindowMs: number;
}

/** How a fleet is rolled out: canaries first, then batches; the first failure stops and undoes all. */
export interface RolloutSettings {
  readonly canary: number;
  /** Hosts at once after the canaries: a count, or a percentage of the hosts. */
  readonly maxParallel: number | { readonly percent: number };
}

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
  /** `owner/name` on GitHub, when running in Actions (or given by GITHUB_REPOSITORY). */
  readonly repository?: string;
  /** Where links point: https://github.com, or a GitHub Enterprise server. */
  readonly serverUrl: string;
  /** The REST API (GITHUB_API_URL): comments, the PR lookup and deployments go here. */
  readonly apiUrl: string;
}

export type CommentTarget = 'auto' | 'pr' | 'commit' | 'both' | 'none';

/** The deployment record: where it is posted and what it links to. */
export interface ReportSettings {
  /** `auto`: the pull request the deploy belongs to, else the commit. */
  readonly comment: CommentTarget;
  readonly environmentUrl?: string;
  /** Create a GitHub deployment (off when the job's `environment:` already makes one). */
  readonly githubDeployment: boolean;
  /** Why this deploy happens, given by hand; otherwise the PR title or the commit message. */
  readonly reason?: string;
  /** For comments and deployments; masked on read. Without it, the record goes to the summary only. */
  readonly githubToken?: string;
}

export interface Settings {
  readonly configPath?: string;
  readonly environment: string;
  readonly artifact: string;
  readonly exclude: readonly string[];
  readonly releaseId: string;
  /** The release id was given (input or flag), not made from the time and commit. */
  readonly releaseIdGiven: boolean;
  readonly target: TargetSettings;
  readonly hosts: readonly HostSettings[];
  readonly ssh: SshSettings;
  readonly service: ServiceSettings;
  readonly checks: readonly CheckSettings[];
  readonly beforeSwitch?: string;
  /** Runs once per deploy, in the new release on the first host, before any host switches. */
  readonly runOnce?: string;
  /** Variables written into each release as `file` (mode 0600); values may be secrets. */
  readonly env: EnvSettings;
  readonly lock: LockSettings;
  readonly rollout: RolloutSettings;
  readonly transfer: { readonly incremental: boolean };
  readonly preDeploy: PreDeploySettings;
  readonly postDeploy: PostDeploySettings;
  readonly dryRun: boolean;
  readonly run: RunContext;
  readonly report: ReportSettings;
}
