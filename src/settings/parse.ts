import { parseDocument } from 'yaml';
import { ConfigError } from '../errors.js';
import { parseKnownHosts } from '../remote/hostkeys.js';
import { configSchema, type ConfigFile } from './config.js';
import { formatIssues, parseDuration, validate } from './schema.js';
import type {
  CheckSettings,
  CommentTarget,
  HostSettings,
  ScanMode,
  ServiceSettings,
  Settings,
  Stage
} from './types.js';

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
}

/** Input names that hold secrets; their values are masked as soon as they are read. */
export const SECRET_INPUTS = ['ssh-key', 'ssh-passphrase', 'ssh-password', 'github-token'] as const;

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

function readYaml(text: string, path: string): unknown {
  if (text.length > YAML_MAX_BYTES) throw new ConfigError(`${path}: the file is larger than 1 MiB`);
  // maxAliasCount bounds "billion laughs" alias bombs; merge keys and custom tags stay off.
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, merge: false, strict: true });
  if (doc.errors.length) {
    throw new ConfigError(
      `${path} is not valid YAML:\n${doc.errors.map(e => `  ${e.message.split('\n')[0]}`).join('\n')}`,
      'Check the indentation (spaces, not tabs) around the line named above.'
    );
  }
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(
      `${path}: ${(err as Error).message}`,
      'Avoid YAML aliases that expand to huge documents.'
    );
  }
}

interface Problems {
  readonly list: string[];
}

function inputInt(
  p: Problems,
  name: string,
  raw: string | undefined,
  min: number,
  max: number,
  example: number
) {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    p.list.push(
      `input \`${name}\`: expected an integer from ${min} to ${max}, got ${quoted(raw, 40)}. Example: ${name}: ${example}`
    );
    return undefined;
  }
  return Number(raw);
}

function inputBool(p: Problems, name: string, raw: string | undefined): boolean | undefined {
  if (raw === undefined) return undefined;
  if (/^(true|yes|on|1)$/i.test(raw)) return true;
  if (/^(false|no|off|0)$/i.test(raw)) return false;
  p.list.push(`input \`${name}\`: expected true or false, got ${quoted(raw, 40)}. Example: ${name}: true`);
  return undefined;
}

function inputDuration(
  p: Problems,
  name: string,
  raw: string | undefined,
  example: string
): number | undefined {
  if (raw === undefined) return undefined;
  const ms = parseDuration(raw);
  if (ms === undefined)
    p.list.push(
      `input \`${name}\`: expected a duration like ${example}, got ${quoted(raw, 40)}. Example: ${name}: ${example}`
    );
  return ms;
}

function defaultReleaseId(now: Date, commit: string): string {
  const stamp = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const sha = /^[0-9a-f]{7,}$/i.test(commit) ? `-${commit.slice(0, 7)}` : '';
  return `${stamp}${sha}`;
}

/** Parses and validates everything; throws one ConfigError listing every problem. */
export function parseSettings(src: SettingsSource): Settings {
  const p: Problems = { list: [] };
  const get = (name: string): string | undefined => {
    const raw = src.input(name) ?? (ENV_FALLBACK[name] ? src.env[ENV_FALLBACK[name]!] : undefined);
    const v = raw === undefined || raw.trim() === '' ? undefined : name.startsWith('ssh-') ? raw : raw.trim();
    if (v !== undefined && (SECRET_INPUTS as readonly string[]).includes(name)) src.onSecret(v);
    return v;
  };
  // Secrets first, so they are masked before any message below could echo one.
  const privateKey = get('ssh-key');
  const passphrase = get('ssh-passphrase');
  const password = get('ssh-password');
  const githubToken = get('github-token');

  let file: ConfigFile | undefined;
  const configPath = src.configPath ?? 'deployguard.yml';
  if (src.configText !== undefined) {
    const raw = readYaml(src.configText, configPath);
    const r = validate(configSchema, raw ?? {});
    if (!r.ok) {
      p.list.push(
        ...formatIssues(r.errors)
          .split('\n')
          .map(l => `${configPath}: ${l}`)
      );
    } else file = r.value;
  }

  const port = inputInt(p, 'port', get('port'), 1, 65535, 22);
  const skip = inputBool(p, 'insecure-skip-host-key-check', get('insecure-skip-host-key-check')) ?? false;
  const dryRun = inputBool(p, 'dry-run', get('dry-run')) ?? false;
  const githubDeployment = inputBool(p, 'github-deployment', get('github-deployment'));
  const commentInput = get('comment');
  if (commentInput !== undefined && !['auto', 'pr', 'commit', 'both', 'none'].includes(commentInput))
    p.list.push(
      `input \`comment\`: expected auto, pr, commit, both or none, got ${quoted(commentInput, 40)}. Example: comment: pr`
    );
  const envUrl = get('environment-url');
  if (envUrl !== undefined && !/^https?:\/\/\S+$/.test(envUrl))
    p.list.push(
      `input \`environment-url\`: expected an http(s) URL, got ${quoted(envUrl, 60)}. Example: environment-url: https://app.example.com`
    );
  const reason = get('reason');
  if (reason !== undefined && reason.length > 2000)
    p.list.push('input `reason`: longer than 2000 characters. Example: reason: hotfix for the login timeout');
  const lockWait = inputDuration(p, 'lock-wait', get('lock-wait'), '2m');
  const parallelInput = get('max-parallel');
  let maxParallel: number | { percent: number } | undefined;
  if (parallelInput !== undefined) {
    const pct = /^(100|[1-9][0-9]?)%$/.exec(parallelInput);
    if (pct) maxParallel = { percent: Number(pct[1]) };
    else maxParallel = inputInt(p, 'max-parallel', parallelInput, 1, 500, 5);
  }
  const canaryInput = inputInt(p, 'canary', get('canary'), 0, 500, 1);
  const connectTimeout = inputDuration(p, 'connect-timeout', get('connect-timeout'), '20s');
  const stabilityWindow = inputDuration(p, 'stability-window', get('stability-window'), '60s');

  const knownHostsText = get('known-hosts');
  if (knownHostsText) {
    try {
      parseKnownHosts(knownHostsText);
    } catch (err) {
      p.list.push(
        `input \`known-hosts\`: ${(err as Error).message}. Example: known-hosts: "[203.0.113.10]:22 ssh-ed25519 AAAAC3Nza..."`
      );
    }
  }
  const hostKeyInput = get('host-key');
  const inputFingerprints = hostKeyInput ? hostKeyInput.split(/[\s,]+/).filter(Boolean) : [];
  for (const f of inputFingerprints) {
    if (!/^SHA256:[A-Za-z0-9+/]{43}=?$/.test(f)) {
      p.list.push(
        `input \`host-key\`: ${quoted(f, 60)} is not a SHA256 fingerprint. Example: host-key: SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s`
      );
    }
  }

  // Hosts: the `host` input replaces the file's list (one host); otherwise the file's list.
  const hostInput = get('host');
  if (hostInput !== undefined && !/^[A-Za-z0-9._:-]{1,253}$/.test(hostInput)) {
    p.list.push(
      `input \`host\`: ${quoted(hostInput, 60)} is not a hostname or IP address. Example: host: 203.0.113.10`
    );
  }
  const defaultUser = get('user');
  if (defaultUser !== undefined && !/^[a-z_][a-z0-9_.-]{0,31}$/.test(defaultUser)) {
    p.list.push(`input \`user\`: ${quoted(defaultUser, 40)} is not a user name. Example: user: deploy`);
  }
  const fileHosts = hostInput
    ? [
        {
          name: get('host-name'),
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
    else
      p.list.push(
        `${who}: ssh-key-env names ${keyEnv}, which is not set. Example: env: { ${keyEnv}: \${{ secrets.${keyEnv} }} } in the workflow step`
      );
    if (key && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key))
      p.list.push(
        `${who}: ${keyEnv} does not hold a private key (no "-----BEGIN ... PRIVATE KEY-----" line)`
      );
    return key;
  };
  const pinsOf = (h: { 'host-key'?: string | readonly string[] }) =>
    h['host-key'] === undefined
      ? []
      : typeof h['host-key'] === 'string'
        ? [h['host-key']]
        : [...h['host-key']];
  const hosts: HostSettings[] = fileHosts.map((h, i) => {
    const name = h.name ?? (fileHosts.length > 1 ? `${h.host}#${i + 1}` : h.host);
    const privateKey = keyFromEnv((h as { 'ssh-key-env'?: string })['ssh-key-env'], `host ${name}`);
    const user = h.user ?? defaultUser ?? '';
    const j = (h as { 'proxy-jump'?: NonNullable<ConfigFile['hosts']>[number]['proxy-jump'] })['proxy-jump'];
    // The jump host: its own pins (plus the shared known-hosts input, matched by its address);
    // its user and key are this host's unless it names its own.
    const jumpKey = j && keyFromEnv(j['ssh-key-env'], `host ${name}: proxy-jump`);
    const jump: HostSettings | undefined = j && {
      name: `${name} (jump host ${j.host})`,
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
      port: hostInput ? (port ?? 22) : h.port,
      user,
      knownHosts: [h['known-hosts'], knownHostsText].filter((x): x is string => !!x),
      fingerprints: [...pinsOf(h), ...inputFingerprints],
      ...(privateKey ? { privateKey } : {}),
      ...(jump ? { jump } : {})
    };
  });
  const deploying = src.purpose !== 'check';
  if (hosts.length === 0 && deploying)
    p.list.push(
      'no hosts: set the `host` input or list `hosts:` in deployguard.yml. Example: hosts: [{ host: 203.0.113.10, user: deploy }]'
    );
  const names = new Set<string>();
  for (const h of hosts) {
    if (!h.user)
      p.list.push(
        `host ${h.name}: no user. Set \`user:\` on the host in deployguard.yml or the \`user\` input. Example: user: deploy`
      );
    if (names.has(h.name))
      p.list.push(`host names must be unique: "${h.name}" appears twice. Example: name: web-2`);
    names.add(h.name);
  }
  if (!privateKey && !password && deploying && !(hosts.length > 0 && hosts.every(h => h.privateKey))) {
    p.list.push(
      'no SSH credentials: set the `ssh-key` input (or DEPLOYGUARD_SSH_KEY) to a private key. Example: ssh-key: ${{ secrets.DEPLOY_KEY }}'
    );
  } else if (privateKey && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKey)) {
    p.list.push(
      'input `ssh-key`: this is not a private key (no "-----BEGIN ... PRIVATE KEY-----" line). Paste the whole key file, not a path or the public key.'
    );
  }
  // A host with no pin is not a config error: the connect step refuses it before any credential
  // is sent, and only there can the message show the key the host actually offers.

  const targetPath = get('target-path') ?? file?.target?.path;
  if (targetPath === undefined) {
    if (deploying)
      p.list.push(
        'no target path: set `target.path` in deployguard.yml or the `target-path` input. Example: target: { path: /srv/myapp }'
      );
  } else if (
    !/^\/(?:[A-Za-z0-9._@+-]+\/?)*$/.test(targetPath) ||
    /(^|\/)\.\.?(\/|$)/.test(targetPath) ||
    targetPath === '/'
  ) {
    p.list.push(
      `target path ${quoted(targetPath, 80)}: expected an absolute path like /srv/myapp, without \`..\`, and not /.`
    );
  }
  const strategyInput = get('strategy');
  if (strategyInput !== undefined && strategyInput !== 'releases' && strategyInput !== 'in-place') {
    p.list.push(
      `input \`strategy\`: expected \`releases\` or \`in-place\`, got ${quoted(strategyInput, 40)}. Example: strategy: releases`
    );
  }
  const artifact = get('artifact') ?? file?.artifact;
  if (!artifact && deploying && src.purpose !== 'hosts')
    p.list.push(
      'no artifact: set `artifact` in deployguard.yml or the `artifact` input to the file or directory to ship. Example: artifact: dist/'
    );

  const releaseIdInput = get('release-id');
  if (releaseIdInput !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(releaseIdInput)) {
    p.list.push(
      `input \`release-id\`: ${quoted(releaseIdInput, 60)} may only hold letters, digits, . _ - (starting with a letter or digit). Example: release-id: 2026-11-26.1`
    );
  }

  const service = serviceFrom(p, file, get);
  const scanInput = get('scan');
  if (scanInput !== undefined && !['both', 'commits', 'artifact', 'none'].includes(scanInput)) {
    p.list.push(
      `input \`scan\`: expected both, commits, artifact or none, got ${quoted(scanInput, 40)}. Example: scan: both`
    );
  }
  const fileScan = file?.['pre-deploy'].gitleaks ?? true;
  const scanMode: ScanMode =
    scanInput === 'none'
      ? 'off'
      : scanInput === 'both' || scanInput === 'commits' || scanInput === 'artifact'
        ? scanInput
        : fileScan === true
          ? 'both'
          : fileScan === false
            ? 'off'
            : fileScan;
  const healthUrl = get('health-url');
  if (healthUrl !== undefined && !/^https?:\/\/\S+$/.test(healthUrl)) {
    p.list.push(
      `input \`health-url\`: expected an http(s) URL, got ${quoted(healthUrl, 60)}. Example: health-url: https://example.com/health`
    );
  }
  const checks = checksFrom(file, healthUrl, src.env, p, src.onSecret);

  // The holder refreshes its lock several times per TTL: a lock left unrefreshed that long is
  // abandoned (its deploy died), however long a healthy deploy runs.
  const lockTtl = file?.deploy['lock-ttl'] ?? 120_000;
  const window = stabilityWindow ?? file?.['post-deploy']['stability-window'] ?? 30_000;

  if (p.list.length) {
    throw new ConfigError(
      `Invalid configuration (nothing was deployed):\n${p.list.map(l => `  - ${l}`).join('\n')}`,
      'Fix the items above; every one is listed, so one pass is enough.'
    );
  }
  const commit = src.env.GITHUB_SHA ?? src.env.DEPLOYGUARD_COMMIT ?? 'unknown';
  const server = src.env.GITHUB_SERVER_URL ?? 'https://github.com';
  const runId = src.env.GITHUB_RUN_ID ?? `local-${src.now.getTime()}`;
  return {
    configPath: src.configText !== undefined ? configPath : undefined,
    environment: get('environment') ?? file?.environment ?? 'production',
    artifact: artifact ?? '',
    exclude: file?.exclude ?? [],
    releaseId: releaseIdInput ?? defaultReleaseId(src.now, commit),
    releaseIdGiven: releaseIdInput !== undefined,
    target: {
      path: (targetPath ?? '').replace(/\/+$/, ''),
      strategy:
        (strategyInput as 'releases' | 'in-place' | undefined) ?? file?.target?.strategy ?? 'releases',
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
    service,
    checks,
    beforeSwitch: get('before-switch') ?? file?.deploy['before-switch'],
    transfer: { incremental: file?.deploy.incremental ?? true },
    rollout: {
      canary: canaryInput ?? file?.deploy.canary ?? 0,
      maxParallel:
        maxParallel ??
        (typeof file?.deploy['max-parallel'] === 'string'
          ? { percent: Number(file.deploy['max-parallel'].slice(0, -1)) }
          : (file?.deploy['max-parallel'] ?? 1))
    },
    lock: {
      waitMs: lockWait ?? file?.deploy['lock-wait'] ?? 120_000,
      ttlMs: lockTtl
    },
    preDeploy: {
      requireHealthy: file?.['pre-deploy']['require-healthy'] ?? true,
      scan: scanMode,
      gitleaksPath: get('gitleaks-path'),
      gitleaksConfig: get('gitleaks-config') ?? file?.['pre-deploy']['gitleaks-config'],
      testCommand: get('test-command') ?? file?.['pre-deploy']['test-command']
    },
    postDeploy: {
      rollback: file?.['post-deploy'].rollback ?? 'auto',
      stabilityWindowMs: window
    },
    dryRun,
    report: {
      comment: (commentInput as CommentTarget | undefined) ?? file?.report.comment ?? 'auto',
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

function serviceFrom(
  p: Problems,
  file: ConfigFile | undefined,
  get: (n: string) => string | undefined
): ServiceSettings {
  const managerInput = get('service-manager');
  const nameInput = get('service-name');
  if (managerInput !== undefined && !['systemd', 'command', 'none'].includes(managerInput)) {
    p.list.push(
      `input \`service-manager\`: expected systemd, command or none, got ${quoted(managerInput, 40)}. Example: service-manager: systemd`
    );
    return { manager: 'none' };
  }
  const fromFile = file?.service;
  if (managerInput === 'none') return { manager: 'none' };
  if (
    managerInput === 'systemd' ||
    (managerInput === undefined && nameInput !== undefined && fromFile === undefined)
  ) {
    const unit = nameInput ?? (fromFile?.manager === 'systemd' ? fromFile.name : undefined);
    if (!unit || !/^[A-Za-z0-9:_.@\\-]{1,255}$/.test(unit)) {
      p.list.push(
        `input \`service-name\`: a systemd unit name is needed, got ${quoted(unit ?? '', 60)}. Example: service-name: myapp`
      );
      return { manager: 'none' };
    }
    return {
      manager: 'systemd',
      name: unit,
      sudo: fromFile?.manager === 'systemd' ? fromFile.sudo : false,
      settleMs: 2000,
      startTimeoutMs: 60_000
    };
  }
  if (!fromFile || fromFile.manager === 'none') {
    if (managerInput === 'command')
      p.list.push(
        'service-manager `command` needs `service.start` in deployguard.yml. Example: service: { manager: command, start: ./run.sh }'
      );
    return { manager: 'none' };
  }
  if (fromFile.manager === 'systemd') {
    return {
      manager: 'systemd',
      name: nameInput ?? fromFile.name,
      sudo: fromFile.sudo,
      settleMs: fromFile.settle,
      startTimeoutMs: fromFile['start-timeout']
    };
  }
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
        const pw = decodeURIComponent(new URL(url).password);
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
