/**
 * The CLI as a user installs it: `npm pack` of this checkout, then `npm i -g` of that tarball into
 * a fresh prefix, offline and with an empty npm cache, so nothing can come from a registry: the
 * package must need nothing but its own files (the bundle inlines every library). Then the
 * installed `deployguard` command, found on PATH and run from a directory far from this
 * repository, answers --help, prints the schema, and deploys over SSH to a real sshd.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestHost } from '../harness/hosts.js';
import { startTestHost, type LocalTestHost } from '../helpers/test-host.js';

const ROOT = process.cwd();
let work: string;
let tarball: string;
let packed: { files: { path: string }[] };
let prefix: string;

/** The environment of a user's shell: no npm or jest variables, the install's bin first on PATH. */
function userEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}`, HOME: work, ...extra };
}

function npm(args: string[], cwd: string) {
  return spawnSync('npm', args, {
    cwd,
    encoding: 'utf8',
    // An empty cache and --offline: any package npm would have to fetch fails the install.
    env: { PATH: process.env.PATH ?? '', HOME: work, npm_config_cache: join(work, 'npm-cache') },
    timeout: 120_000
  });
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'dg-install-'));
  const r = npm(['pack', '--json', '--pack-destination', work], ROOT);
  expect({ code: r.status, stderr: r.status === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
  const [info] = JSON.parse(r.stdout) as [{ filename: string; files: { path: string }[] }];
  packed = info;
  tarball = join(work, info.filename);
  prefix = join(work, 'prefix');
}, 120_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('npm pack', () => {
  it('ships the bundle, the CLI entry and the schema, and no sources, tests or dependencies', () => {
    const files = packed.files.map(f => f.path).sort();
    const allowed =
      /^(dist\/bundle\/|dist\/cli\/index\.cjs$|dist\/package\.json$|deployguard\.schema\.json$|examples\/app\/server\.js$|package\.json$|README\.md$|LICENSE)/;
    expect(files.filter(f => !allowed.test(f))).toEqual([]);
    for (const f of [
      'dist/cli/index.cjs',
      'dist/bundle/index.cjs',
      'dist/package.json',
      'deployguard.schema.json'
    ])
      expect(files).toContain(f);
  });

  it('packs a manifest with no runtime dependencies and no install scripts', () => {
    const manifest = JSON.parse(
      execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' })
    ) as Record<string, unknown>;
    const deps = ['dependencies', 'optionalDependencies', 'peerDependencies', 'bundleDependencies'];
    // The bundle inlines every library: list build inputs under devDependencies, which `npm i`
    // of a tarball never installs.
    expect(deps.filter(k => Object.keys((manifest[k] as object | undefined) ?? {}).length > 0)).toEqual([]);
    const scripts = Object.keys((manifest.scripts as object | undefined) ?? {});
    expect(scripts.filter(s => ['preinstall', 'install', 'postinstall', 'prepare'].includes(s))).toEqual([]);
    expect(manifest.bin).toEqual({ deployguard: 'dist/cli/index.cjs' });
  });
});

describe('npm i -g of the tarball (offline, empty cache, own prefix)', () => {
  let t: LocalTestHost<TestHost> | undefined;
  let away: string;

  beforeAll(async () => {
    const r = npm(
      ['install', '--global', '--offline', '--no-audit', '--no-fund', '--prefix', prefix, tarball],
      work
    );
    expect({ code: r.status, stderr: r.status === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
    away = join(work, 'elsewhere');
    mkdirSync(away);
    t = await startTestHost({ kind: 'sshd', name: 'install' });
  }, 120_000);

  afterAll(async () => {
    await t?.stop();
  });

  it('installs a `deployguard` command into the prefix and nothing else', () => {
    const bin = join(prefix, 'bin', 'deployguard');
    expect(existsSync(bin)).toBe(true);
    expect(realpathSync(bin)).toBe(
      join(prefix, 'lib', 'node_modules', 'deployguard', 'dist', 'cli', 'index.cjs')
    );
    expect(existsSync(join(prefix, 'lib', 'node_modules', 'deployguard', 'node_modules'))).toBe(false);
  });

  it('`deployguard --help` exits 0 and shows the usage', () => {
    const r = spawnSync('deployguard', ['--help'], { cwd: away, env: userEnv(), encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/deployguard deploy/);
  });

  it('`deployguard schema` prints the JSON Schema of deployguard.yml', () => {
    const r = spawnSync('deployguard', ['schema'], { cwd: away, env: userEnv(), encoding: 'utf8' });
    expect(r.status).toBe(0);
    const schema = JSON.parse(r.stdout) as { $schema?: string; properties?: Record<string, unknown> };
    expect(schema.$schema).toMatch(/json-schema\.org/);
    expect(Object.keys(schema.properties ?? {})).toEqual(
      expect.arrayContaining(['version', 'hosts', 'checks'])
    );
  });

  it('`deployguard demo` runs from the installed package, away from the repository', () => {
    const r = spawnSync('deployguard', ['demo'], {
      cwd: away,
      env: userEnv(),
      encoding: 'utf8',
      timeout: 180_000
    });
    expect({ code: r.status, out: r.status === 0 ? '' : (r.stdout + r.stderr).slice(-2000) }).toEqual({
      code: 0,
      out: ''
    });
    expect(r.stdout + r.stderr).toMatch(/rolled-back/);
  }, 200_000);

  it('deploys over SSH to a real sshd, from a directory with no repository around it', async () => {
    const h = t!.host;
    const artifact = join(away, 'site');
    mkdirSync(artifact);
    writeFileSync(join(artifact, 'index.html'), '<h1>installed</h1>\n');
    const target = mkdtempSync(join(tmpdir(), 'dg-install-target-'));
    try {
      const r = spawnSync(
        'deployguard',
        [
          'deploy',
          ...['--host', h.host, '--port', String(h.port), '--user', h.user, '--host-name', 'installed'],
          ...['--known-hosts', h.knownHostsLine, '--target-path', target, '--artifact', 'site'],
          ...['--service-manager', 'none', '--scan', 'none', '--release-id', 'r1', '--stability-window', '0s']
        ],
        { cwd: away, env: userEnv({ DEPLOYGUARD_SSH_KEY: h.privateKey }), encoding: 'utf8', timeout: 120_000 }
      );
      expect({ code: r.status, out: r.status === 0 ? '' : r.stdout + r.stderr }).toEqual({
        code: 0,
        out: ''
      });
      expect(readFileSync(join(target, 'current', 'index.html'), 'utf8')).toBe('<h1>installed</h1>\n');
      expect(r.stdout + r.stderr).not.toContain(h.privateKey.split('\n')[1]!);
    } finally {
      rmSync(target, { recursive: true, force: true });
    }
  });
});
