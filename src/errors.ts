/**
 * Named errors. Each carries the phase it happened in and a hint that tells a person what to do,
 * because "handshake failed" with no context is what makes a 3 a.m. incident last an hour.
 */
export type Phase = 'config' | 'connect' | 'pre-deploy' | 'deploy' | 'post-deploy' | 'rollback' | 'report';

export class DeployguardError extends Error {
  constructor(
    message: string,
    readonly phase: Phase,
    readonly hint?: string
  ) {
    super(message);
    this.name = new.target.name;
  }

  /** The message and the hint, as one block of text for a log line or a job failure. */
  describe(): string {
    return this.hint ? `${this.message}\nHint: ${this.hint}` : this.message;
  }
}

export class ConfigError extends DeployguardError {
  constructor(message: string, hint?: string) {
    super(message, 'config', hint);
  }
}

export class DeployError extends DeployguardError {}

export class HealthCheckError extends DeployguardError {}

export class RollbackError extends DeployguardError {}

export class SecretScanError extends DeployguardError {}

/** The text of any thrown value, with the hint when it is one of ours. */
export function describeError(err: unknown): string {
  if (err instanceof DeployguardError) return err.describe();
  if (err instanceof Error) return err.message;
  return String(err);
}
