/**
 * The host's deployments.jsonl over a real sshd: written under the lock by every deploy whatever
 * its outcome, the source of "the last successful deployment", tolerant of a line cut short, and
 * listed by `deployguard history` (the bundled CLI, in a subprocess).
 */
import {
  appendFileSync,
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync
} from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sandbox } from '../../src/demo/sandbox.js';
import { runDeploy } from '../../src/deploy.js';
import { memoryLogger } from '../../src/io/log.js';
import { renderRecord } from '../../src/report/record.js';
import {
  commandServiceYaml,
  freePort,
  get,
  killPidfile,
  makeRelease,
  runBundle,
  settingsFor
} from '../helpers/deploy.js';
import { startTestHost, type TestHost } from '../helpers/test-host.js';

let t: TestHost;
let host: Sandbox;
let base: string;
let runDir: string;
let appPort: number;
let target: string;
const C1 = '1'.repeat(40);
const C2 = '2'.repeat(40);
const C3 = '3'.repeat(40);

beforeAll(async () => {
  t = await startTestHost({ prefix: 'record' });
  ({ host, work: base, runDir, appPort, target } = t);
}, 30_000);

afterAll(async () => {
  await t?.stop();
});

const jsonl = () => join(target, '.deployguard', 'deployments.jsonl');

async function deploy(version: string, commit: string, fault?: string, reason?: string) {
  const log = memoryLogger();
  const settings = settingsFor(
    host,
    {
      artifact: await makeRelease(version, fault),
      'target-path': target,
      'release-id': version,
      ...(reason ? { reason } : {})
    },
    commandServiceYaml(appPort, runDir, ''),
    {
      GITHUB_SHA: commit,
      GITHUB_REPOSITORY: 'acme/shop',
      GITHUB_RUN_ID: `run-${version}`,
      GITHUB_ACTOR: 'octocat',
      GITHUB_REF: 'refs/heads/main'
    }
  );
  let seen: string | undefined = 'not called';
  const result = await runDeploy(settings, {
    log,
    why: settings.report.reason,
    beforeChanges: async ({ lastDeployedCommit }) => {
      seen = lastDeployedCommit;
    }
  });
  return { result, log: log.lines, lastDeployedCommit: seen };
}

function records(): Record<string, unknown>[] {
  return readFileSync(jsonl(), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map(l => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return { unreadable: l };
      }
    });
}

function cli(args: string[]) {
  return runBundle('cli', args, {
    cwd: base,
    env: { PATH: process.env.PATH ?? '', HOME: base, DEPLOYGUARD_SSH_KEY: host.privateKey }
  });
}

describe("the host's deployment record", () => {
  test('a good deploy appends one line with what, who, why, the run and the checks', async () => {
    const { result, lastDeployedCommit } = await deploy('v1', C1, undefined, 'first release');
    expect(result.status).toBe('deployed');
    expect(lastDeployedCommit).toBeUndefined();
    const [r] = records();
    expect(r).toMatchObject({
      v: 1,
      host: 'test-host',
      release: 'v1',
      commit: C1,
      ref: 'refs/heads/main',
      actor: 'octocat',
      runUrl: 'https://github.com/acme/shop/actions/runs/run-v1',
      status: 'deployed',
      reason: 'first release',
      environment: 'production'
    });
    expect(r!.checks).toEqual([expect.objectContaining({ name: 'health', ok: true, stage: 'post' })]);
    expect(Date.parse(r!.time as string)).toBeGreaterThan(Date.now() - 120_000);
    // Written under the lock: the lock is gone only after the record is there.
    expect(existsSync(join(target, '.deployguard', 'lock'))).toBe(false);
  }, 60_000);

  test('a rolled-back deploy is recorded as such and never becomes "the last successful deployment"', async () => {
    const bad = await deploy('v2', C2, 'unhealthy');
    expect(bad.result.status).toBe('rolled-back');
    expect(bad.lastDeployedCommit).toBe(C1);
    expect(bad.result.hosts[0]!.previousDeploy).toMatchObject({ release: 'v1', commit: C1 });
    expect(bad.result.hosts[0]!.keptAt).toBe(join(target, 'releases', 'v2'));
    expect(records().map(r => `${r.release as string}:${r.status as string}`)).toEqual([
      'v1:deployed',
      'v2:rolled-back'
    ]);
    expect(records()[1]!.checks).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'health', ok: false, stage: 'post' })])
    );
    expect(await get(`http://127.0.0.1:${appPort}/`)).toBe('v1');
  }, 90_000);

  test('a line cut short is skipped with a warning, kept as it was, and the next record starts on its own line', async () => {
    appendFileSync(jsonl(), '{"v":1,"time":"2026-11-26T12:00:00Z","release":"v9","sta');
    const before = readFileSync(jsonl(), 'utf8');
    const { result, log, lastDeployedCommit } = await deploy('v3', C3);
    expect(result.status).toBe('deployed');
    expect(lastDeployedCommit).toBe(C1);
    expect(log.join('\n')).toMatch(
      /deployments\.jsonl has 1 unreadable line\(s\), skipped: line 3: not valid JSON/
    );
    const after = readFileSync(jsonl(), 'utf8');
    // Append-only: the old bytes are untouched, the broken line ended, the new record after it.
    expect(after.startsWith(before)).toBe(true);
    expect(after.slice(before.length, before.length + 2)).toBe('\n{');
    expect(records().map(r => (r.unreadable ? 'broken' : r.release))).toEqual(['v1', 'v2', 'broken', 'v3']);
  }, 60_000);

  test('`deployguard history` lists the records newest first and reports the broken line', async () => {
    const cfg = join(base, 'deployguard.yml');
    writeFileSync(cfg, `version: 1\ntarget: { path: ${target} }\n`);
    const common = [
      '--config',
      cfg,
      '--host',
      host.host,
      '--port',
      String(host.port),
      '--user',
      host.user,
      '--host-name',
      'web-1',
      '--known-hosts',
      host.knownHostsLine
    ];
    const text = await cli(['history', ...common]);
    expect(text.code).toBe(0);
    const rows = text.stdout.trim().split('\n');
    expect(rows[0]).toBe('web-1: 3 deployment(s)');
    expect(rows.slice(2, 5).map(r => r.split(/\s+/)[2])).toEqual(['deployed', 'rolled-back', 'deployed']);
    expect(rows.slice(2, 5).map(r => r.split(/\s+/)[3])).toEqual(['v3', 'v2', 'v1']);
    expect(text.stdout).toMatch(/line 3 skipped: not valid JSON/);
    expect(text.stderr).toMatch(/web-1: deployments\.jsonl line 3 skipped/);

    const json = await cli(['history', ...common, '--json', '--limit', '2']);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as {
      hosts: { host: string; log: { entries: { release: string; line: number }[]; totalLines: number } }[];
    };
    expect(parsed.hosts[0]!.log.totalLines).toBe(4);
    expect(parsed.hosts[0]!.log.entries.map(e => [e.release, e.line])).toEqual([['v3', 4]]);
    // The key never shows, and a host that cannot be read fails the command, naming it.
    expect(json.stdout + json.stderr).not.toContain(host.privateKey.split('\n')[1]!);
    const down = await cli(['history', ...common.slice(0, 5), String(await freePort()), ...common.slice(6)]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/web-1: /);
  }, 60_000);
});

describe('a rollback with nothing to go back to', () => {
  test('writes no record under a release id that never existed, and changes nothing', async () => {
    // A host of its own with one good release: there is no earlier one to return to.
    const soloRun = await t.ownedDir(join(runDir, 'solo'));
    const soloTarget = join(soloRun, 'app');
    const soloPort = await freePort();
    const yaml = commandServiceYaml(soloPort, soloRun, '');
    const env = { GITHUB_SHA: C1, GITHUB_REPOSITORY: 'acme/shop', GITHUB_REF: 'refs/heads/main' };
    const soloLog = () => join(soloTarget, '.deployguard', 'deployments.jsonl');
    try {
      const first = await runDeploy(
        settingsFor(
          host,
          { artifact: await makeRelease('s1'), 'target-path': soloTarget, 'release-id': 's1' },
          yaml,
          env
        ),
        { log: memoryLogger() }
      );
      expect(first.status).toBe('deployed');
      const before = readFileSync(soloLog(), 'utf8');

      // No release id given: the settings carry a fresh one, which names nothing on the host.
      const settings = settingsFor(
        host,
        { artifact: await makeRelease('unused'), 'target-path': soloTarget },
        yaml,
        env
      );
      const log = memoryLogger();
      const r = await runDeploy(settings, { log }, { kind: 'rollback', to: 'previous' });
      expect(r.status).toBe('failed');
      expect(r.error).toMatch(/no earlier good release is recorded \(live: s1\)/);
      // Nothing changed, so nothing is added to the host's record.
      expect(readFileSync(soloLog(), 'utf8')).toBe(before);
      // The result and the log name no release that never existed.
      expect(r.releaseId).not.toBe(settings.releaseId);
      expect(JSON.stringify(r)).not.toContain(settings.releaseId);
      expect(log.lines.join('\n')).not.toContain(settings.releaseId);
      const md = renderRecord({ environment: 'production', result: r, run: settings.run });
      expect(md).not.toContain(settings.releaseId);
      expect(md).toMatch(/\| \*\*Release\*\* \| none: no release to go back to was found \(previous: `s1`\)/);
      expect(readlinkSync(join(soloTarget, 'current'))).toMatch(/s1$/);
      expect(existsSync(join(soloTarget, '.deployguard', 'lock'))).toBe(false);
    } finally {
      killPidfile(join(soloRun, 'app.pid'));
    }
  }, 90_000);
});

describe('the files the CLI writes (SARIF, record) on a machine shared with other users', () => {
  test('go to a new private directory: symlinks planted where they used to go are neither followed nor overwritten, and every file is created with O_EXCL|O_NOFOLLOW, mode 0600', async () => {
    // A temp directory anyone may write to, as /tmp is; another user has prepared the fixed
    // folder deployguard used to write in, with its file names pointing at files of the victim.
    const shared = await mkdtemp(join(tmpdir(), 'dg-shared-tmp-'));
    await chmod(shared, 0o1777);
    const planted = join(shared, 'deployguard');
    await mkdir(planted);
    await chmod(planted, 0o777);
    const victims = [join(base, 'victim-a'), join(base, 'victim-b')];
    for (const v of victims) writeFileSync(v, 'precious\n');
    await symlink(victims[0]!, join(planted, 'deployguard-gitleaks.sarif'));
    await symlink(victims[1]!, join(planted, 'deployguard-record-production-v9.md'));
    const cfg = join(base, 'shared-tmp.yml');
    writeFileSync(cfg, commandServiceYaml(appPort, runDir, `target: { path: ${target} }`));
    const trace = join(base, 'open.trace');
    try {
      const common = [
        ...['--config', cfg, '--host', host.host, '--port', String(host.port), '--user', host.user],
        ...['--host-name', 'web-1', '--known-hosts', host.knownHostsLine, '--lock-wait', '0s']
      ];
      const env = {
        // gitleaks (the WebAssembly build) from node_modules/.bin.
        PATH: `${join(process.cwd(), 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
        HOME: base,
        TMPDIR: shared,
        DEPLOYGUARD_SSH_KEY: host.privateKey
      };
      const r = await runBundle(
        'cli',
        [
          'deploy',
          ...common,
          ...['--artifact', await makeRelease('v9'), '--release-id', 'v9', '--scan', 'artifact'],
          ...['--record', join(base, 'record-v9.md')]
        ],
        { cwd: base, prefix: ['strace', '-f', '-qq', '-e', 'trace=open,openat,creat', '-o', trace], env }
      );
      expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
      expect(r.stderr).toMatch(/no secrets found/);
      // Nothing went through the planted links: the victims are as they were, the links too.
      for (const v of victims) expect(readFileSync(v, 'utf8')).toBe('precious\n');
      expect(readdirSync(planted).sort()).toEqual([
        'deployguard-gitleaks.sarif',
        'deployguard-record-production-v9.md'
      ]);
      for (const name of readdirSync(planted))
        expect(lstatSync(join(planted, name)).isSymbolicLink()).toBe(true);
      // The files are in one new directory only this user can enter.
      const mine = readdirSync(shared).filter(n => /^deployguard-(?!gitleaks-)[A-Za-z0-9]{6}$/.test(n));
      expect(mine).toHaveLength(1);
      const dir = join(shared, mine[0]!);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      expect(readdirSync(dir).sort()).toEqual([
        'deployguard-gitleaks.sarif',
        'deployguard-record-production-v9.md'
      ]);
      for (const name of readdirSync(dir)) expect(statSync(join(dir, name)).mode & 0o777).toBe(0o600);
      expect(readFileSync(join(dir, 'deployguard-record-production-v9.md'), 'utf8')).toBe(
        readFileSync(join(base, 'record-v9.md'), 'utf8')
      );
      // How they were opened, as the kernel saw it.
      const opens = readFileSync(trace, 'utf8')
        .split('\n')
        .filter(l => l.includes(`"${dir}/`) && /O_CREAT|O_WRONLY|O_RDWR/.test(l));
      expect(opens).toHaveLength(2);
      for (const l of opens) expect(l).toMatch(/O_WRONLY\|O_CREAT\|O_EXCL\|O_NOFOLLOW[|A-Z_]*, 0600/);
      expect(readFileSync(trace, 'utf8')).not.toContain(`"${planted}/`);
      // A run that writes no file (no secret scan, no --record) leaves no directory behind.
      const quiet = join(base, 'no-scan.yml');
      writeFileSync(
        quiet,
        commandServiceYaml(appPort, runDir, `target: { path: ${target} }`, {
          preDeploy: '{ gitleaks: false }'
        })
      );
      const plain = await runBundle(
        'cli',
        [
          'deploy',
          ...common.slice(2),
          '--config',
          quiet,
          '--artifact',
          await makeRelease('v10'),
          '--release-id',
          'v10'
        ],
        { cwd: base, env }
      );
      expect({ code: plain.code, stderr: plain.stderr }).toMatchObject({ code: 0 });
      expect(readdirSync(shared).filter(n => n.startsWith('deployguard-'))).toEqual(mine);
    } finally {
      await rm(shared, { recursive: true, force: true });
    }
  }, 120_000);
});
