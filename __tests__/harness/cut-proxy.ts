/**
 * A TCP proxy between deployguard and a real sshd that can cut a connection at an exact point:
 * after N bytes have crossed it (both directions counted), both sockets are destroyed, as when a
 * link drops or a NAT forgets the flow. Only the first connection after `arm` is cut; the ones
 * after it (a reconnect, the next deploy) pass untouched. Without arming it only counts, which is
 * how a trial finds out how many bytes a whole deploy takes.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface CutProxy {
  readonly port: number;
  /** Cuts the next connection once `afterBytes` bytes have crossed it. */
  arm(afterBytes: number): void;
  /** Cuts every connection open now. */
  cutNow(): void;
  /** Bytes that crossed each connection since the last `reset`, in order of opening. */
  readonly connections: readonly number[];
  /** How many connections were cut, and at which byte. */
  readonly cuts: readonly number[];
  reset(): void;
  close(): Promise<void>;
}

export async function startCutProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<CutProxy> {
  let armed: number | undefined;
  // One counter per connection: a connection still closing after a reset keeps counting its own.
  let connections: { bytes: number }[] = [];
  const cuts: number[] = [];
  const open = new Set<Socket>();
  const cutters = new Set<() => void>();
  const server: Server = createServer(client => {
    const counter = { bytes: 0 };
    connections.push(counter);
    const cutAt = armed;
    armed = undefined;
    const upstream = connect({ host: targetHost, port: targetPort });
    open.add(client);
    open.add(upstream);
    let cut = false;
    const cutHere = () => {
      if (cut) return;
      cut = true;
      cuts.push(counter.bytes);
      client.destroy();
      upstream.destroy();
    };
    cutters.add(cutHere);
    client.on('close', () => cutters.delete(cutHere));
    const count = (n: number) => {
      counter.bytes += n;
      if (cutAt !== undefined && counter.bytes >= cutAt) cutHere();
    };
    // Forward chunk by chunk, counting first: the chunk that crosses the mark is dropped whole.
    const pipe = (from: Socket, to: Socket) => {
      from.on('data', (chunk: Buffer) => {
        count(chunk.length);
        if (!cut && !to.destroyed) to.write(chunk);
      });
      from.on('end', () => to.end());
      from.on('close', () => {
        open.delete(from);
        to.destroy();
      });
      from.on('error', () => to.destroy());
    };
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the proxy has no port');
  return {
    port: address.port,
    arm: afterBytes => (armed = afterBytes),
    cutNow: () => {
      for (const cut of [...cutters]) cut();
    },
    get connections() {
      return connections.map(c => c.bytes);
    },
    cuts,
    reset: () => {
      connections = [];
    },
    close: () =>
      new Promise<void>(resolve => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      })
  };
}
