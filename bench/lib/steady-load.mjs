// A steady load: RATE requests per second, evenly spaced, over keep-alive connections, for SECONDS.
// Prints one JSON object: counts, failures by kind, latency percentiles, and when each failure
// happened (ms since the start), so failures can be matched with deploy steps.
//
//   node steady-load.mjs URL RATE SECONDS [CONNECTIONS]
//
// SIGTERM ends the run early (what has been sent is still counted and awaited); SECONDS 0 runs
// until then.
//
// Why not only autocannon: its -R limiter sends each second's budget in a burst at the start of
// the second, and when a server closes a keep-alive connection after a response (as an exiting
// nginx worker does) it writes one more request on that socket and leaves it in its queue, so every
// later response on that connection is timed from the previous request's start (seen: p99 ~900 ms
// while nginx's own $request_time never exceeded 12 ms). This client behaves like an ordinary HTTP
// client: node's agent honours `Connection: close`, nothing is retried, and every request is timed
// from the moment it was due.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { clearInterval } from 'node:timers';

const [url, rateArg, secondsArg, connArg] = process.argv.slice(2);
if (!url || !rateArg || !secondsArg) {
  console.error('usage: node steady-load.mjs URL RATE SECONDS [CONNECTIONS]');
  process.exit(2);
}
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(connArg ?? 10) });
const TIMEOUT_MS = 5000;

const latencies = [];
const failures = [];
let sent = 0;
let ok = 0;
let non2xx = 0;
let pending = 0;
const start = performance.now();
const startedAt = Date.now();

function one(due) {
  sent++;
  pending++;
  const finish = (kind, status) => {
    pending--;
    const ms = performance.now() - due;
    latencies.push(ms);
    if (kind === 'ok') ok++;
    else {
      if (kind === 'status') non2xx++;
      failures.push({ at: Math.round(due - start), kind, status, ms: Math.round(ms) });
    }
  };
  const req = http.get(url, { agent, timeout: TIMEOUT_MS }, res => {
    res.resume();
    res.on('end', () =>
      finish(res.statusCode >= 200 && res.statusCode < 300 ? 'ok' : 'status', res.statusCode)
    );
    res.on('error', e => finish(e.code ?? e.message));
  });
  req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
  req.on('error', e => finish(e.code ?? e.message));
}

// Every 5 ms, send what is due by now: even spacing without a timer per request.
const interval = 1000 / rate;
let next = start;
let end = seconds > 0 ? start + seconds * 1000 : Infinity;
process.on('SIGTERM', () => {
  end = Math.min(end, performance.now());
});
const timer = setInterval(() => {
  const now = performance.now();
  while (next <= now && next < end) {
    one(next);
    next += interval;
  }
  if (next >= end) clearInterval(timer);
}, 5);

await new Promise(resolve => {
  const wait = setInterval(() => {
    if (next >= end && pending === 0) {
      clearInterval(wait);
      resolve();
    }
  }, 50);
});
agent.destroy();

latencies.sort((a, b) => a - b);
const pct = p =>
  latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] : 0;
const byKind = {};
for (const f of failures) byKind[f.kind] = (byKind[f.kind] ?? 0) + 1;
const round = n => Math.round(n * 10) / 10;
console.log(
  JSON.stringify({
    startedAt,
    seconds: round((Math.min(end, performance.now()) - start) / 1000),
    sent,
    ok,
    failed: failures.length,
    non2xx,
    errors: failures.length - non2xx,
    byKind,
    p50: round(pct(50)),
    p99: round(pct(99)),
    max: round(latencies.at(-1) ?? 0),
    failures
  })
);
