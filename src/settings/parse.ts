import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Document } from 'yaml';
import { ConfigError } from '../errors.js';
import { excludeProblems } from '../transfer/exclude.js';
import { entryMatchesHost, parseKnownHosts } from '../remote/hostkeys.js';
import { configSchema, type ConfigFile } from './config.js';
import {
  INPUTS,
  parseInput,
  SECRET_INPUTS,
  type InputName,
  type InputValue,
  type SecretInput
} from './inputs.js';
import { formatIssues, validate, type SchemaIssue } from './schema.js';
import type {
  CheckSettings,
  EnvSettings,
  HostSettings,
  ScanMode,
  ServiceSettings,
  Settings,
  Stage
} from './types.js';
import { judgesEachHost } from './types.js';
import { ACTION_WORDING, type Wording } from './wording.js';

/**
 * Inputs + environment + deployguard.yml -> Settings, in one pure pass. Every problem found is
 * reported at once, each naming the input or the key, what is wrong and a valid example, and all
 * of it happens before any host is contacted.
 */
export interface SettingsSource {
  /** An action input or CLI flag by its input name (`ssh-key`, `target-path`, ...); '' = not set. */
  input(name: string): string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The text of deployguard.yml, when there is one. */
  readonly configText?: string;
  readonly configPath?: string;
  readonly now: Date;
  /** Called with every secret as soon as it is read, before anything else can print it. */
  readonly onSecret: (value: string) => void;
  /** `check` needs only the checks: hosts, target, artifact and credentials may be absent. */
  readonly purpose?: 'deploy' | 'check' | 'hosts';
  /** How messages name inputs: action inputs (the default) or CLI flags. */
  readonly wording?: Wording;
}

export { SECRET_INPUTS };

const ENV_FALLBACK: Record<string, string> = {
  'ssh-key': 'DEPLOYGUARD_SSH_KEY',
  'ssh-passphrase': 'DEPLOYGUARD_SSH_PASSPHRASE',
  'ssh-password': 'DEPLOYGUARD_SSH_PASSWORD',
  'known-hosts': 'DEPLOYGUARD_KNOWN_HOSTS',
  'github-token': 'GITHUB_TOKEN'
};

const YAML_MAX_BYTES = 1024 * 1024;

/**
 * Input shown in a message: quoted and escaped, so a newline in it cannot start a line of its own
 * in the log (on GitHub, a line starting with `::` would be a workflow command).
 */
function quoted(value: string, max: number): string {
  return JSON.stringify(value.slice(0, max));
}

interface Yaml {
  readonly value: unknown;
  /** `line:column` of a path like `hosts[1].port` in the file (of the deepest part that exists). */
  readonly at: (path: string, atKey: boolean) => string;
}

function readYaml(text: string, path: string): Yaml {
  if (text.length > YAML_MAX_BYTES) throw new ConfigError(`${path}: the file is larger than 1 MiB`);
  const lines = new LineCounter();
  // maxAliasCount bounds "billion laughs" alias bombs; merge keys and custom tags stay off.
  const doc = parseDocument(text, {
    prettyErrors: true,
    uniqueKeys: true,
    merge: false,
    strict: true,
    lineCounter: lines
  });
  if (doc.errors.length) {
    throw new ConfigError(
      `${path} is not valid YAML:\n${doc.errors
        .map(e => {
          const pos = e.linePos?.[0];
          const what = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
          return `  ${path}:${pos ? `${pos.line}:${pos.col}` : '?'}: ${what}`;
        })
        .join('\n')}`,
      'Check the indentation (spaces, not tabs) at the line and column named above.'
    );
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(
      `${path}: ${(err as Error).message}`,
      'Avoid YAML aliases that expand to huge documents.'
    );
  }
  return { value, at: (p, atKey) => positionOf(doc, lines, p, atKey) };
}

/** Splits `hosts[1]["a.b"].port` into `['hosts', 1, 'a.b', 'port']`. */
function pathParts(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of path.matchAll(/\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]|\.?([\w-]+)/g)) {
    if (m[1] !== undefined) out.push(Number(m[1]));
    else if (m[2] !== undefined) out.push(JSON.parse(m[2]) as string);
    else out.push(m[3]!);
  }
  return out;
}

/** Where a path is: its value, or its key when the key is the mistake (an unknown key). */
function positionOf(doc: Document, lines: LineCounter, path: string, atKey: boolean): string {
  let node: unknown = doc.contents;
  let offset = (doc.contents as { range?: [number] } | null)?.range?.[0] ?? 0;
  for (const part of pathParts(path)) {
    if (isMap(node)) {
      const pair = node.items.find(i => isScalar(i.key) && String(i.key.value) === String(part));
      if (!pair) break;
      node = pair.value;
      const value = atKey ? undefined : (node as { range?: [number] } | null)?.range?.[0];
      offset = value ?? (pair.key as { range?: [number] }).range?.[0] ?? offset;
    } else if (isSeq(node) && typeof part === 'number' && node.items[part]) {
      node = node.items[part];
      offset = (node as { range?: [number] }).range?.[0] ?? offset;
    } else break;
  }
  const { line, col } = lines.linePos(offset);
  return `${line}:${col}`;
}

interface Problems {
  readonly list: string[];
}

/** The file's top-level keys: what a section of a broken file may be called. */
const TOP_KEYS = Object.keys((configSchema.json() as { properties: object }).properties);

/**
 * Validates the file section by section. A section with a mistake is reported and left out; the
 * rest is used, so one mistake gives one error, not a cascade of "no hosts", "no user" for
 * settings that are in the file but sat next to the mistake. `broken` names the sections left out
 * (`*`: the whole file); the checks for missing settings stay quiet about those.
 */
function readFile(
  text: string,
  path: string,
  p: Problems
): { file?: ConfigFile; broken: ReadonlySet<string>; at: (path: string) => string } {
  const yaml = readYaml(text, path);
  const raw = yaml.value ?? {};
  const at = (p: string) => `${path}:${yaml.at(p, false)}`;
  const r = validate(configSchema, raw);
  if (r.ok) return { file: r.value, broken: new Set(), at };
  p.list.push(
    ...r.errors.map(i => `${path}:${yaml.at(i.path, /^unknown key/.test(i.message))}: ${formatIssues([i])}`)
  );
  const broken = new Set<string>();
  for (const i of r.errors) {
    const top = pathParts(i.path)[0];
    broken.add(typeof top === 'string' ? top : '*');
    // A misspelt section (`host:` for `hosts:`) is where the real one was meant to be.
    const meant = /did you mean `([\w-]+)`/.exec(i.message)?.[1];
    if (typeof top === 'string' && !TOP_KEYS.includes(top) && meant) broken.add(meant);
  }
  if (broken.has('*') || typeof raw !== 'object' || Array.isArray(raw)) return { broken: new Set(['*']), at };
  const rest: Record<string, unknown> = { version: 1 };
  for (const [k, v] of Object.entries(raw as Record<string, unknown>))
    if (!broken.has(k) && TOP_KEYS.includes(k)) rest[k] = v;
  const again = validate(configSchema, rest);
  return again.ok ? { file: again.value, broken, at } : { broken: new Set(['*']), at };
}

/** One input's issue in the words of the caller: "input `port`: …. Example: port: 22". */
function inputProblem(wording: Wording, name: string, issue: SchemaIssue): string {
  const where = issue.path === name ? wording.label(name) : `${wording.label(name)} (${issue.path})`;
  const value = issue.example.replace(/^(?:- |[\w-]+: )/, '');
  // Every input is text: "(a string)" after the value would tell nobody anything.
  const message = issue.message.replace(/ \(a string(?: of \d+ characters)?\)/, '');
  const stop = /[.?!]$/.test(message) ? '' : '.';
  return `${where}: ${message}${stop} Example: ${wording.example(name, value)}`;
}

function defaultReleaseId(now: Date, commit: string): string {
  const stamp = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const sha = /^[0-9a-f]{7,}$/i.test(commit) ? `-${commit.slice(0, 7)}` : '';
  return `${stamp}${sha}`;
}

/**
 * Known_hosts text checked line by line: a malformed or truncated key is named here, at config
 * time, and never reaches the connect step, where it would look like a changed host key.
 */
function knownHostsProblems(text: string, where: string, example: string): string[] {
  try {
    parseKnownHosts(text);
    return [];
  } catch (err) {
    return [`${where}: ${(err as Error).message}. Example: ${example}`];
  }
}

const KNOWN_HOSTS_EXAMPLE =
  '203.0.113.10 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI… (a whole line of ssh-keyscan)';

/** Parses and validates everything; throws one ConfigError listing every problem. */
export function parseSettings(src: SettingsSource): Settings {
  const p: Problems = { list: [] };
  const wording = src.wording ?? ACTION_WORDING;
  const say = (name: string) => wording.ref(name);
  const text = (name: string): string | undefined => {
    const raw = src.input(name) ?? (ENV_FALLBACK[name] ? src.env[ENV_FALLBACK[name]!] : undefined);
    const v = raw === undefined || raw.trim() === '' ? undefined : name.startsWith('ssh-') ? raw : raw.trim();
    if (v !== undefined && (SECRET_INPUTS as readonly string[]).includes(name)) src.onSecret(v);
    return v;
  };
  /** A declared input, validated by its declaration (the file key's own node); a secret, as is. */
  function get<N extends InputName>(name: N): InputValue<N> | undefined;
  function get(name: SecretInput): string | undefined;
  function get(name: InputName | SecretInput): unknown {
    const v = text(name);
    if (v === undefined || !(name in INPUTS)) return v;
    const r = parseInput(name as InputName, v);
    if (r.ok) return r.value;
    p.list.push(...r.issues.map(i => inputProblem(wording, name, i)));
    return undefined;
  }
  // Secrets first, so they are masked before any message below could echo one.
  const privateKey = get('ssh-key');
  const passphrase = get('ssh-passphrase');
  const password = get('ssh-password');
  const githubToken = get('github-token');

  const configPath = src.configPath ?? 'deployguard.yml';
  const { file, broken, at } =
    src.configText !== undefined
      ? readFile(src.configText, configPath, p)
      : { file: undefined, broken: new Set<string>(), at: () => configPath };
  /** Whether a setting missing from the file may really be missing (its section was read). */
  const read = (section: string) => !broken.has('*') && !broken.has(section);

  const port = get('port');
  const skip = get('insecure-skip-host-key-check') ?? false;
  const dryRun = get('dry-run') ?? false;
  const githubDeployment = get('github-deployment');
  const commentInput = get('comment');
  const envUrl = get('environment-url');
  const reason = get('reason');
  const lockWait = get('lock-wait');
  const maxParallel = get('max-parallel');
  const canaryInput = get('canary');
  const connectTimeout = get('connect-timeout');
  const stabilityWindow = get('stability-window');
  const environment = get('environment');

  const knownHostsText = get('known-hosts');
  if (knownHostsText)
    p.list.push(
      ...knownHostsProblems(
        knownHostsText,
        // Named where it came from: the input or flag, or the environment variable behind it.
        src.input('known-hosts')?.trim()
          ? wording.label('known-hosts')
          : `\`${ENV_FALLBACK['known-hosts']}\``,
        wording.example('known-hosts', JSON.stringify(KNOWN_HOSTS_EXAMPLE))
      )
    );
  const hostKeyInput = get('host-key');
  const inputFingerprints = hostKeyInput === undefined ? [] : [hostKeyInput].flat();

  // Hosts: the `host` input replaces the file's list (one host); otherwise the file's list.
  const hostInput = get('host');
  const hostNameInput = get('host-name');
  const defaultUser = get('user');
  const fileHosts = hostInput
    ? [
        {
          name: hostNameInput,
          host: hostInput,
          port: port ?? 22,
          user: undefined,
          'host-key': undefined,
          'known-hosts': undefined
        }
      ]
    : (file?.hosts ?? []);
  /** A host's own key, from the environment variable its `ssh-key-env` names (masked on read). */
  const keyFromEnv = (keyEnv: string | undefined, who: string): string | undefined => {
    if (!keyEnv) return undefined;
    const key = src.env[keyEnv]?.trim() ? src.env[keyEnv] : undefined;
    if (key) src.onSecret(key);
    else if (!dryRun)
      p.list.push(
        `${who}: ssh-key-env names ${keyEnv}, which is not set. Example: env: { ${keyEnv}: \${{ secrets.${keyEnv} }} } in the workflow step`
      );
    if (key && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key))
      p.list.push(
        `${who}: ${keyEnv} does not hold a private key (no "-----BEGIN ... PRIVATE KEY-----" line)`
      );
    return key;
  };
  /** A host's own known_hosts lines: well formed, and one of them names this host. */
  const checkOwnPins = (lines: string | undefined, key: string, host: string, hostPort: number) => {
    if (!lines) return;
    const where = `${at(key.replace(/^`([^`]+)`.*$/, '$1'))}: ${key}`;
    const bad = knownHostsProblems(lines, where, `known-hosts: ${JSON.stringify(KNOWN_HOSTS_EXAMPLE)}`);
    p.list.push(...bad);
    // Lines for other machines pin nothing here: say so now, not as "unpinned" at connect.
    const shown = hostPort === 22 ? host : `[${host}]:${hostPort}`;
    if (!bad.length && !parseKnownHosts(lines).some(e => entryMatchesHost(e, host, hostPort)))
      p.list.push(
        `${where}: no line names ${shown}, so nothing pins this host's key. Example: known-hosts: "${shown} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI…"`
      );
  };
  const pinsOf = (h: { 'host-key'?: string | readonly string[] }) =>
    h['host-key'] === undefined
      ? []
      : typeof h['host-key'] === 'string'
        ? [h['host-key']]
        : [...h['host-key']];
  const hosts: HostSettings[] = fileHosts.map((h, i) => {
    const name = h.name ?? (fileHosts.length > 1 ? `${h.host}#${i + 1}` : h.host);
    const hostPort = hostInput ? (port ?? 22) : h.port;
    const privateKey = keyFromEnv((h as { 'ssh-key-env'?: string })['ssh-key-env'], `host ${name}`);
    const user = h.user ?? defaultUser ?? '';
    checkOwnPins(h['known-hosts'], `\`hosts[${i}].known-hosts\` (host ${name})`, h.host, hostPort);
    const j = (h as { 'proxy-jump'?: NonNullable<ConfigFile['hosts']>[number]['proxy-jump'] })['proxy-jump'];
    // The jump host: its own pins (plus the shared known-hosts input, matched by its address);
    // its user and key are this host's unless it names its own.
    if (j)
      checkOwnPins(j['known-hosts'], `\`hosts[${i}].proxy-jump.known-hosts\` (host ${name})`, j.host, j.port);
    const jumpKey = j && keyFromEnv(j['ssh-key-env'], `host ${name}: proxy-jump`);
    const jump: HostSettings | undefined = j && {
      name: `${name} (jump host ${j.host})`,
      jumpFor: name,
      host: j.host,
      port: j.port,
      user: j.user ?? user,
      knownHosts: [j['known-hosts'], knownHostsText].filter((x): x is string => !!x),
      fingerprints: [...pinsOf(j), ...inputFingerprints],
      ...((jumpKey ?? privateKey) ? { privateKey: jumpKey ?? privateKey } : {})
    };
    return {
      name,
      host: h.host,
      port: hostPort,
      user,
      knownHosts: [h['known-hosts'], knownHostsText].filter((x): x is string => !!x),
      fingerprints: [...pinsOf(h), ...inputFingerprints],
      ...(privateKey ? { privateKey } : {}),
      ...(jump ? { jump } : {})
    };
  });
  // `host-name` and `port` describe the `host` input; without it they would be ignored silently.
  if (!text('host'))
    for (const name of ['host-name', 'port'] as const)
      if (text(name))
        p.list.push(
          `${wording.label(name)} applies to ${say('host')}, which is not set; for the hosts of ${configPath}, set \`${name === 'port' ? 'port' : 'name'}:\` on each. Example: ${wording.example('host', '203.0.113.10')}`
        );
  const deploying = src.purpose !== 'check';
  if (hosts.length === 0 && deploying && read('hosts') && hostInput === undefined && !text('host'))
    p.list.push(
      `no hosts: set ${say('host')} or list \`hosts:\` in ${configPath}. Example: hosts: [{ host: 203.0.113.10, user: deploy }]`
    );
  const names = new Set<string>();
  for (const h of hosts) {
    if (!h.user && !text('user'))
      p.list.push(
        `host ${h.name}: no user. Set \`user:\` on the host in ${configPath} or ${say('user')}. Example: user: deploy`
      );
    if (names.has(h.name))
      p.list.push(`host names must be unique: "${h.name}" appears twice. Example: name: web-2`);
    names.add(h.name);
  }
  // A dry run contacts no host: it needs what the plan needs, never a credential.
  const needsCredentials = deploying && !dryRun && read('hosts');
  if (!privateKey && !password && needsCredentials && !(hosts.length > 0 && hosts.every(h => h.privateKey))) {
    p.list.push(
      `no SSH credentials: set ${say('ssh-key')} to a private key. Example: ${wording.example('ssh-key', '${{ secrets.DEPLOY_KEY }}')}`
    );
  } else if (privateKey && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKey)) {
    p.list.push(
      `${wording.label('ssh-key')}: this is not a private key (no "-----BEGIN ... PRIVATE KEY-----" line). ${
        wording.kind === 'cli'
          ? 'Name the private key file, not the public key (.pub).'
          : 'Paste the whole key file, not a path or the public key.'
      }`
    );
  }
  // A host with no pin is not a config error: the connect step refuses it before any credential
  // is sent, and only there can the message show the key the host actually offers.

  const targetInput = get('target-path');
  const targetPath = targetInput ?? file?.target?.path;
  if (targetPath === undefined) {
    if (deploying && read('target') && !text('target-path'))
      p.list.push(
        `no target path: set \`target.path\` in ${configPath} or ${say('target-path')}. Example: target: { path: /srv/myapp }`
      );
  } else if (targetPath.replace(/\/+$/, '') === '') {
    p.list.push(
      `target path ${quoted(targetPath, 80)}: expected an absolute path below /, not / itself. Example: target: { path: /srv/myapp }`
    );
  }
  const strategyInput = get('strategy');
  const artifact = get('artifact') ?? file?.artifact;
  if (!artifact && deploying && src.purpose !== 'hosts' && read('artifact') && !text('artifact'))
    p.list.push(
      `no artifact: set \`artifact\` in ${configPath} or ${say('artifact')} to the file or directory to ship. Example: artifact: dist/`
    );

  const releaseIdInput = get('release-id');
  const service = serviceFrom(p, file, get, wording, read('service'));
  const scanInput = get('scan');
  const fileScan = file?.['pre-deploy'].gitleaks ?? true;
  const scanSetting = scanInput ?? fileScan;
  const scanMode: ScanMode = scanSetting === true ? 'both' : scanSetting === false ? 'off' : scanSetting;
  const healthUrl = get('health-url');
  const checks = checksFrom(file, healthUrl, src.env, p, src.onSecret);
  // Only a real deploy writes the env file: a dry run, a check, a preflight or a rollback (which
  // keeps each release's own file) does not need the variables it is made from.
  const writesEnv = !dryRun && (src.purpose ?? 'deploy') === 'deploy';
  const env = envFrom(file, src.env, writesEnv ? p : { list: [] }, p, src.onSecret, at);
  // Exclude patterns are checked here too, so a bad one is listed with every other mistake.
  for (const e of excludeProblems(file?.exclude ?? [])) {
    const index = /`exclude\[(\d+)\]`/.exec(e)?.[1];
    p.list.push(`${at(index === undefined ? 'exclude' : `exclude[${index}]`)}: exclude: ${e}`);
  }

  const strategy = strategyInput ?? file?.target?.strategy ?? 'releases';
  const finalService = switchProblems(service, strategy, targetPath, checks, file, p, at);

  // The holder refreshes its lock several times per TTL: a lock left unrefreshed that long is
  // abandoned (its deploy died), however long a healthy deploy runs.
  const lockTtl = file?.deploy['lock-ttl'] ?? 120_000;
  const window = stabilityWindow ?? file?.['post-deploy']['stability-window'] ?? 30_000;

  // Every input is read (and so validated) before the verdict below: one read after it would
  // drop its own mistake silently.
  const beforeSwitch = get('before-switch') ?? file?.deploy['before-switch'];
  const gitleaksPath = get('gitleaks-path');
  const gitleaksConfig = get('gitleaks-config') ?? file?.['pre-deploy']['gitleaks-config'];
  const testCommand = get('test-command') ?? file?.['pre-deploy']['test-command'];

  if (p.list.length) {
    throw new ConfigError(
      `Invalid configuration (nothing was deployed):\n${p.list.map(l => `  - ${l}`).join('\n')}`,
      'Fix the items above; every one is listed, so one pass is enough.'
    );
  }
  const commit = src.env.GITHUB_SHA ?? src.env.DEPLOYGUARD_COMMIT ?? 'unknown';
  const server = src.env.GITHUB_SERVER_URL ?? 'https://github.com';
  const runId = src.env.GITHUB_RUN_ID ?? `local-${src.now.getTime()}`;
  const fileParallel = file?.deploy['max-parallel'] ?? 1;
  const parallel = maxParallel ?? fileParallel;
  return {
    configPath: src.configText !== undefined ? configPath : undefined,
    environment: environment ?? file?.environment ?? 'production',
    artifact: artifact ?? '',
    exclude: file?.exclude ?? [],
    releaseId: releaseIdInput ?? defaultReleaseId(src.now, commit),
    releaseIdGiven: releaseIdInput !== undefined,
    target: {
      path: (targetPath ?? '').replace(/\/+$/, ''),
      strategy,
      keepReleases: file?.target?.['keep-releases'] ?? 5,
      shared: file?.target?.shared ?? []
    },
    hosts,
    ssh: {
      privateKey,
      passphrase,
      password,
      insecureSkipHostKeyCheck: skip,
      connectTimeoutMs: connectTimeout ?? file?.ssh['connect-timeout'] ?? 20_000,
      connectRetries: file?.ssh['connect-retries'] ?? 3,
      compress: file?.ssh.compress ?? 'auto'
    },
    service: finalService,
    checks,
    beforeSwitch,
    runOnce: file?.deploy['run-once'],
    env,
    transfer: { incremental: file?.deploy.incremental ?? true },
    rollout: {
      canary: canaryInput ?? file?.deploy.canary ?? 0,
      maxParallel: typeof parallel === 'string' ? { percent: Number(parallel.slice(0, -1)) } : parallel
    },
    lock: {
      waitMs: lockWait ?? file?.deploy['lock-wait'] ?? 120_000,
      ttlMs: lockTtl
    },
    preDeploy: {
      requireHealthy: file?.['pre-deploy']['require-healthy'] ?? true,
      scan: scanMode,
      gitleaksPath,
      gitleaksConfig,
      testCommand
    },
    postDeploy: {
      rollback: file?.['post-deploy'].rollback ?? 'auto',
      stabilityWindowMs: window
    },
    dryRun,
    report: {
      comment: commentInput ?? file?.report.comment ?? 'auto',
      environmentUrl: envUrl ?? file?.report['environment-url'],
      githubDeployment: githubDeployment ?? file?.report['github-deployment'] ?? false,
      reason,
      githubToken
    },
    run: {
      repository: src.env.GITHUB_REPOSITORY || undefined,
      serverUrl: server.replace(/\/+$/, ''),
      apiUrl: (src.env.GITHUB_API_URL || 'https://api.github.com').replace(/\/+$/, ''),
      runId,
      commit,
      ref: src.env.GITHUB_REF ?? 'local',
      actor: src.env.GITHUB_ACTOR ?? src.env.USER ?? 'unknown',
      runUrl:
        src.env.GITHUB_REPOSITORY && src.env.GITHUB_RUN_ID
          ? `${server}/${src.env.GITHUB_REPOSITORY}/actions/runs/${runId}`
          : undefined
    }
  };
}

/**
 * What the schema cannot see about how a release takes over: blue-green needs its section,
 * releases, two ports and a check that reaches the idle colour; `{port}` means a colour; a command
 * service reloads with its `reload` command. Returns the service with the upstream file resolved.
 */
function switchProblems(
  service: ServiceSettings,
  strategy: string,
  targetPath: string | undefined,
  checks: readonly CheckSettings[],
  file: ConfigFile | undefined,
  p: Problems,
  at: (path: string) => string
): ServiceSettings {
  const svc = file?.service;
  const mode = service.manager === 'none' ? undefined : service.switch;
  const bgFile = svc?.manager === 'systemd' ? svc['blue-green'] : undefined;
  if (bgFile && mode !== 'blue-green')
    p.list.push(
      `${at('service.blue-green')}: service.blue-green is set, but service.switch is ${mode ?? 'not used'}. Example: switch: blue-green`
    );
  if (service.manager === 'command' && service.switch === 'reload' && !service.reload)
    p.list.push(
      `${at('service.switch')}: service.switch: reload needs service.reload, the command that makes the running service pick up the new release. Example: reload: kill -HUP "$(cat /run/myapp.pid)"`
    );
  if (service.manager === 'command' && service.switch !== 'reload' && service.reload)
    p.list.push(
      `${at('service.reload')}: service.reload is only run with switch: reload. Example: switch: reload`
    );
  const placeholder = checks.find(
    c => (c.type === 'http' || c.type === 'version') && c.url !== undefined && /\{port\}/.test(c.url)
  );
  if (mode !== 'blue-green') {
    if (placeholder)
      p.list.push(
        `${at(`checks[${checks.indexOf(placeholder)}].url`)}: check ${placeholder.name}: \`{port}\` in a url is the port of a blue-green colour, and service.switch is not blue-green. Example: url: http://127.0.0.1:8080/health`
      );
    return service;
  }
  if (service.manager !== 'systemd') return service;
  if (!service.blueGreen) {
    p.list.push(
      `${at('service.switch')}: switch: blue-green needs service.blue-green with the ports of the two instances. Example: blue-green: { ports: { blue: 8001, green: 8002 } }`
    );
    return service;
  }
  const bg = service.blueGreen;
  if (bg.ports.blue === bg.ports.green)
    p.list.push(
      `${at('service.blue-green.ports')}: the blue and green instances need two different ports, both are ${bg.ports.blue}. Example: ports: { blue: 8001, green: 8002 }`
    );
  if (strategy !== 'releases')
    p.list.push(
      `${at('target.strategy')}: switch: blue-green runs each colour from its own release: it needs strategy: releases`
    );
  if (service.name.includes('@'))
    p.list.push(
      `${at('service.name')}: with switch: blue-green, service.name is the template's name without \`@\` (instances ${service.name.split('@')[0]}@blue and ${service.name.split('@')[0]}@green). Example: name: myapp`
    );
  if (!checks.some(c => c.stages.includes('post') && judgesEachHost(c)))
    p.list.push(
      `${at('checks')}: switch: blue-green checks the new colour before the proxy sends it traffic, so it needs a post-deploy check that reaches the colour: an http check with \`{port}\` in its url, or a process, logs or host command check. Example: - { name: colour, type: http, url: "http://127.0.0.1:{port}/health" }`
    );
  const base = (targetPath ?? '').replace(/\/+$/, '');
  return { ...service, blueGreen: { ...bg, upstreamFile: bg.upstreamFile || `${base}/upstream.conf` } };
}

type SystemdFile = Extract<NonNullable<ConfigFile['service']>, { manager: 'systemd' }>;

function systemdFrom(f: SystemdFile, unit: string): ServiceSettings {
  const bg = f['blue-green'];
  return {
    manager: 'systemd',
    name: unit,
    sudo: f.sudo,
    settleMs: f.settle,
    startTimeoutMs: f['start-timeout'],
    switch: f.switch,
    ...(f.switch === 'blue-green' && bg
      ? {
          blueGreen: {
            ports: { blue: bg.ports.blue, green: bg.ports.green },
            // Resolved against target.path in switchProblems (the default lives there).
            upstreamFile: bg['upstream-file'] ?? '',
            proxy: bg.proxy,
            drainMs: bg.drain
          }
        }
      : {})
  };
}

function serviceFrom(
  p: Problems,
  file: ConfigFile | undefined,
  get: <N extends 'service-manager' | 'service-name'>(n: N) => InputValue<N> | undefined,
  wording: Wording,
  sectionRead: boolean
): ServiceSettings {
  const managerInput = get('service-manager');
  const nameInput = get('service-name');
  const fromFile = file?.service;
  if (managerInput === 'none') return { manager: 'none' };
  if (
    managerInput === 'systemd' ||
    (managerInput === undefined && nameInput !== undefined && fromFile === undefined)
  ) {
    const unit = nameInput ?? (fromFile?.manager === 'systemd' ? fromFile.name : undefined);
    if (!unit) {
      p.list.push(
        `${wording.label('service-manager')} systemd needs a unit: set ${wording.ref('service-name')} or \`service.name\`. Example: ${wording.example('service-name', 'myapp')}`
      );
      return { manager: 'none' };
    }
    return fromFile?.manager === 'systemd'
      ? systemdFrom(fromFile, unit)
      : {
          manager: 'systemd',
          name: unit,
          sudo: false,
          settleMs: 2000,
          startTimeoutMs: 60_000,
          switch: 'restart'
        };
  }
  if (!fromFile || fromFile.manager === 'none') {
    if (managerInput === 'command' && sectionRead)
      p.list.push(
        `${wording.label('service-manager')} \`command\` needs \`service.start\` in deployguard.yml. Example: service: { manager: command, start: ./run.sh }`
      );
    return { manager: 'none' };
  }
  if (fromFile.manager === 'systemd') return systemdFrom(fromFile, nameInput ?? fromFile.name);
  if (!fromFile.stop && !fromFile.pidfile) {
    p.list.push(
      'service (command): set `stop` or `pidfile`, or the old process is never stopped. Example: pidfile: /srv/myapp/app.pid'
    );
  }
  if (!fromFile.status && !fromFile.pidfile) {
    p.list.push(
      'service (command): set `status` or `pidfile`, so deployguard can tell the service runs. Example: status: pgrep -f myapp'
    );
  }
  return {
    manager: 'command',
    start: fromFile.start,
    stop: fromFile.stop,
    status: fromFile.status,
    pidfile: fromFile.pidfile,
    reload: fromFile.reload,
    switch: fromFile.switch,
    stopGraceMs: fromFile['stop-grace'],
    settleMs: fromFile.settle,
    startTimeoutMs: fromFile['start-timeout']
  };
}

const ALL_STAGES: readonly Stage[] = ['pre', 'post', 'schedule'];

/**
 * Replaces `${NAME}` with the environment variable NAME (`$$` is a literal `$`). Values that came
 * from the environment are handed to `secret`; a missing variable is a problem, never ''.
 */
export function expandEnv(
  value: string,
  env: Readonly<Record<string, string | undefined>>,
  where: string,
  p: Problems,
  secret: (v: string) => void
): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, name: string | undefined) => {
    if (m === '$$') return '$';
    const v = env[name!];
    if (v === undefined) {
      p.list.push(
        `${where}: the environment variable ${name} is not set. Example: env: { ${name}: \${{ secrets.${name} }} } in the workflow step`
      );
      return '';
    }
    if (v.length >= 4) secret(v);
    return v;
  });
}

function expandAll(
  map: Readonly<Record<string, string>>,
  env: Readonly<Record<string, string | undefined>>,
  where: string,
  p: Problems,
  secret: (v: string) => void
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(map).map(([k, v]) => [k, expandEnv(v, env, `${where}.${k}`, p, secret)])
  );
}

function checksFrom(
  file: ConfigFile | undefined,
  healthUrl: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  p: Problems,
  secret: (v: string) => void
): CheckSettings[] {
  const out: CheckSettings[] = (file?.checks ?? []).map((c, i): CheckSettings => {
    const base = {
      name: c.name,
      // A version check compares with the release just deployed: before a deploy, or against a
      // restored release, it would fail by design, so by default it runs after the switch only.
      stages: c.stages ?? (c.type === 'version' ? (['post'] as const) : ALL_STAGES),
      timeoutMs: c.timeout,
      retries: c.retries,
      intervalMs: c.interval,
      backoff: c.backoff,
      deadlineMs: c.deadline
    };
    const at = `checks[${i}]`;
    // A password in a check's URL is a credential like any other.
    const url = c.type === 'http' || c.type === 'version' ? c.url : undefined;
    if (url) {
      try {
        // `{host}` and `{port}` are filled in per host and colour: validated with stand-ins.
        const pw = decodeURIComponent(
          new URL(url.replace(/\{host\}/g, 'host.invalid').replace(/\{port\}/g, '1')).password
        );
        if (pw) secret(pw);
      } catch {
        p.list.push(`${at}.url: not a valid URL. Example: url: https://example.com/health`);
      }
    }
    switch (c.type) {
      case 'http': {
        if (c.expect['body-matches'] !== undefined) {
          try {
            new RegExp(c.expect['body-matches']);
          } catch (err) {
            p.list.push(
              `${at}.expect.body-matches: not a valid regular expression (${(err as Error).message}). Example: body-matches: '"status":\\s*"up"'`
            );
          }
        }
        // Header values are credentials more often than not: every one of them is masked.
        const headers = expandAll(c.headers, env, `${at}.headers`, p, secret);
        for (const v of Object.values(headers)) if (v.length >= 6) secret(v);
        return {
          ...base,
          type: 'http',
          url: c.url,
          method: c.method,
          headers,
          expectStatus: c.expect.status,
          bodyContains: c.expect['body-contains'],
          bodyMatches: c.expect['body-matches'],
          json: c.expect.json,
          maxLatencyMs: c.expect['max-latency'],
          followRedirects: c['follow-redirects'],
          insecureTls: c['insecure-tls'],
          caFile: c['ca-file']
        };
      }
      case 'tcp':
        return { ...base, type: 'tcp', host: c.host, port: c.port };
      case 'command':
        return {
          ...base,
          type: 'command',
          run: c.run,
          on: c.on,
          env: expandAll(c.env, env, `${at}.env`, p, secret)
        };
      case 'process':
        return { ...base, type: 'process', windowMs: c.window };
      case 'logs':
        if (c.source === 'file' && !c.path)
          p.list.push(
            `${at}: a logs check with \`source: file\` needs \`path\`. Example: path: /var/log/myapp.log`
          );
        return {
          ...base,
          type: 'logs',
          source: c.source,
          path: c.path,
          windowMs: c.window,
          patterns: c.patterns,
          ignore: c.ignore
        };
      case 'file-fresh':
        return { ...base, type: 'file-fresh', path: c.path, maxAgeMs: c['max-age'] };
      case 'version':
        if (!c.url === !c.run)
          p.list.push(
            `${at}: a version check needs exactly one of \`url\` or \`run\`. Example: url: https://example.com/version`
          );
        return { ...base, type: 'version', url: c.url, run: c.run, on: c.on, expect: c.expect };
    }
  });
  if (healthUrl) {
    out.push({
      type: 'http',
      name: 'health-url',
      url: healthUrl,
      method: 'GET',
      headers: {},
      expectStatus: [200],
      followRedirects: 0,
      insecureTls: false,
      timeoutMs: 5000,
      retries: 10,
      intervalMs: 2000,
      backoff: 1,
      deadlineMs: 0,
      stages: ALL_STAGES
    });
  }
  const names = new Set<string>();
  for (const c of out) {
    if (names.has(c.name))
      p.list.push(`checks: two checks are named "${c.name}"; names must be unique. Example: name: api-2`);
    names.add(c.name);
  }
  return out;
}

/**
 * The `env:` map, expanded from the runner's environment. A value that took anything from the
 * environment is masked whole (and each piece of it, by expandEnv). Values are written as
 * `NAME='value'`, which systemd, `node --env-file` and sh read alike: a value holding a single
 * quote, a newline or another control character could not be written that way and is refused,
 * without showing it. A missing variable is not a problem for a dry run (`unset`).
 */
function envFrom(
  file: ConfigFile | undefined,
  env: Readonly<Record<string, string | undefined>>,
  unset: Problems,
  p: Problems,
  secret: (v: string) => void,
  at: (path: string) => string
): EnvSettings {
  const envFile = file?.['env-file'] ?? '.env';
  const vars = Object.entries(file?.env ?? {}).map(([name, template]) => {
    const value = expandEnv(template, env, `${at(`env.${name}`)}: env.${name}`, unset, secret);
    if (value !== template && value.length >= 4) secret(value);
    if (/['\u0000-\u001f\u007f]/.test(value))
      p.list.push(
        `${at(`env.${name}`)}: env.${name}: the value${value !== template ? ' (from the environment)' : ''} holds a single quote, a newline or another control character, which ${envFile} cannot carry as NAME='value'. Example: env: { ${name}: "\${${name}}" } with a one-line value`
      );
    return { name, value };
  });
  const shared = file?.target?.shared ?? [];
  if (
    vars.length &&
    shared.some(e => e.replace(/\/+$/, '') === envFile || envFile.startsWith(`${e.replace(/\/+$/, '')}/`))
  )
    p.list.push(
      `${at('env-file')}: env-file: ${envFile} is a shared entry (target.shared), but each release gets its own env file so a rollback brings its environment back. Example: env-file: .env.deployguard`
    );
  return { file: envFile, vars };
}
