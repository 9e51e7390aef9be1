#!/usr/bin/env node
// deployguard's cli entry point; the code is in ../bundle (built by scripts/bundle.mjs).
require('../bundle/index.cjs').cli(process.argv.slice(2)).then(code => {
  process.exitCode = code;
});
