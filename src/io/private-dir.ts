import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  lstatSync,
  mkdtempSync,
  openSync,
  rmdirSync,
  writeSync
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Where the CLI and the action leave their files (the SARIF report, the deployment record).
 *
 * A fixed folder under a shared temp directory (`/tmp/deployguard/...`) lets another user of the
 * machine plant a symlink there, and a run as root then writes through it over any file. So each
 * process makes its own directory with `mkdtemp` (mode 0700, a random name: nobody else can
 * create, rename or replace anything in it), and every file in it is created new, never opened
 * through a symlink: O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600.
 */

/** The flags every file written here is opened with. */
const PRIVATE_FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

const made = new Map<string, string>();

/**
 * This process's private directory, made on first use: under `RUNNER_TEMP` in GitHub Actions
 * (the runner empties it after the job), else under the system temp directory. Later calls
 * return the same directory, so one run's files sit together.
 */
export function privateDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.GITHUB_ACTIONS === 'true' && env.RUNNER_TEMP ? env.RUNNER_TEMP : tmpdir();
  let dir = made.get(base);
  if (!dir) {
    const fresh = mkdtempSync(join(base, 'deployguard-'));
    made.set(base, fresh);
    // A run that wrote nothing leaves nothing behind (rmdir removes only an empty directory).
    process.once('exit', () => {
      try {
        rmdirSync(fresh);
      } catch {
        // It holds this run's files: they stay for the user (log-path, sarif-path).
      }
    });
    dir = fresh;
  }
  return dir;
}

/** Ends a name with `-2`, `-3`, ... before its extension. */
function numbered(name: string, n: number): string {
  if (n === 1) return name;
  const dot = name.lastIndexOf('.');
  return dot > 0 ? `${name.slice(0, dot)}-${n}${name.slice(dot)}` : `${name}-${n}`;
}

/**
 * Writes `text` to a new file `name` in `dir` and returns its path. The directory must be a real
 * directory (not a symlink) that only this user can write to: one from {@link privateDir}. A name
 * already taken is never overwritten or followed: the next free `name-2.ext`, `name-3.ext` is used.
 */
export function writePrivateFile(dir: string, name: string, text: string | Uint8Array): string {
  if (name.includes('/') || name === '.' || name === '..' || name === '')
    throw new Error(`not a plain file name: ${JSON.stringify(name)}`);
  const st = lstatSync(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) {
    throw new Error(
      `${dir} is not a private directory (a real directory owned by this user, writable only by it); nothing was written there`
    );
  }
  for (let n = 1; n <= 100; n++) {
    const path = join(dir, numbered(name, n));
    let fd: number;
    try {
      fd = openSync(path, PRIVATE_FILE_FLAGS, 0o600);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // EEXIST: taken (a symlink included, thanks to O_EXCL); ELOOP: a symlink seen by O_NOFOLLOW.
      if (code === 'EEXIST' || code === 'ELOOP') continue;
      throw err;
    }
    try {
      // The file is ours and new: a regular file, nobody else's.
      if (!fstatSync(fd).isFile()) throw new Error(`${path} is not a regular file`);
      const data = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
      for (let off = 0; off < data.length;) off += writeSync(fd, data, off, data.length - off);
    } finally {
      closeSync(fd);
    }
    return path;
  }
  throw new Error(`could not create a new file for ${name} in ${dir}: 100 names are taken`);
}

/**
 * Writes a file the user named (`--record FILE`, `init --config FILE`): created or truncated,
 * but never through a symlink, so a link planted at that path cannot send a root run's output
 * over another file. Throws ELOOP for a symlink, and refuses anything but a regular file.
 */
export function writeFileNoFollow(path: string, text: string, mode = 0o600): void {
  // O_NONBLOCK: a FIFO planted at the path fails to open instead of hanging the run.
  const fd = openSync(
    path,
    constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK,
    mode
  );
  try {
    if (!fstatSync(fd).isFile()) throw new Error(`${path} is not a regular file; nothing was written`);
    // Truncated only once it is known to be a regular file.
    ftruncateSync(fd, 0);
    const data = Buffer.from(text, 'utf8');
    for (let off = 0; off < data.length;) off += writeSync(fd, data, off, data.length - off);
  } finally {
    closeSync(fd);
  }
}
