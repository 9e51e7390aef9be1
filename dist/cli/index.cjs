#!/usr/bin/env node
// deployguard's cli entry point; the code is in ../bundle (built by scripts/bundle.mjs).
try {
  const m = require('node:module');
  if (m.enableCompileCache && !process.env.NODE_DISABLE_COMPILE_CACHE) {
    const path = require('node:path');
    const fs = require('node:fs');
    const xdg = process.env.XDG_CACHE_HOME;
    const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(require('node:os').homedir(), '.cache');
    const dir = path.join(base, 'deployguard', 'compile-cache');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = fs.lstatSync(dir);
    if (st.isDirectory() && st.uid === process.getuid()) {
      if (st.mode & 0o077) fs.chmodSync(dir, 0o700);
      m.enableCompileCache(dir);
    }
  }
} catch {
  // No cache: a slower start, nothing else.
}
require('../bundle/index.cjs').cli(process.argv.slice(2)).then(code => {
  process.exitCode = code;
});
