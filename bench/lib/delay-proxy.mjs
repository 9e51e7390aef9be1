// A userspace TCP proxy that delays every byte by a fixed time in each direction: a long link
// on loopback without netem (which this machine lacks). One process serves a whole fleet.
//
//   node bench/lib/delay-proxy.mjs start DIR FLEET_DIR ONE_WAY_MS
//        -> one listening port per port of FLEET_DIR/ports, forwarding to it; DIR/ports,
//           DIR/known_hosts (the fleet's host key under the proxy ports), DIR/user_key, DIR/pid
//   node bench/lib/delay-proxy.mjs stop DIR     -> stops the proxy by the PID in DIR/pid
//
// Each chunk read from one side is written to the other ONE_WAY_MS later, in order, so a round
// trip costs twice that (25 ms each way: a 50 ms RTT) and bandwidth is untouched. The proxy stops
// reading from a side while more than a few MiB of it wait in its queue.
import { spawn } from 'node:child_process';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';

const HIGH = 8 * 1024 * 1024;
const LOW = 2 * 1024 * 1024;

function fail(msg) {
  console.error(`delay-proxy: ${msg}`);
  process.exit(1);
}

/** Pipes `from` into `to`, each chunk `delay` ms after it arrived, in order. */
function delayed(from, to, delay) {
  const queue = [];
  let bytes = 0;
  let timer;
  let ended = false;
  const flush = () => {
    timer = undefined;
    const now = Date.now();
    while (queue.length && queue[0].at <= now) {
      const { buf } = queue.shift();
      if (buf === null) {
        to.end();
        return;
      }
      bytes -= buf.length;
      to.write(buf);
    }
    if (bytes < LOW && from.isPaused()) from.resume();
    if (queue.length) timer = setTimeout(flush, Math.max(0, queue[0].at - Date.now()));
  };
  const push = buf => {
    queue.push({ at: Date.now() + delay, buf });
    if (buf) bytes += buf.length;
    if (bytes > HIGH) from.pause();
    if (!timer) timer = setTimeout(flush, delay);
  };
  from.on('data', push);
  from.on('end', () => {
    if (!ended) push(null);
    ended = true;
  });
}

async function serve(dir, fleetDir, delay) {
  const targets = (await readFile(join(fleetDir, 'ports'), 'utf8')).split('\n').filter(Boolean).map(Number);
  const ports = [];
  for (const target of targets) {
    const server = createServer({ noDelay: true }, client => {
      const upstream = connect({ host: '127.0.0.1', port: target, noDelay: true });
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close);
      upstream.on('error', close);
      client.on('close', () => setTimeout(() => upstream.destroy(), delay + 100));
      upstream.on('close', () => setTimeout(() => client.destroy(), delay + 100));
      delayed(client, upstream, delay);
      delayed(upstream, client, delay);
    });
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    ports.push(server.address().port);
  }
  // The fleet's host key, now answering on the proxy ports.
  const known = (await readFile(join(fleetDir, 'known_hosts'), 'utf8')).split('\n').filter(Boolean);
  const byPort = new Map(
    known.map(l => [Number(/^\[127\.0\.0\.1\]:(\d+) /.exec(l)?.[1]), l.replace(/^\S+ /, '')])
  );
  await writeFile(
    join(dir, 'known_hosts'),
    ports.map((p, i) => `[127.0.0.1]:${p} ${byPort.get(targets[i])}`).join('\n') + '\n'
  );
  await copyFile(join(fleetDir, 'user_key'), join(dir, 'user_key'));
  await writeFile(join(dir, 'ports'), ports.join('\n') + '\n');
}

const [cmd, dir, fleetDir, ms] = process.argv.slice(2);
if (cmd === 'serve') {
  await serve(dir, fleetDir, Number(ms));
} else if (cmd === 'start') {
  if (!dir || !fleetDir || !(Number(ms) >= 0)) fail('usage: start DIR FLEET_DIR ONE_WAY_MS');
  const child = spawn(process.execPath, [process.argv[1], 'serve', dir, fleetDir, ms], {
    detached: true,
    stdio: 'ignore'
  });
  child.unref();
  await writeFile(join(dir, 'pid'), `${child.pid}\n`);
  for (let i = 0; i < 100 && !existsSync(join(dir, 'ports')); i++) await new Promise(r => setTimeout(r, 100));
  if (!existsSync(join(dir, 'ports'))) fail('the proxy did not start');
} else if (cmd === 'stop') {
  const pid = Number((await readFile(join(dir, 'pid'), 'utf8')).trim());
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
} else {
  fail('usage: start DIR FLEET_DIR ONE_WAY_MS | stop DIR');
}
