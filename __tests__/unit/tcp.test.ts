/** The TCP connection deployguard opens itself before the SSH handshake, its errors, and its writes. */
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { coalesceWrites, openTcp, tcpError } from '../../src/io/ssh.js';

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

test('the writes of one tick leave together, in order, and in the same tick', async () => {
  const calls: string[][] = [];
  const sink = new Writable({
    writev(chunks, cb) {
      calls.push(chunks.map(c => String(c.chunk)));
      cb();
    },
    write(chunk, _enc, cb) {
      calls.push([String(chunk)]);
      cb();
    }
  });
  const stream = coalesceWrites(sink);
  // One packet as ssh2 writes it: its length, its body, its tag.
  stream.write('len');
  stream.write('body');
  expect(stream.write('tag')).toBe(true);
  expect(calls).toEqual([]);
  await new Promise(resolve => process.nextTick(resolve));
  expect(calls).toEqual([['len', 'body', 'tag']]);
  // The next tick's writes are a batch of their own, and a lone write goes out alone.
  stream.write('next');
  await new Promise(resolve => setImmediate(resolve));
  expect(calls).toEqual([['len', 'body', 'tag'], ['next']]);
});
