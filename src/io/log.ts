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

/**
 * Plain text for terminals, cron mail and CI logs outside GitHub. Without a `stream` it is the
 * CLI's logger and owns the terminal: outside GitHub Actions, workflow commands that libraries
 * print (@actions/tool-cache's `::debug::` lines) become plain lines too (see {@link plainTerminal}).
 */
export function consoleLogger(
  opts: { verbose?: boolean; stream?: NodeJS.WritableStream; env?: NodeJS.ProcessEnv } = {}
): Logger {
  const out = opts.stream ?? process.stderr;
  if (!opts.stream && (opts.env ?? process.env).GITHUB_ACTIONS !== 'true')
    plainTerminal([process.stdout, process.stderr], { verbose: opts.verbose });
  let indent = '';
  const write = (prefix: string, m: string) =>
    out.write(
      inertCommands(m)
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

/**
 * Text from elsewhere (a host's output, a check's answer) made inert for a log that GitHub reads:
 * the runner takes any line that starts with `::` (after spaces) as a workflow command, so such a
 * line gets a zero-width space between its colons. It reads the same; it commands nothing.
 */
export function inertCommands(text: string): string {
  return text.replace(/^(\s*):(?=:)/gm, '$1:\u200b');
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

/** `::name key=value,...::message` at the start of a line: a GitHub workflow command. */
const WORKFLOW_COMMAND = /^::([A-Za-z-]+)(?: [^:]*)?::(.*)$/;

/** Workflow commands escape their message; a terminal shows it as written. */
function unescapeCommand(text: string): string {
  return text.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%');
}

/**
 * One output line as a terminal should see it: a workflow command becomes plain text (`debug:`
 * lines and the commands a library echoes only when verbose), and commands that mean nothing
 * outside GitHub (`add-mask`, `endgroup`, `set-output`, ...) are dropped. `undefined`: drop it.
 */
export function plainLine(line: string, verbose: boolean): string | undefined {
  if (line.startsWith('[command]')) return verbose ? `debug: ${line.slice('[command]'.length)}` : undefined;
  const m = WORKFLOW_COMMAND.exec(line);
  if (!m) return line;
  const message = unescapeCommand(m[2] ?? '');
  switch (m[1]) {
    case 'debug':
      return verbose ? `debug: ${message}` : undefined;
    case 'warning':
      return `warning: ${message}`;
    case 'error':
      return `error: ${message}`;
    case 'notice':
      return message;
    case 'group':
      return `▸ ${message}`;
    default:
      return undefined;
  }
}

const PLAIN = Symbol('deployguard.plainTerminal');
type Write = NodeJS.WritableStream['write'] & { [PLAIN]?: { verbose: boolean } };

/**
 * Makes these streams (the CLI's stdout and stderr) show workflow commands as plain lines, so
 * the CLI never prints `::debug::` or `::add-mask::` (which would show a secret). Only whole
 * lines written as strings are looked at; everything else passes unchanged. Installing twice
 * only updates `verbose`.
 */
export function plainTerminal(
  streams: readonly NodeJS.WritableStream[],
  opts: { verbose?: boolean } = {}
): void {
  for (const stream of streams) {
    const current = stream.write as Write;
    const installed = current[PLAIN];
    if (installed) {
      installed.verbose = opts.verbose ?? installed.verbose;
      continue;
    }
    const state = { verbose: opts.verbose ?? false };
    const original = current.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
    let atLineStart = true;
    const write = ((chunk: unknown, ...rest: unknown[]) => {
      if (typeof chunk !== 'string' || (!chunk.includes('::') && !chunk.includes('[command]'))) {
        if (typeof chunk === 'string' && chunk.length) atLineStart = chunk.endsWith('\n');
        return original(chunk, ...rest);
      }
      const parts = chunk.split('\n');
      let text = '';
      parts.forEach((part, i) => {
        if (i === parts.length - 1) text += part;
        else if (i === 0 && !atLineStart) text += `${part}\n`;
        else {
          const shown = plainLine(part, state.verbose);
          if (shown !== undefined) text += `${shown}\n`;
        }
      });
      if (chunk.length) atLineStart = chunk.endsWith('\n');
      if (text === '') {
        const done = rest.find((r): r is () => void => typeof r === 'function');
        if (done) process.nextTick(done);
        return true;
      }
      return original(text, ...rest);
    }) as Write;
    write[PLAIN] = state;
    stream.write = write;
  }
}
