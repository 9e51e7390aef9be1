#!/usr/bin/env node
// Bundles deployguard with ncc into one file, dist/bundle/index.cjs: every step of every action
// (the top-level one and the sub-actions) and the CLI. Each entry point (an action's
// `runs.main`, the post step, the `deployguard` command) is a two-line file in dist/<name>/ that
// calls into it, so the same code is neither built nor shipped more than once.
// --check: bundle into a temporary directory and fail when it differs from the committed dist/.
import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  existsSync,
  writeFileSync
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const ENTRY = 'src/entries/bundle.cjs';
/** dist/<name>/index.cjs for each entry point: what it calls in the bundle. */
const stubs = {
  main: "runAction('all');",
  'pre-deploy': "runAction('pre-deploy');",
  deploy: "runAction('deploy');",
  'post-deploy': "runAction('post-deploy');",
  rollback: "runAction('rollback');",
  post: 'runPost();',
  cli: 'cli(process.argv.slice(2)).then(code => {\n  process.exitCode = code;\n});'
};
const check = process.argv.includes('--check');
const out = check ? mkdtempSync(join(tmpdir(), 'deployguard-dist-')) : 'dist';

function files(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true })
    .map(f => join(dir, String(f)))
    .filter(f => statSync(f).isFile())
    .map(f => relative(dir, f))
    .sort();
}

if (!check) rmSync(out, { recursive: true, force: true });
execFileSync(
  'npx',
  [
    'ncc',
    'build',
    ENTRY,
    '-o',
    join(out, 'bundle'),
    '--license',
    'licenses.txt',
    '--quiet',
    // ssh2's optional native addons are compiled per machine; ssh2 runs without them, and
    // leaving them out keeps dist/ identical on every machine.
    '--external',
    'cpu-features'
  ],
  { stdio: 'inherit' }
);
// ncc copies ssh2's compiled crypto binding next to the bundle when one was built here.
for (const f of files(join(out, 'bundle'))) if (f.endsWith('.node')) rmSync(join(out, 'bundle', f));
/**
 * The CLI starts again and again (cron, a laptop): on Node 22.8 and later it keeps the compiled bundle
 * in a cache of the user's own, so later starts skip parsing 3 MB of code. Not in the shared temp
 * directory (Node's default), where another account could plant compiled code; and only in a
 * directory that is really this user's (not a symlink, owned by them, closed to others), so a
 * `sudo` that keeps HOME never loads code from the invoking user's cache. Older Node has no such
 * cache and starts without one; NODE_DISABLE_COMPILE_CACHE=1 turns it off.
 */
const compileCache = `try {
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
`;
for (const [name, call] of Object.entries(stubs)) {
  mkdirSync(join(out, name), { recursive: true });
  const prelude = name === 'cli' ? `#!/usr/bin/env node\n` : '';
  const cache = name === 'cli' ? compileCache : '';
  writeFileSync(
    join(out, name, 'index.cjs'),
    `${prelude}// deployguard's ${name} entry point; the code is in ../bundle (built by scripts/bundle.mjs).\n${cache}require('../bundle/index.cjs').${call}\n`,
    { mode: name === 'cli' ? 0o755 : 0o644 }
  );
}

// ncc names the chunks of lazily loaded modules `<n>.index.cjs.js`; this package is ESM
// ("type": "module"), so dist/ says its .js files are CommonJS.
writeFileSync(join(out, 'package.json'), '{ "type": "commonjs" }\n');

if (check) {
  const a = files('dist');
  const b = files(out);
  const diff = [];
  for (const f of new Set([...a, ...b])) {
    const x = a.includes(f) ? readFileSync(join('dist', f)) : null;
    const y = b.includes(f) ? readFileSync(join(out, f)) : null;
    if (!x || !y || !x.equals(y)) diff.push(f);
  }
  rmSync(out, { recursive: true, force: true });
  if (diff.length) {
    console.error(
      `dist/ does not match a fresh bundle: ${diff.join(', ')}\nRun \`npm run bundle\` and commit dist/.`
    );
    process.exit(1);
  }
  console.log('dist/ matches a fresh bundle.');
}
