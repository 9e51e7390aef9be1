#!/usr/bin/env node
// Bundles deployguard with ncc into one file, dist/bundle/index.cjs: every step of every action
// (the top-level one and the sub-actions) and the CLI. Each entry point (an action's
// `runs.main`, the post step) is a two-line file in dist/<name>/ that calls into it, and the
// `deployguard` command is src/entries/cli.cjs, which loads it through a code cache: the same code
// is neither built nor shipped more than once.
// --check: bundle into a temporary directory and fail when it differs from the committed dist/.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
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
const CLI_ENTRY = 'src/entries/cli.cjs';
/** dist/<name>/index.cjs for each entry point: what it calls in the bundle. */
const stubs = {
  main: "runAction('all');",
  'pre-deploy': "runAction('pre-deploy');",
  deploy: "runAction('deploy');",
  'post-deploy': "runAction('post-deploy');",
  rollback: "runAction('rollback');",
  post: 'runPost();'
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
for (const [name, call] of Object.entries(stubs)) {
  mkdirSync(join(out, name), { recursive: true });
  writeFileSync(
    join(out, name, 'index.cjs'),
    `// deployguard's ${name} entry point; the code is in ../bundle (built by scripts/bundle.mjs).\nrequire('../bundle/index.cjs').${call}\n`
  );
}
// The command's entry point loads the bundle through a code cache of the user's own (see the file).
mkdirSync(join(out, 'cli'), { recursive: true });
copyFileSync(CLI_ENTRY, join(out, 'cli', 'index.cjs'));
chmodSync(join(out, 'cli', 'index.cjs'), 0o755);

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
