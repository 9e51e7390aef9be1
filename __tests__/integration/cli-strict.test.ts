/**
 * The CLI as users run it: the bundle (dist/cli/index.cjs), which must know its own version and
 * parse as strictly as the sources do.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBundle } from '../helpers/deploy.js';

const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' };
const cli = (...args: string[]) => runBundle('cli', args, { env });

test('--version prints the version of package.json', async () => {
  const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  expect(await cli('--version')).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
});

test('--dryrun=true is refused (it once ran a real deploy), with the right flag suggested', async () => {
  const r = await cli('deploy', '--dryrun=true');
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/unknown flag "--dryrun" for `deployguard deploy`; did you mean --dry-run\?/);
  expect(r.stdout).toBe('');
});

test('each command has its own --help', async () => {
  const r = await cli('rollback', '--help');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^Usage: deployguard rollback \[flags\]/);
  expect(r.stdout).toContain('--to previous|RELEASE');
});

test('a newline in --host-name is refused, escaped, before anything runs', async () => {
  const r = await cli('deploy', '--host', '192.0.2.10', '--host-name', 'a\n::error::pwned', '--dry-run');
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/`--host-name`: contains the control character U\+000A/);
  expect(`${r.stdout}${r.stderr}`.split('\n').filter(l => l.startsWith('::'))).toEqual([]);
});

test('an empty flag value is refused, not read as "not given" (`--host ""` would take every host of the file)', async () => {
  const r = await cli('deploy', '--host', '', '--dry-run');
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/--host is empty; give a value or leave the flag out/);
});

test('`deploy --dry-run --json` prints JSON: the release and the plan, with the commit of the checkout', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dg-dryjson-'));
  try {
    mkdirSync(join(dir, 'dist'));
    writeFileSync(join(dir, 'dist', 'index.html'), 'hi\n');
    execFileSync('git', ['init', '-q'], { cwd: dir });
    execFileSync(
      'git',
      ['-c', 'user.name=t', '-c', 'user.email=t@e', 'commit', '-q', '--allow-empty', '-m', 'x'],
      {
        cwd: dir
      }
    );
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
    const r = await runBundle(
      'cli',
      [
        'deploy',
        ...['--host', '192.0.2.10', '--user', 'deploy', '--target-path', '/srv/app', '--artifact', 'dist'],
        ...['--service-manager', 'none', '--dry-run', '--json']
      ],
      { env, cwd: dir }
    );
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
    const out = JSON.parse(r.stdout) as { status: string; release: string; plan: string[] };
    expect(out.status).toBe('dry-run');
    // Outside Actions the release id carries the checkout's commit, as GITHUB_SHA would.
    expect(out.release).toMatch(new RegExp(`-${head.slice(0, 7)}$`));
    expect(out.plan.join('\n')).toMatch(/Switch current to /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
