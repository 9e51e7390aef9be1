/**
 * deploy() against a scripted fake shell: the rollback paths, step by step, without a host. Each
 * rule answers the remote scripts that match it; everything sent is kept in order, so a test
 * asserts exactly what a host would have been told to do, and in which order. Real hosts run the
 * same paths in the integration tests; these pin down the order and the verdicts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { CheckResult, HostContext } from '../../src/checks/types.js';
import { deploy } from '../../src/execute/execute.js';
import type { DeployDeps } from '../../src/execute/session.js';
import { memoryLogger } from '../../src/io/log.js';
import type { ExecOptions, RemoteShell } from '../../src/io/ssh.js';
import type { Shell } from '../../src/remote/shell.js';
import { PROBE_MARK, STEP_MARK } from '../../src/remote/commands.js';
import type { Settings } from '../../src/settings/types.js';
import { scanArtifact, type Artifact } from '../../src/transfer/artifact.js';
import { BASE_INPUTS, settingsFrom } from '../helpers/settings.js';

interface Rule {
  readonly match: RegExp;
  /** Answers this many times (default: always), then the next matching rule answers. */
  times?: number;
  readonly code?: number;
  readonly stdout?: string;
  readonly stderr?: string;
  /** The link drops while this script runs: the exec fails with no answer. */
  readonly drops?: boolean;
}

/** The preflight's facts and the host state of a host running release r1 (blue live, for blue-green). */
const PROBE =
  'unit-LoadState=loaded\nunit-WorkingDirectory=/srv/app/current\nunit-ActiveState=active\n' +
  'proxy-nginx=yes\nproxy-include=yes\ndisk-free-kb=10000000\ncolour=blue\n' +
  'current=/srv/app/releases/r1\nlines=0\n';

class FakeShell implements RemoteShell {
  readonly alias = 'fake';
  readonly alive = true;
  readonly sent: string[] = [];
  constructor(private readonly rules: Rule[]) {}
  async exec(script: Shell, opts: ExecOptions = {}) {
    const text = script.text;
    if (typeof opts.stdin === 'function') {
      const sink = new Writable({ write: (_chunk, _enc, cb) => cb() });
      await opts.stdin(sink);
    }
    // Several steps in one script (a step group, the lock with the probe): each part is answered
    // by the rules as the script it would have been on its own, and kept as such in `sent`.
    if (text.startsWith('dg_mark() {')) return this.group(text);
    const probe = text.indexOf(`\necho ${PROBE_MARK}\n`);
    const open = text.indexOf('\n(\n');
    if (text.startsWith('IFS= read -r go') && open > 0 && probe > open) {
      const lock = this.answer(text.slice(open + 3, probe - 2));
      if (lock.code !== 0) return lock;
      const inner = /\(\nset -e\n([\s\S]*)\n\)\nrc=\$\?/.exec(text.slice(probe))![1]!;
      const read = this.answer(inner);
      return { ...lock, stdout: `${lock.stdout}${PROBE_MARK}\n${read.stdout}\nprobe-rc=${read.code}\n` };
    }
    return this.answer(text);
  }
  private answer(text: string) {
    this.sent.push(text);
    const rule = this.rules.find(r => r.match.test(text) && (r.times === undefined || r.times > 0));
    if (rule?.times !== undefined) rule.times--;
    if (rule?.drops) throw new Error('the connection dropped');
    return { code: rule?.code ?? 0, stdout: rule?.stdout ?? '', stderr: rule?.stderr ?? '' };
  }
  private group(text: string) {
    const member = new RegExp(`^\\(\\n([\\s\\S]*?)\\n\\)\\ndg_mark (\\d+)$`, 'gm');
    let stdout = '';
    for (const m of text.matchAll(member)) {
      const r = this.answer(m[1]!);
      stdout += r.stdout;
      if (r.code !== 0) return { ...r, stdout };
      stdout += `${STEP_MARK} ${m[2]} 0\n`;
    }
    return { code: 0, stdout, stderr: '' };
  }
  close(): void {}
  /** Index of the first script sent after `from` that matches. */
  index(match: RegExp, from = 0): number {
    const i = this.sent.slice(from).findIndex(t => match.test(t));
    return i < 0 ? -1 : i + from;
  }
}

const BASE_RULES = (): Rule[] => [
  { match: /mkdir -- \/srv\/app\/\.deployguard\/lock 2>/, stdout: 'acquired\n' },
  { match: /^if \[ -L \/srv\/app\/current \]|lines=%s/m, stdout: PROBE },
  { match: /printf 'current=%s/, stdout: PROBE },
  {
    match: /-p MainPID/,
    stdout: 'ActiveState=active\nSubState=running\nMainPID=42\nNRestarts=0\nPidAlive=yes\n'
  }
];

let dir: string;
let artifact: Artifact;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dg-exec-'));
  writeFileSync(join(dir, 'server.js'), 'console.log(1)\n');
  artifact = await scanArtifact(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ok = (name: string): CheckResult => ({
  name,
  stage: 'post',
  ok: true,
  attempts: 1,
  durationMs: 1,
  reason: 'fine'
});
const bad = (name: string): CheckResult => ({ ...ok(name), ok: false, reason: 'HTTP 500' });

function run(
  settings: Settings,
  shell: FakeShell,
  checks: (stage: string, hosts: readonly HostContext[], n: number) => CheckResult[] = () => []
) {
  let n = 0;
  const seen: { stage: string; hosts: readonly HostContext[]; eachHostOnly?: boolean }[] = [];
  const deps: DeployDeps = {
    log: memoryLogger(),
    connect: async () => shell,
    runChecks: async (stage, hosts, release) => {
      seen.push({ stage, hosts, eachHostOnly: release.eachHostOnly });
      return checks(stage, hosts, n++);
    },
    now: () => new Date(),
    sleep: async () => undefined
  };
  return { result: deploy(settings, artifact, deps), seen };
}

const restartSettings = () =>
  settingsFrom(
    { ...BASE_INPUTS, artifact: 'unused', 'release-id': 'r2', 'service-name': 'shop' },
    'version: 1\npre-deploy: { gitleaks: false }\npost-deploy: { stability-window: 0s }'
  );

describe('switch: restart', () => {
  test('a service that does not start is undone in reverse: stop it, switch back, start the old one, mark it failed', async () => {
    const shell = new FakeShell([
      { match: /systemctl start -- shop$/, times: 1, code: 1, stderr: 'Job failed' },
      ...BASE_RULES()
    ]);
    const { result } = run(restartSettings(), shell);
    const r = await result;
    expect(r.status).toBe('rolled-back');
    expect(r.rolledBack).toBe(true);
    const start = shell.index(/^systemctl start -- shop$/);
    const stopNew = shell.index(/^systemctl stop -- shop$/, start + 1);
    const back = shell.index(/releases\/r1 \/srv\/app\/current\.tmp-rollback-r2/, start + 1);
    const startOld = shell.index(/^systemctl start -- shop$/, back + 1);
    const failed = shell.index(
      /printf '%s %s %s\\n' failed .* \/srv\/app\/\.deployguard\/status\/r2/,
      start + 1
    );
    expect([start, stopNew, back, startOld, failed].every(i => i > 0)).toBe(true);
    expect(start < stopNew && stopNew < back && back < startOld && startOld < failed).toBe(true);
    // The lock is released last of all.
    expect(shell.index(/\/srv\/app\/\.deployguard\/lock\/owner .*; then rm -rf/)).toBeGreaterThan(failed);
  });

  test('the link dropping under a group of steps undoes every step of it that may have run, in reverse', async () => {
    const shell = new FakeShell([
      { match: /^systemctl stop -- shop$/, times: 1, drops: true },
      ...BASE_RULES()
    ]);
    const r = await run(restartSettings(), shell).result;
    expect(r.status).toBe('rolled-back');
    const host = r.hosts[0]!;
    expect(host.steps.filter(x => !x.undo).map(x => [x.id, x.ok])).toEqual([
      ['lock', true],
      ['probe', true],
      ['stage', true],
      ['upload', true],
      // verify, promote, stop, switch and start went as one script and no mark came back: the
      // group's first step is recorded failed, and any of the others may have run.
      ['verify', false]
    ]);
    expect(host.steps.filter(x => x.undo).map(x => x.id)).toEqual([
      'stop-new',
      'switch-back',
      'restart-old',
      'mark-failed',
      'unstage',
      'verify-rollback'
    ]);
  });

  test('an undo step that fails ends rollback-failed, with the remaining steps to run by hand', async () => {
    const shell = new FakeShell([
      { match: /systemctl start -- shop$/, times: 1, code: 1 },
      { match: /tmp-rollback-r2/, code: 1, stderr: 'mv: cannot move' },
      ...BASE_RULES()
    ]);
    const r = await run(restartSettings(), shell).result;
    expect(r.status).toBe('rollback-failed');
    const host = r.hosts[0]!;
    expect(host.outcome).toBe('rollback-failed');
    // What is left: the switch back itself, then starting the old release, then marking r2 failed.
    expect(host.recovery).toMatch(
      /# Switch current back to r1[\s\S]*# Start the service again[\s\S]*# Mark release r2 failed/
    );
    expect(host.recovery).toContain("sh -c 'set -eu");
  });

  test('a deploy that died after its switch is switched back to the newest good release by the next deploy', async () => {
    const shell = new FakeShell([
      {
        match: /mkdir -- \/srv\/app\/\.deployguard\/lock 2>/,
        times: 1,
        stdout: 'taken-over\nage=999\n{"release":"r3","token":"dead"}\n'
      },
      { match: /readlink -- \/srv\/app\/current \|\| echo live/, stdout: '/srv/app/releases/r3\n' },
      {
        // Listed out of order; r2 is the newest good one (r0 has the same time as r1 and a smaller id).
        match: /^cd -- \/srv\/app\/releases 2>\/dev\/null/,
        stdout:
          'r2\tgood 2026-12-02T00:00:00Z\nr3\tunknown\nr1\tgood 2026-12-01T00:00:00Z\nr0\tgood 2026-12-01T00:00:00Z\n'
      },
      ...BASE_RULES()
    ]);
    const s = settingsFrom(
      { ...BASE_INPUTS, artifact: 'unused', 'release-id': 'r4', 'service-name': 'shop' },
      'version: 1\npre-deploy: { gitleaks: false }\npost-deploy: { stability-window: 0s }'
    );
    const r = await run(s, shell).result;
    const back = shell.index(/ln -sfn -- \/srv\/app\/releases\/r2 \/srv\/app\/current\.tmp-recover-r3/);
    const failed = shell.index(/failed .* \/srv\/app\/\.deployguard\/status\/r3/, back + 1);
    expect(back).toBeGreaterThan(0);
    expect(failed).toBeGreaterThan(back);
    expect(shell.index(/ln -sfn -- \/srv\/app\/releases\/r[01] \/srv\/app\/current\.tmp-recover/)).toBe(-1);
    expect(r.hosts[0]!.steps.find(x => x.id === 'recover')).toMatchObject({ ok: true });
  });

  test('a failure before the service is touched changes nothing live: failed, not rolled back', async () => {
    const shell = new FakeShell([
      { match: /^sh -ec .*|cd -- \/srv\/app\/releases\/r2\nexport/, code: 2 },
      ...BASE_RULES()
    ]);
    const s = settingsFrom(
      {
        ...BASE_INPUTS,
        artifact: 'unused',
        'release-id': 'r2',
        'service-name': 'shop',
        'before-switch': 'false'
      },
      'version: 1\npre-deploy: { gitleaks: false }'
    );
    const r = await run(s, shell).result;
    expect(r.status).toBe('failed');
    expect(r.rolledBack).toBe(false);
    expect(shell.index(/^systemctl stop -- shop$/)).toBe(-1);
    expect(r.hosts[0]!.steps.filter(x => x.undo).map(x => x.id)).toEqual(['mark-failed', 'unstage']);
  });
});

const BG_YAML = [
  'version: 1',
  'pre-deploy: { gitleaks: false }',
  'post-deploy: { stability-window: 0s }',
  'service: { manager: systemd, name: shop, switch: blue-green, blue-green: { ports: { blue: 8001, green: 8002 }, drain: 1s } }',
  'checks:',
  '  - { name: colour, type: http, url: "http://127.0.0.1:{port}/health", stages: [post] }',
  '  - { name: public, type: http, url: "https://shop.example.com/", stages: [post] }'
].join('\n');

describe('switch: blue-green', () => {
  const bgSettings = () => settingsFrom({ ...BASE_INPUTS, artifact: 'unused', 'release-id': 'r2' }, BG_YAML);

  test('checks failing through the proxy flip back to blue, which never stopped; green is stopped', async () => {
    const shell = new FakeShell(BASE_RULES());
    const { result, seen } = run(bgSettings(), shell, (stage, _h, n) =>
      stage === 'post' && n === 1 ? [ok('colour'), bad('public')] : [ok('colour')]
    );
    const r = await result;
    expect(r.status).toBe('rolled-back');
    const flip = shell.index(/# deployguard live=green release=r2/);
    const back = shell.index(
      /^systemctl start -- shop@blue\n[\s\S]*# deployguard live=blue release=r1/m,
      flip + 1
    );
    const stopGreen = shell.index(/shutting down[\s\S]*\nsystemctl stop -- shop@green$/, back + 1);
    expect([flip, back, stopGreen].every(i => i > 0)).toBe(true);
    expect(flip < back && back < stopGreen).toBe(true);
    // The drain never ran: blue was never stopped.
    expect(shell.index(/^systemctl stop -- shop@blue$/m)).toBe(-1);
    // Before the flip only the colour's checks ran, on green; the rollback is judged on blue.
    expect(seen.map(c => [c.stage, c.eachHostOnly ?? false, c.hosts[0]?.port, c.hosts[0]?.service])).toEqual([
      ['post', true, 8002, expect.objectContaining({ name: 'shop@green' })],
      ['post', false, 8002, expect.objectContaining({ name: 'shop@green' })],
      ['rollback', false, 8001, expect.objectContaining({ name: 'shop@blue' })]
    ]);
  });

  test('green failing its own checks never gets traffic: no flip, green stopped, nothing live changed', async () => {
    const shell = new FakeShell(BASE_RULES());
    const r = await run(bgSettings(), shell, () => [bad('colour')]).result;
    expect(r.status).toBe('failed');
    expect(r.rolledBack).toBe(false);
    expect(shell.index(/# deployguard live=\w+ release=/)).toBe(-1);
    expect(shell.index(/shutting down[\s\S]*\nsystemctl stop -- shop@green$/)).toBeGreaterThan(
      shell.index(/systemctl restart -- shop@green/)
    );
  });

  test('a healthy release drains blue after the flip, then marks r2 good', async () => {
    const shell = new FakeShell(BASE_RULES());
    const r = await run(bgSettings(), shell, () => [ok('colour')]).result;
    expect(r.status).toBe('deployed');
    const flip = shell.index(/# deployguard live=green release=r2/);
    const drain = shell.index(/^sleep 1\.000\nsystemctl stop -- shop@blue$/, flip + 1);
    const good = shell.index(/good .* \/srv\/app\/\.deployguard\/status\/r2/, drain + 1);
    expect(flip > 0 && drain > flip && good > drain).toBe(true);
  });

  test('a deploy that died after its flip is flipped back to the good colour by the next deploy, first thing', async () => {
    const shell = new FakeShell([
      {
        match: /mkdir -- \/srv\/app\/\.deployguard\/lock 2>/,
        times: 1,
        stdout: 'taken-over\nage=999\n{"release":"r2","token":"dead"}\n'
      },
      { match: /^if \[ -f \/srv\/app\/upstream\.conf \]; then sed/, times: 1, stdout: 'colour=green\n' },
      { match: /readlink -- \/srv\/app\/current \|\| echo live/, stdout: '/srv/app/releases/r2\n' },
      {
        match: /^cd -- \/srv\/app\/releases 2>\/dev\/null/,
        stdout: 'r1\tgood 2026-12-01T00:00:00Z\nr2\tunknown\n'
      },
      { match: /^readlink -- \/srv\/app\/blue$/, stdout: '/srv/app/releases/r1\n' },
      ...BASE_RULES()
    ]);
    const s = settingsFrom({ ...BASE_INPUTS, artifact: 'unused', 'release-id': 'r3' }, BG_YAML);
    const r = await run(s, shell, () => [ok('colour')]).result;
    const back = shell.index(/^systemctl start -- shop@blue\n[\s\S]*# deployguard live=blue release=r1/m);
    const failed = shell.index(/failed .* \/srv\/app\/\.deployguard\/status\/r2/, back + 1);
    // The recovery comes before this deploy reads the host or changes anything: the read that came
    // with the lock saw the host before the recovery, so the host is read again after it.
    const probe = shell.index(/printf 'current=%s/, failed + 1);
    expect(back).toBeGreaterThan(0);
    expect(back < failed && failed < probe).toBe(true);
    expect(r.hosts[0]!.steps.find(x => x.id === 'recover')).toMatchObject({ ok: true });
  });
});
