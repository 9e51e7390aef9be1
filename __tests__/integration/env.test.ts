/**
 * `env:` and `run-once` on a real host: the env file lands in the release with mode 0600 and the
 * exact values, the run-once command sees it, the secret value appears in no log line, result or
 * host record, and a release keeps its own file, so a rollback brings its environment back.
 */
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.js';
import { commandServiceYaml, deployQuiet, get, makeRelease, settingsFor } from '../helpers/deploy.js';
import { startTestHost, type TestHost } from '../helpers/test-host.js';

const SECRET = 'tok-3b9f0c1e-never-logged';
let t: TestHost;

beforeAll(async () => {
  t = await startTestHost({ prefix: 'env' });
}, 30_000);

afterAll(async () => {
  await t?.stop();
});

function settings(version: string, opts: { fault?: string; token?: string; runOnce?: string } = {}) {
  return makeRelease(version, opts.fault).then(artifact =>
    settingsFor(
      t.host,
      { artifact, 'release-id': version, 'target-path': t.target },
      commandServiceYaml(
        t.appPort,
        t.runDir,
        [
          'env:',
          '  APP_MODE: production',
          '  API_TOKEN: ${API_TOKEN}',
          `deploy: { run-once: '${opts.runOnce ?? `. ./.env && echo "$APP_MODE $DEPLOYGUARD_RELEASE \${#API_TOKEN}" >> ${t.runDir}/once.log`}' }`
        ].join('\n')
      ),
      { API_TOKEN: opts.token ?? SECRET }
    )
  );
}

const envOf = (release: string) => join(t.target, 'releases', release, '.env');

test('the env file is in the release, 0600, exact; run-once read it; the secret is nowhere else', async () => {
  const { result, log } = await deployQuiet(await settings('e1'));
  expect({ status: result.status, error: result.error }).toEqual({ status: 'deployed', error: undefined });
  expect(readlinkSync(join(t.target, 'current'))).toMatch(/e1$/);
  expect(statSync(envOf('e1')).mode & 0o777).toBe(0o600);
  expect(readFileSync(envOf('e1'), 'utf8').split('\n').slice(1)).toEqual([
    "APP_MODE='production'",
    `API_TOKEN='${SECRET}'`,
    ''
  ]);
  // The run-once command ran once, in the new release, with the file there.
  expect(readFileSync(join(t.runDir, 'once.log'), 'utf8')).toBe(`production e1 ${SECRET.length}\n`);
  // Names only, everywhere else.
  const record = readFileSync(join(t.target, '.deployguard', 'deployments.jsonl'), 'utf8');
  for (const text of [log.join('\n'), JSON.stringify(result), record]) expect(text).not.toContain(SECRET);
  expect(log.join('\n')).toContain('Write .env (2 variables: APP_MODE, API_TOKEN)');
  expect(await get(`http://127.0.0.1:${t.appPort}/version`)).toContain('e1');
}, 60_000);

test('each release keeps its own env file: a rollback brings the old values back', async () => {
  const { result } = await deployQuiet(await settings('e2', { fault: 'crash', token: 'tok-second-value' }));
  expect(result.status).toBe('rolled-back');
  expect(readlinkSync(join(t.target, 'current'))).toMatch(/e1$/);
  expect(readFileSync(join(t.target, 'current', '.env'), 'utf8')).toContain(`API_TOKEN='${SECRET}'`);
}, 60_000);

test('a failing run-once stops the deploy before the service is touched: nothing changed', async () => {
  const { result } = await deployQuiet(await settings('e3', { runOnce: 'echo cannot migrate >&2; exit 3' }));
  expect(result.status).toBe('failed');
  expect(result.error).toMatch(/run-once command .*failed \(exit 3\):\s+cannot migrate/);
  expect(result.hosts[0]!.steps.some(s => s.id === 'stop')).toBe(false);
  expect(readlinkSync(join(t.target, 'current'))).toMatch(/e1$/);
  expect(await get(`http://127.0.0.1:${t.appPort}/version`)).toContain('e1');
}, 60_000);

test('an artifact that holds the env file is refused before any host is contacted', async () => {
  const artifact = await makeRelease('e4', undefined, { '.env': 'FROM_ARTIFACT=1\n' });
  const s = settingsFor(
    t.host,
    { artifact, 'release-id': 'e4', 'target-path': t.target },
    'version: 1\nenv: { A: b }\nservice: { manager: none }',
    {}
  );
  const err = await deployQuiet(s).then(
    () => undefined,
    (e: unknown) => e
  );
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as Error).message).toMatch(/artifact: it holds \.env, where the `env:` variables are written/);
});
