/**
 * `env:` (variables written into each release, values possibly secrets) and `deploy.run-once`
 * (migrations): how they are read from the config and where they sit in a host's plan.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dryRun } from '../../src/deploy.js';
import { ConfigError } from '../../src/errors.js';
import { planHost } from '../../src/plan/plan.js';
import { envFileText } from '../../src/remote/commands.js';
import { layoutFor } from '../../src/remote/layout.js';
import { remoteCommandLine } from '../../src/remote/shell.js';
import { parseSettings } from '../../src/settings/parse.js';
import { BASE_INPUTS } from '../helpers/settings.js';

const SECRET = 'pg://app:s3cr3t-value@db/app';

function read(yaml: string, env: Record<string, string> = { DATABASE_URL: SECRET }, inputs = {}) {
  const masked: string[] = [];
  const settings = parseSettings({
    input: n => ({ ...BASE_INPUTS, 'service-name': 'myapp', 'release-id': 'r2', ...inputs })[n],
    env,
    configText: `version: 1\n${yaml}`,
    configPath: 'deployguard.yml',
    now: new Date('2026-11-26T12:00:00Z'),
    onSecret: v => masked.push(v)
  });
  return { settings, masked };
}

function problems(yaml: string, env: Record<string, string> = {}): string {
  try {
    read(yaml, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a config error');
}

const ENV_YAML = 'env:\n  NODE_ENV: production\n  DATABASE_URL: ${DATABASE_URL}\n';

describe('env: in deployguard.yml', () => {
  test('values come from the runner environment, in order; those that did are masked whole', () => {
    const { settings, masked } = read(ENV_YAML);
    expect(settings.env).toEqual({
      file: '.env',
      vars: [
        { name: 'NODE_ENV', value: 'production' },
        { name: 'DATABASE_URL', value: SECRET }
      ]
    });
    expect(masked).toContain(SECRET);
    expect(masked).not.toContain('production');
  });

  test("the file is NAME='value' lines that sh reads back exactly", () => {
    const text = envFileText([
      { name: 'A', value: 'x y $HOME `id` "q" \\n' },
      { name: 'B', value: '' }
    ]);
    expect(text.split('\n').slice(1)).toEqual(['A=\'x y $HOME `id` "q" \\n\'', "B=''", '']);
    const dir = mkdtempSync(join(tmpdir(), 'dg-envfile-'));
    writeFileSync(join(dir, '.env'), text);
    const back = execFileSync('sh', ['-c', 'set -a; . ./.env; printf "%s|%s" "$A" "$B"'], {
      cwd: dir
    }).toString();
    expect(back).toBe('x y $HOME `id` "q" \\n|');
    rmSync(dir, { recursive: true });
  });

  test('a missing variable is one error naming it; a dry run and the commands that write no env file do not need it', () => {
    expect(problems(ENV_YAML)).toMatch(/env\.DATABASE_URL: the environment variable DATABASE_URL is not set/);
    const { settings } = read(ENV_YAML, {}, { 'dry-run': 'true' });
    expect(settings.env.vars.map(v => v.name)).toEqual(['NODE_ENV', 'DATABASE_URL']);
    // Nor do the commands that write no env file: check, preflight, history, rollback.
    for (const purpose of ['check', 'hosts'] as const)
      expect(
        parseSettings({
          input: n => ({ ...BASE_INPUTS })[n],
          env: {},
          configText: `version: 1\n${ENV_YAML}`,
          now: new Date(),
          onSecret: () => undefined,
          purpose
        }).env.vars.length
      ).toBe(2);
  });

  test.each([
    ['a single quote', "it's"],
    ['a newline', 'line1\nline2'],
    ['a control character', 'a\u0007b']
  ])('a value with %s is refused without showing the value', (_what, value) => {
    const message = problems('env:\n  TOKEN: ${TOKEN}\n', { TOKEN: value });
    expect(message).toMatch(/env\.TOKEN: the value \(from the environment\) holds a single quote/);
    expect(message).not.toContain(value);
  });

  test('the env file cannot be a shared entry (each release keeps its own)', () => {
    expect(
      problems(`${ENV_YAML}target: { path: /srv/app, shared: [.env] }\n`, { DATABASE_URL: SECRET })
    ).toMatch(/env-file: \.env is a shared entry/);
    expect(read(`${ENV_YAML}env-file: config/app.env\n`).settings.env.file).toBe('config/app.env');
    expect(problems(`${ENV_YAML}env-file: ../app.env\n`, { DATABASE_URL: SECRET })).toMatch(/env-file/);
  });
});

describe('the plan', () => {
  const now = new Date('2026-11-26T12:00:00Z');

  test('env, before-switch, then run-once on its host only, all before the service is touched', () => {
    const { settings } = read(`${ENV_YAML}deploy: { before-switch: npm ci, run-once: npm run migrate }\n`);
    const layout = layoutFor(settings.target);
    const facts = { previous: '/srv/app/releases/r1' };
    const first = planHost(settings, layout, facts, { now, fileCount: 3, runOnce: true });
    expect(first.steps.map(s => s.id)).toEqual([
      'stage',
      'upload',
      'verify',
      'promote',
      'env',
      'before-switch',
      'run-once',
      'stop',
      'switch',
      'start',
      'running',
      'checks'
    ]);
    const other = planHost(settings, layout, facts, { now, fileCount: 3 });
    expect(other.steps.map(s => s.id)).not.toContain('run-once');
    // A re-run that only switches to a kept release writes no env and migrates nothing.
    const reuse = planHost(settings, layout, facts, { now, fileCount: 3, source: 'reuse', runOnce: true });
    expect(reuse.steps.map(s => s.id)).not.toContain('env');
    expect(reuse.steps.map(s => s.id)).not.toContain('run-once');

    const env = first.steps.find(s => s.id === 'env')!;
    expect(env.title).toBe('Write .env (2 variables: NODE_ENV, DATABASE_URL)');
    expect(env.action.kind).toBe('write-env');
    const script = remoteCommandLine(
      (env.action as { script: Parameters<typeof remoteCommandLine>[0] }).script
    );
    expect(script).toContain('umask 077');
    expect(script).toContain('cat > /srv/app/releases/r2/.env.deployguard-tmp');
    expect(script).toContain('mv -f -- /srv/app/releases/r2/.env.deployguard-tmp /srv/app/releases/r2/.env');
    expect(script).not.toContain(SECRET);
    const once = remoteCommandLine(
      (
        first.steps.find(s => s.id === 'run-once')!.action as {
          script: Parameters<typeof remoteCommandLine>[0];
        }
      ).script
    );
    expect(once).toContain('cd -- /srv/app/releases/r2');
    expect(once).toContain('npm run migrate');
  });

  test('the dry run shows the run-once step and names the variables, never their values', async () => {
    const { settings } = read(
      `${ENV_YAML}deploy: { run-once: npm run migrate }\n`,
      { DATABASE_URL: SECRET },
      {
        'dry-run': 'true'
      }
    );
    const text = await dryRun(settings);
    expect(text).toMatch(
      /\d+\. Run the run-once command \(on this host only, before any host switches\)\n(.*\n){1,6}.*npm run migrate/
    );
    expect(text).toContain('Write .env (2 variables: NODE_ENV, DATABASE_URL)');
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('production');
  });
});

test('config mistakes found after the schema (env, exclude, a host pin) carry their line and column', () => {
  const yaml = [
    'version: 1',
    'exclude:',
    "  - '*.map'",
    "  - 'a/**/b/**/c'",
    'env:',
    '  TOKEN: ${TOKEN}',
    'hosts:',
    '  - name: web-1',
    '    host: 192.0.2.10',
    '    user: deploy',
    "    known-hosts: '192.0.2.99 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl'"
  ].join('\n');
  let message = '';
  try {
    parseSettings({
      input: n => ({ 'ssh-key': BASE_INPUTS['ssh-key'], artifact: 'dist', 'target-path': '/srv/app' })[n],
      env: { TOKEN: "it's" },
      configText: yaml,
      configPath: 'deployguard.yml',
      now: new Date(),
      onSecret: () => undefined
    });
  } catch (err) {
    message = (err as Error).message;
  }
  expect(message).toMatch(/deployguard\.yml:4:5: exclude: `exclude\[1\]`/);
  expect(message).toMatch(
    /deployguard\.yml:6:10: env\.TOKEN: the value \(from the environment\) holds a single quote/
  );
  expect(message).toMatch(
    /deployguard\.yml:11:18: `hosts\[0\]\.known-hosts` \(host web-1\): no line names 192\.0\.2\.10/
  );
});
