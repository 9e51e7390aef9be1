import type { RemoteShell } from '../io/ssh.js';
import type { Layout } from '../remote/layout.js';
import type { ServiceSettings, Stage } from '../settings/types.js';

/** The outcome of one check, as it appears in the summary table and the deployment record. */
export interface CheckResult {
  readonly name: string;
  /** The host it ran on, for checks that run on each host. */
  readonly host?: string;
  readonly stage: Stage | 'rollback';
  readonly ok: boolean;
  readonly attempts: number;
  readonly durationMs: number;
  /** Why it failed (or what passed), short and safe to print: secrets are never in it. */
  readonly reason: string;
}

export interface ProbeResult {
  readonly ok: boolean;
  readonly reason: string;
}

/** One attempt of a check: resolves with ok/reason, never throws for a failed probe. */
export type Probe = (signal: AbortSignal) => Promise<ProbeResult>;

/** What a check may need to know about the deploy it is judging. */
export interface CheckContext {
  /** The release id and commit just deployed (version checks compare against them). */
  readonly release: string;
  readonly commit: string;
}

/** What a check that runs on a host gets: the host's open connection and its service. */
export interface HostContext {
  readonly name: string;
  readonly shell: RemoteShell;
  /** For blue-green, the instance of the colour being judged (`myapp@green`). */
  readonly service: ServiceSettings;
  readonly layout: Layout;
  /** The host's address, for `{host}` in a check's url. */
  readonly address?: string;
  /** blue-green: the port of the colour being judged, for `{port}` in a check's url. */
  readonly port?: number;
}
