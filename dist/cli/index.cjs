#!/usr/bin/env node
// deployguard's cli entry point; the code is in ../bundle (built by scripts/bundle.mjs).
try {
  const m = require('node:module');
  if (m.enableCompileCache && !process.env.NODE_DISABLE_COMPILE_CACHE) {
    const base = process.env.XDG_CACHE_HOME || require('node:path').join(require('node:os').homedir(), '.cache');
    const dir = require('node:path').join(base, 'deployguard', 'compile-cache');
    require('node:fs').mkdirSync(dir, { recursive: true, mode: 0o700 });
    m.enableCompileCache(dir);
  }
} catch {
  // No cache: a slower start, nothing else.
}
require('../bundle/index.cjs').cli(process.argv.slice(2)).then(code => {
  process.exitCode = code;
});
