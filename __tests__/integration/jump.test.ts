/**
 * Deploys through a jump host (`proxy-jump`), against real sshd servers: the bastion forwards the
 * connection (its own log shows the forwarding to the app host), each hop is checked against its
 * own pin, and a bastion that forbids forwarding, or offers a key other than its pin, stops the
 * deploy before anything reaches the app host.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { dryRun, runDeploy } from '../../src/deploy.js';
import { memoryLogger } from '../../src/io/log.js';
import { parseSettings } from '../../src/settings/parse.js';
import { HOSTS_DIR, type TestHost } from '../harness/hosts.js';
import { freePort, makeRelease } from '../helpers/deploy.js';
import { startTestHost, type LocalTestHost } from '../helpers/test-host.js';

let app: TestHost;
let bastion: TestHost;
let closedBastion: TestHost;
let started: LocalTestHost<TestHost>[] = [];
let work: string;
/** The sshd log of a harness host (its instance directory is `sshd-<name>-XXXXXX`). */
const sshdLog = (h: TestHost) => {
  const dir = readdirSync(HOSTS_DIR).find(d => d.startsWith(`sshd-${h.name}-`));
  return readFileSync(join(HOSTS_DIR, dir!, 'sshd.log'), 'utf8');
};

beforeAll(async () => {
  const [a, b, c] = await Promise.all([
    startTestHost({ kind: 'sshd', name: 'jump-app', prefix: 'jump' }),
    startTestHost({ kind: 'sshd', name: 'jump-bastion', extraConfig: ['LogLevel DEBUG1'] }),
    startTestHost({ kind: 'sshd', name: 'jump-closed', extraConfig: ['AllowTcpForwarding no'] })
  ]);
  started = [a, b, c];
  [app, bastion, closedBastion] = [a.host, b.host, c.host];
  work = a.work;
}, 60_000);

afterAll(async () => {
  await Promise.all(started.map(t => t.stop()));
});

/** One app host behind `via`; `jumpPin` overrides the bastion's pin (its known_hosts line). */
function settingsVia(via: TestHost, artifact: string, release: string, jumpPin = via.knownHostsLine) {
  const yaml = [
    'version: 1',
    `target: { path: ${join(work, 'srv')} }`,
    'service: { manager: none }',
    'post-deploy: { stability-window: 0s }',
    'pre-deploy: { gitleaks: false }',
    'ssh: { connect-retries: 0 }',
    'hosts:',
    `  - name: app`,
    `    host: ${app.host}`,
    `    port: ${app.port}`,
    `    user: root`,
    `    known-hosts: "${app.knownHostsLine}"`,
    `    proxy-jump:`,
    `      host: ${via.host}`,
    `      port: ${via.port}`,
    `      known-hosts: "${jumpPin}"`,
    `      ssh-key-env: BASTION_KEY`
  ].join('\n');
  return parseSettings({
    input: n => ({ artifact, 'release-id': release, 'ssh-key': app.privateKey, 'lock-wait': '0s' })[n],
    env: { BASTION_KEY: via.privateKey },
    configText: yaml,
    configPath: 'jump.yml',
    now: new Date(),
    onSecret: () => {}
  });
}

async function deploy(settings: ReturnType<typeof settingsVia>) {
  const log = memoryLogger();
  const result = await runDeploy(settings, { log });
  return { result, text: log.lines.join('\n') };
}

test('the settings carry the jump host with its own pin, and the user and key of its host by default', () => {
  const s = settingsVia(bastion, '/nonexistent', 'r0');
  const h = s.hosts[0]!;
  expect(h.jump).toMatchObject({
    host: bastion.host,
    port: bastion.port,
    user: 'root',
    knownHosts: [bastion.knownHostsLine],
    privateKey: bastion.privateKey
  });
  expect(h.jump!.name).toBe(`app (jump host ${bastion.host})`);
  expect(h.knownHosts).toEqual([app.knownHostsLine]);
});

test('a deploy through the jump host lands on the app host, and the bastion forwarded it', async () => {
  const before = sshdLog(bastion).length;
  const { result, text } = await deploy(settingsVia(bastion, await makeRelease('v1'), 'r1'));
  expect({ status: result.status, text }).toMatchObject({ status: 'deployed' });
  expect(readlinkSync(join(work, 'srv', 'current'))).toMatch(/r1$/);
  expect(readFileSync(join(work, 'srv', 'current', 'VERSION'), 'utf8')).toBe('v1\n');
  // The bastion's own log: it accepted the bastion key and opened a TCP connection to the app's sshd.
  const added = sshdLog(bastion).slice(before);
  expect(added).toMatch(/Accepted publickey for root/);
  expect(added).toMatch(
    new RegExp(`direct-tcpip.*\\b${app.port}\\b|target 127\\.0\\.0\\.1 port ${app.port}\\b`)
  );
}, 60_000);

test('a jump host that forbids forwarding stops the deploy at connect, naming the fix', async () => {
  const { result, text } = await deploy(settingsVia(closedBastion, await makeRelease('v2'), 'r2'));
  expect(result.status).toBe('failed');
  expect(text).toMatch(/jump host 127\.0\.0\.1:\d+/);
  expect(text).toMatch(/AllowTcpForwarding yes/);
  // Nothing reached the app host: the live release is still r1.
  expect(readlinkSync(join(work, 'srv', 'current'))).toMatch(/r1$/);
  expect(existsSync(join(work, 'srv', 'releases', 'r2'))).toBe(false);
}, 60_000);

test('a bastion offering a key other than its pin is refused before any credential is sent', async () => {
  const before = sshdLog(bastion).length;
  const appBefore = sshdLog(app).length;
  // The app host's key line, rewritten for the bastion's address: a well-formed pin of another key.
  const wrongPin = app.knownHostsLine.replace(/^\[127\.0\.0\.1\]:\d+/, `[127.0.0.1]:${bastion.port}`);
  const { result, text } = await deploy(settingsVia(bastion, await makeRelease('v3'), 'r3', wrongPin));
  expect(result.status).toBe('failed');
  expect(text).toMatch(/app \(jump host 127\.0\.0\.1\): HOST KEY DOES NOT MATCH THE PIN/);
  expect(sshdLog(bastion).slice(before)).not.toMatch(/Accepted publickey/);
  expect(sshdLog(app).slice(appBefore)).not.toMatch(/Accepted publickey/);
  expect(readlinkSync(join(work, 'srv', 'current'))).toMatch(/r1$/);
}, 60_000);

test('the app host behind the jump is checked against its own pin', async () => {
  const s = settingsVia(bastion, await makeRelease('v4'), 'r4');
  const wrong = bastion.knownHostsLine.replace(/^\[127\.0\.0\.1\]:\d+/, `[127.0.0.1]:${app.port}`);
  const appBefore = sshdLog(app).length;
  const { result, text } = await deploy({
    ...s,
    hosts: [{ ...s.hosts[0]!, knownHosts: [wrong] }]
  });
  expect(result.status).toBe('failed');
  expect(text).toMatch(/app: HOST KEY DOES NOT MATCH THE PIN/);
  expect(sshdLog(app).slice(appBefore)).not.toMatch(/Accepted publickey/);
  expect(readlinkSync(join(work, 'srv', 'current'))).toMatch(/r1$/);
}, 60_000);

test('an app host the bastion cannot reach fails at connect, saying the jump host could not connect', async () => {
  const s = settingsVia(bastion, await makeRelease('v5'), 'r5');
  const closedPort = await freePort();
  const { result, text } = await deploy({ ...s, hosts: [{ ...s.hosts[0]!, port: closedPort }] });
  expect(result.status).toBe('failed');
  expect(text).toContain(
    `through the jump host 127.0.0.1:${bastion.port}: it could not connect to 127.0.0.1:${closedPort}`
  );
  expect(text).toMatch(/From the jump host, check that sshd on 127\.0\.0\.1 listens on port/);
  expect(readlinkSync(join(work, 'srv', 'current'))).toMatch(/r1$/);
}, 60_000);

test('an unpinned jump host: the dry run warns, and the deploy refuses it, saying where its pin goes', async () => {
  const s = settingsVia(bastion, await makeRelease('v6'), 'r6');
  const unpinned = { ...s, hosts: [{ ...s.hosts[0]!, jump: { ...s.hosts[0]!.jump!, knownHosts: [] } }] };
  expect(await dryRun(unpinned)).toContain(
    'WARNING: app (jump host 127.0.0.1) has no pinned host key; a real deploy will refuse it'
  );
  const { result, text } = await deploy(unpinned);
  expect(result.status).toBe('failed');
  expect(text).toMatch(/app \(jump host 127\.0\.0\.1\): the host key of 127\.0\.0\.1:\d+ is not pinned/);
  expect(text).toContain('then pin it under `proxy-jump:` of host app in deployguard.yml, as `known-hosts:`');
  expect(readlinkSync(join(work, 'srv', 'current'))).toMatch(/r1$/);
}, 60_000);
