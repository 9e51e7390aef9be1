/**
 * Exclude patterns over a real sshd: the full upload and the incremental one ship exactly the files
 * the patterns keep (gitignore rules, negation, braces), a hostile pattern with long names deploys in
 * normal time, and a bad pattern stops the deploy before the host is contacted.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { Sandbox } from '../../src/demo/sandbox.js';
import { ConfigError } from '../../src/errors.js';
import { deployQuiet, settingsFor } from '../helpers/deploy.js';
import { startTestHost, type TestHost } from '../helpers/test-host.js';

let t: TestHost;
let host: Sandbox;
let base: string;
let target: string;
let art: string;

const longName = 'a'.repeat(250);
const hostile = `${'*a'.repeat(21)}*b`;

beforeAll(async () => {
  t = await startTestHost({ prefix: 'exclude' });
  ({ host, work: base, target } = t);
  art = join(base, 'artifact');
  for (const [path, content] of Object.entries({
    'app.js': 'app',
    'app.js.map': 'map',
    'types.d.ts': 'types',
    'vendor/lib.js': 'lib',
    'vendor/lib.js.map': 'vendor map',
    'debug.log': 'noise',
    'keep.log': 'kept',
    'logs/keep.log': 'inside an excluded directory',
    'node_modules/pkg/index.js': 'dependency',
    'node_modules/keep.js': 're-included',
    // Names the hostile pattern must walk over: 250 characters, four levels deep.
    [`deep/${longName}/${longName}/${longName}/${longName}`]: 'long'
  })) {
    mkdirSync(dirname(join(art, path)), { recursive: true });
    writeFileSync(join(art, path), content);
  }
}, 30_000);

afterAll(async () => {
  await t?.stop();
});

function yaml(exclude: readonly string[]): string {
  return [
    'version: 1',
    'service: { manager: none }',
    'post-deploy: { stability-window: 0s }',
    'pre-deploy: { gitleaks: false }',
    `exclude: ${JSON.stringify(exclude)}`
  ].join('\n');
}

function deploy(release: string, exclude: readonly string[], path = target) {
  return deployQuiet(
    settingsFor(host, { artifact: art, 'target-path': path, 'release-id': release }, yaml(exclude))
  );
}

/** Every file under dir, relative, with its content. */
function files(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const abs = join(dir, p);
    if (statSync(abs).isFile()) out[relative(dir, abs)] = readFileSync(abs, 'utf8');
  }
  return out;
}

const release = (id: string) => join(target, 'releases', id);
const PATTERNS = [
  '*.{map,d.ts}',
  '!vendor/*.map',
  '*.log',
  '!keep.log',
  'logs/',
  'node_modules/**',
  '!node_modules/keep.js',
  hostile
];

describe('exclude patterns on a real host', () => {
  test('the full upload ships exactly what the patterns keep; the hostile pattern costs nothing', async () => {
    const start = process.hrtime.bigint();
    const { result } = await deploy('r1', PATTERNS);
    expect(result.status).toBe('deployed');
    expect(Object.keys(files(release('r1'))).sort()).toEqual([
      'app.js',
      `deep/${longName}/${longName}/${longName}/${longName}`,
      'keep.log',
      'node_modules/keep.js',
      'vendor/lib.js',
      'vendor/lib.js.map'
    ]);
    // A whole deploy to loopback: generous, but a backtracking matcher would never get here.
    expect(Number(process.hrtime.bigint() - start) / 1e9).toBeLessThan(30);
  }, 60_000);

  test('an incremental deploy applies the same decisions: newly excluded files go, re-included ones come', async () => {
    writeFileSync(join(art, 'app.js'), 'app v2');
    // No more '!keep.log' (it goes), no more 'logs/' (logs/keep.log is now excluded by '*.log' alone),
    // and '!logs/*.log' brings it back.
    const next = PATTERNS.filter(p => p !== '!keep.log' && p !== 'logs/').concat('!logs/*.log');
    const { result, log } = await deploy('r2', next);
    expect(result.status).toBe('deployed');
    expect(log.join('\n')).toMatch(/linked from r1/);
    expect(files(release('r2'))).toEqual({
      'app.js': 'app v2',
      [`deep/${longName}/${longName}/${longName}/${longName}`]: 'long',
      'logs/keep.log': 'inside an excluded directory',
      'node_modules/keep.js': 're-included',
      'vendor/lib.js': 'lib',
      'vendor/lib.js.map': 'vendor map'
    });
    // Same release as a full upload of the same patterns would give.
    const { result: full } = await deployQuiet(
      settingsFor(
        host,
        { artifact: art, 'target-path': target, 'release-id': 'r3' },
        `${yaml(next)}\ndeploy: { incremental: false }`
      )
    );
    expect(full.status).toBe('deployed');
    expect(files(release('r3'))).toEqual(files(release('r2')));
  }, 90_000);

  test('a bad pattern fails the deploy as a config error before the host is contacted', async () => {
    const fresh = join(base, 'run', 'never');
    const sshdLog = join(host.dir, 'sshd.log');
    const before = readFileSync(sshdLog, 'utf8').length;
    // Refused while the settings are read, listed with every other mistake in the file.
    const err = await Promise.resolve()
      .then(() => deploy('r9', ['*.map', 'a/**/b/**/c'], fresh))
      .then(
        () => undefined,
        (e: unknown) => e
      );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toMatch(
      /test\.yml:\d+:\d+: exclude: `exclude\[1\]` "a\/\*\*\/b\/\*\*\/c": has 2 "\*\*".*Example: /
    );
    // No connection was made, nothing was created...
    expect(readFileSync(sshdLog, 'utf8').slice(before)).not.toMatch(/Accepted/);
    expect(() => statSync(fresh)).toThrow();
    // ...while the same deploy with a good pattern connects (and the log shows it).
    expect((await deploy('r9', ['*.map', 'a/**/b'], fresh)).result.status).toBe('deployed');
    expect(readFileSync(sshdLog, 'utf8').slice(before)).toMatch(/Accepted publickey/);
    rmSync(fresh, { recursive: true, force: true });
  }, 30_000);
});
