/**
 * The local process choke point: a timeout kills (the whole group when asked), an abort kills,
 * output is bounded (fail or keep the tail), a missing program is a result rather than a throw,
 * and the environment is exactly what the caller built.
 */
import { readFileSync } from 'node:fs';
import { describeOutcome, processEnv, runChecked, runProcess, runProcessSync } from '../../src/io/process.js';
import { gitEnv, REPOSITORY_VARIABLES } from '../../src/io/git.js';

/** Running (a killed process nobody has reaped yet is a zombie: state Z). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

test('an ordinary run: exit code, stdout and stderr apart', async () => {
  const r = await runProcess('/bin/sh', ['-c', 'echo out; echo err >&2; exit 3']);
  expect(r.outcome).toBe('exit');
  expect(r.code).toBe(3);
  expect(r.stdout.toString()).toBe('out\n');
  expect(r.stderr.toString()).toBe('err\n');
  expect(describeOutcome(r)).toBe('exited with code 3');
});

test('a timeout kills the program, and with group: true what it started too', async () => {
  const started = Date.now();
  // The shell starts a sleep in the background and prints its pid, then waits for it.
  const r = await runProcess('/bin/sh', ['-c', 'sleep 30 & echo $!; wait'], { timeoutMs: 300, group: true });
  expect(r.outcome).toBe('timeout');
  expect(Date.now() - started).toBeLessThan(5000);
  expect(describeOutcome(r, 300)).toBe('timed out after 300 ms');
  const child = Number(r.stdout.toString().trim());
  expect(child).toBeGreaterThan(0);
  await new Promise(res => setTimeout(res, 100));
  expect(alive(child)).toBe(false);
});

test('an abort kills the program; an aborted signal does not start it', async () => {
  const abort = new AbortController();
  setTimeout(() => abort.abort(), 100);
  const started = Date.now();
  const r = await runProcess('sleep', ['30'], { signal: abort.signal });
  expect(r.outcome).toBe('cancelled');
  expect(r.signal).toBe('SIGKILL');
  expect(Date.now() - started).toBeLessThan(5000);
  const before = await runProcess('/bin/sh', ['-c', 'echo never'], { signal: abort.signal });
  expect(before).toMatchObject({ outcome: 'cancelled', code: null });
  expect(before.stdout.length).toBe(0);
});

test('output past the cap: `fail` kills the program, `tail` keeps the newest bytes', async () => {
  const yes = ['-c', 'i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done; sleep 30'];
  const failed = await runProcess('/bin/sh', yes, { maxOutputBytes: 1000, timeoutMs: 20_000 });
  expect(failed.outcome).toBe('overflow');
  expect(failed.ms).toBeLessThan(10_000);

  const tail = await runProcess('/bin/sh', [yes[0]!, yes[1]!.replace('; sleep 30', '')], {
    maxOutputBytes: 100,
    overflow: 'tail'
  });
  expect(tail.outcome).toBe('exit');
  expect(tail.stdout.length).toBe(100);
  expect(tail.stdout.toString().endsWith('line 1999\n')).toBe(true);
});

test('onOutput sees every chunk as it comes, stdout and stderr in order', async () => {
  const seen: string[] = [];
  await runProcess('/bin/sh', ['-c', 'echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three'], {
    onOutput: (chunk, stream) => seen.push(`${stream}:${chunk.toString().trim()}`)
  });
  expect(seen).toEqual(['stdout:one', 'stderr:two', 'stdout:three']);
});

test('a background process holding the output open does not hold the run', async () => {
  const started = Date.now();
  const r = await runProcess('/bin/sh', ['-c', 'sleep 30 & echo done']);
  expect(r).toMatchObject({ outcome: 'exit', code: 0 });
  expect(r.stdout.toString()).toBe('done\n');
  expect(Date.now() - started).toBeLessThan(5000);
});

test('a program that does not exist is a result, not a throw', async () => {
  const r = await runProcess('/nonexistent/deployguard-test-program', []);
  expect(r.outcome).toBe('error');
  expect(r.error?.code).toBe('ENOENT');
  expect(describeOutcome(r)).toMatch(/^could not be started: .*ENOENT/);
  await expect(runChecked('/bin/sh', ['-c', 'echo bad >&2; exit 2'])).rejects.toThrow(
    '/bin/sh exited with code 2: bad'
  );
  expect((await runChecked('/bin/sh', ['-c', 'echo good'])).toString()).toBe('good\n');
});

test('the synchronous run: exit code, timeout, missing program', () => {
  expect(runProcessSync('/bin/sh', ['-c', 'echo hi; exit 4'])).toMatchObject({ outcome: 'exit', code: 4 });
  expect(runProcessSync('sleep', ['30'], { timeoutMs: 200 }).outcome).toBe('timeout');
  expect(runProcessSync('/nonexistent/deployguard-test-program', []).outcome).toBe('error');
});

test('the child gets exactly the environment built for it', async () => {
  const env = processEnv(
    { PATH: process.env.PATH, KEEP: 'yes', DROP_ME: 'x', INPUT_SSH_KEY: 'secret', UNSET: undefined },
    { drop: ['DROP_ME', /^INPUT_/], set: { ADDED: 'new' } }
  );
  expect(env).toEqual({ PATH: process.env.PATH, KEEP: 'yes', ADDED: 'new' });
  const r = await runProcess('/bin/sh', ['-c', 'env | sort'], { env });
  const names = r.stdout
    .toString()
    .split('\n')
    .map(l => l.split('=')[0])
    .filter(n => n && !['PWD', 'SHLVL', '_'].includes(n));
  expect(names).toEqual(['ADDED', 'KEEP', 'PATH']);
});

test('git’s environment: no variable that redirects the repository, no prompt, no pager', () => {
  // Options passed the documented way (a runner's safe.directory) are kept: they pick no repository.
  const config = { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'safe.directory', GIT_CONFIG_VALUE_0: '*' };
  const base: NodeJS.ProcessEnv = { PATH: '/usr/bin', HOME: '/root', ...config };
  for (const k of REPOSITORY_VARIABLES) base[k] = '/elsewhere';
  const env = gitEnv(base);
  expect(env).toEqual({
    PATH: '/usr/bin',
    HOME: '/root',
    ...config,
    GIT_TERMINAL_PROMPT: '0',
    GCM_INTERACTIVE: 'never',
    GIT_PAGER: 'cat',
    LC_ALL: 'C'
  });
  expect(base.GIT_DIR).toBe('/elsewhere');
  expect(REPOSITORY_VARIABLES).toEqual(
    expect.arrayContaining([
      'GIT_DIR',
      'GIT_WORK_TREE',
      'GIT_INDEX_FILE',
      'GIT_OBJECT_DIRECTORY',
      'GIT_ALTERNATE_OBJECT_DIRECTORIES',
      'GIT_COMMON_DIR',
      'GIT_NAMESPACE'
    ])
  );
});
