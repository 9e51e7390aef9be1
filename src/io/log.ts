import { secrets } from './secrets.js';

/**
 * Where human-readable progress goes. The action writes through @actions/core (groups,
 * annotations, masking: io/actions-log.ts); the CLI writes plain lines, and never loads @actions/core. Logic only ever sees this interface.
 */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug(message: string): void;
  group<T>(title: string, fn: () => Promise<T>): Promise<T>;
}

/** Plain text for terminals, cron mail and CI logs outside GitHub. */
export function consoleLogger(opts: { verbose?: boolean; stream?: NodeJS.WritableStream } = {}): Logger {
  const out = opts.stream ?? process.stderr;
  let indent = '';
  const write = (prefix: string, m: string) =>
    out.write(
      m
        .split('\n')
        .map(l => `${indent}${prefix}${l}`)
        .join('\n') + '\n'
    );
  return {
    info: m => write('', m),
    warn: m => write('warning: ', m),
    error: m => write('error: ', m),
    debug: m => {
      if (opts.verbose) write('debug: ', m);
    },
    async group(title, fn) {
      write('', `▸ ${title}`);
      indent += '  ';
      try {
        return await fn();
      } finally {
        indent = indent.slice(2);
      }
    }
  };
}

/** A logger that keeps every line, for tests and for the deployment record. */
export function memoryLogger(): Logger & { readonly lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: m => lines.push(m),
    warn: m => lines.push(`warning: ${m}`),
    error: m => lines.push(`error: ${m}`),
    debug: () => {},
    async group(title, fn) {
      lines.push(`## ${title}`);
      return fn();
    }
  };
}

/** A logger whose every line has the registered secrets replaced by `***` (for the CLI). */
export function redacting(inner: Logger): Logger {
  return {
    info: m => inner.info(secrets.redact(m)),
    warn: m => inner.warn(secrets.redact(m)),
    error: m => inner.error(secrets.redact(m)),
    debug: m => inner.debug(secrets.redact(m)),
    group: (title, fn) => inner.group(secrets.redact(title), fn)
  };
}
