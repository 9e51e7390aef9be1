/** The TCP connection deployguard opens itself before the SSH handshake, and its errors. */
import { createServer } from 'node:net';
import { openTcp, tcpError } from '../../src/io/ssh.js';

test('a refused port fails with ECONNREFUSED and the address, as the hints expect', async () => {
  // A port that was just free: bound, then closed.
  const server = createServer();
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise(resolve => server.close(resolve));
  await expect(openTcp('127.0.0.1', port, 5000)).rejects.toThrow(`ECONNREFUSED 127.0.0.1:${port}`);
});

test('the socket it opens has Nagle off before the first byte', async () => {
  const server = createServer(s => s.end());
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  try {
    const sock = await openTcp('127.0.0.1', port, 5000);
    // Node records the option it applied; a socket opened without noDelay reports false here.
    const symbol = Object.getOwnPropertySymbols(sock).find(x => x.description === 'kSetNoDelay');
    expect(symbol && (sock as unknown as Record<symbol, boolean>)[symbol]).toBe(true);
    sock.destroy();
  } finally {
    server.close();
  }
});

test('an AggregateError with no message (every address of a name refused) keeps its code', () => {
  const aggregate = Object.assign(new AggregateError([], ''), { code: 'ECONNREFUSED' });
  const err = tcpError(aggregate, 'app.example', 22) as Error & { code?: string };
  expect(err.message).toBe('connect ECONNREFUSED app.example:22');
  expect(err.code).toBe('ECONNREFUSED');
  const plain = new Error('connect ETIMEDOUT 10.0.0.1:22');
  expect(tcpError(plain, '10.0.0.1', 22)).toBe(plain);
});
