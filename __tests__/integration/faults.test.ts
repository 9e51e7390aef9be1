/**
 * Faults injected for real: a TCP proxy between deployguard and a real sshd cuts the connection at
 * a random byte of a deploy (upload, verification, stop, switch, start, checks, rollback, record,
 * unlock: whatever was crossing the wire at that byte). After every trial the host must serve a
 * complete, verified release (its kept manifest checks out), the service must answer with that
 * release's version, no lock may be left behind, and the next deploy must succeed.
 *
 * The figures (trials, cuts that landed, where they landed) are printed at the end and quoted in
 * RELIABILITY.md. FAULT_TRIALS overrides the number of trials (at least 50 by default).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Sandbox } from '../../src/demo/sandbox.js';
import { runDeploy } from '../../src/deploy.js';
import { memoryLogger, type Logger } from '../../src/io/log.js';
import type { DeployResult } from '../../src/execute/result.js';
import { startCutProxy, type CutProxy } from '../harness/cut-proxy.js';
import { commandServiceYaml, get, makeRelease, settingsFor } from '../helpers/deploy.js';
import { startTestHost, type TestHost } from '../helpers/test-host.js';

const TRIALS = Number(process.env.FAULT_TRIALS ?? 54);

let t: TestHost;
let host: Sandbox;
let proxy: CutProxy;
let runDir: string;
let target: string;
let appPort: number;
let yaml: string;

beforeAll(async () => {
  t = await startTestHost({ prefix: 'faults' });
  ({ host, runDir, target, appPort } = t);
  proxy = await startCutProxy(host.port);
  yaml = commandServiceYaml(appPort, runDir);
}, 30_000);

afterAll(async () => {
  await proxy?.close();
  await t?.stop();
});

/** A logger that cuts the link `delayMs` after the first line matching `when` (a step done, a group begun). */
function cutting(when: RegExp | undefined, delayMs: number): Logger & { readonly lines: string[] } {
  const inner = memoryLogger();
  let fired = false;
  const watch = (line: string) => {
    if (!when || fired || !when.test(line)) return;
    fired = true;
    setTimeout(() => proxy.cutNow(), delayMs);
  };
  return {
    lines: inner.lines,
    info: m => (inner.info(m), watch(m)),
    warn: m => (inner.warn(m), watch(m)),
    error: m => (inner.error(m), watch(m)),
    debug: m => inner.debug(m),
    group: (title, fn) => {
      watch(`## ${title}`);
      return inner.group(title, fn);
    }
  };
}

/** Deploys through the proxy: the known-hosts pin names the proxy's port, as a real jump would. */
async function deploy(
  release: string,
  fault?: string,
  cutWhen?: { when: RegExp; delayMs: number }
): Promise<{ result: DeployResult; log: string[] }> {
  const artifact = await makeRelease(release, fault);
  const via = {
    ...host,
    port: proxy.port,
    knownHostsLine: host.knownHostsLine.replace(`]:${host.port} `, `]:${proxy.port} `)
  };
  const log = cutting(cutWhen?.when, cutWhen?.delayMs ?? 0);
  const settings = settingsFor(
    via,
    { artifact, 'target-path': target, 'release-id': release, 'connect-timeout': '5s' },
    yaml
  );
  const result = await runDeploy(settings, { log });
  return { result, log: log.lines };
}

/** Cuts right after a step is done (0 ms: before the next command leaves; later: while it runs). */
const TARGETS: readonly { name: string; when: RegExp; faulty?: boolean }[] = [
  { name: 'during the upload', when: /✓ Prepare a staging directory/ },
  { name: 'during verification', when: /✓ Upload the artifact/ },
  { name: 'between verification and promotion', when: /✓ Verify the SHA-256/ },
  { name: 'between stop and switch', when: /✓ Stop the service/ },
  { name: 'between switch and start', when: /✓ Switch current to/ },
  { name: 'while the new release starts', when: /✓ Start the service/ },
  { name: 'as the rollback begins', when: /^## .*roll back/, faulty: true },
  { name: 'during the rollback', when: /✓ Switch current back/, faulty: true },
  // The release marked good, the record and the unlock go in one script: cut while it runs.
  { name: 'while marking good, recording and unlocking', when: /^## .*: finish$/ }
];
const DELAYS = [0, 15, 40];

/** What the host serves: the release `current` names, checked file by file against its kept manifest. */
function served(): { release: string; answer: string } {
  const release = readlinkSync(join(target, 'current')).split('/').pop()!;
  const manifest = join(target, '.deployguard', 'manifests', `${release}.sha256`);
  // Throws (failing the trial) when a file is missing, extra or changed.
  execFileSync('sha256sum', ['-c', '--strict', '--quiet', manifest], {
    cwd: join(target, 'releases', release)
  });
  const version = readFileSync(join(target, 'releases', release, 'VERSION'), 'utf8').trim();
  return { release, answer: version };
}

async function answer(): Promise<string> {
  return (await get(`http://127.0.0.1:${appPort}/`)).trim();
}

describe('connections cut at random points of a deploy', () => {
  test(`${TRIALS} trials: the host always serves a complete, verified release, unlocked, and the next deploy succeeds`, async () => {
    // The baseline, and how many bytes a good and a failing deploy take.
    proxy.reset();
    expect((await deploy('base')).result.status).toBe('deployed');
    proxy.reset();
    expect((await deploy('calib-good')).result.status).toBe('deployed');
    const goodBytes = proxy.connections[0]!;
    proxy.reset();
    expect((await deploy('calib-bad', 'unhealthy')).result.status).toBe('rolled-back');
    const badBytes = proxy.connections[0]!;
    expect(goodBytes).toBeGreaterThan(10_000);

    // A seeded generator: the same cut points on every run, so a failure can be replayed.
    let seed = 0x5eed;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const outcomes = new Map<string, number>();
    const failedSteps = new Map<string, number>();
    let landed = 0;
    // First every named point at every delay, then cuts at random bytes for the rest.
    const targeted = TARGETS.flatMap(t => DELAYS.map(delayMs => ({ ...t, delayMs })));
    for (let i = 0; i < TRIALS; i++) {
      const aimed = targeted[i];
      // Every third random trial ships a broken release, so its cuts also land in the rollback.
      const faulty = aimed ? aimed.faulty === true : i % 3 === 2;
      const bytes = Math.floor((0.01 + 0.98 * random()) * (faulty ? badBytes : goodBytes));
      const release = `t${i}`;
      const cutsBefore = proxy.cuts.length;
      if (!aimed) proxy.arm(bytes);
      const { result } = await deploy(
        release,
        faulty ? 'unhealthy' : undefined,
        aimed ? { when: aimed.when, delayMs: aimed.delayMs } : undefined
      );
      const cut = proxy.cuts.length > cutsBefore;
      if (cut) landed++;
      outcomes.set(result.status, (outcomes.get(result.status) ?? 0) + 1);
      const step = result.hosts[0]?.steps.find(s => !s.ok)?.id ?? '(none failed)';
      failedSteps.set(step, (failedSteps.get(step) ?? 0) + 1);

      const where = aimed ? `${aimed.name} +${aimed.delayMs} ms` : `at byte ${bytes}`;
      const context = `trial ${i} (cut ${where}, ${faulty ? 'broken' : 'good'} release, ${result.status}, first failed step ${step})`;
      if (aimed) expect({ context, cut }).toEqual({ context, cut: true });
      const now = served();
      expect({ context, answer: await answer() }).toEqual({ context, answer: now.answer });
      // A good release that went live stays; anything else leaves the previous one serving.
      if (faulty) expect({ context, release: now.release }).not.toEqual({ context, release });
      expect({ context, lock: existsSync(join(target, '.deployguard', 'lock')) }).toEqual({
        context,
        lock: false
      });
      // Recorded once at most, even when the answer of the script that appended it was lost.
      const records = readFileSync(join(target, '.deployguard', 'deployments.jsonl'), 'utf8')
        .split('\n')
        .filter(l => l.includes(`"release":"${release}"`));
      expect({ context, records: records.length <= 1 }).toEqual({ context, records: true });

      const next = await deploy(`n${i}`);
      expect({ context, next: next.result.status }).toEqual({ context, next: 'deployed' });
      expect({ context, answer: await answer() }).toEqual({ context, answer: `n${i}` });
    }
    // Most armed cuts must really have landed inside a deploy, or the test proves nothing.
    expect(landed).toBeGreaterThanOrEqual(Math.floor(TRIALS * 0.9));
    console.log(
      `fault injection: ${TRIALS} trials, ${landed} connections cut, ${TRIALS} recoveries; outcomes ${JSON.stringify(Object.fromEntries(outcomes))}; first failed step ${JSON.stringify(Object.fromEntries(failedSteps))}`
    );
  }, 900_000);
});
