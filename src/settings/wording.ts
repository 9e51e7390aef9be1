import { INPUTS, SECRET_INPUTS } from './inputs.js';

/**
 * How messages name a setting given on the command line or in a workflow: the same mistake reads
 * "the `--target-path` flag" in a terminal and "the `target-path` input" in an Actions log, so a
 * person is always pointed at the place they can actually change.
 */
export interface Wording {
  readonly kind: 'action' | 'cli';
  /** The setting as a noun: "the `port` input", "the `--port` flag". */
  ref(name: string): string;
  /** The setting at the start of a message: "input `port`", "`--port`". */
  label(name: string): string;
  /** How to set it: "port: 22", "--port 22". */
  example(name: string, value: string): string;
}

/** Secrets never travel as CLI flags (the process list is public): where the CLI reads each. */
const CLI_SECRETS: Readonly<Record<string, { readonly ref: string; readonly example: string }>> = {
  'ssh-key': {
    ref: '`--ssh-key-file` (or DEPLOYGUARD_SSH_KEY)',
    example: '--ssh-key-file ~/.ssh/deploy_key'
  },
  'ssh-passphrase': {
    ref: 'DEPLOYGUARD_SSH_PASSPHRASE',
    example: 'DEPLOYGUARD_SSH_PASSPHRASE=… in the environment'
  },
  'ssh-password': {
    ref: 'DEPLOYGUARD_SSH_PASSWORD',
    example: 'DEPLOYGUARD_SSH_PASSWORD=… in the environment'
  },
  'github-token': { ref: 'GITHUB_TOKEN', example: 'GITHUB_TOKEN=… in the environment' }
};

export const ACTION_WORDING: Wording = {
  kind: 'action',
  ref: name => `the \`${name}\` input`,
  label: name => `input \`${name}\``,
  example: (name, value) => `${name}: ${value}`
};

export const CLI_WORDING: Wording = {
  kind: 'cli',
  ref: name => CLI_SECRETS[name]?.ref ?? `the \`--${name}\` flag`,
  label: name => CLI_SECRETS[name]?.ref ?? `\`--${name}\``,
  example: (name, value) => CLI_SECRETS[name]?.example ?? `--${name} ${value}`
};

const KNOWN = new Set<string>([...Object.keys(INPUTS), ...SECRET_INPUTS, 'config']);
const known = (wrap: (name: string) => string) => (m: string, name: string) =>
  KNOWN.has(name) ? wrap(name) : m;

/**
 * A message written in action words ("the `ssh-key` input", "input `port`", "the gitleaks-path
 * input"), in the CLI's: every module can keep one wording, and the command line still points
 * at the flag or the variable a person can actually set.
 */
export function inCliWords(text: string): string {
  return (
    text
      .replace(/the `([a-z][a-z-]*)` input/g, known(CLI_WORDING.ref))
      .replace(/the ([a-z][a-z-]*) input\b/g, known(CLI_WORDING.ref))
      .replace(/input `([a-z][a-z-]*)`/g, known(CLI_WORDING.label))
      .replace(/`([a-z][a-z-]*)` input/g, known(CLI_WORDING.label))
      .replace(/leave the input empty/g, 'leave the flag out')
      // How a variable reaches deployguard: a workflow step's env, or the shell's.
      .replace(
        /env: \{ ([A-Za-z_][A-Za-z0-9_]*): \$\{\{ secrets\.\1 \}\} \} in the workflow step/g,
        'export $1=… in the shell that runs deployguard'
      )
  );
}
