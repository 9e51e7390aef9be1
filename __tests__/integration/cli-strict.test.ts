/**
 * The CLI as users run it: the bundle (dist/cli/index.cjs), which must know its own version and
 * parse as strictly as the sources do.
 */
import { readFileSync } from 'node:fs';
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
