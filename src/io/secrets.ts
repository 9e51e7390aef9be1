/**
 * Every secret deployguard reads is registered here the moment it is read, and every text that
 * leaves the process through a channel the runner does not mask (the step summary, outputs, the
 * CLI's stdout and JSON) passes through `redact`. Multi-line secrets are also registered line by
 * line, since a line of a key can be printed on its own.
 */
export class SecretRegistry {
  private readonly values = new Set<string>();

  /** Registers a secret; returns the pieces registered (the value and its long lines). */
  add(value: string): string[] {
    const pieces = new Set<string>();
    // Very short values would turn ordinary words into *** (and reveal the secret by contrast).
    if (value.length >= 4) pieces.add(value);
    for (const line of value.split(/\r?\n/)) {
      const l = line.trim();
      if (l.length >= 8 && !/^-----(BEGIN|END) /.test(l)) pieces.add(l);
    }
    for (const p of pieces) this.values.add(p);
    return [...pieces];
  }

  /** The text with every registered secret replaced by `***`, longest first. */
  redact(text: string): string {
    let out = text;
    for (const v of [...this.values].sort((a, b) => b.length - a.length)) out = out.split(v).join('***');
    return out;
  }

  get size(): number {
    return this.values.size;
  }
}

/** The process-wide registry (the CLI and the action each have one run per process). */
export const secrets = new SecretRegistry();
