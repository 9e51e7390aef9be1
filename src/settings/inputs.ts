import * as file from './config.js';
import { bool, enumOf, str, validate, type AnySchema, type Infer, type SchemaIssue } from './schema.js';

/**
 * One declaration per setting that can come from an action input or a CLI flag. An input that
 * overrides a deployguard.yml key is validated by that key's very schema node (`key` names it),
 * so the file, the input and the flag share one range, one pattern and one message, and cannot
 * drift apart again. Inputs with no file twin get their own node here, as strict as a file key
 * of the same kind (no control characters, bounded length).
 */
export interface InputDeclaration<S extends AnySchema = AnySchema> {
  readonly schema: S;
  /** The deployguard.yml key it overrides: `deploy.lock-wait`, `hosts[].port`, `service{systemd}.name`. */
  readonly key?: string;
  /** Several values in one input, separated by spaces or commas (a YAML list in the file). */
  readonly list?: boolean;
  /** Input spellings accepted on top of the file's values, and what they mean. */
  readonly aliases?: Readonly<Record<string, unknown>>;
  /** Which group of flags it belongs to: the CLI offers each subcommand the groups it uses. */
  readonly group: InputGroup;
  /** One line for `--help`. */
  readonly help: string;
  /** What the value looks like in `--help`: `DURATION`, `HOST`; absent for a boolean flag. */
  readonly value?: string;
}

export type InputGroup =
  'connection' | 'target' | 'service' | 'checks' | 'rollout' | 'ship' | 'gates' | 'report';

/** A release id: what `release-id`, the rollback target and the post-deploy phase accept. */
export const releaseId = str({
  pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/,
  expected: 'a release id (letters, digits, . _ -, starting with a letter or digit)',
  example: '2026-11-26.1'
});

const declare = <S extends AnySchema>(d: InputDeclaration<S>): InputDeclaration<S> => Object.freeze(d);

/** Every input and flag that is a setting (secrets are not: they never travel as flags). */
export const INPUTS = {
  environment: declare({
    schema: file.name,
    key: 'environment',
    group: 'target',
    value: 'NAME',
    help: 'the environment deployed to (default: production)'
  }),
  artifact: declare({
    schema: file.artifact,
    key: 'artifact',
    group: 'ship',
    value: 'PATH',
    help: 'the file or directory to ship'
  }),
  'target-path': declare({
    schema: file.absPath,
    key: 'target.path',
    group: 'target',
    value: 'PATH',
    help: 'the base directory on every host'
  }),
  strategy: declare({
    schema: file.strategy,
    key: 'target.strategy',
    group: 'target',
    value: 'releases|in-place',
    help: 'releases (switch a symlink) or in-place'
  }),
  host: declare({
    schema: file.hostname,
    key: 'hosts[].host',
    group: 'connection',
    value: 'HOST',
    help: "one host, replacing the file's hosts"
  }),
  'host-name': declare({
    schema: file.name,
    key: 'hosts[].name',
    group: 'connection',
    value: 'NAME',
    help: 'the alias of --host in logs'
  }),
  port: declare({
    schema: file.port,
    key: 'hosts[].port',
    group: 'connection',
    value: 'PORT',
    help: 'the SSH port of --host'
  }),
  user: declare({
    schema: file.userName,
    key: 'hosts[].user',
    group: 'connection',
    value: 'USER',
    help: 'the SSH user of hosts that name none'
  }),
  'known-hosts': declare({
    schema: file.knownHosts,
    key: 'hosts[].known-hosts',
    group: 'connection',
    value: 'LINES',
    help: 'known_hosts lines pinning the host keys'
  }),
  'host-key': declare({
    schema: file.hostKey,
    key: 'hosts[].host-key',
    list: true,
    group: 'connection',
    value: 'SHA256:...',
    help: 'host key fingerprints, separated by spaces or commas'
  }),
  'insecure-skip-host-key-check': declare({
    schema: bool(),
    group: 'connection',
    help: 'connect without a pinned host key (warned about on every run)'
  }),
  'connect-timeout': declare({
    schema: file.connectTimeout,
    key: 'ssh.connect-timeout',
    group: 'connection',
    value: 'DURATION',
    help: 'how long one SSH connection attempt may take'
  }),
  'service-manager': declare({
    schema: enumOf(['systemd', 'command', 'none']),
    key: 'service.manager',
    group: 'service',
    value: 'systemd|command|none',
    help: 'what restarts the service'
  }),
  'service-name': declare({
    schema: file.unitName,
    key: 'service{systemd}.name',
    group: 'service',
    value: 'UNIT',
    help: 'the systemd unit'
  }),
  'health-url': declare({
    schema: file.httpUrl,
    key: 'checks[]{http}.url',
    group: 'checks',
    value: 'URL',
    help: 'an http check of this URL expecting 200'
  }),
  'before-switch': declare({
    schema: file.command,
    key: 'deploy.before-switch',
    group: 'ship',
    value: 'COMMAND',
    help: 'a command run in the new release before the switch'
  }),
  'release-id': declare({
    schema: releaseId,
    group: 'ship',
    value: 'ID',
    help: 'the release id (default: the time and the commit)'
  }),
  'max-parallel': declare({
    schema: file.maxParallel,
    key: 'deploy.max-parallel',
    group: 'rollout',
    value: 'N|N%',
    help: 'hosts deployed at once after the canaries'
  }),
  canary: declare({
    schema: file.canary,
    key: 'deploy.canary',
    group: 'rollout',
    value: 'N',
    help: 'hosts deployed first, on their own'
  }),
  'lock-wait': declare({
    schema: file.lockWait,
    key: 'deploy.lock-wait',
    group: 'rollout',
    value: 'DURATION',
    help: "how long to wait for another deploy's lock"
  }),
  'stability-window': declare({
    schema: file.stabilityWindow,
    key: 'post-deploy.stability-window',
    group: 'rollout',
    value: 'DURATION',
    help: 'how long the post checks keep passing before the deploy counts'
  }),
  'test-command': declare({
    schema: file.command,
    key: 'pre-deploy.test-command',
    group: 'gates',
    value: 'COMMAND',
    help: 'a local command that must pass before deploying'
  }),
  scan: declare({
    schema: file.gitleaks,
    key: 'pre-deploy.gitleaks',
    aliases: { none: false },
    group: 'gates',
    value: 'both|commits|artifact|none',
    help: 'what the secret scan covers'
  }),
  'gitleaks-path': declare({
    schema: file.localPath,
    group: 'gates',
    value: 'PATH',
    help: 'a gitleaks executable to use'
  }),
  'gitleaks-config': declare({
    schema: file.gitleaksConfig,
    key: 'pre-deploy.gitleaks-config',
    group: 'gates',
    value: 'PATH',
    help: 'a gitleaks config file'
  }),
  'dry-run': declare({
    schema: bool(),
    group: 'ship',
    help: 'print the plan and every remote command; touch nothing'
  }),
  // Free text from a person, shown in the record and the summary: one line, no control
  // characters, so it can never start a line of its own (a workflow command) in a log.
  reason: declare({
    schema: str({
      minLength: 1,
      maxLength: 2000,
      expected: 'one line of text',
      example: 'hotfix for the login timeout'
    }),
    group: 'report',
    value: 'TEXT',
    help: 'why this deploy happens, for the record'
  }),
  comment: declare({
    schema: file.comment,
    key: 'report.comment',
    group: 'report',
    value: 'auto|pr|commit|both|none',
    help: 'where the deployment record is posted'
  }),
  'environment-url': declare({
    schema: file.environmentUrl,
    key: 'report.environment-url',
    group: 'report',
    value: 'URL',
    help: "the deployed service's URL"
  }),
  'github-deployment': declare({
    schema: file.githubDeployment,
    key: 'report.github-deployment',
    group: 'report',
    help: 'create a GitHub deployment with statuses'
  })
} as const;

export type InputName = keyof typeof INPUTS;

/** Input names that hold secrets; their values are masked as soon as they are read. */
export const SECRET_INPUTS = ['ssh-key', 'ssh-passphrase', 'ssh-password', 'github-token'] as const;
export type SecretInput = (typeof SECRET_INPUTS)[number];
export type InputValue<N extends InputName> = Infer<(typeof INPUTS)[N]['schema']>;

/** Whether an input is a switch (a CLI flag without a value). */
export const isSwitch = (name: InputName): boolean => INPUTS[name].schema.kind === 'boolean';

const INTEGER = /^-?\d{1,15}$/;
const BOOLEAN = /^(?:true|false)$/i;

/**
 * An input's text as the YAML value it stands for: inputs are strings, while the file's nodes
 * expect what YAML would have typed (a number for `port`, a boolean for a switch).
 */
function typed(schema: AnySchema, text: string): unknown {
  const kinds = schema.kind === 'union' ? ['integer', 'boolean'] : [schema.kind];
  if (kinds.includes('integer') && INTEGER.test(text)) return Number(text);
  if (kinds.includes('boolean') && BOOLEAN.test(text)) return text.toLowerCase() === 'true';
  return text;
}

/**
 * Validates one input's text with its declaration: the value the settings use, or the issues
 * (paths start at the input's name; `host-key[1]` for the second of a list).
 */
export function parseInput<N extends InputName>(
  name: N,
  text: string
): { ok: true; value: InputValue<N> } | { ok: false; issues: readonly SchemaIssue[] } {
  const d: InputDeclaration = INPUTS[name];
  let raw: unknown;
  if (d.aliases && Object.prototype.hasOwnProperty.call(d.aliases, text)) raw = d.aliases[text];
  else if (d.list) {
    const items = text.split(/[\s,]+/).filter(Boolean);
    raw = items.length === 1 ? items[0] : items;
  } else raw = typed(d.schema, text);
  const r = validate(d.schema, raw, name);
  return r.ok ? { ok: true, value: r.value as InputValue<N> } : { ok: false, issues: r.errors };
}
