#!/usr/bin/env node
// CommonJS entry of the `deployguard` command (see main.cjs for why CommonJS).
require('../cli.ts')
  .main(process.argv.slice(2))
  .then(code => {
    process.exitCode = code;
  });
