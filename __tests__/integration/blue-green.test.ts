/**
 * Blue-green deploys on a real Debian host: systemd runs the template unit's two instances, a real
 * nginx proxies to whichever colour the upstream file names. While deploys run, a poller asks the
 * proxy over and over; a release that fails must never answer it for longer than the flip back.
 */
import { dryRun } from '../../src/deploy.js';
import { memoryLogger } from '../../src/io/log.js';
import { runPreflight } from '../../src/preflight.js';
import type { StepRecord } from '../../src/execute/result.js';
import { startTestHost, type SystemdTestHost } from '../helpers/test-host.js';
import type { SystemdHost } from '../harness/hosts.js';
import { installBlueGreen, type BlueGreenHost } from '../helpers/blue-green.js';
import { deployQuiet, freePort, get, makeRelease, settingsFor } from '../helpers/deploy.js';

let host: SystemdHost;
let bg: BlueGreenHost;
let ports: { blue: number; green: number };
let proxyPort: number;
const TARGET = '/srv/app';
const UNIT = 'app';

async function must(cmd: string): Promise<string> {
  const r = await host.exec(cmd);
  if (r.code !== 0) throw new Error(`${cmd} -> exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

/** The config of the README's blue-green example; `extraChecks` are appended to its checks. */
const yaml = (extraChecks: readonly string[] = []) =>
  [
    'version: 1',
    `target: { path: ${TARGET} }`,
    'service:',
    '  manager: systemd',
    `  name: ${UNIT}`,
    '  sudo: false',
    '  settle: 1s',
    '  switch: blue-green',
    '  blue-green:',
    `    ports: { blue: ${ports.blue}, green: ${ports.green} }`,
    `    upstream-file: ${TARGET}/upstream.conf`,
    '    drain: 2s',
    'checks:',
    '  - { name: colour-health, type: http, url: "http://127.0.0.1:{port}/health", timeout: 1s, retries: 4, interval: 500ms }',
    ...extraChecks.map(c => `  - ${c}`),
    'post-deploy: { stability-window: 0s }'
  ].join('\n');

const settings = async (id: string, version = id, fault?: string, extraChecks?: readonly string[]) =>
  settingsFor(host, { artifact: await makeRelease(version, fault), 'release-id': id }, yaml(extraChecks));

interface Answer {
  readonly start: number;
  readonly end: number;
  readonly body: string;
}

/**
 * Asks the proxy one request at a time (each on a fresh connection, as `get` does) until stopped,
 * noting when each request started and ended, so answers can be placed against the deploy's steps.
 */
function pollProxy(): { stop(): Promise<Answer[]> } {
  const answers: Answer[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const start = Date.now();
      const body = await get(bg.proxyUrl);
      answers.push({ start, end: Date.now(), body });
      await sleep(20);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return answers;
    }
  };
}

/** Distinct answers in the order they came, with how many times each came in a row. */
function summary(answers: readonly Answer[]): string {
  const runs: string[] = [];
  for (const { body } of answers) {
    const last = runs.at(-1);
    const m = last ? /^(.*) x(\d+)$/.exec(last) : null;
    if (m && m[1] === body) runs[runs.length - 1] = `${body} x${Number(m[2]) + 1}`;
    else runs.push(`${body} x1`);
  }
  return runs.join(', ');
}

/**
 * What the proxy answered in a time span: requests that started at or after `from` and ended at
 * or before `to`. A reload of nginx runs old and new workers side by side for a moment (its master
 * waits 100 ms before it tells the old ones to stop accepting), so answers while a flip step runs
 * may come from either side; before it and after it they may not.
 */
const within = (answers: readonly Answer[], from: number, to = Infinity) =>
  summary(answers.filter(a => a.start >= from && a.end <= to));

/** Steps of the deploy, for failure messages: which ids the code reported, in order. */
const stepList = (steps: readonly StepRecord[]) =>
  steps.map(s => `${s.id}${s.undo ? '(undo)' : ''}${s.ok ? '' : '!'}@${s.at}+${s.ms}`).join(' ');

let t: SystemdTestHost;

beforeAll(async () => {
  t = await startTestHost({ kind: 'systemd', name: 'systemd-blue-green' });
  host = t.host;
  ports = { blue: await freePort(), green: await freePort() };
  proxyPort = await freePort();
  bg = await installBlueGreen(host, { target: TARGET, unit: UNIT, ports, proxyPort });
}, 180_000);

afterAll(async () => {
  await t?.stop();
});

describe('blue-green deploys behind a real nginx', () => {
  test('the first deploy goes to blue, and the proxy answers v1', async () => {
    expect(await bg.liveColour()).toBeNull();
    const { result, log } = await deployQuiet(await settings('v1'));
    expect({
      status: result.status,
      error: result.error,
      log: result.status === 'deployed' ? [] : log
    }).toEqual({
      status: 'deployed',
      error: undefined,
      log: []
    });
    expect(await bg.liveColour()).toBe('blue');
    expect(await get(bg.proxyUrl)).toBe('v1');
    expect(await get(`http://127.0.0.1:${ports.blue}/health`)).toBe('ok v1');
    expect(await bg.state('blue')).toBe('active');
    expect((await must(`readlink ${TARGET}/blue`)).trim()).toBe(`${TARGET}/releases/v1`);
    expect((await must(`readlink ${TARGET}/current`)).trim()).toBe(`${TARGET}/releases/v1`);
    const upstream = await must(`cat ${bg.upstreamFile}`);
    expect(upstream).toMatch(/^# deployguard live=blue release=v1\b/m);
    expect(upstream).toContain(`server 127.0.0.1:${ports.blue};`);
    expect(await must(`cat ${TARGET}/blue.env`)).toMatch(
      new RegExp(`^PORT=${ports.blue}$[\\s\\S]*^DEPLOYGUARD_COLOUR=blue$`, 'm')
    );
  }, 90_000);

  test('v2 goes to green with no failed request; blue keeps running for the drain, then stops', async () => {
    const poll = pollProxy();
    // When blue is first seen not running, watched from before the deploy until it stops.
    const blueStopped = (async () => {
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        if ((await bg.state('blue')) !== 'active') return Date.now();
        await sleep(50);
      }
      return undefined;
    })();
    const { result } = await deployQuiet(await settings('v2'));
    const answers = await poll.stop();
    expect({ status: result.status, error: result.error }).toEqual({ status: 'deployed', error: undefined });
    expect(await bg.liveColour()).toBe('green');
    expect(await get(bg.proxyUrl)).toBe('v2');
    expect((await must(`readlink ${TARGET}/current`)).trim()).toBe(`${TARGET}/releases/v2`);
    expect((await must(`readlink ${TARGET}/green`)).trim()).toBe(`${TARGET}/releases/v2`);
    const steps = result.hosts[0]!.steps;
    const flip = steps.find(s => /flip/.test(s.id) && !s.undo);
    expect({ flip: flip !== undefined, steps: stepList(steps) }).toMatchObject({ flip: true });
    const flipped = flip!.at + flip!.ms;
    // Every request got an answer: v1 before the flip, v2 once it was done.
    expect(summary(answers)).toMatch(/^(v[12] x\d+, )*v2 x\d+$/);
    expect(within(answers, 0, flip!.at)).toMatch(/^(v1 x\d+)?$/);
    expect(within(answers, flipped)).toMatch(/^v2 x\d+$/);

    // The drain: blue stops, but not before 2 s after the flip (seen stopped no earlier than that).
    const stoppedAt = await blueStopped;
    expect(await bg.state('blue')).toBe('inactive');
    expect({ stoppedAt: stoppedAt !== undefined, steps: stepList(steps) }).toMatchObject({ stoppedAt: true });
    expect(stoppedAt! - flipped).toBeGreaterThanOrEqual(2000);
    expect(await bg.state('green')).toBe('active');
  }, 90_000);

  test('a release failing its colour health check never gets traffic', async () => {
    const poll = pollProxy();
    const { result } = await deployQuiet(await settings('v3', 'v3', 'unhealthy'));
    const answers = await poll.stop();
    // The new colour was started and stopped again; the live one never changed: nothing was rolled
    // back, so the deploy failed (a rollback would mean production had changed and was put back).
    expect({ status: result.status, rolledBack: result.rolledBack }).toEqual({
      status: 'failed',
      rolledBack: false
    });
    expect(result.hosts[0]!.checks.find(c => c.name === 'colour-health')).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/HTTP 500/)
    });
    // Throughout the deploy, every request was answered by v2.
    expect(answers.length).toBeGreaterThan(10);
    expect(summary(answers)).toMatch(/^v2 x\d+$/);
    // No flip happened at all.
    const steps = result.hosts[0]!.steps;
    expect({
      flipped: steps.filter(s => /flip/.test(s.id) && s.ok).map(s => s.id),
      steps: stepList(steps)
    }).toMatchObject({
      flipped: []
    });
    expect(await bg.liveColour()).toBe('green');
    expect(await must(`cat ${bg.upstreamFile}`)).toContain(`server 127.0.0.1:${ports.green};`);
    expect((await must(`readlink ${TARGET}/current`)).trim()).toBe(`${TARGET}/releases/v2`);
    expect(await bg.state('green')).toBe('active');
    expect(await get(bg.proxyUrl)).toBe('v2');
  }, 90_000);

  test('a release that fails only after the flip is flipped back in under 1 s', async () => {
    // VERSION "x4" passes the colour's /health ("ok x4"), but the check through the proxy, which
    // sees the new release only after the flip, wants a body containing "v".
    const proxyCheck = `{ name: via-proxy, type: http, url: "http://127.0.0.1:${proxyPort}/", expect: { body-contains: "v" }, timeout: 1s }`;
    const poll = pollProxy();
    const { result } = await deployQuiet(await settings('v4', 'x4', undefined, [proxyCheck]));
    const answers = await poll.stop();
    const viaProxy = result.hosts[0]!.checks.filter(c => c.name === 'via-proxy');
    expect({ status: result.status, viaProxy, answers: summary(answers) }).toMatchObject({
      status: 'rolled-back',
      viaProxy: [expect.objectContaining({ ok: false, reason: expect.stringMatching(/lacks "v".*x4/) })]
    });

    const steps = result.hosts[0]!.steps;
    const flip = steps.find(s => /flip/.test(s.id) && !s.undo && s.ok);
    const back = steps.find(s => s.at >= (flip?.at ?? Infinity) && s !== flip && /flip/.test(s.id) && s.ok);
    expect({ flip: flip?.id, back: back?.id, steps: stepList(steps) }).toMatchObject({
      flip: expect.any(String),
      back: expect.any(String)
    });
    // From the moment the new release had the traffic to the moment the old one had it again.
    const exposedMs = back!.at + back!.ms - (flip!.at + flip!.ms);
    console.log(`blue-green: x4 had the traffic for ${exposedMs} ms (steps: ${stepList(steps)})`);
    expect(exposedMs).toBeLessThan(1000);

    // No request failed; x4 answered only between the flip and the flip back.
    expect(summary(answers)).toMatch(/^(v2|x4) x\d+(, (v2|x4) x\d+)*$/);
    expect(within(answers, 0, flip!.at)).toMatch(/^v2 x\d+$/);
    expect(within(answers, flip!.at + flip!.ms, back!.at)).toMatch(/^(x4 x\d+)?$/);
    expect(within(answers, back!.at + back!.ms)).toMatch(/^v2 x\d+$/);
    expect(await bg.liveColour()).toBe('green');
    expect(await get(bg.proxyUrl)).toBe('v2');
    expect((await must(`readlink ${TARGET}/current`)).trim()).toBe(`${TARGET}/releases/v2`);
    expect(await bg.state('green')).toBe('active');
  }, 90_000);

  test('the dry run prints the flip: the upstream file, nginx -t and the reload', async () => {
    const text = await dryRun(await settings('v5'));
    expect(text).toContain(`${TARGET}/upstream.conf`);
    expect(text).toMatch(/nginx -t -q/);
    expect(text).toMatch(/systemctl reload -- nginx/);
    expect(text).toMatch(/app@(blue|green)/);
    // A dry run touches nothing: still green, still v2.
    expect(await bg.liveColour()).toBe('green');
    expect(await get(bg.proxyUrl)).toBe('v2');
  }, 30_000);

  test('the preflight on the real host: nginx includes the upstream file, the template runs from <target>/blue; without the include it fails with the line to add', async () => {
    const findings = async () =>
      (await runPreflight(await settings('v6'), memoryLogger())).hosts[0]!.findings.filter(
        f => f.check === 'proxy' || f.check === 'unit'
      );
    expect(await findings()).toEqual([
      expect.objectContaining({
        check: 'unit',
        level: 'ok',
        message: expect.stringContaining(`${TARGET}/blue`)
      }),
      expect.objectContaining({ check: 'proxy', level: 'ok' })
    ]);
    const site = await must(`cat ${bg.siteFile}`);
    try {
      // The site without its include: a flip would change nothing nginx serves.
      await must(
        `sed -i 's|include ${TARGET}/upstream.conf;|server 127.0.0.1:${ports.blue};|' ${bg.siteFile}`
      );
      const proxy = (await findings()).find(f => f.check === 'proxy')!;
      expect(proxy.level).toBe('fail');
      expect(proxy.fix).toContain(`upstream ${UNIT} { include ${TARGET}/upstream.conf; }`);
    } finally {
      await must(`cat > ${bg.siteFile} <<'SITE'\n${site}SITE`);
    }
    expect((await findings()).find(f => f.check === 'proxy')!.level).toBe('ok');
  }, 60_000);
});
