/**
 * The preflight and honest status over a real sshd on loopback (an unprivileged deploy user, a
 * `command` service with a pidfile): a host in order, a login that fails, a target the user
 * cannot write, and a stop that fails while the service keeps running.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { main } from '../../src/cli.js';
import { join } from 'node:path';
import { memoryLogger } from '../../src/io/log.js';
import { renderPreflight, runPreflight } from '../../src/preflight.js';
import { verdictLine } from '../../src/report/summary.js';
import {
  commandServiceYaml,
  deployQuiet,
  freePort,
  get,
  makeRelease,
  settingsFor
} from '../helpers/deploy.js';
import { startTestHost, type TestHost } from '../helpers/test-host.js';

let t: TestHost;

const yaml = (extra = '') => commandServiceYaml(t.appPort, t.runDir, extra);
const settings = async (version: string, opts: { extra?: string; target?: string; port?: number } = {}) =>
  settingsFor(
    { ...t.host, port: opts.port ?? t.host.port },
    { artifact: await makeRelease(version), 'release-id': version, 'target-path': opts.target ?? t.target },
    yaml(opts.extra)
  );

beforeAll(async () => {
  t = await startTestHost({ prefix: 'preflight' });
}, 30_000);

afterAll(async () => {
  await t?.stop();
});

describe('preflight on a plain sshd host', () => {
  test('a host in order: every check passes, and the text says it is ready', async () => {
    const s = await settings('p1');
    const report = await runPreflight(s, memoryLogger(), {
      artifact: { root: '', isFile: false, entries: [], fileCount: 2, totalBytes: 4096 }
    });
    expect(report.ok).toBe(true);
    expect(report.hosts[0]!.findings.map(f => `${f.check}:${f.level}`)).toEqual([
      'login:ok',
      'tools:ok',
      'write:ok',
      'disk:ok'
    ]);
    expect(renderPreflight(report)).toMatch(/^test-host: ready\n {2}✓ login: logged in as /);
  }, 30_000);

  test('a login that fails: named with the host, and nothing else is judged', async () => {
    const closed = await freePort();
    const report = await runPreflight(
      await settings('p1', { port: closed, extra: 'ssh: { connect-retries: 0 }' }),
      memoryLogger()
    );
    expect(report.ok).toBe(false);
    expect(report.hosts[0]!.findings).toEqual([
      {
        check: 'login',
        level: 'fail',
        message: expect.stringContaining(`could not log in as ${t.host.user}@127.0.0.1:${closed}`)
      }
    ]);
  }, 30_000);

  test('a target the deploy user cannot write: refused with the command that fixes it', async () => {
    const locked = join(t.work, 'root-owned');
    mkdirSync(locked, { mode: 0o755 });
    const target = join(locked, 'app');
    const s = await settings('p1', { target });
    const report = await runPreflight(s, memoryLogger());
    expect(report.hosts[0]!.findings.find(f => f.check === 'write')).toEqual({
      check: 'write',
      level: 'fail',
      message: `${t.host.user} cannot write ${locked}, where the deploy creates its releases, state and lock`,
      fix: `as root: install -d -o ${t.host.user} -g ${t.host.user} ${target} (or chown -R ${t.host.user}: the existing directories)`
    });
  }, 30_000);
});

describe('`deployguard preflight` on the command line', () => {
  async function cli(target: string): Promise<{ code: number; out: string }> {
    const dir = mkdtempSync(join(t.work, 'cli-'));
    writeFileSync(join(dir, 'deployguard.yml'), yaml());
    writeFileSync(join(dir, 'key'), t.host.privateKey, { mode: 0o600 });
    let out = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        out += chunk.toString();
        done();
      }
    });
    const code = await main(
      [
        'preflight',
        '--config',
        join(dir, 'deployguard.yml'),
        '--ssh-key-file',
        join(dir, 'key'),
        '--host',
        t.host.host,
        '--port',
        String(t.host.port),
        '--user',
        t.host.user,
        '--known-hosts',
        t.host.knownHostsLine,
        '--target-path',
        target,
        '--artifact',
        await makeRelease('c1')
      ],
      sink,
      sink
    );
    return { code, out };
  }

  test('exit 0 and "ready" for a host in order; exit 1 with the fix for one that is not', async () => {
    const ok = await cli(t.target);
    expect(ok).toMatchObject({ code: 0, out: expect.stringMatching(/^127\.0\.0\.1: ready$/m) });
    expect(ok.out).toMatch(/✓ disk: /);
    const locked = join(t.work, 'root-owned-cli');
    mkdirSync(locked, { mode: 0o755 });
    const bad = await cli(join(locked, 'app'));
    expect(bad.code).toBe(1);
    expect(bad.out).toContain(`as root: install -d -o ${t.host.user}`);
    // Nothing was created on the host by either run.
    expect(existsSync(join(locked, 'app'))).toBe(false);
  }, 60_000);
});

describe('honest status on a plain sshd host', () => {
  test('a stop command that fails while the service keeps running: failed, nothing changed', async () => {
    const first = await deployQuiet(await settings('s1'));
    expect({ status: first.result.status, error: first.result.error }).toEqual({
      status: 'deployed',
      error: undefined
    });
    // The same service, with a stop command that fails and leaves the app running.
    const s = settingsFor(
      t.host,
      { artifact: await makeRelease('s2'), 'release-id': 's2', 'target-path': t.target },
      yaml().replace('  manager: command\n', "  manager: command\n  stop: 'echo cannot stop >&2; exit 3'\n")
    );
    const { result } = await deployQuiet(s);
    expect(result.status).toBe('failed');
    expect(result.hosts[0]!.outcome).toBe('failed');
    expect(verdictLine(result)).toBe(
      'deployguard: failed: nothing changed (test-host: nothing changed, s1 still live)'
    );
    expect(result.hosts[0]!.steps.filter(x => x.undo).map(x => x.id)).toEqual(['mark-failed', 'unstage']);
    expect(readlinkSync(join(t.target, 'current'))).toBe(join(t.target, 'releases', 's1'));
    expect(await get(`http://127.0.0.1:${t.appPort}/`)).toBe('s1');
    const last = JSON.parse(
      readFileSync(join(t.target, '.deployguard', 'deployments.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .at(-1)!
    ) as { status: string; previous?: string };
    expect(last).toMatchObject({ status: 'failed', previous: 's1' });
  }, 60_000);
});
