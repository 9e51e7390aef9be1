#!/usr/bin/env node
// deployguard's command. scripts/bundle.mjs copies this file to dist/cli/index.cjs; the code it runs
// is the bundle beside it, dist/bundle/index.cjs.
//
// The CLI starts again and again (cron, a laptop, a fleet of checks), and a cold start spends about
// half its time compiling the 3 MB bundle. So the bundle is compiled through V8's code cache, kept
// per user in ~/.cache/deployguard/compile-cache (or under an absolute $XDG_CACHE_HOME): after a
// command succeeded, the code it compiled is written there, and the next start of that command
// reads it instead of compiling. This works on every Node the CLI supports (Node's own cache needs
// 22.8).
//
// V8 runs cached code for any source of the same length, so whoever can write the cache can run
// code as the user: the cache is used only where nobody else can write.
// - Every directory from / down to the cache belongs to this user or root and is closed to others'
//   writes (or sticky), so no part of the path can be swapped. A `sudo` that keeps HOME finds the
//   user's home, not root's, and uses no cache (and creates nothing there).
// - The cache directory is this user's, mode 0700; one found open to others is emptied first.
// - A file is read only when it is a plain file of this user's, mode 0600, with one link, opened
//   without following a symlink; it names the SHA-256 of the bundle it was made from and of its
//   own contents, so a file from another bundle or a damaged one is never handed to V8.
// - Files are written whole (a temporary file renamed into place), never half.
// NODE_DISABLE_COMPILE_CACHE=1 turns the cache off. Any failure of the cache costs a slower start,
// nothing else. (src/io/user-cache.ts applies the same rules to the CLI's other cache.)
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const BUNDLE = path.join(__dirname, '..', 'bundle', 'index.cjs');
const MAGIC = 'deployguard-v8-cache 1\n';
/** The CLI's commands (src/cli.ts): each caches the code it ran in a file of its own. */
const COMMANDS = ['deploy', 'rollback', 'check', 'preflight', 'history', 'init', 'pin', 'schema', 'demo'];

/** Whether nobody but this user and root can change `dir` or any directory above it. */
function trusted(dir, uid) {
  for (let d = dir; ; d = path.dirname(d)) {
    const st = fs.lstatSync(d);
    if (st.uid !== uid && st.uid !== 0) return false;
    if (st.isSymbolicLink()) {
      if (!trusted(fs.realpathSync(d), uid)) return false;
    } else if (!st.isDirectory() || (st.mode & 0o022 && !(st.mode & 0o1000))) return false;
    if (path.dirname(d) === d) return true;
  }
}

/** The cache directory, made if need be, or undefined when there is none to trust. */
function cacheDir() {
  if (process.env.NODE_DISABLE_COMPILE_CACHE || typeof process.getuid !== 'function') return undefined;
  const uid = process.getuid();
  const xdg = process.env.XDG_CACHE_HOME;
  const base =
    xdg && path.isAbsolute(xdg) ? xdg : path.join(process.env.HOME || require('node:os').homedir(), '.cache');
  const dir = path.join(base, 'deployguard', 'compile-cache');
  let have = dir;
  while (!fs.existsSync(have)) have = path.dirname(have);
  // Above the directory: nobody else's. The directory itself is judged (and mended) below.
  if (!trusted(have === dir ? path.dirname(dir) : have, uid)) return undefined;
  // The missing part is made one directory at a time, each of them this user's and closed.
  for (const part of path.relative(have, dir).split(path.sep).filter(Boolean)) {
    have = path.join(have, part);
    fs.mkdirSync(have, { mode: 0o700 });
  }
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid) return undefined;
  if (st.mode & 0o077) {
    // Open to others until now: what is in it may be theirs.
    for (const name of fs.readdirSync(dir)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    fs.chmodSync(dir, 0o700);
  }
  return dir;
}

/**
 * One file per Node version, command (each compiles, and so caches, other code) and bundle, so two
 * versions of deployguard used in turn each keep theirs.
 */
function cacheFile(dir, args, bundleHash) {
  const name = COMMANDS.includes(args[0]) ? args[0] : 'default';
  return path.join(dir, `cli-${process.version}-${process.arch}-${name}-${bundleHash.slice(0, 16)}.v8`);
}

/** Files of other versions and commands not used for 30 days go (and temporary files left behind). */
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

/** The cached code in `file` when it is this user's own, made from this bundle and whole, else undefined. */
function readCache(file, bundleHash) {
  let fd;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.uid !== process.getuid() || st.mode & 0o077 || st.nlink !== 1) return undefined;
    const data = fs.readFileSync(fd);
    // MAGIC, the bundle's hash and the payload's hash, each on a line of its own, then the payload.
    const head = MAGIC.length + 65 + 65;
    if (data.length <= head || data.toString('latin1', 0, MAGIC.length) !== MAGIC) return undefined;
    const [forBundle, payloadHash] = data.toString('latin1', MAGIC.length, head).split('\n');
    const payload = data.subarray(head);
    if (forBundle !== bundleHash || payloadHash !== sha256(payload)) return undefined;
    // Used: kept by the prune (its clock is the file's mtime), touched at most once a day.
    if (Date.now() - st.mtimeMs > 86400_000) fs.futimesSync(fd, new Date(), new Date());
    return payload;
  } finally {
    fs.closeSync(fd);
  }
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
    // Written after the command succeeded (not for its help): the cache then holds every function
    // a real run of it compiled.
    done: code => {
      if (code !== 0 || args.includes('--help') || args.includes('-h')) return;
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
  done(code);
});
