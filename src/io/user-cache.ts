import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/**
 * A directory of this user's own for what the CLI keeps between runs: `~/.cache/deployguard/NAME`
 * (or under an absolute `$XDG_CACHE_HOME`; a relative one would be the working directory's, a
 * checkout anyone may have written), made if need be. Undefined when there is none to trust: a
 * symlink, a directory another account owns (a `sudo` that keeps HOME), or none that can be made.
 * What is kept there only ever saves time: without it everything is computed afresh.
 * (The CLI's entry point, src/entries/cli.cjs, applies the same rules to its code cache.)
 */
export function userCacheDir(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (typeof process.getuid !== 'function') return undefined;
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache');
  const dir = join(base, 'deployguard', name);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    if (!st.isDirectory() || st.uid !== process.getuid()) return undefined;
    if (st.mode & 0o077) chmodSync(dir, 0o700);
    return dir;
  } catch {
    return undefined;
  }
}
