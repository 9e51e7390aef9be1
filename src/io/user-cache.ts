import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';

/**
 * A directory of this user's own for what the CLI keeps between runs: `~/.cache/deployguard/NAME`
 * (or under an absolute `$XDG_CACHE_HOME`; a relative one would be the working directory's, a
 * checkout anyone may have written), made if need be. What is kept there decides what a deploy
 * reads again, so it is used only where nobody else can write: every directory from / down to it
 * belongs to this user or root and is closed to others' writes (or sticky), so no part of the path
 * can be swapped; a `sudo` that keeps HOME finds the user's home and uses (and makes) nothing.
 * The directory itself is this user's, mode 0700; one found open to others is emptied first.
 * Undefined when there is none to trust: then everything is computed afresh.
 * (The CLI's entry point, src/entries/cli.cjs, applies the same rules to its code cache.)
 */
export function userCacheDir(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (typeof process.getuid !== 'function') return undefined;
  const uid = process.getuid();
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), '.cache');
  const dir = join(base, 'deployguard', name);
  try {
    let have = dir;
    while (!existsSync(have)) have = dirname(have);
    // Above the directory: nobody else's. The directory itself is judged (and mended) below.
    if (!trustedDir(have === dir ? dirname(dir) : have, uid)) return undefined;
    // The missing part is made one directory at a time, each of them this user's and closed.
    for (const part of relative(have, dir).split(sep).filter(Boolean)) {
      have = join(have, part);
      mkdirSync(have, { mode: 0o700 });
    }
    const st = lstatSync(dir);
    if (!st.isDirectory() || st.uid !== uid) return undefined;
    if (st.mode & 0o077) {
      // Open to others until now: what is in it may be theirs.
      for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true });
      chmodSync(dir, 0o700);
    }
    return dir;
  } catch {
    return undefined;
  }
}

/** Whether nobody but `uid` and root can change `dir` or any directory above it. */
export function trustedDir(dir: string, uid: number): boolean {
  for (let d = dir; ; d = dirname(d)) {
    const st = lstatSync(d);
    if (st.uid !== uid && st.uid !== 0) return false;
    if (st.isSymbolicLink()) {
      if (!trustedDir(realpathSync(d), uid)) return false;
    } else if (!st.isDirectory() || (st.mode & 0o022 && !(st.mode & 0o1000))) return false;
    if (dirname(d) === d) return true;
  }
}
