#!/usr/bin/env node
// Bundles each entry point with ncc into dist/<name>/index.cjs.
// --check: bundle into a temporary directory and fail when it differs from the committed dist/.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const entries = {
  main: 'src/entries/main.cjs',
  post: 'src/entries/post.cjs',
  cli: 'src/entries/cli.cjs',
  'pre-deploy': 'src/entries/pre-deploy.cjs',
  deploy: 'src/entries/deploy.cjs',
  'post-deploy': 'src/entries/post-deploy.cjs',
  rollback: 'src/entries/rollback.cjs'
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
for (const [name, entry] of Object.entries(entries)) {
  if (!existsSync(entry)) continue;
  const dir = join(out, name);
  execFileSync(
    'npx',
    [
      'ncc',
      'build',
      entry,
      '-o',
      dir,
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
  for (const f of files(dir)) if (f.endsWith('.node')) rmSync(join(dir, f));
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
