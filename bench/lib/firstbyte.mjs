// Figure 4: time from spawning a process to the first byte it sends towards sshd.
//
//   node bench/lib/firstbyte.mjs FLEET_DIR ARTIFACT SMALL_ARTIFACT TARGET_PATH RUNS OUT.json [NODE_BINARY...]
//
// A TCP proxy on loopback sits between the client and sshd and notes when the first byte from
// the client arrives; the clock starts just before spawn(). Each client is killed at its first
// byte (nothing is deployed: the question is only how long the process takes to reach the
// network). Measured side by side, RUNS times each, interleaved:
//   - node connecting a socket and writing one byte (the floor for any Node program),
//   - the OpenSSH client (the baseline), and
//   - `deployguard deploy` from $BENCH_DG (the run's copy of dist/cli/index.cjs) under each NODE_BINARY given, and once more
//     under the first with SMALL_ARTIFACT (to see what scanning the big artifact costs).
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const [fleetDir, artifact, smallArtifact, targetPath, runsArg, outFile, ...nodeBins] = process.argv.slice(2);
if (!outFile) {
  console.error(
    'usage: firstbyte.mjs FLEET_DIR ARTIFACT SMALL_ARTIFACT TARGET_PATH RUNS OUT.json [NODE_BINARY...]'
  );
  process.exit(2);
}
const runs = Number(runsArg);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const work = process.env.BENCH_WORK;
const upstreamPort = Number(readFileSync(join(fleetDir, 'ports'), 'utf8').split('\n')[0]);
const hostKey = readFileSync(join(fleetDir, 'known_hosts'), 'utf8')
  .split('\n')[0]
  .split(' ')
  .slice(1)
  .join(' ');
const userKey = readFileSync(join(fleetDir, 'user_key'), 'utf8');

// The proxy: every client connection is forwarded to sshd; the first byte a client sends
// resolves `firstByte` with its arrival time.
let firstByte;
const server = createServer(client => {
  const upstream = connect({ host: '127.0.0.1', port: upstreamPort });
  client.once('data', () => firstByte?.(performance.now()));
  client.pipe(upstream).pipe(client);
  const drop = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', drop).on('close', drop);
  upstream.on('error', drop).on('close', drop);
});
await new Promise(r => server.listen(0, '127.0.0.1', r));
const port = server.address().port;

const knownHosts = join(work, 'firstbyte_known_hosts');
writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`);
const writeConfig = (file, what) => {
  writeFileSync(
    file,
    [
      'version: 1',
      `artifact: ${what}`,
      `target: { path: ${targetPath}, keep-releases: 2 }`,
      `hosts: [{ host: 127.0.0.1, port: ${port}, user: deployguard-sandbox }]`,
      'service: { manager: none }',
      'pre-deploy: { gitleaks: false }',
      'post-deploy: { stability-window: 0s }',
      'report: { comment: none }',
      ''
    ].join('\n')
  );
  return file;
};
const config = writeConfig(join(work, 'firstbyte.yml'), artifact);
const smallConfig = writeConfig(join(work, 'firstbyte-small.yml'), smallArtifact);

const version = bin => execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
const clients = [
  {
    name: 'node: connect + write 1 byte (floor)',
    argv: [process.execPath, '-e', `require('net').connect(${port}, '127.0.0.1').write('x')`]
  },
  {
    name: 'OpenSSH client (ssh)',
    argv: [
      'ssh',
      '-i',
      join(fleetDir, 'user_key'),
      '-p',
      String(port),
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
      'deployguard-sandbox@127.0.0.1',
      'true'
    ]
  },
  ...[...(nodeBins.length ? nodeBins : [process.execPath]), 'small'].map((bin, i, all) => ({
    name:
      bin === 'small'
        ? `deployguard deploy, Node ${version(all[0])}, 100-file artifact`
        : `deployguard deploy, Node ${version(bin)}`,
    argv: [
      bin === 'small' ? all[0] : bin,
      process.env.BENCH_DG ?? join(root, 'dist/cli/index.cjs'),
      'deploy',
      '--config',
      bin === 'small' ? smallConfig : config,
      '--release-id',
      `firstbyte-${i}`,
      '--known-hosts',
      `[127.0.0.1]:${port} ${hostKey}`
    ]
  }))
];

async function once(argv) {
  let stderr = '';
  const arrived = new Promise(r => (firstByte = r));
  const t0 = performance.now();
  const child = spawn(argv[0], argv.slice(1), {
    cwd: work,
    env: { ...process.env, DEPLOYGUARD_SSH_KEY: userKey },
    stdio: ['ignore', 'ignore', 'pipe']
  });
  child.stderr.on('data', b => (stderr += b));
  const exited = new Promise(r => child.once('exit', r));
  const timeout = new Promise(r => setTimeout(() => r('timeout'), 15_000));
  const t1 = await Promise.race([arrived, exited.then(() => 'exited'), timeout]);
  child.kill('SIGKILL');
  await exited;
  firstByte = undefined;
  if (typeof t1 !== 'number')
    throw new Error(`${argv[0]} sent no byte (${t1}); stderr: ${stderr.slice(-800)}`);
  return t1 - t0;
}

const results = clients.map(c => ({ name: c.name, argv0: c.argv[0], ms: [] }));
// One untimed round so the page cache holds the bundle and the binaries.
for (const c of clients) await once(c.argv);
for (let i = 0; i < runs; i++) {
  for (const [j, c] of clients.entries()) results[j].ms.push(await once(c.argv));
}
server.close();
const median = xs => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
for (const r of results) {
  r.median = median(r.ms);
  r.min = Math.min(...r.ms);
  r.max = Math.max(...r.ms);
  console.log(
    `${r.name}: median ${r.median.toFixed(0)} ms (min ${r.min.toFixed(0)}, max ${r.max.toFixed(0)})`
  );
}
writeFileSync(outFile, JSON.stringify({ runs, results }, null, 2));
