#!/usr/bin/env node
// deployguard's command. scripts/bundle.mjs copies this file to dist/cli/index.cjs; the code it runs
// is the bundle beside it, dist/bundle/index.cjs.
//
// The CLI starts again and again (cron, a laptop, a fleet of checks), and a cold start spends about
// half its time compiling the 3 MB bundle. So the bundle is compiled through V8's code cache, kept
// per user in ~/.cache/deployguard/compile-cache (or under an absolute $XDG_CACHE_HOME): after a
// command ran, the code it compiled is written there, and the next start of that command reads it
// instead of compiling. This works on every Node the CLI supports (Node's own cache needs 22.8).
//
// The cache is never trusted further than it is checked:
// - only a directory that is really this user's is used (not a symlink, owned by them, closed to
//   others), so a `sudo` that keeps HOME never loads code from the invoking user's cache, and
//   nothing goes to the shared temp directory, where another account could plant compiled code;
// - each file names the SHA-256 of the bundle it was made from and of its own contents: code
//   cached for another bundle (an upgrade) or a damaged file is ignored and written again, and V8
//   itself refuses code from another Node version or other flags;
// - files are written whole (a temporary file renamed into place), never half.
// NODE_DISABLE_COMPILE_CACHE=1 turns the cache off. Any failure of the cache costs a slower start,
// nothing else.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const BUNDLE = path.join(__dirname, '..', 'bundle', 'index.cjs');
const MAGIC = 'deployguard-v8-cache 1\n';

/** The cache directory, created if need be, or undefined when there is none to trust. */
function cacheDir() {
  if (process.env.NODE_DISABLE_COMPILE_CACHE || typeof process.getuid !== 'function') return undefined;
  const xdg = process.env.XDG_CACHE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(require('node:os').homedir(), '.cache');
  const dir = path.join(base, 'deployguard', 'compile-cache');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || st.uid !== process.getuid()) return undefined;
  if (st.mode & 0o077) fs.chmodSync(dir, 0o700);
  return dir;
}

/**
 * One file per Node version, command (each compiles, and so caches, other code) and bundle, so two
 * versions of deployguard used in turn each keep theirs.
 */
function cacheFile(dir, args, bundleHash) {
  const command = args.find(a => !a.startsWith('-'));
  const name = command && /^[a-z][a-z-]{0,23}$/.test(command) ? command : 'default';
  return path.join(dir, `cli-${process.version}-${process.arch}-${name}-${bundleHash.slice(0, 16)}.v8`);
}

/** Files of other versions and commands not written for 30 days go (and temporary files left behind). */
function prune(dir, keep) {
  const now = Date.now();
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    if (file === keep || !name.startsWith('cli-')) continue;
    const age = now - fs.lstatSync(file).mtimeMs;
    if (age > 30 * 86400_000 || (name.endsWith('.tmp') && age > 3600_000)) fs.rmSync(file, { force: true });
  }
}

const sha256 = data => require('node:crypto').createHash('sha256').update(data).digest('hex');

/** The cached code in `file` when it was made from this bundle and is whole, else undefined. */
function readCache(file, bundleHash) {
  let data;
  try {
    data = fs.readFileSync(file);
  } catch {
    return undefined;
  }
  // MAGIC, the bundle's hash and the payload's hash, each on a line of its own, then the payload.
  const head = MAGIC.length + 65 + 65;
  if (data.length <= head || data.toString('latin1', 0, MAGIC.length) !== MAGIC) return undefined;
  const [forBundle, payloadHash] = data.toString('latin1', MAGIC.length, head).split('\n');
  const payload = data.subarray(head);
  return forBundle === bundleHash && payloadHash === sha256(payload) ? payload : undefined;
}

function writeCache(file, bundleHash, payload) {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(
      tmp,
      Buffer.concat([Buffer.from(`${MAGIC}${bundleHash}\n${sha256(payload)}\n`), payload]),
      {
        mode: 0o600,
        flag: 'wx'
      }
    );
    fs.renameSync(tmp, file);
    prune(path.dirname(file), file);
  } catch {
    fs.rmSync(tmp, { force: true });
  }
}

/** The bundle's exports, compiled through the cache when there is one; `done` updates the cache. */
function load(args) {
  let dir;
  try {
    dir = cacheDir();
  } catch {
    dir = undefined;
  }
  if (!dir) return { bundle: require(BUNDLE), done: () => undefined };
  const vm = require('node:vm');
  const { createRequire, wrap } = require('node:module');
  const source = fs.readFileSync(BUNDLE, 'utf8');
  const bundleHash = sha256(source);
  const file = cacheFile(dir, args, bundleHash);
  const cachedData = readCache(file, bundleHash);
  // wrap() puts the CommonJS wrapper on the first line: line numbers in stack traces stay the bundle's.
  const script = new vm.Script(wrap(source), { filename: BUNDLE, cachedData });
  const mod = { exports: {}, filename: BUNDLE, id: BUNDLE, loaded: false };
  script
    .runInThisContext()
    .call(mod.exports, mod.exports, createRequire(BUNDLE), mod, BUNDLE, path.dirname(BUNDLE));
  mod.loaded = true;
  return {
    bundle: mod.exports,
    // Written after the command ran: the cache then holds every function it compiled.
    done: () => {
      if (cachedData && !script.cachedDataRejected) return;
      try {
        writeCache(file, bundleHash, script.createCachedData());
      } catch {
        // No cache this time.
      }
    }
  };
}

const args = process.argv.slice(2);
const { bundle, done } = load(args);
bundle.cli(args).then(code => {
  process.exitCode = code;
  done();
});
