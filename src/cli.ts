import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { checkNow } from './check.js';
import { runDemo } from './demo/demo.js';
import { ConfigError, describeError } from './errors.js';
import { readHistory } from './history.js';
import { runGitSync } from './io/git.js';
import { consoleLogger, inertCommands, plainTerminal, redacting, type Logger } from './io/log.js';
import { writeFileNoFollow } from './io/private-dir.js';
import { runPipeline, type PipelineHost } from './pipeline.js';
import { pinCommand } from './remote/pin.js';
import { preflightCommand } from './preflight.js';
import { secrets } from './io/secrets.js';
import { renderHistory } from './report/history.js';
import { renderCheckTable, verdictLine } from './report/summary.js';
import { configJsonSchema } from './settings/config.js';
import {
  INPUTS,
  isSwitch,
  releaseId,
  SECRET_INPUTS,
  type InputGroup,
  type InputName
} from './settings/inputs.js';
import { loadSettings } from './settings/load.js';
import { suggest, validate } from './settings/schema.js';
import { STARTER_CONFIG } from './settings/starter.js';
import type { Stage } from './settings/types.js';
import { CLI_WORDING, inCliWords } from './settings/wording.js';
import { VERSION } from './version.js';
import { userCacheDir } from './io/user-cache.js';

/** A flag of one subcommand, as `--help` lists it. */
export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  /** What the value looks like (`FILE`, `N`); string flags only. */
  readonly value?: string;
  readonly help: string;
  readonly short?: string;
}

export type Flags = Readonly<Record<string, string | boolean | undefined>>;

/** What a subcommand's `run` gets: its parsed flags and the ways to report. */
export interface CommandContext {
  readonly flags: Flags;
  readonly log: Logger;
  /** Writes one result block to the output (redacted). */
  readonly write: (text: string) => void;
  /** Writes data another program reads (a schema) exactly: redacted, never reworded. */
  readonly writeData: (text: string) => void;
  /** Settings from the flags, the environment and the config file, in the CLI's words. */
  readonly settings: (purpose: 'deploy' | 'check' | 'hosts') => ReturnType<typeof loadSettings>;
}

/**
 * One subcommand: its help, its own flags and the groups of setting flags it takes (every
 * setting flag is declared once, in settings/inputs.ts). A flag not listed here is an error.
 */
export interface CommandSpec {
  /** One line for `deployguard --help`. */
  readonly summary: string;
  /** More about it, for `deployguard COMMAND --help`. */
  readonly details?: string;
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** One required argument after the command (`pin HOST`), passed in the flags under its name. */
  readonly argument?: { readonly name: string; readonly label: string };
  readonly settings?: readonly InputGroup[];
  readonly run: (ctx: CommandContext) => Promise<number>;
}

const CONFIG: FlagSpec = {
  type: 'string',
  value: 'FILE',
  help: 'the config file (default: deployguard.yml)'
};
const JSON_OUT: FlagSpec = { type: 'boolean', help: 'machine-readable output' };
const KEY_FILE: FlagSpec = {
  type: 'string',
  value: 'PATH',
  help: 'the SSH private key (or DEPLOYGUARD_SSH_KEY in the environment)'
};
const VERBOSE: FlagSpec = { type: 'boolean', help: 'show debug lines' };
const RECORD: FlagSpec = {
  type: 'string',
  value: 'FILE',
  help: 'write the deployment record (Markdown) to FILE'
};
/** Flags every command that reaches hosts takes. */
const HOST_COMMAND = { config: CONFIG, json: JSON_OUT, 'ssh-key-file': KEY_FILE, verbose: VERBOSE };

const ALL_GROUPS: readonly InputGroup[] = [
  'connection',
  'target',
  'service',
  'checks',
  'rollout',
  'ship',
  'gates',
  'report'
];

/** Every subcommand. Adding one is adding an entry: parsing, `--help` and errors follow. */
export const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  deploy: {
    summary: 'lock, upload, verify, switch, check each host; roll back on failure',
    details:
      'With --dry-run, prints the plan: every step and remote command. A dry run contacts no host and needs no SSH key.',
    flags: { ...HOST_COMMAND, record: RECORD },
    settings: ALL_GROUPS,
    run: ctx => deployOrRollback(ctx, false)
  },
  rollback: {
    summary: 'switch back to a release kept on the hosts, verified by its checksums first',
    flags: {
      ...HOST_COMMAND,
      record: RECORD,
      to: { type: 'string', value: 'previous|RELEASE', help: 'the release to go back to (default: previous)' }
    },
    settings: ['connection', 'target', 'service', 'checks', 'rollout', 'report'],
    run: ctx => deployOrRollback(ctx, true)
  },
  check: {
    summary: 'run the health checks now (cron, laptops)',
    flags: {
      ...HOST_COMMAND,
      stage: {
        type: 'string',
        value: 'pre|post|schedule',
        help: 'run the checks tagged for this stage (default: schedule)'
      }
    },
    settings: ['connection', 'target', 'service', 'checks'],
    run: runCheck
  },
  preflight: {
    summary: 'check each host is ready for a deploy, changing nothing; each problem names its fix',
    details:
      'Login, the tools the deploy calls, write access, free disk for the artifact (when one is set), the systemd unit (it must run from <target>/current) and, with sudo, exactly the sudo commands the deploy runs. Every deploy runs the same checks first.',
    flags: {
      ...HOST_COMMAND,
      artifact: { type: 'string', value: 'PATH', help: 'the file or directory to ship, for the disk check' }
    },
    settings: ['connection', 'target', 'service', 'checks'],
    run: ({ flags, log, write, settings }) =>
      preflightCommand(settings('hosts'), write, flags.json === true, log)
  },
  history: {
    summary: "list each host's deployments (its deployments.jsonl), newest first",
    flags: {
      ...HOST_COMMAND,
      limit: { type: 'string', value: 'N', help: 'how many deployments per host (default: 20)' }
    },
    settings: ['connection', 'target'],
    run: runHistory
  },
  init: {
    summary: 'write a commented starter deployguard.yml',
    flags: {
      config: { ...CONFIG, help: 'where to write it (default: deployguard.yml)' },
      force: { type: 'boolean', help: 'replace an existing file' }
    },
    run: async ({ flags, write }) => {
      const path = str(flags.config) ?? 'deployguard.yml';
      if (existsSync(path) && !flags.force)
        throw new ConfigError(`${path} exists; not overwriting it`, 'Pass --force to replace it.');
      try {
        writeFileNoFollow(path, STARTER_CONFIG, 0o644);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ELOOP' || code === 'EISDIR' || /not a regular file/.test(String(err)))
          throw new ConfigError(
            `${shown(path)} is ${code === 'ELOOP' ? 'a symbolic link' : 'not a regular file'}; nothing was written`,
            'Remove it, or name another file with --config.'
          );
        throw err;
      }
      write(
        `wrote ${path}: one host, a systemd service and one health check. Fill in the host, pin its key (deployguard pin HOST), then run: deployguard preflight --config ${path}`
      );
      return 0;
    }
  },
  pin: {
    summary: "print a host's SSH key as a known_hosts line to pin (verify it out of band)",
    details:
      'Only the key exchange runs: no user name or credential is sent. Compare the fingerprint with `ssh-keygen -lf` on the host itself before you trust the line.',
    argument: { name: 'host', label: 'HOST' },
    flags: {
      port: { type: 'string', value: 'N', help: 'the SSH port (default: 22)' },
      user: { type: 'string', value: 'USER', help: 'the deploy user, for the config snippet printed' }
    },
    run: async ({ flags, write }) => {
      const portText = str(flags.port) ?? '22';
      return pinCommand(str(flags.host)!, /^\d{1,5}$/.test(portText) ? Number(portText) : NaN, write, {
        user: str(flags.user)
      });
    }
  },
  schema: {
    summary: 'print the JSON Schema of deployguard.yml (for editors)',
    flags: {},
    run: async ({ writeData }) => {
      // The file editors read, for the Action's users as much as the CLI's: in the file's words.
      writeData(JSON.stringify(configJsonSchema(), null, 2));
      return 0;
    }
  },
  demo: {
    summary: 'deploy a sample app to a sandbox sshd on loopback: v1, then a broken v2 rolled back',
    flags: {},
    run: ({ log }) => runDemo(log)
  }
};

const str = (v: string | boolean | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

/** The flags of a command: its own, then the setting flags of its groups. */
function flagsOf(spec: CommandSpec): Record<string, FlagSpec> {
  const out: Record<string, FlagSpec> = { ...spec.flags };
  for (const [name, d] of Object.entries(INPUTS))
    if (spec.settings?.includes(d.group))
      out[name] = isSwitch(name as InputName)
        ? { type: 'boolean', help: d.help }
        : { type: 'string', value: 'value' in d ? d.value : 'VALUE', help: d.help };
  return { ...out, help: { type: 'boolean', short: 'h', help: 'show this help' } };
}

function table(rows: readonly [string, string][]): string[] {
  const width = Math.min(34, Math.max(...rows.map(([l]) => l.length)) + 2);
  return rows.map(
    ([l, r]) => `  ${l.padEnd(width)}${l.length >= width ? `\n  ${' '.repeat(width)}` : ''}${r}`
  );
}

const flagLabel = (name: string, f: FlagSpec) =>
  `${f.short ? `-${f.short}, ` : ''}--${name}${f.type === 'string' ? ` ${f.value ?? 'VALUE'}` : ''}`;

/** `deployguard COMMAND --help`. */
export function commandHelp(name: string): string {
  const spec = COMMANDS[name]!;
  const all = flagsOf(spec);
  // A command's own flags may share a setting's name (`pin --port`): only the setting groups'
  // flags are settings.
  const isOwn = (n: string) => n in spec.flags || !(n in INPUTS);
  const own = Object.entries(all).filter(([n]) => isOwn(n));
  const settings = Object.entries(all).filter(([n]) => !isOwn(n));
  const lines = [
    `Usage: deployguard ${name}${spec.argument ? ` ${spec.argument.label}` : ''}${Object.keys(all).length > 1 ? ' [flags]' : ''}`,
    '',
    `${spec.summary[0]!.toUpperCase()}${spec.summary.slice(1)}.${spec.details ? ` ${spec.details}` : ''}`,
    '',
    'Flags:',
    ...table(own.map(([n, f]) => [flagLabel(n, f), f.help]))
  ];
  if (settings.length)
    lines.push(
      '',
      'Settings (each overrides the same key of the config file, with the same rules):',
      ...table(settings.map(([n, f]) => [flagLabel(n, f), f.help])),
      '',
      'Secrets never go in flags (other users can read the process list): the SSH key comes from',
      '--ssh-key-file or DEPLOYGUARD_SSH_KEY, its passphrase from DEPLOYGUARD_SSH_PASSPHRASE.'
    );
  return lines.join('\n');
}

/** `deployguard --help`. */
export function usage(): string {
  return [
    'deployguard: a deploy gate: verified SSH deploys, health checks, automatic rollback.',
    '',
    'Usage: deployguard COMMAND [flags]',
    '',
    'Commands:',
    ...table(
      Object.entries(COMMANDS).map(([n, c]) => [
        `deployguard ${n}${c.argument ? ` ${c.argument.label}` : ''}`,
        c.summary
      ])
    ),
    '',
    'Run `deployguard COMMAND --help` for the flags of one command; `deployguard --version` for',
    'the version. Exit status: 0 only when everything passed, 2 for a usage or config mistake.'
  ].join('\n');
}

/** A usage mistake: exit 2, with a pointer to the right help. */
function usageError(message: string, command?: string): ConfigError {
  return new ConfigError(
    message,
    `Run \`deployguard ${command ? `${command} ` : ''}--help\` for the ${command ? 'flags' : 'commands'}.`
  );
}

/** Shows a flag or argument the user typed, escaped so it cannot break the line it is in. */
const shown = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s);

export interface ParsedCommand {
  readonly command: string;
  readonly flags: Flags;
}

/**
 * Parses `COMMAND [flags]` strictly: a flag the command does not take, a flag given twice, a
 * missing value or a stray argument is an error naming it (with a did-you-mean when one is
 * close), never silently ignored. `--help` and `--version` come back as commands of their own.
 */
export function parseCommandLine(argv: readonly string[]): ParsedCommand {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    const topic = first === 'help' ? rest[0] : undefined;
    if (topic !== undefined && !(topic in COMMANDS)) throw unknownCommand(topic);
    return { command: topic === undefined ? (first ? 'help' : 'usage') : 'help', flags: { topic } };
  }
  if (first === '--version' || first === '-V') {
    if (rest.length) throw usageError(`--version takes no arguments, got ${shown(rest[0]!)}`);
    return { command: 'version', flags: {} };
  }
  if (first.startsWith('-'))
    throw usageError(
      `expected a command first, got the flag ${shown(first)}. Example: deployguard deploy --dry-run`
    );
  const spec = COMMANDS[first];
  if (!spec) throw unknownCommand(first);
  const options = flagsOf(spec);
  // Tokens first, without strict mode, so that every mistake can be named in our own words.
  const { tokens } = parseArgs({
    args: [...rest],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true
  });
  const seen = new Set<string>();
  const normalized: string[] = [];
  let argument: string | undefined;
  for (const t of tokens) {
    if (t.kind === 'positional') {
      if (spec.argument && argument === undefined) {
        argument = t.value;
        continue;
      }
      throw usageError(
        `unexpected argument ${shown(t.value)}: \`${first}\` takes ${spec.argument ? `one ${spec.argument.label} and flags` : 'flags only'}`,
        first
      );
    }
    if (t.kind !== 'option') continue;
    const flag = options[t.name];
    if (!flag) throw unknownFlag(first, t.rawName, Object.keys(options));
    if (seen.has(t.name)) throw usageError(`--${t.name} is given twice; give it once`, first);
    seen.add(t.name);
    if (flag.type === 'boolean' && t.value !== undefined)
      throw usageError(
        `--${t.name} takes no value (it is a switch), got ${shown(`${t.rawName}=${t.value}`)}`,
        first
      );
    // `--reason --dry-run` forgot the reason; `--host -oProxyCommand=x` is a (bad) host name.
    const flagLike = (v: string) =>
      v === '-h' || (/^--[A-Za-z]/.test(v) && v.replace(/^--|=.*$/g, '') in options);
    if (flag.type === 'string' && (t.value === undefined || (!t.inlineValue && flagLike(t.value))))
      throw usageError(`--${t.name} needs a value. Example: --${t.name} ${flag.value ?? 'VALUE'}`, first);
    // An empty value would read as "not given" and fall back to the file: `--host ""` would
    // deploy to every host listed there.
    if (flag.type === 'string' && t.value?.trim() === '')
      throw usageError(
        `--${t.name} is empty; give a value or leave the flag out. Example: --${t.name} ${flag.value ?? 'VALUE'}`,
        first
      );
    normalized.push(t.value === undefined ? `--${t.name}` : `--${t.name}=${t.value}`);
  }
  // Every mistake is named above; the strict parse of the checked flags gives the values (a value
  // that starts with `-` is inline now, so strict mode takes it as the value it is).
  const { values } = parseArgs({ args: normalized, options, strict: true, allowPositionals: false });
  if (spec.argument && argument === undefined && !values.help)
    throw usageError(
      `\`${first}\` needs ${spec.argument.label}. Example: deployguard ${first} 203.0.113.10`,
      first
    );
  return {
    command: first,
    flags:
      spec.argument && argument !== undefined
        ? { ...values, [spec.argument.name]: argument }
        : (values as Flags)
  };
}

function unknownCommand(name: string): ConfigError {
  const near = suggest(name, Object.keys(COMMANDS));
  return usageError(
    `unknown command ${shown(name)}${near ? `; did you mean \`${near}\`?` : ''} Commands: ${Object.keys(COMMANDS).join(', ')}.`
  );
}

function unknownFlag(command: string, raw: string, known: readonly string[]): ConfigError {
  const name = raw.replace(/^-+/, '');
  if ((SECRET_INPUTS as readonly string[]).includes(name))
    return new ConfigError(
      `--${name} would put a secret in the process list, where other users can read it`,
      name === 'ssh-key'
        ? 'Use --ssh-key-file PATH or DEPLOYGUARD_SSH_KEY in the environment.'
        : `Use ${CLI_WORDING.ref(name)} in the environment.`
    );
  // A typo, or the start of exactly one flag (`--target` for `--target-path`).
  const starting = known.filter(k => name.length >= 3 && k.startsWith(name));
  const near = suggest(name, known) ?? (starting.length === 1 ? starting[0] : undefined);
  const elsewhere = Object.keys(COMMANDS).filter(c => c !== command && name in flagsOf(COMMANDS[c]!));
  const hint = near
    ? `; did you mean --${near}?`
    : elsewhere.length
      ? `; it is a flag of ${elsewhere.map(c => `\`deployguard ${c}\``).join(', ')}, not of \`${command}\``
      : '';
  return usageError(`unknown flag ${shown(raw)} for \`deployguard ${command}\`${hint}`, command);
}

/** Runs the CLI and returns the exit code (never calls process.exit, so tests can call it). */
export async function main(
  argv: readonly string[],
  out: NodeJS.WritableStream = process.stdout,
  errOut: NodeJS.WritableStream = process.stderr
): Promise<number> {
  const verbose = argv.includes('--verbose');
  // Outside GitHub Actions, workflow commands that libraries print (`::debug::`) become plain lines.
  if (process.env.GITHUB_ACTIONS !== 'true') plainTerminal([process.stdout, process.stderr], { verbose });
  const log = inCliLogger(redacting(consoleLogger({ verbose, stream: errOut })));
  const write = (text: string) => void out.write(inertCommands(inCliWords(secrets.redact(text))) + '\n');
  const writeData = (text: string) => void out.write(secrets.redact(text) + '\n');
  try {
    const { command, flags } = parseCommandLine(argv);
    if (command === 'usage' || command === 'help') {
      write(str(flags.topic) ? commandHelp(str(flags.topic)!) : usage());
      return command === 'usage' ? 2 : 0;
    }
    if (command === 'version') {
      write(VERSION);
      return 0;
    }
    if (flags.help) {
      write(commandHelp(command));
      return 0;
    }
    const keyFile = str(flags['ssh-key-file']);
    const input = (name: string): string | undefined => {
      if (name === 'ssh-key' && keyFile) return readKeyFile(keyFile);
      if (name === 'config' || name in INPUTS) {
        const v = flags[name];
        return v === true ? 'true' : str(v);
      }
      return undefined; // secrets come from the environment, never from flags
    };
    const ctx: CommandContext = {
      flags,
      log,
      write,
      writeData,
      settings: purpose =>
        loadSettings({
          input,
          env: withCommit(process.env),
          cwd: process.cwd(),
          now: new Date(),
          onSecret: (v: string) => secrets.add(v),
          purpose,
          wording: CLI_WORDING
        })
    };
    return await COMMANDS[command]!.run(ctx);
  } catch (err) {
    log.error(describeError(err));
    return err instanceof ConfigError ? 2 : 1;
  }
}

/** The logger, every message in the CLI's words: flags and variables, never action inputs. */
function inCliLogger(inner: Logger): Logger {
  return {
    info: m => inner.info(inCliWords(m)),
    warn: m => inner.warn(inCliWords(m)),
    error: m => inner.error(inCliWords(m)),
    debug: m => inner.debug(inCliWords(m)),
    group: (title, fn) => inner.group(inCliWords(title), fn)
  };
}

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `--ssh-key-file: cannot read ${shown(path)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      'Example: --ssh-key-file ~/.ssh/deploy_key (the private key, not the .pub file)'
    );
  }
}

async function deployOrRollback(ctx: CommandContext, rollingBack: boolean): Promise<number> {
  return runPipeline(cliHost(ctx), {
    ships: !rollingBack,
    mode: () => {
      if (!rollingBack) return { kind: 'full' };
      const to = str(ctx.flags.to) ?? 'previous';
      if (to !== 'previous' && !validate(releaseId, to).ok)
        throw new ConfigError(
          `--to: expected previous or a release id, got ${shown(to)}`,
          'Example: --to previous (or a release id from `deployguard history`)'
        );
      return { kind: 'rollback', to };
    }
  });
}

/**
 * The pipeline's host on a terminal: flags and the environment in, log lines on stderr, the
 * verdict (or JSON) on stdout, the record in the file `--record` names; the exit code says it all.
 */
function cliHost({ flags, log, write, settings }: CommandContext): PipelineHost {
  const json = flags.json === true;
  return {
    settings,
    workspace: process.cwd(),
    env: process.env,
    log,
    redact: text => secrets.redact(text),
    // Deploys from one checkout or build directory hash only what changed since the last one.
    hashCache: () => (process.env.DEPLOYGUARD_NO_HASH_CACHE ? undefined : userCacheDir('hashes')),
    // Ctrl-C stops between steps and rolls back, instead of leaving a host half-deployed.
    onCancel: cancel => {
      const onSignal = () => {
        log.warn('interrupted: stopping at the next step and rolling back (interrupt again to force quit)');
        cancel();
        process.once('SIGINT', () => process.exit(130));
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      return () => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      };
    },
    showPlan: async (s, plan) => {
      write(
        json
          ? JSON.stringify({ status: 'dry-run', release: s.releaseId, plan: plan.split('\n') }, null, 2)
          : plan
      );
      return 0;
    },
    // Only on request, and only for a run that got past its tests.
    record: ({ failedTests }) =>
      str(flags.record) && failedTests === undefined ? { post: false } : undefined,
    recorded: record => {
      const recordPath = str(flags.record)!;
      writeFileNoFollow(recordPath, record.markdown);
      log.info(`deployment record written to ${recordPath}`);
    },
    finish: async ({ result, failedTests }) => {
      if (failedTests !== undefined) {
        log.error(describeError(failedTests));
        if (json) write(JSON.stringify({ status: 'blocked', error: describeError(failedTests) }, null, 2));
        return 1;
      }
      write(json ? JSON.stringify(result, null, 2) : verdictLine(result));
      return result.status === 'deployed' ? 0 : 1;
    }
  };
}

async function runCheck({ flags, log, write, settings: load }: CommandContext): Promise<number> {
  const stage = str(flags.stage) ?? 'schedule';
  if (!['pre', 'post', 'schedule'].includes(stage))
    throw new ConfigError(
      `--stage: expected pre, post or schedule, got ${shown(stage)}`,
      'Example: --stage post'
    );
  const settings = load('check');
  const results = await checkNow(settings, stage as Stage, log);
  const passed = results.filter(r => r.ok).length;
  if (flags.json === true)
    write(
      JSON.stringify(
        { stage, passed, total: results.length, ok: passed === results.length, results },
        null,
        2
      )
    );
  else write(renderCheckTable(results));
  return passed === results.length ? 0 : 1;
}

async function runHistory({ flags, log, write, settings: load }: CommandContext): Promise<number> {
  const limitText = str(flags.limit) ?? '20';
  if (!/^\d{1,6}$/.test(limitText) || Number(limitText) < 1)
    throw new ConfigError(
      `--limit: expected a positive number, got ${shown(limitText)}`,
      'Example: --limit 50'
    );
  const settings = load('hosts');
  const hosts = await readHistory(settings, Number(limitText), log);
  for (const h of hosts) {
    if (h.error) log.error(`${h.host}: ${h.error}`);
    for (const p of h.log?.problems ?? [])
      log.warn(`${h.host}: deployments.jsonl line ${p.line} skipped: ${p.reason}`);
  }
  if (flags.json === true) write(JSON.stringify({ hosts }, null, 2));
  else
    write(
      hosts
        .filter(h => h.log)
        .map(h => renderHistory(h.host, h.log!))
        .join('\n\n')
    );
  return hosts.some(h => h.error) ? 1 : 0;
}

/**
 * Outside Actions (no GITHUB_SHA), the commit being deployed is the checkout's HEAD: the record's
 * "changes since the last deploy" and each host's history need it. Not a git checkout: unknown.
 */
function withCommit(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (env.GITHUB_SHA || env.DEPLOYGUARD_COMMIT) return env;
  const r = runGitSync(process.cwd(), ['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'], {
    env,
    timeoutMs: 5000
  });
  const head = r.code === 0 ? r.stdout.toString('utf8').trim() : '';
  return /^[0-9a-f]{40}$/.test(head) ? { ...env, DEPLOYGUARD_COMMIT: head } : env;
}
