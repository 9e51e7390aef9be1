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

/** A server that takes the password `pw`, and `userKey` when `keys`; it records each request. */
async function server(keys: boolean) {
  const requests: string[] = [];
  const srv = new Server({ hostKeys: [hostKey.private] }, client => {
    client.on('authentication', ctx => {
      requests.push(ctx.method === 'publickey' && ctx.signature ? 'publickey (signed)' : ctx.method);
      if (ctx.method === 'password' && ctx.password === 'pw') return ctx.accept();
      if (ctx.method === 'publickey' && keys && !(allowed instanceof Error)) {
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

test.each([
  {
    what: 'with a key and a password, the key goes first and alone: no "none" request, no password sent',
    keys: true,
    privateKey: userKey.private,
    requests: ['publickey', 'publickey (signed)']
  },
  {
    what: 'a key the server refuses falls back to the password',
    keys: false,
    privateKey: userKey.private,
    requests: ['publickey', 'password']
  },
  {
    what: 'with only a password, that is the one request',
    keys: true,
    privateKey: undefined,
    requests: ['password']
  }
])('$what', async ({ keys, privateKey, requests }) => {
  const s = await server(keys);
  try {
    const shell = await connectHost(s.host, { ...ssh, privateKey, password: 'pw' }, memoryLogger());
    shell.close();
    expect(s.requests).toEqual(requests);
  } finally {
    s.close();
  }
});
