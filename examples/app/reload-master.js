// A graceful-reload front for the sample app, for `switch: reload`. It stays the unit's main
// process and holds the listening socket; the app runs in a worker forked from the release that
// `current` names at that moment. On SIGHUP (systemd's ExecReload=/bin/kill -HUP $MAINPID) it
// forks a worker from the release `current` names now, waits until that worker listens, and only
// then lets the old worker finish its requests and exit: no connection is refused in between.
//
//   ExecStart=/usr/bin/node /srv/app/current/reload-master.js
//   ExecReload=/bin/kill -HUP $MAINPID
//   Environment=APP_DIR=/srv/app/current PORT=8080
const cluster = require('node:cluster');
const fs = require('node:fs');
const path = require('node:path');

const appDir = process.env.APP_DIR || path.join(__dirname, '..', 'current');

function fork() {
  // The link is read now, so the worker runs the release live at this moment (and its
  // __dirname, where it reads VERSION, is that release's directory).
  cluster.setupPrimary({ exec: fs.realpathSync(path.join(appDir, 'server.js')) });
  return cluster.fork();
}

let current = fork();
let reloading = false;

process.on('SIGHUP', () => {
  if (reloading) return;
  reloading = true;
  const old = current;
  let next;
  try {
    next = fork();
  } catch (err) {
    console.error(`ERROR reload failed: ${err.message}; the old worker keeps serving`);
    reloading = false;
    return;
  }
  next.once('listening', () => {
    current = next;
    reloading = false;
    old.disconnect();
    console.log(`reloaded: worker ${next.process.pid} serves, worker ${old.process.pid} retires`);
  });
  next.once('exit', code => {
    if (current !== next) {
      console.error(`ERROR reload failed: the new worker exited (${code}); the old worker keeps serving`);
      reloading = false;
    }
  });
});

cluster.on('exit', (worker, code) => {
  // The serving worker died outside a reload: the whole service is down, and systemd must see it.
  if (worker === current && !reloading) {
    console.error(`ERROR worker exited (${code})`);
    process.exit(1);
  }
});

for (const sig of ['SIGTERM', 'SIGINT'])
  process.on(sig, () => {
    for (const w of Object.values(cluster.workers)) w.disconnect();
    setTimeout(() => process.exit(0), 2000).unref();
    cluster.disconnect(() => process.exit(0));
  });
