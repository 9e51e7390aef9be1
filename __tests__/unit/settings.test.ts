import { ConfigError } from '../../src/errors.js';
import { parseSettings } from '../../src/settings/parse.js';
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
