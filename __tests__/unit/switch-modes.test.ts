/**
 * How a release takes over (issue 14): `switch: blue-green` and `switch: reload`, as settings, as
 * plans and as preflight requirements. The real flips under load are in
 * integration/blue-green.test.ts; these pin down the exact steps and scripts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dryRun } from '../../src/deploy.js';
import type { AddressInfo } from 'node:net';
import { probeFor } from '../../src/checks/runner.js';
import type { HostContext } from '../../src/checks/types.js';
import { planHost } from '../../src/plan/plan.js';
import { sudoCommands, sudoersLine, parsePreflight, judgePreflight } from '../../src/preflight.js';
import { blueGreenOf, upstreamText, liveColour } from '../../src/remote/blue-green.js';
import { layoutFor } from '../../src/remote/layout.js';
import { BASE_INPUTS, settingsFrom } from '../helpers/settings.js';

const now = new Date('2026-11-26T12:00:00Z');

const bgYaml = (extra = '') =>
  [
    'version: 1',
    'service:',
    '  manager: systemd',
    '  name: shop',
    '  sudo: true',
    '  switch: blue-green',
    '  blue-green: { ports: { blue: 8001, green: 8002 }, drain: 3s }',
    'checks:',
    '  - { name: colour, type: http, url: "http://{host}:{port}/health" }',
    '  - { name: public, type: http, url: "https://shop.example.com/" }',
    extra
  ].join('\n');

const bg = (extra = '', inputs: Record<string, string> = {}) =>
  settingsFrom({ ...BASE_INPUTS, 'release-id': 'r2', ...inputs }, bgYaml(extra));

const problems = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a configuration error');
};

describe('switch: blue-green settings', () => {
  test('a valid section gives the ports, the drain and the default upstream file under the target', () => {
    const s = bg();
    expect(s.service).toMatchObject({
      manager: 'systemd',
      switch: 'blue-green',
      blueGreen: {
        ports: { blue: 8001, green: 8002 },
        drainMs: 3000,
        proxy: 'nginx',
        upstreamFile: '/srv/app/upstream.conf'
      }
    });
  });

  test('every mistake is named with its line, in one pass', () => {
    const text = [
      'version: 1',
      'target: { path: /srv/app, strategy: in-place }',
      'service:',
      '  manager: systemd',
      '  name: shop@x',
      '  switch: blue-green',
      '  blue-green: { ports: { blue: 8001, green: 8001 } }',
      'checks:',
      '  - { name: public, type: http, url: "https://shop.example.com/" }'
    ].join('\n');
    const msg = problems(() => settingsFrom({ ...BASE_INPUTS, 'target-path': '' }, text));
    expect(msg).toMatch(
      /deployguard\.yml:7:\d+: the blue and green instances need two different ports, both are 8001/
    );
    expect(msg).toMatch(/deployguard\.yml:2:\d+: switch: blue-green .* needs strategy: releases/);
    expect(msg).toMatch(
      /deployguard\.yml:5:\d+: with switch: blue-green, service\.name is the template's name/
    );
    expect(msg).toMatch(/a post-deploy check that reaches the colour/);
  });

  test('blue-green without its section, or the section without the switch, is refused', () => {
    expect(
      problems(() =>
        settingsFrom(
          BASE_INPUTS,
          'version: 1\nservice: { manager: systemd, name: shop, switch: blue-green }\nchecks: [{ name: p, type: process }]'
        )
      )
    ).toMatch(/switch: blue-green needs service\.blue-green with the ports/);
    expect(
      problems(() =>
        settingsFrom(
          BASE_INPUTS,
          'version: 1\nservice: { manager: systemd, name: shop, blue-green: { ports: { blue: 1, green: 2 } } }'
        )
      )
    ).toMatch(/service\.blue-green is set, but service\.switch is restart/);
  });

  test('{port} means a colour: refused when the switch is not blue-green; {host} is fine anywhere', () => {
    expect(
      problems(() =>
        settingsFrom(
          BASE_INPUTS,
          'version: 1\nchecks: [{ name: h, type: http, url: "http://127.0.0.1:{port}/" }]'
        )
      )
    ).toMatch(/check h: `\{port\}` in a url is the port of a blue-green colour/);
    expect(
      settingsFrom(BASE_INPUTS, 'version: 1\nchecks: [{ name: h, type: http, url: "http://{host}:8080/" }]')
        .checks[0]
    ).toMatchObject({ url: 'http://{host}:8080/' });
  });

  test('a command service reloads with its own command, and only with switch: reload', () => {
    const svc = 'service: { manager: command, start: ./run, pidfile: /run/a.pid';
    expect(problems(() => settingsFrom(BASE_INPUTS, `version: 1\n${svc}, switch: reload }`))).toMatch(
      /switch: reload needs service\.reload/
    );
    expect(problems(() => settingsFrom(BASE_INPUTS, `version: 1\n${svc}, reload: "kill -HUP 1" }`))).toMatch(
      /service\.reload is only run with switch: reload/
    );
  });
});

describe('the blue-green plan', () => {
  const s = bg();
  const layout = layoutFor(s.target);
  const ids = (p: ReturnType<typeof planHost>) => p.steps.map(x => x.id);

  test('with blue live: green starts, is checked, gets traffic, and blue drains and stops', () => {
    const p = planHost(
      s,
      layout,
      { previous: '/srv/app/releases/r1', colour: 'blue' },
      { now, fileCount: 1 }
    );
    expect(ids(p)).toEqual([
      'stage',
      'upload',
      'verify',
      'promote',
      'colour',
      'start',
      'running',
      'checks',
      'flip',
      'checks-live',
      'drain'
    ]);
    expect(p.colours).toEqual({ idle: 'green', live: 'blue' });
    const step = (id: string) => p.steps.find(x => x.id === id)!;
    const script = (id: string) =>
      'script' in step(id).action ? String((step(id).action as { script: unknown }).script) : '';
    // Nothing live is touched before the flip.
    expect(p.steps.findIndex(x => x.touchesService)).toBe(ids(p).indexOf('flip'));
    expect(script('colour')).toContain(
      'ln -sfn -- /srv/app/releases/r2 /srv/app/green.tmp && mv -T -- /srv/app/green.tmp /srv/app/green'
    );
    expect(script('colour')).toContain("printf 'PORT=%s\\nDEPLOYGUARD_COLOUR=%s\\n' 8002 green");
    expect(script('start')).toBe('sudo -n systemctl restart -- shop@green');
    expect(step('checks').action).toEqual({ kind: 'checks', on: 'colour' });
    expect(step('checks-live').action).toEqual({ kind: 'checks', on: 'live' });
    const flip = script('flip');
    expect(flip).toContain('server 127.0.0.1:8002;');
    expect(flip).toContain('# deployguard live=green release=r2');
    expect(flip).toContain('sudo -n nginx -t -q');
    expect(flip).toContain('sudo -n systemctl reload -- nginx');
    // current moves last, after nginx runs the new workers.
    expect(flip.indexOf('reload -- nginx')).toBeLessThan(flip.indexOf('/srv/app/current'));
    // The undo is registered before the flip runs, and is a flip back to a blue that is started first.
    expect(step('flip').undoAfterSuccess).toBeFalsy();
    const back = String(step('flip').undo!.action.script);
    expect(back.split('\n')[0]).toBe('sudo -n systemctl start -- shop@blue');
    expect(back).toContain('server 127.0.0.1:8001;');
    expect(back).toContain('/srv/app/releases/r1');
    expect(script('drain')).toBe('sleep 3.000\nsudo -n systemctl stop -- shop@blue');
    expect(step('drain').undo!.action.script.text).toBe('sudo -n systemctl start -- shop@blue');
    // Stopping green after a flip back first lets nginx's old workers finish what they carry to it.
    const stopGreen = step('start').undo!.action.script.text;
    expect(stopGreen).toContain("grep -qa 'nginx: worker process is shutting down'");
    expect(stopGreen.split('\n').at(-1)).toBe('sudo -n systemctl stop -- shop@green');
    expect(stopGreen).toContain('while [ "$i" -lt 30 ]');
  });

  test('with green live the colours swap; with none live blue starts and nothing drains', () => {
    const g = planHost(
      s,
      layout,
      { previous: '/srv/app/releases/r1', colour: 'green' },
      { now, fileCount: 1 }
    );
    expect(g.colours).toEqual({ idle: 'blue', live: 'green' });
    const first = planHost(s, layout, {}, { now, fileCount: 1 });
    expect(first.colours).toEqual({ idle: 'blue', live: undefined });
    expect(ids(first)).not.toContain('drain');
    expect(first.steps.find(x => x.id === 'flip')!.undo!.id).toBe('unflip');
  });

  test('the deploy sub-action starts the idle colour; post-deploy checks, flips and drains', () => {
    const facts = { previous: '/srv/app/releases/r1', colour: 'blue' as const };
    expect(ids(planHost(s, layout, facts, { now, fileCount: 1, part: 'switch' }))).toEqual([
      'stage',
      'upload',
      'verify',
      'promote',
      'colour',
      'start'
    ]);
    const post = planHost(s, layout, facts, { now, fileCount: 1, part: 'post' });
    expect(ids(post)).toEqual(['running', 'checks', 'flip', 'checks-live', 'drain']);
    expect(post.initialUndo.map(u => u.id)).toEqual(['unstage', 'mark-failed', 'stop-new']);
    expect(post.serviceTouched).toBe(false);
  });

  test('the upstream file names the colour on its first line, which the probe reads back', () => {
    const text = upstreamText(blueGreenOf(s.service)!, 'green', 'r2');
    expect(text.split('\n')[0]).toBe('# deployguard live=green release=r2');
    expect(liveColour('x=1\ncolour=green\n')).toBe('green');
    expect(liveColour('colour=purple\n')).toBeUndefined();
  });
});

describe('switch: reload', () => {
  const s = settingsFrom(
    { ...BASE_INPUTS, 'release-id': 'r2' },
    'version: 1\nservice: { manager: systemd, name: shop, sudo: true, switch: reload }'
  );
  const layout = layoutFor(s.target);

  test('no stop and no start: switch, then reload; the undo switches back and reloads again', () => {
    const p = planHost(s, layout, { previous: '/srv/app/releases/r1' }, { now, fileCount: 1 });
    expect(p.steps.map(x => x.id)).toEqual([
      'stage',
      'upload',
      'verify',
      'promote',
      'switch',
      'reload',
      'running',
      'checks'
    ]);
    expect(String((p.steps.find(x => x.id === 'reload')!.action as { script: unknown }).script)).toBe(
      'sudo -n systemctl reload -- shop'
    );
    const undo = String(p.steps.find(x => x.id === 'switch')!.undo!.action.script);
    expect(undo).toContain('/srv/app/releases/r1');
    expect(undo.trim().split('\n').at(-1)).toBe('sudo -n systemctl reload -- shop');
  });

  test('a first deploy has nothing to reload: it starts the service', () => {
    const p = planHost(s, layout, {}, { now, fileCount: 1 });
    expect(p.steps.map(x => x.id)).toContain('start');
    expect(p.steps.map(x => x.id)).not.toContain('reload');
  });

  test('the preflight fails a unit that cannot reload, naming ExecReload=', () => {
    const facts = parsePreflight(
      'unit-LoadState=loaded\nunit-CanReload=no\nunit-WorkingDirectory=/srv/app/current\nunit-FragmentPath=/etc/systemd/system/shop.service\n'
    );
    const unit = judgePreflight(s, s.hosts[0]!, facts).find(f => f.check === 'unit')!;
    expect(unit.level).toBe('fail');
    expect(unit.fix).toMatch(/ExecReload=/);
    expect(sudoCommands(s).map(c => c.words.join(' '))).toContain('systemctl reload -- shop');
  });
});

describe('the blue-green preflight', () => {
  const s = bg();

  test('the sudoers line allows both instances and the nginx test and reload, nothing else', () => {
    const line = sudoersLine(s, 'deploy', new Map([['systemctl', '/usr/bin/systemctl']]));
    for (const c of ['blue', 'green']) {
      expect(line).toContain(`/usr/bin/systemctl restart -- shop@${c}`);
      expect(line).toContain(`/usr/bin/systemctl stop -- shop@${c}`);
      expect(line).toContain(`/usr/bin/systemctl start -- shop@${c}`);
    }
    expect(line).toContain('/usr/sbin/nginx -t -q');
    expect(line).toContain('/usr/bin/systemctl reload -- nginx');
    expect(line).not.toMatch(/systemctl \w+ -- shop(?!@)/);
  });

  test('a proxy config that does not include the upstream file fails, with the snippet to add', () => {
    const base = 'unit-LoadState=loaded\nunit-WorkingDirectory=/srv/app/blue\n';
    const judge = (extra: string) =>
      judgePreflight(s, s.hosts[0]!, parsePreflight(base + extra)).find(f => f.check === 'proxy')!;
    expect(judge('proxy-nginx=no\nproxy-include=no\n')).toMatchObject({
      level: 'fail',
      fix: 'apt-get install -y nginx'
    });
    const missing = judge('proxy-nginx=yes\nproxy-include=no\n');
    expect(missing.level).toBe('fail');
    expect(missing.fix).toContain('upstream shop { include /srv/app/upstream.conf; }');
    expect(judge('proxy-nginx=yes\nproxy-include=yes\n').level).toBe('ok');
    // The template is judged through its blue instance, which must run from <target>/blue.
    expect(judgePreflight(s, s.hosts[0]!, parsePreflight(base)).find(f => f.check === 'unit')!.level).toBe(
      'ok'
    );
  });
});

describe('{host} and {port} in a check url', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    server = createServer((_q, r) => r.end('ok'));
    await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => server.close());

  const check = bg().checks[0]!;
  const host = (p?: number): HostContext =>
    ({
      name: 'web-1',
      address: '127.0.0.1',
      ...(p === undefined ? {} : { port: p })
    }) as unknown as HostContext;
  const signal = new AbortController().signal;

  test('are filled from the host and the colour being judged', async () => {
    await expect(probeFor(check, { release: 'r2', commit: 'c' }, host(port))(signal)).resolves.toMatchObject({
      ok: true
    });
  });

  test('with no colour live, a {port} check fails and says why', async () => {
    await expect(probeFor(check, { release: 'r2', commit: 'c' }, host())(signal)).resolves.toEqual({
      ok: false,
      reason: expect.stringMatching(/names \{port\}.*no colour is live/)
    });
  });
});

test('the dry run shows the blue-green steps with the flip, the flip back and the drain as the host runs them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dg-bg-dry-'));
  try {
    writeFileSync(join(dir, 'server.js'), 'x');
    const text = await dryRun(bg('', { artifact: dir, 'dry-run': 'true' }));
    expect(text).toContain('shown as if blue were live');
    expect(text).toMatch(
      /\d+\. Health checks on green before it gets traffic\n\s+\(runs 1 post-deploy checks: colour\)/
    );
    expect(text).toMatch(/\d+\. Flip the proxy to green \(port 8002\) and current to r2\n/);
    expect(text).toContain('sudo -n nginx -t -q');
    expect(text).toContain('on failure later: Flip the proxy back to blue');
    expect(text).toMatch(
      /Health checks with the new release live\n\s+\(runs 2 post-deploy checks: colour, public\)/
    );
    expect(text).toContain('sudo -n systemctl stop -- shop@blue');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
