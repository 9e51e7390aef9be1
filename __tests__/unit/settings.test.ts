import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { ConfigError } from '../../src/errors.js';
import { configJsonSchema } from '../../src/settings/config.js';
import { INPUTS } from '../../src/settings/inputs.js';
import { parseSettings, SECRET_INPUTS } from '../../src/settings/parse.js';
import type { JsonSchema } from '../../src/settings/schema.js';
import { CLI_WORDING } from '../../src/settings/wording.js';
import { BASE_INPUTS, FAKE_KEY, FAKE_PIN, settingsFrom } from '../helpers/settings.js';

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const FULL = `
version: 1
environment: staging
artifact: build/
target:
  path: /srv/shop
  keep-releases: 3
  shared: [.env, storage/]
hosts:
  - { name: web-1, host: 203.0.113.10, user: deploy, host-key: ${FAKE_PIN} }
  - { name: web-2, host: 203.0.113.11, port: 2222, user: ops, host-key: ${FAKE_PIN} }
service:
  manager: systemd
  name: shop
  settle: 3s
checks:
  - name: API
    type: http
    url: https://shop.example/health
    expect: { status: [200, 204], body-contains: ok }
    timeout: 500ms
    retries: 5
    interval: 2s
    stages: [post]
  - { name: db, type: tcp, host: 127.0.0.1, port: 5432 }
deploy: { before-switch: npm ci, lock-wait: 30s }
`;

describe('parseSettings', () => {
  test('a full config file becomes typed settings', () => {
    const s = settingsFrom({ 'ssh-key': FAKE_KEY }, FULL);
    expect(s.environment).toBe('staging');
    expect(s.target).toEqual({
      path: '/srv/shop',
      strategy: 'releases',
      keepReleases: 3,
      shared: ['.env', 'storage/']
    });
    expect(s.hosts.map(h => [h.name, h.port, h.user])).toEqual([
      ['web-1', 22, 'deploy'],
      ['web-2', 2222, 'ops']
    ]);
    expect(s.service).toEqual({
      manager: 'systemd',
      name: 'shop',
      sudo: false,
      switch: 'restart',
      settleMs: 3000,
      startTimeoutMs: 60000
    });
    expect(s.checks[0]).toMatchObject({
      type: 'http',
      expectStatus: [200, 204],
      bodyContains: 'ok',
      timeoutMs: 500,
      retries: 5,
      intervalMs: 2000,
      stages: ['post']
    });
    expect(s.checks[1]).toMatchObject({ type: 'tcp', port: 5432, stages: ['pre', 'post', 'schedule'] });
    expect(s.beforeSwitch).toBe('npm ci');
    expect(s.lock.waitMs).toBe(30000);
    expect(s.releaseId).toBe('20261126120000');
  });

  test('inputs override the file', () => {
    const s = settingsFrom(
      {
        'ssh-key': FAKE_KEY,
        'target-path': '/opt/x',
        'service-name': 'other',
        host: '198.51.100.7',
        'host-key': FAKE_PIN,
        user: 'u'
      },
      FULL
    );
    expect(s.target.path).toBe('/opt/x');
    expect(s.hosts).toHaveLength(1);
    expect(s.hosts[0]).toMatchObject({ host: '198.51.100.7', user: 'u', port: 22 });
    expect(s.service).toMatchObject({ manager: 'systemd', name: 'other' });
  });

  test('every problem is reported at once, each with the key and an example', () => {
    const yaml = FULL.replace('keep-releases: 3', 'keep-releases: five')
      .replace('port: 2222', 'port: 70000')
      .replace('timeout: 500ms', 'timeout: 5');
    const e = errorOf(() => settingsFrom({ 'ssh-key': FAKE_KEY }, yaml));
    expect(e.message).toMatch(/target\.keep-releases/);
    expect(e.message).toMatch(/hosts\[1\]\.port/);
    expect(e.message).toMatch(/checks\[0\]\.timeout/);
    expect(e.message).toMatch(/Example: /);
    expect(e.message).toMatch(/nothing was deployed/);
  });

  test('an unknown key suggests the right one', () => {
    const e = errorOf(() =>
      settingsFrom({ 'ssh-key': FAKE_KEY }, FULL.replace('keep-releases: 3', 'keep_releases: 3'))
    );
    expect(e.message).toMatch(/keep_releases/);
    expect(e.message).toMatch(/did you mean `keep-releases`/);
  });

  test('a host without a pin parses with no pins (the connect step refuses it, showing its key)', () => {
    const { 'host-key': _drop, ...noPin } = BASE_INPUTS;
    const s = settingsFrom(noPin);
    expect(s.hosts[0]).toMatchObject({ knownHosts: [], fingerprints: [] });
    expect(s.ssh.insecureSkipHostKeyCheck).toBe(false);
  });

  test('the explicit opt-out allows an unpinned host', () => {
    const { 'host-key': _drop, ...noPin } = BASE_INPUTS;
    expect(
      settingsFrom({ ...noPin, 'insecure-skip-host-key-check': 'true' }).ssh.insecureSkipHostKeyCheck
    ).toBe(true);
  });

  test('secrets are handed to the masker before anything else happens', () => {
    const seen: string[] = [];
    parseSettings({
      input: n => ({ ...BASE_INPUTS, 'ssh-passphrase': 'hunter2-hunter2' })[n],
      env: {},
      now: new Date(),
      onSecret: v => seen.push(v)
    });
    expect(seen).toEqual([FAKE_KEY, 'hunter2-hunter2']);
  });

  test('secrets can come from the environment (CLI, cron)', () => {
    const { 'ssh-key': _drop, ...noKey } = BASE_INPUTS;
    const s = settingsFrom(noKey, undefined, { DEPLOYGUARD_SSH_KEY: FAKE_KEY });
    expect(s.ssh.privateKey).toBe(FAKE_KEY);
  });

  test('a public key or a path in ssh-key is caught, without echoing it', () => {
    const e = errorOf(() => settingsFrom({ ...BASE_INPUTS, 'ssh-key': 'ssh-ed25519 AAAAC3Nza secret-ish' }));
    expect(e.message).toMatch(/not a private key/);
    expect(e.message).not.toMatch(/secret-ish/);
  });

  test.each([
    ['target-path', 'relative/path', /input `target-path`: expected an absolute path/],
    ['target-path', '/srv/../etc', /without `\.\.`/],
    ['target-path', '/', /not \//],
    ['port', '22x', /input `port`/],
    ['host', 'a;b', /input `host`/],
    ['release-id', '../x', /input `release-id`/],
    ['strategy', 'blue-green', /input `strategy`/],
    ['health-url', 'ftp://x', /input `health-url`/],
    ['lock-wait', 'soon', /input `lock-wait`/],
    ['service-manager', 'upstart', /input `service-manager`/],
    ['known-hosts', 'garbage line', /input `known-hosts`/],
    ['host-key', 'MD5:aa:bb', /input `host-key`/]
  ])('input %s=%j is rejected', (name, value, pattern) => {
    expect(errorOf(() => settingsFrom({ ...BASE_INPUTS, [name]: value })).message).toMatch(pattern);
  });

  test('YAML alias bombs are refused', () => {
    const bomb = [
      'version: 1',
      'a: &a ["x","x","x","x","x","x","x","x","x","x"]',
      'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]',
      'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]',
      'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]',
      'e: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]'
    ].join('\n');
    expect(errorOf(() => settingsFrom(BASE_INPUTS, bomb)).message).toMatch(/alias/i);
  });

  test('invalid YAML names the problem', () => {
    expect(errorOf(() => settingsFrom(BASE_INPUTS, 'version: 1\ntarget:\n\tpath: /x')).message).toMatch(
      /not valid YAML/
    );
  });

  test('a command service needs a way to stop and to tell it runs', () => {
    const e = errorOf(() =>
      settingsFrom(BASE_INPUTS, 'version: 1\nservice: { manager: command, start: ./run }')
    );
    expect(e.message).toMatch(/set `stop` or `pidfile`/);
    expect(e.message).toMatch(/set `status` or `pidfile`/);
  });
});

describe('check settings', () => {
  const yaml = (checks: string) => `version: 1\nchecks:\n${checks}`;
  const masked = (checks: string, env: Record<string, string> = {}) => {
    const seen: string[] = [];
    const s = parseSettings({
      input: () => undefined,
      env,
      configText: yaml(checks),
      now: new Date(),
      onSecret: v => seen.push(v),
      purpose: 'check'
    });
    return { s, seen };
  };

  test('header values are expanded from the environment and every one is registered as a secret', () => {
    const { s, seen } = masked(
      '  - { name: a, type: http, url: "http://x/h", headers: { Authorization: "Bearer ${TOK}", X-Lit: literal-value } }',
      {
        TOK: 'abc123xyz'
      }
    );
    expect(s.checks[0]).toMatchObject({
      headers: { Authorization: 'Bearer abc123xyz', 'X-Lit': 'literal-value' }
    });
    expect(seen).toEqual(expect.arrayContaining(['abc123xyz', 'Bearer abc123xyz', 'literal-value']));
  });

  test('$$ is a literal dollar; a missing variable is an error naming it', () => {
    expect(
      masked('  - { name: a, type: command, run: "true", env: { P: "a$$b" } }').s.checks[0]
    ).toMatchObject({ env: { P: 'a$b' } });
    expect(() => masked('  - { name: a, type: command, run: "true", env: { P: "${NOPE}" } }')).toThrow(
      /checks\[0\]\.env\.P: the environment variable NOPE is not set/
    );
  });

  test('a password in a check URL is a secret', () => {
    expect(masked('  - { name: a, type: http, url: "https://u:p%40ssw0rd@x/h" }').seen).toContain('p@ssw0rd');
  });

  test('every kind maps to typed settings with its defaults', () => {
    const { s } = masked(
      [
        '  - { name: p, type: process }',
        '  - { name: l, type: logs }',
        '  - { name: f, type: file-fresh, path: /srv/x, max-age: 5m }',
        '  - { name: v, type: version, url: "http://x/v", expect: release }',
        '  - { name: c, type: command, run: ./check, on: host, backoff: 2, deadline: 1m }'
      ].join('\n')
    );
    expect(s.checks.map(c => c.type)).toEqual(['process', 'logs', 'file-fresh', 'version', 'command']);
    expect(s.checks[0]).toMatchObject({
      windowMs: 10_000,
      retries: 0,
      intervalMs: 2000,
      backoff: 1,
      deadlineMs: 0
    });
    expect(s.checks[1]).toMatchObject({
      source: 'journal',
      windowMs: 60_000,
      patterns: expect.arrayContaining(['ERROR'])
    });
    expect(s.checks[2]).toMatchObject({ maxAgeMs: 300_000 });
    expect(s.checks[3]).toMatchObject({ expect: 'release', on: 'local' });
    expect(s.checks[4]).toMatchObject({ on: 'host', backoff: 2, deadlineMs: 60_000 });
  });

  test('a version check needs exactly one of url and run; logs from a file need a path; names are unique', () => {
    expect(() => masked('  - { name: v, type: version }')).toThrow(/exactly one of `url` or `run`/);
    expect(() => masked('  - { name: l, type: logs, source: file }')).toThrow(/needs `path`/);
    expect(() =>
      masked('  - { name: a, type: tcp, host: h, port: 1 }\n  - { name: a, type: tcp, host: h, port: 2 }')
    ).toThrow(/two checks are named "a"/);
  });

  test('durations without a unit are refused with a hint', () => {
    expect(() => masked('  - { name: a, type: tcp, host: h, port: 1, timeout: 5 }')).toThrow(
      /checks\[0\]\.timeout[\s\S]*add a unit/
    );
  });
});

test('the lock TTL is how long an unrefreshed lock lasts: 2m by default, 10s to 24h, whatever the deploy takes', () => {
  expect(settingsFrom(BASE_INPUTS, 'version: 1').lock.ttlMs).toBe(120_000);
  // A long stability window needs no longer TTL: the holder refreshes its lock as it goes.
  expect(
    settingsFrom(BASE_INPUTS, 'version: 1\ndeploy: { lock-ttl: 30s }\npost-deploy: { stability-window: 10m }')
      .lock.ttlMs
  ).toBe(30_000);
  expect(() => settingsFrom(BASE_INPUTS, 'version: 1\ndeploy: { lock-ttl: 5s }')).toThrow(/deploy\.lock-ttl/);
  expect(() => settingsFrom(BASE_INPUTS, 'version: 1\ndeploy: { lock-ttl: 48h }')).toThrow(
    /deploy\.lock-ttl/
  );
});

describe('inputs and flags are as strict as the file (issue 13)', () => {
  const fileJson = configJsonSchema() as JsonSchema;
  const props = (s: JsonSchema) => s.properties as Record<string, JsonSchema>;
  /** The JSON Schema of a file key: `deploy.lock-wait`, `hosts[].port`, `service{systemd}.name`. */
  function fileNode(key: string): JsonSchema {
    let node = fileJson;
    for (const part of key.split('.')) {
      const m = /^([\w-]+)(\[\])?(?:\{([\w-]+)\})?$/.exec(part)!;
      node = props(node)[m[1]!]!;
      if (m[2]) node = node.items as JsonSchema;
      if (m[3]) {
        const tag = Object.keys(props((node.oneOf as JsonSchema[])[0]!))[0]!;
        node = (node.oneOf as JsonSchema[]).find(b => (props(b)[tag]!.enum as string[])[0] === m[3])!;
      }
    }
    const { default: _default, ...rest } = node;
    return rest;
  }

  test.each(Object.entries(INPUTS).filter(([, d]) => 'key' in d && d.key !== 'service.manager'))(
    'input %s has exactly the bounds of its file key',
    (_name, d) => {
      expect(d.schema.json()).toEqual(fileNode((d as { key: string }).key));
    }
  );

  test('service-manager offers exactly the managers the file knows', () => {
    const branches = (props(fileJson).service!.oneOf as JsonSchema[]).map(
      b => (props(b).manager!.enum as string[])[0]
    );
    expect([...(INPUTS['service-manager'].schema.json().enum as string[])].sort()).toEqual(branches.sort());
  });

  test("every input of action.yml is declared once: a setting, a secret or the config file's path", () => {
    const action = parse(readFileSync('action.yml', 'utf8')) as { inputs: Record<string, unknown> };
    expect(Object.keys(action.inputs).sort()).toEqual(
      [...Object.keys(INPUTS), ...SECRET_INPUTS, 'config'].sort()
    );
  });

  test.each([
    ['lock-wait', '99999h', /input `lock-wait`: expected a duration of at most 1h/],
    ['connect-timeout', '0s', /input `connect-timeout`: expected a duration from 1s to 5m/],
    ['stability-window', '2h', /input `stability-window`: expected a duration from 0s to 1h/],
    ['canary', '501', /input `canary`: expected an integer from 0 to 500/],
    ['port', '0', /input `port`: expected an integer from 1 to 65535/],
    ['max-parallel', '150%', /input `max-parallel`: expected a percentage like 25%/],
    ['dry-run', 'yes', /input `dry-run`: expected true or false/],
    ['comment', 'prr', /did you mean `pr`/],
    ['scan', 'everything', /input `scan`/]
  ])('input %s=%j is refused as the file refuses it', (name, value, pattern) => {
    const e = errorOf(() => settingsFrom({ ...BASE_INPUTS, [name]: value }));
    expect(e.message).toMatch(pattern);
    expect(e.message).toMatch(/Example: [\w-]+: /);
  });

  test('the file refuses the same values with the same words', () => {
    const e = errorOf(() =>
      settingsFrom(BASE_INPUTS, 'version: 1\ndeploy: { lock-wait: 99999h }\nssh: { connect-timeout: 0s }')
    );
    expect(e.message).toMatch(/`deploy.lock-wait`: expected a duration of at most 1h/);
    expect(e.message).toMatch(/`ssh.connect-timeout`: expected a duration from 1s to 5m/);
  });

  test('scan accepts the file values and `none`', () => {
    expect(settingsFrom({ ...BASE_INPUTS, scan: 'none' }).preDeploy.scan).toBe('off');
    expect(settingsFrom({ ...BASE_INPUTS, scan: 'false' }).preDeploy.scan).toBe('off');
    expect(settingsFrom({ ...BASE_INPUTS, scan: 'commits' }).preDeploy.scan).toBe('commits');
    expect(settingsFrom({ ...BASE_INPUTS, scan: 'true' }).preDeploy.scan).toBe('both');
  });

  test('several host-key fingerprints, each checked; a fingerprint that cannot end so is refused', () => {
    const two = `${FAKE_PIN}, ${FAKE_PIN.replace('uNiV', 'vNiV')}`;
    expect(settingsFrom({ ...BASE_INPUTS, 'host-key': two }).hosts[0]!.fingerprints).toHaveLength(2);
    expect(errorOf(() => settingsFrom({ ...BASE_INPUTS, 'host-key': `${FAKE_PIN} MD5:aa` })).message).toMatch(
      /input `host-key` \(host-key\[1\]\)/
    );
    // 32 bytes end in one of 16 base64 letters: a last letter out of them is a typo, not a key.
    expect(
      errorOf(() => settingsFrom({ ...BASE_INPUTS, 'host-key': FAKE_PIN.replace(/s$/, 't') })).message
    ).toMatch(/input `host-key`/);
  });
});

describe('control characters in inputs never reach a log line raw (issue 13)', () => {
  const hostile = 'web\n::error::pwned\n::add-mask::x';
  test.each(['host-name', 'environment', 'reason'])('%s with a newline is refused, escaped', name => {
    const e = errorOf(() => settingsFrom({ ...BASE_INPUTS, [name]: hostile }));
    expect(e.message).toMatch(new RegExp(`input \`${name}\`: contains the control character U\\+000A`));
    expect(e.message).not.toMatch(/\n\s*::/);
    expect(e.message).not.toContain('pwned\n');
  });

  test('a carriage return, an escape or a bidi override is refused too', () => {
    for (const c of ['\r', '\u001b', '\u202e'])
      expect(errorOf(() => settingsFrom({ ...BASE_INPUTS, reason: `ok${c}::x` })).message).toMatch(
        /input `reason`: contains the control character/
      );
    expect(
      settingsFrom({ ...BASE_INPUTS, reason: 'hotfix: login "timeout" — 50% of users' }).report.reason
    ).toBe('hotfix: login "timeout" — 50% of users');
  });

  test('the same key in the file is refused the same way', () => {
    const e = errorOf(() => settingsFrom(BASE_INPUTS, 'version: 1\nenvironment: "prod\\n::error::x"'));
    expect(e.message).toMatch(/`environment`: contains the control character U\+000A/);
    expect(e.message).not.toMatch(/\n\s*::/);
  });
});

describe('known_hosts pins are checked at config time (issue 13)', () => {
  const b64 = 'AAAAC3NzaC1lZDI1NTE5AAAAIGZsF4i8XZrPkLxGz7yQYm1eBgJ+vAQyJmHh1Y7bqXjA';
  const yaml = (line: string) =>
    `version: 1\nhosts:\n  - name: web-1\n    host: 192.0.2.10\n    user: deploy\n    known-hosts: "${line}"\n`;
  const { 'host-key': _pin, host: _host, ...noHost } = BASE_INPUTS;

  test('a whole key parses', () => {
    expect(settingsFrom(noHost, yaml(`192.0.2.10 ssh-ed25519 ${b64}`)).hosts[0]!.knownHosts).toHaveLength(1);
  });

  test('a truncated key in the file names the host and the line, with an example', () => {
    const e = errorOf(() => settingsFrom(noHost, yaml(`192.0.2.10 ssh-ed25519 ${b64.slice(0, 50)}`)));
    expect(e.message).toMatch(
      /`hosts\[0\]\.known-hosts` \(host web-1\): line 1 ".*" is malformed: the ssh-ed25519 key is cut short/
    );
    expect(e.message).toMatch(/Example: known-hosts: /);
    expect(e.message).not.toMatch(/man-in-the-middle|does not match/i);
  });

  test("a fleet's whole known_hosts fits in the input", () => {
    const fleet = Array.from({ length: 300 }, (_, i) => `10.0.${i >> 8}.${i & 255} ssh-ed25519 ${b64}`);
    const s = settingsFrom({ ...BASE_INPUTS, 'known-hosts': fleet.join('\n') });
    expect(s.hosts[0]!.knownHosts[0]!.split('\n')).toHaveLength(300);
  });

  test('a truncated key in the input is malformed too', () => {
    const e = errorOf(() =>
      settingsFrom({ ...BASE_INPUTS, 'known-hosts': `192.0.2.10 ssh-ed25519 ${b64.slice(0, 30)}` })
    );
    expect(e.message).toMatch(/input `known-hosts`: line 1 .* is malformed/);
  });

  test("a host's known-hosts with no line for that host pins nothing, and says so", () => {
    const e = errorOf(() => settingsFrom(noHost, yaml(`192.0.2.99 ssh-ed25519 ${b64}`)));
    expect(e.message).toMatch(/host web-1\): no line names 192\.0\.2\.10/);
  });
});

describe('one mistake, one error (issue 13)', () => {
  const items = (e: ConfigError) => e.message.split('\n').filter(l => l.startsWith('  - '));
  const GOOD = `version: 1
artifact: dist
target: { path: /srv/app }
hosts:
  - { name: web-1, host: 192.0.2.10, user: deploy, host-key: ${FAKE_PIN} }
service: { manager: systemd, name: app }
`;
  const key = { 'ssh-key': FAKE_KEY };

  test('the base file is valid', () => {
    expect(settingsFrom(key, GOOD).hosts).toHaveLength(1);
  });

  test.each([
    [
      'a wrong service manager',
      GOOD.replace('manager: systemd', 'manager: systemdd'),
      /did you mean `systemd`/
    ],
    ['a bad host entry', GOOD.replace('host: 192.0.2.10', 'host: "web 1"'), /`hosts\[0\]\.host`/],
    [
      'a misspelt section',
      GOOD.replace('hosts:', 'host:'),
      /deployguard\.yml:4:1: `host`: unknown key `host`; did you mean `hosts`/
    ],
    ['a bad target', GOOD.replace('/srv/app', 'srv/app'), /`target\.path`/]
  ])('%s gives exactly one error', (_what, yaml, pattern) => {
    const e = errorOf(() => settingsFrom(key, yaml));
    expect(items(e)).toHaveLength(1);
    expect(items(e)[0]).toMatch(pattern);
  });

  test('an invalid input gives one error, not a follow-on "no hosts" or "no user"', () => {
    const e = errorOf(() => settingsFrom({ ...BASE_INPUTS, host: 'a;b', user: 'Root!' }));
    expect(items(e)).toHaveLength(2);
    expect(e.message).not.toMatch(/no hosts|no user/);
  });

  test('host-name and port without host are refused, not ignored', () => {
    const e = errorOf(() => settingsFrom({ 'ssh-key': FAKE_KEY, port: '2222', 'host-name': 'web' }, GOOD));
    expect(items(e)).toEqual([
      expect.stringMatching(
        /input `host-name` applies to the `host` input, which is not set; .* set `name:` on each/
      ),
      expect.stringMatching(
        /input `port` applies to the `host` input, which is not set; .* set `port:` on each/
      )
    ]);
  });

  test('YAML syntax errors carry the line and column', () => {
    const e = errorOf(() => settingsFrom(key, 'version: 1\nhosts:\n  - host: a\n   user: b\n'));
    expect(e.message).toMatch(/deployguard\.yml:4:\d+: /);
  });

  test('schema issues carry the line and column of the key', () => {
    const e = errorOf(() => settingsFrom(key, GOOD.replace('user: deploy', 'user: deploy, port: 0')));
    expect(e.message).toMatch(
      /deployguard\.yml:5:\d+: `hosts\[0\]\.port`: expected an integer from 1 to 65535/
    );
  });
});

describe('`..` is refused in every path (issue 13)', () => {
  const base = 'version: 1\nartifact: dist\nhosts: [{ host: 192.0.2.10, user: deploy }]\n';
  test.each([
    ['target.path', 'target: { path: /srv/../etc }'],
    ['target.path', 'target: { path: /srv/./app }'],
    ['target.shared[0]', 'target: { path: /srv/app, shared: [../etc/passwd] }'],
    ['service.pidfile', 'service: { manager: command, start: ./run, stop: x, pidfile: /run/../etc/x.pid }'],
    ['checks[0].path', 'checks: [{ name: l, type: logs, source: file, path: /var/log/../../etc/shadow }]'],
    ['checks[0].path', 'checks: [{ name: f, type: file-fresh, path: /srv/app/.., max-age: 5m }]'],
    ['checks[0].ca-file', 'checks: [{ name: h, type: http, url: "https://x/", ca-file: ../../ca.pem }]'],
    ['pre-deploy.gitleaks-config', 'pre-deploy: { gitleaks-config: ../other/gitleaks.toml }']
  ])('%s: %s', (path, line) => {
    const yaml = base + (line.startsWith('target') ? line : `target: { path: /srv/app }\n${line}`);
    const e = errorOf(() => settingsFrom({ 'ssh-key': FAKE_KEY, 'host-key': FAKE_PIN }, yaml));
    expect(e.message).toContain(`\`${path}\``);
    expect(e.message).toMatch(/without `\.\.`/);
  });

  test('a dot file and a relative ./ path stay fine', () => {
    const s = settingsFrom(
      { 'ssh-key': FAKE_KEY },
      `${base}target: { path: /srv/app, shared: [.env] }\nchecks: [{ name: h, type: http, url: "https://x/", ca-file: ./ca.pem }]`
    );
    expect(s.target.shared).toEqual(['.env']);
  });
});

describe('messages name flags on the command line, inputs in a workflow (issue 13)', () => {
  const cli = (inputs: Record<string, string>, yaml?: string) =>
    parseSettings({
      input: n => inputs[n],
      env: {},
      configText: yaml,
      now: new Date(),
      onSecret: () => {},
      wording: CLI_WORDING
    });

  test('the CLI speaks of --ssh-key-file and --target-path, never of inputs', () => {
    const { 'ssh-key': _k, ...noKey } = BASE_INPUTS;
    const e = errorOf(() => cli({ ...noKey, 'target-path': 'srv', 'lock-wait': '2d' }));
    expect(e.message).toMatch(/`--ssh-key-file` \(or DEPLOYGUARD_SSH_KEY\)/);
    expect(e.message).toMatch(
      /`--target-path`: expected an absolute path.*Example: --target-path \/srv\/myapp/
    );
    expect(e.message).toMatch(/Example: --lock-wait 2m/);
    expect(e.message).not.toMatch(/\binput\b/);
  });

  test('the action keeps input wording', () => {
    const { 'ssh-key': _k, ...noKey } = BASE_INPUTS;
    const e = errorOf(() => settingsFrom({ ...noKey, 'target-path': 'srv' }));
    expect(e.message).toMatch(/the `ssh-key` input/);
    expect(e.message).toMatch(/input `target-path`/);
  });

  test('a dry run needs no SSH secret', () => {
    const { 'ssh-key': _k, ...noKey } = BASE_INPUTS;
    const s = cli({ ...noKey, 'dry-run': 'true' });
    expect(s.dryRun).toBe(true);
    expect(s.ssh.privateKey).toBeUndefined();
    expect(() => cli(noKey)).toThrow(/no SSH credentials/);
  });
});

test('every declared input is validated before the verdict: a bad value for each one is reported', () => {
  const bad = 'x\u0007\n::error::forged';
  for (const name of Object.keys(INPUTS)) {
    let message = '';
    try {
      settingsFrom({ ...BASE_INPUTS, [name]: bad });
    } catch (err) {
      message = (err as Error).message;
    }
    // Refused, naming this input; never silently dropped.
    expect({ name, refused: message.includes(`\`${name}\``) }).toEqual({ name, refused: true });
  }
});

test('a bad DEPLOYGUARD_KNOWN_HOSTS is named as that variable, not as the input it stands in for', () => {
  let message = '';
  try {
    settingsFrom({ ...BASE_INPUTS }, undefined, {
      DEPLOYGUARD_KNOWN_HOSTS: 'not a key line'
    });
  } catch (err) {
    message = (err as Error).message;
  }
  expect(message).toMatch(/`DEPLOYGUARD_KNOWN_HOSTS`/);
  expect(message).not.toMatch(/input `known-hosts`/);
});
