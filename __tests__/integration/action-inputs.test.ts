/**
 * Hostile action inputs, through the real bundle as the runner runs it (INPUT_* variables): a
 * newline in an input must never turn the rest of it into a workflow command of its own, and the
 * step must fail before any host is contacted (the hosts named here do not exist).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runActionEntry } from '../helpers/deploy.js';
import { FAKE_KEY, FAKE_PIN } from '../helpers/settings.js';

const INJECTION = 'web\n::add-mask::leaked\n::error::pwned';
let dir: string;
let inputs: Record<string, string>;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dg-action-inputs-'));
  mkdirSync(join(dir, 'build'));
  writeFileSync(join(dir, 'build', 'index.html'), 'v1\n');
  inputs = {
    host: '192.0.2.10',
    user: 'deploy',
    'host-key': FAKE_PIN,
    'ssh-key': FAKE_KEY,
    artifact: join(dir, 'build'),
    'target-path': '/srv/app',
    scan: 'none'
  };
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (entry: string, extra: Record<string, string>) =>
  runActionEntry(entry, { ...inputs, ...extra }, { dir, env: { GITHUB_WORKSPACE: dir } });

/** Workflow commands the runner would obey: a line of the step's output starting with `::`. */
const commands = (stdout: string) => stdout.split('\n').filter(l => l.startsWith('::'));

test.each(['host-name', 'environment', 'reason'])(
  'a newline in %s fails the step, naming the input, and injects no workflow command',
  async name => {
    const r = await run('main', { [name]: INJECTION });
    expect(r.code).toBe(1);
    const cmds = commands(r.stdout);
    expect(
      cmds.some(l => /^::error::.*input `[a-z-]+`: contains the control character U\+000A/.test(l))
    ).toBe(true);
    expect(cmds.filter(l => /^::(add-mask|error)::(leaked|pwned)/.test(l))).toEqual([]);
    expect(r.summary).not.toContain('pwned');
  },
  60_000
);

test('a newline in the post-deploy release input is refused, escaped', async () => {
  const r = await run('post-deploy', { release: `rel-1\n::add-mask::leaked` });
  expect(r.code).toBe(1);
  expect(commands(r.stdout).filter(l => l.startsWith('::add-mask::leaked'))).toEqual([]);
  expect(r.stdout).toMatch(
    /::error::input `release`: expected the release id .*got "rel-1\\n::add-mask::leaked"/
  );
}, 60_000);

test('a dry run needs no SSH secret', async () => {
  const { 'ssh-key': _key, ...noKey } = inputs;
  const r = await runActionEntry(
    'main',
    { ...noKey, 'dry-run': 'true' },
    { dir, env: { GITHUB_WORKSPACE: dir } }
  );
  expect({ code: r.code, status: r.outputs.status, out: r.code ? r.stdout.slice(-500) : '' }).toEqual({
    code: 0,
    status: 'dry-run',
    out: ''
  });
  expect(r.stdout).toMatch(/no host was contacted/);
}, 60_000);
