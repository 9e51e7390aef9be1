/**
 * The one place that turns values into shell text. Every remote command is built with the `sh`
 * template below: each interpolated value is quoted as a single literal word, so a service name
 * like `x; rm -rf /` reaches the host as data. User-written commands (start, before-switch, ...)
 * are shell by intent and must be wrapped in `userScript()` to be inserted unquoted.
 */

/** A piece of shell text that is already safe to splice in unquoted. */
export class Shell {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** Quote one value as a single POSIX shell word (single quotes; `'` becomes `'\''`). */
export function quote(value: string | number): string {
  const s = String(value);
  if (s.includes('\0')) throw new Error('a NUL byte cannot be passed to a remote shell');
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

type Piece = string | number | Shell | readonly (string | number | Shell)[];

function render(piece: Piece): string {
  if (piece instanceof Shell) return piece.text;
  if (Array.isArray(piece)) return piece.map(p => render(p as Piece)).join(' ');
  return quote(piece as string | number);
}

/** Template tag: literal parts are shell text written in this code base; values are quoted. */
export function sh(strings: TemplateStringsArray, ...values: Piece[]): Shell {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return new Shell(out);
}

/** Join several commands into one script, one per line. */
export function lines(...parts: (Shell | false | undefined)[]): Shell {
  return new Shell(
    parts
      .filter((p): p is Shell => p instanceof Shell)
      .map(p => p.text)
      .join('\n')
  );
}

/**
 * A command the user wrote (in deployguard.yml or an input). It runs in its own `sh -c` so its
 * syntax cannot break the script around it, with errexit on so a failing line fails the command.
 */
export function userScript(command: string): Shell {
  return sh`sh -ec ${command}`;
}

/**
 * The full command line sent over SSH: a POSIX `sh` running the script with errexit and nounset,
 * whatever the login shell of the remote user is.
 */
export function remoteCommandLine(script: Shell): string {
  return `sh -c ${quote(`set -eu\n${script.text}`)}`;
}
