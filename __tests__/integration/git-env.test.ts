/**
 * Every git run reads the repository it is given, whatever the environment says. A job step run
 * from a git hook (or a misconfigured runner) may carry GIT_DIR and friends pointing at another
 * repository: the range of commits, the scan of those commits (deployguard's own git runs and the
 * ones gitleaks makes) and the "is this a checkout" question must all still read the workspace.
 * Real git repositories, the real gitleaks engine (the WebAssembly build: no git mode, so the
 * commit scan runs git itself) and, for the native engine's environment, a stand-in engine that
 * records what it was given.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gitEnv, REPOSITORY_VARIABLES, runGit } from '../../src/io/git.js';
import { memoryLogger } from '../../src/io/log.js';
import { scanCommits } from '../../src/scan/gitleaks.js';
import { secretGate } from '../../src/scan/pre-deploy.js';
import { resolveRange } from '../../src/scan/range.js';
import { githubPat } from '../fixtures/secrets/samples.js';
import { commandServiceYaml, runBundle } from '../helpers/deploy.js';
import { BASE_INPUTS, settingsFrom } from '../helpers/settings.js';
import { startTestHost } from '../helpers/test-host.js';

const REAL = path.resolve('node_modules/.bin/gitleaks');
const SLOW = 60_000;

let work: string;
/** The repository deployguard is pointed at: one commit adding a secret on top of a clean one. */
let workspace: string;
/** Another repository, which the environment points at. */
let other: string;
let secretCommit: string;
const saved: Record<string, string | undefined> = {};

function git(repo: string, ...args: string[]): string {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };
  for (const k of REPOSITORY_VARIABLES) delete env[k];
  return execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8', env, stdio: 'pipe' }).trim();
}

function repo(name: string, files: Record<string, string>[]): string {
  const dir = path.join(work, name);
  mkdirSync(dir, { recursive: true });
  git(dir, 'init', '-q', '-b', 'main');
  git(dir, 'config', 'user.name', 'Env Test');
  git(dir, 'config', 'user.email', 'env@example.test');
  git(dir, 'config', 'commit.gpgsign', 'false');
  files.forEach((set, i) => {
    for (const [f, text] of Object.entries(set)) writeFileSync(path.join(dir, f), text);
    git(dir, 'add', '-A');
    git(dir, 'commit', '-q', '-m', `${name} ${i + 1}`);
  });
  return dir;
}

/** `dir` with a one-file artifact in dist/ (left out of any commit); returns dir. */
function withArtifact(dir: string): string {
  mkdirSync(path.join(dir, 'dist'), { recursive: true });
  writeFileSync(path.join(dir, 'dist', 'app.js'), 'ok\n');
  return dir;
}

/** Points every git run of this process (and of its children) at `other`, as a hook would. */
function pointEnvironmentAt(repoDir: string): void {
  for (const k of REPOSITORY_VARIABLES) saved[k] = process.env[k];
  process.env.GIT_DIR = path.join(repoDir, '.git');
  process.env.GIT_WORK_TREE = repoDir;
  process.env.GIT_INDEX_FILE = path.join(repoDir, '.git', 'index');
  process.env.GIT_OBJECT_DIRECTORY = path.join(repoDir, '.git', 'objects');
}

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'dg-git-env-'));
  const pat = githubPat(11);
  workspace = repo('workspace', [{ 'README.md': 'app\n' }, { [pat.file]: pat.content }]);
  secretCommit = git(workspace, 'rev-parse', 'HEAD');
  other = repo('other', [{ 'other.txt': 'another project\n' }]);
  pointEnvironmentAt(other);
});

afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  rmSync(work, { recursive: true, force: true });
});

/*
 * Jest gives each test file its own copy of process.env: a child started without an explicit
 * environment gets the runner's real one, not the copy changed here. In production the two are
 * the same object, so below every child must be given its environment explicitly to see GIT_DIR.
 */
test('the environment really points plain git at the other repository', () => {
  const head = execFileSync('git', ['-C', workspace, 'rev-parse', 'HEAD'], {
    encoding: 'utf8',
    env: process.env
  }).trim();
  expect(head).toBe(git(other, 'rev-parse', 'HEAD'));
  expect(head).not.toBe(secretCommit);
});

test('the variables dropped are the ones git itself calls repository-local, but its config ones', () => {
  // git's own list, not ours: a variable git adds, or one dropped from ours, fails here. The
  // GIT_CONFIG* ones stay on purpose (configuration, not which repository); GIT_NAMESPACE is
  // not on git's list but selects the refs read.
  const local = git(workspace, 'rev-parse', '--local-env-vars')
    .split('\n')
    .filter(k => k && !k.startsWith('GIT_CONFIG'));
  expect([...REPOSITORY_VARIABLES].sort()).toEqual([...local, 'GIT_NAMESPACE'].sort());
});

test('runGit reads the repository it is given, and gitEnv drops every redirecting variable', async () => {
  const r = await runGit(workspace, ['rev-parse', 'HEAD']);
  expect(r.code).toBe(0);
  expect(r.stdout.toString('utf8').trim()).toBe(secretCommit);
  const env = gitEnv(process.env);
  for (const k of REPOSITORY_VARIABLES) expect(env[k]).toBeUndefined();
  expect(env.GIT_TERMINAL_PROMPT).toBe('0');
  expect(process.env.GIT_DIR).toBe(path.join(other, '.git'));
});

test(
  'the range and the scan of its commits read the same (workspace) repository',
  async () => {
    const range = await resolveRange({ repoDir: workspace, head: 'HEAD' });
    expect(range.head).toBe(secretCommit);
    expect(range.commits).toHaveLength(2);
    const engine = { path: REAL, version: '8.28.0', gitleaksGitMode: false };
    const findings = await scanCommits(engine, workspace, range.commits, { logOpts: range.logOpts });
    expect(findings.map(f => [f.rule, f.file, f.commit])).toEqual([
      ['github-pat', 'config.js', secretCommit]
    ]);
  },
  SLOW
);

test(
  'the native engine gets git’s environment: built from this process’s, without the redirecting variables',
  async () => {
    process.env.DG_ENGINE_MARKER = 'seen';
    try {
      const seen = path.join(work, 'engine-env.txt');
      const engine = path.join(work, 'fake-gitleaks');
      // Records its environment and reports no findings, as a clean `gitleaks git` run does.
      writeFileSync(engine, `#!/bin/sh\nenv > '${seen}'\nexit 0\n`);
      chmodSync(engine, 0o755);
      const findings = await scanCommits(
        { path: engine, version: '8.28.0', gitleaksGitMode: true },
        workspace,
        [secretCommit]
      );
      expect(findings).toEqual([]);
      const names = readFileSync(seen, 'utf8')
        .split('\n')
        .map(l => l.split('=')[0]);
      for (const k of REPOSITORY_VARIABLES) expect(names).not.toContain(k);
      // Built from the environment deployguard reads (the marker), by gitEnv (no prompt for a password).
      expect(names).toEqual(expect.arrayContaining(['DG_ENGINE_MARKER', 'GIT_TERMINAL_PROMPT']));
    } finally {
      delete process.env.DG_ENGINE_MARKER;
    }
  },
  SLOW
);

test(
  'the secret gate: a directory that is no checkout is refused, though GIT_DIR names a repository',
  async () => {
    const plain = withArtifact(path.join(work, 'not-a-checkout'));
    const settings = settingsFrom({ ...BASE_INPUTS, 'gitleaks-path': REAL });
    const run = secretGate(settings, {
      workspace: plain,
      env: { ...process.env, GITHUB_SHA: undefined },
      log: memoryLogger(),
      outDir: work
    });
    await expect(run).rejects.toThrow(/is not a git checkout, so the commits going out cannot be scanned/);
  },
  SLOW
);

test(
  'the secret gate finds the secret of the workspace, not the other repository’s history',
  async () => {
    withArtifact(workspace);
    const settings = settingsFrom({ ...BASE_INPUTS, 'gitleaks-path': REAL, scan: 'commits' });
    const run = secretGate(settings, {
      workspace,
      env: { ...process.env, GITHUB_SHA: undefined },
      log: memoryLogger(),
      outDir: work
    });
    await expect(run).rejects.toThrow(
      /gitleaks found 1 secret; nothing was deployed:\n {2}- github-pat at config\.js:2/
    );
  },
  SLOW
);

/*
 * The same through the bundled CLI in a process of its own, where GIT_DIR is in the real
 * environment (no test runner's copy in between): git, gitleaks and the "is this a checkout"
 * question all get it unless deployguard removes it. The scan blocks the deploy before anything
 * changes on the host, so the service never starts.
 */
describe('the CLI with GIT_DIR pointing elsewhere', () => {
  const runCli = async (cwd: string, name: string) => {
    const t = await startTestHost({ prefix: `git-env-cli-${name}` });
    try {
      const { host, work: base, runDir, target } = t;
      const config = path.join(base, 'deployguard.yml');
      writeFileSync(config, commandServiceYaml(t.appPort, runDir, `target: { path: ${target} }`));
      const r = await runBundle(
        'cli',
        [
          'deploy',
          ...['--config', config, '--host', host.host, '--port', String(host.port), '--user', host.user],
          ...['--host-name', 'web-1', '--known-hosts', host.knownHostsLine, '--lock-wait', '0s'],
          ...['--artifact', path.join(cwd, 'dist'), '--release-id', 'v1', '--scan', 'commits']
        ],
        {
          cwd,
          env: {
            PATH: `${path.resolve('node_modules/.bin')}:${process.env.PATH ?? ''}`,
            HOME: base,
            DEPLOYGUARD_SSH_KEY: host.privateKey,
            GIT_DIR: path.join(other, '.git'),
            GIT_WORK_TREE: other
          }
        }
      );
      return { ...r, deployed: existsSync(path.join(target, 'current')) };
    } finally {
      await t.stop();
    }
  };

  test(
    'the secret in the workspace’s history blocks the deploy',
    async () => {
      withArtifact(workspace);
      const r = await runCli(workspace, 'secret');
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/commits: 2 \(first-deploy up to [0-9a-f]{12}\)/);
      // On a terminal each line of the error starts with `error:`.
      expect(r.stderr).toMatch(
        /gitleaks found 1 secret; nothing was deployed:\n.*- github-pat at config\.js:2 in/
      );
      expect(r.deployed).toBe(false);
    },
    SLOW
  );

  test(
    'a directory that is no checkout is refused as such',
    async () => {
      const plain = withArtifact(path.join(work, 'plain-cli'));
      const r = await runCli(plain, 'plain');
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/is not a git checkout, so the commits going out cannot be scanned/);
      expect(r.deployed).toBe(false);
    },
    SLOW
  );
});
