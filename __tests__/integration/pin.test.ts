/**
 * `deployguard pin HOST` against a real sshd: the known_hosts line it prints, given back as
 * `known-hosts`, lets deployguard connect; its fingerprint is what `ssh-keygen -lf` says of the
 * server's key; bad input is refused before anything is contacted.
 */
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { main } from '../../src/cli.js';
import { connectHost } from '../../src/io/ssh.js';
import { memoryLogger } from '../../src/io/log.js';
import { pinCommand } from '../../src/remote/pin.js';
import { sh } from '../../src/remote/shell.js';
import type { TestHost } from '../harness/hosts.js';
import { freePort } from '../helpers/deploy.js';
import { startTestHost, type LocalTestHost } from '../helpers/test-host.js';

let t: LocalTestHost<TestHost>;
let host: TestHost;

beforeAll(async () => {
  t = await startTestHost({ kind: 'sshd', name: 'pin' });
  host = t.host;
}, 30_000);

afterAll(async () => {
  await t?.stop();
});

async function pin(h: string, port: number, user?: string): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const code = await pinCommand(h, port, t => out.push(t), { user, timeoutMs: 5000 });
  return { code, out: out.join('\n') };
}

test("prints the host's key as a known_hosts line that lets deployguard connect, and its ssh-keygen fingerprint", async () => {
  const { code, out } = await pin(host.host, host.port, 'deploy');
  expect(code).toBe(0);
  const line = /^ {2}known_hosts line: (.+)$/m.exec(out)?.[1];
  expect(line).toMatch(new RegExp(`^\\[127\\.0\\.0\\.1\\]:${host.port} ssh-ed25519 AAAA[A-Za-z0-9+/]+=*$`));
  expect(line).toBe(host.knownHostsLine);
  // The fingerprint printed is ssh-keygen's, of the server's key and of the line printed.
  const fingerprint = /^ {2}fingerprint: +(\S+)$/m.exec(out)?.[1];
  expect(fingerprint).toBe(host.fingerprint);
  const keygen = execFileSync('ssh-keygen', ['-lf', '-'], { input: `${line}\n` }).toString();
  expect(keygen.split(' ')[1]).toBe(fingerprint);
  // It says to check out of band, and gives the config to paste.
  expect(out).toMatch(/compare the fingerprint with the one the host itself prints/);
  expect(out).toContain('  ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub');
  expect(out).toContain(`    port: ${host.port}\n    user: deploy\n    known-hosts: "${line}"`);

  const shell = await connectHost(
    {
      name: 'pinned',
      host: host.host,
      port: host.port,
      user: host.user,
      knownHosts: [line!],
      fingerprints: []
    },
    {
      privateKey: host.privateKey,
      insecureSkipHostKeyCheck: false,
      connectTimeoutMs: 5000,
      connectRetries: 0
    },
    memoryLogger()
  );
  try {
    expect((await shell.exec(sh`echo pinned-ok`)).stdout).toBe('pinned-ok\n');
  } finally {
    shell.close();
  }
});

test('bad input is refused with an example before anything is contacted; a closed port says so', async () => {
  const bad = await pin('-oProxyCommand=touch /tmp/x', 22);
  expect(bad.code).toBe(2);
  expect(bad.out).toMatch(/is not a host name or IP address\. Example: deployguard pin 203\.0\.113\.10/);
  expect((await pin('host\n::error::x', 22)).code).toBe(2);
  expect((await pin(host.host, 0)).code).toBe(2);
  expect((await pin(host.host, host.port, 'Root; rm')).code).toBe(2);
  const closed = await pin(host.host, await freePort());
  expect(closed.code).toBe(1);
  expect(closed.out).toMatch(/^error: could not read the host key of 127\.0\.0\.1 port \d+: .*ECONNREFUSED/);
  expect(closed.out).toMatch(/is sshd running, and is the port right\?/);
});

test('a host with no ed25519 key: the key it has (ECDSA here) is printed, and the file to compare it with', async () => {
  const ecdsa = await startTestHost({ kind: 'sshd', name: 'pin-ecdsa', hostKey: 'ecdsa' });
  try {
    const port = ecdsa.host.port;
    const { code, out } = await pin('127.0.0.1', port);
    expect(code).toBe(0);
    expect(out).toMatch(
      new RegExp(`known_hosts line: \\[127\\.0\\.0\\.1\\]:${port} ecdsa-sha2-nistp256 AAAA`)
    );
    // The harness's fingerprint is `ssh-keygen -lf` of the server's public key file.
    expect(out).toContain(`fingerprint:      ${ecdsa.host.fingerprint}`);
    expect(out).toContain('  ssh-keygen -lf /etc/ssh/ssh_host_ecdsa_key.pub');
  } finally {
    await ecdsa.stop();
  }
});

test('`deployguard pin HOST --port N` on the command line prints the same line', async () => {
  const out: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      out.push(chunk.toString());
      done();
    }
  });
  const code = await main(['pin', host.host, '--port', String(host.port)], sink, sink);
  expect(code).toBe(0);
  expect(out.join('')).toContain(`known_hosts line: ${host.knownHostsLine}`);
}, 30_000);
