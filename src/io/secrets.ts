/**
 * Every secret deployguard reads is registered here the moment it is read, and every text that
 * leaves the process through a channel the runner does not mask (the step summary, outputs, the
 * CLI's stdout and JSON) passes through `redact`. Multi-line secrets are also registered line by
 * line, since a line of a key can be printed on its own.
 */
export class SecretRegistry {
  private readonly values = new Set<string>();

  add(value: string): void {
    // Very short values would turn ordinary words into *** (and reveal the secret by contrast).
    if (value.length >= 4) this.values.add(value);
    for (const line of value.split(/\r?\n/)) {
      const l = line.trim();
      if (l.length >= 8 && !/^-----(BEGIN|END) /.test(l)) this.values.add(l);
    }
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
