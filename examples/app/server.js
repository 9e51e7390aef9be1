// The sample service deployguard's demo and tests deploy. It serves its release's VERSION file.
// A FAULT file in the release makes it misbehave on purpose:
//   crash      exits right after start (systemd sees it fail, or restart in a loop)
//   unhealthy  runs, but /health answers 500
//   late-crash answers for CRASH_AFTER_MS (default 20000) and then exits
//   stubborn   ignores SIGTERM, so only SIGKILL stops it
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

http
  .createServer((req, res) => {
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
  })
  .listen(port, '127.0.0.1', () => console.log(`version ${version} listening on 127.0.0.1:${port}`));
