// The sample service deployguard's demo and tests deploy. It serves its release's VERSION file.
// A FAULT file in the release makes it misbehave on purpose:
//   crash      exits right after start (systemd sees it fail, or restart in a loop)
//   unhealthy  runs, but /health answers 500
//   late-crash answers for CRASH_AFTER_MS (default 20000) and then exits
//   stubborn   ignores SIGTERM, so only SIGKILL stops it
//   log-errors answers and is healthy, but logs an ERROR line every 500 ms
//   slow-start listens only after SLOW_START_MS (default 4000): slow, yet healthy in the end
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const dir = __dirname;
const read = name => {
  try {
    return fs.readFileSync(path.join(dir, name), 'utf8').trim();
  } catch {
    return '';
  }
};
const version = read('VERSION') || 'unknown';
const fault = read('FAULT');
const port = Number(process.env.PORT || 8080);

if (fault === 'crash') {
  console.error(`ERROR version ${version}: cannot start (deliberate fault)`);
  process.exit(1);
}
if (fault === 'late-crash') {
  setTimeout(
    () => {
      console.error(`ERROR version ${version}: crashed (deliberate fault)`);
      process.exit(1);
    },
    Number(process.env.CRASH_AFTER_MS || 20000)
  );
}

if (fault === 'stubborn') {
  process.on('SIGTERM', () => console.error(`version ${version}: ignoring SIGTERM (deliberate fault)`));
}

if (fault === 'log-errors') {
  setInterval(
    () => console.error(`ERROR version ${version}: lost the database connection (deliberate fault)`),
    500
  );
}

const server = http.createServer((req, res) => {
  if (req.url === '/health') {
    if (fault === 'unhealthy') {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`unhealthy ${version}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`ok ${version}\n`);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`${version}\n`);
});
const listen = () =>
  server.listen(port, '127.0.0.1', () => console.log(`version ${version} listening on 127.0.0.1:${port}`));
if (fault === 'slow-start') setTimeout(listen, Number(process.env.SLOW_START_MS || 4000));
else listen();
