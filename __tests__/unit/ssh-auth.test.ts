/**
 * How the client logs in, seen from a server: ssh2's own server, in this process, speaking the
 * protocol and recording each authentication request (OpenSSH's side of the same is in
 * incremental.test.ts, from sshd's log).
 */
import { type AddressInfo } from 'node:net';
import ssh2 from 'ssh2';
import { connectHost } from '../../src/io/ssh.js';
import { memoryLogger } from '../../src/io/log.js';

const { Server, utils } = ssh2;
const hostKey = utils.generateKeyPairSync('ed25519');
const userKey = utils.generateKeyPairSync('ed25519');
const allowed = utils.parseKey(userKey.public);

/** A server that takes `userKey` (when `keys`) and the password `pw` (when `passwords`). */
async function server(opts: { keys: boolean; passwords: boolean }) {
  const requests: string[] = [];
  const srv = new Server({ hostKeys: [hostKey.private] }, client => {
    client.on('authentication', ctx => {
      requests.push(ctx.method === 'publickey' && ctx.signature ? 'publickey (signed)' : ctx.method);
      if (ctx.method === 'password' && opts.passwords && ctx.password === 'pw') return ctx.accept();
      if (ctx.method === 'publickey' && opts.keys && !(allowed instanceof Error)) {
        const same = ctx.key.algo === allowed.type && ctx.key.data.equals(allowed.getPublicSSH());
        if (same && !ctx.signature) return ctx.accept();
        if (same && ctx.blob && allowed.verify(ctx.blob, ctx.signature!, ctx.hashAlgo) === true)
          return ctx.accept();
      }
      ctx.reject(['publickey', 'password']);
    });
    client.on('ready', () => undefined);
    client.on('error', () => undefined);
  });
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  const host = {
    name: 'web-1',
    host: '127.0.0.1',
    port,
    user: 'deploy',
    knownHosts: [`[127.0.0.1]:${port} ${hostKey.public}`],
    fingerprints: []
  };
  return { requests, host, close: () => srv.close() };
}

const ssh = { insecureSkipHostKeyCheck: false, connectTimeoutMs: 5000, connectRetries: 0 };

test('with a key and a password, the key goes first and alone: no "none" request, no password sent', async () => {
  const s = await server({ keys: true, passwords: true });
  try {
    const shell = await connectHost(
      s.host,
      { ...ssh, privateKey: userKey.private, password: 'pw' },
      memoryLogger()
    );
    shell.close();
    expect(s.requests).toEqual(['publickey', 'publickey (signed)']);
  } finally {
    s.close();
  }
});

test('a key the server refuses falls back to the password', async () => {
  const s = await server({ keys: false, passwords: true });
  try {
    const shell = await connectHost(
      s.host,
      { ...ssh, privateKey: userKey.private, password: 'pw' },
      memoryLogger()
    );
    shell.close();
    expect(s.requests).toEqual(['publickey', 'password']);
  } finally {
    s.close();
  }
});

test('with only a password, that is the one request', async () => {
  const s = await server({ keys: true, passwords: true });
  try {
    const shell = await connectHost(s.host, { ...ssh, password: 'pw' }, memoryLogger());
    shell.close();
    expect(s.requests).toEqual(['password']);
  } finally {
    s.close();
  }
});
