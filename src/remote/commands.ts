import { posix } from 'node:path';
import type { ServiceSettings } from '../settings/types.js';
import type { Layout } from './layout.js';
import { lines, sh, Shell, userScript } from './shell.js';

/**
 * Pure builders of every remote script deployguard runs. Nothing here touches a host: each
 * function returns shell text whose values went through `sh` (quoted), so tests can assert the
 * exact commands and a dry run can print them.
 */

/** Exit code the lock script uses for "held by someone else". */
export const LOCK_BUSY = 75;
/** Exit code of the lock refresh for "this lock is not ours any more". */
export const LOCK_LOST = 76;

/**
 * Every program the remote scripts of a deploy call, with the Debian package that ships it (what
 * a person installs when the preflight finds one missing). Shell built-ins are not listed, nor
 * `openssl`: a large upload hashes with it where the host has it, and with sha256sum where not.
 */
export const HOST_TOOLS: readonly { readonly tool: string; readonly pkg: string }[] = [
  ...'cat cp cut date df head ln ls mkdir mv nproc readlink rm rmdir sha256sum sleep split stat tail touch'
    .split(' ')
    .map(tool => ({ tool, pkg: 'coreutils' })),
  { tool: 'find', pkg: 'findutils' },
  { tool: 'xargs', pkg: 'findutils' },
  { tool: 'grep', pkg: 'grep' },
  { tool: 'sed', pkg: 'sed' },
  { tool: 'awk', pkg: 'mawk' },
  { tool: 'tar', pkg: 'tar' }
];

/** What the preflight part of the probe needs to know about the deploy. */
export interface PreflightProbe {
  readonly service: ServiceSettings;
  /** The tools to look for: HOST_TOOLS, plus systemctl, journalctl and sudo where used. */
  readonly tools: readonly string[];
  /** Programs whose absolute path the fix text needs (systemctl, journalctl). */
  readonly paths: readonly string[];
  /** Each command the deploy runs with `sudo -n`, as words; asked with `sudo -n -l`. */
  readonly sudo: readonly (readonly string[])[];
  /** Places the deploy creates: the nearest existing directory above each must be writable. */
  readonly creates: readonly string[];
  /** blue-green: the upstream file that the proxy's configuration must include. */
  readonly proxy?: { readonly upstreamFile: string };
}

/**
 * Read-only: the live release, the host's deployment record and, before them, the preflight's
 * facts (one round trip): `missing-tool=`, `path-NAME=`, `sudo-N=yes|no`, `unwritable=DIR`,
 * `disk-free-kb=`, `disk-dir=`, and the unit's `unit-KEY=value` lines. Judging them is
 * preflight.ts's job; nothing here fails on what it finds.
 */
export function probe(layout: Layout, pre?: PreflightProbe, more?: Shell): Shell {
  return lines(
    pre && preflightScript(layout, pre),
    // Anything else the deploy reads before the record (blue-green: the live colour).
    more,
    layout.strategy === 'releases'
      ? // Assigned first so that a failing readlink fails the script instead of reading as "none".
        // Kept in dg_live for what follows in the same script (see `previousReleaseFacts`).
        sh`if [ -L ${layout.current} ]; then dg_live=$(readlink -- ${layout.current}); printf 'current=%s\\n' "$dg_live"; fi`
      : sh`if [ -d ${layout.current} ]; then printf 'current=%s\\n' ${layout.current}; fi`,
    // The host's deployment record, for the last good deploy (scan range, rollback target).
    readDeployments(layout, PROBE_HISTORY_LINES)
  );
}

/**
 * The nearest existing directory above a path (the path itself when it is one), into `$d`: by
 * parameter expansion (each `dirname` would be a process of its own on the host).
 */
function nearestDir(path: string): Shell {
  return sh`d=${path}; while [ ! -d "$d" ]; do case $d in */*) d=\${d%/*}; d=\${d:-/} ;; *) d=. ;; esac; done`;
}

/** The preflight's read-only facts (see `probe`), on their own for `deployguard preflight`. */
export function preflightScript(layout: Layout, pre: PreflightProbe): Shell {
  return lines(
    sh`for tool in ${pre.tools}; do command -v "$tool" >/dev/null 2>&1 || echo "missing-tool=$tool"; done`,
    ...pre.paths.map(p => sh`printf 'path-%s=%s\\n' ${p} "$(command -v ${p} 2>/dev/null || true)"`),
    ...pre.creates.flatMap(c => [
      nearestDir(posix.dirname(c)),
      sh`[ -w "$d" ] || printf 'unwritable=%s\\n' "$d"`
    ]),
    // Free space where the upload lands (the staging directory, then the release, one filesystem).
    nearestDir(layout.stateDir),
    sh`printf 'disk-dir=%s\\n' "$d"`,
    // The fourth field of df's second line, read by the shell's own `read`.
    sh`df -Pk -- "$d" 2>/dev/null | { read -r _ && read -r _ _ _ free _ && echo "disk-free-kb=$free"; } || true`,
    ...(pre.service.manager === 'systemd'
      ? [
          // Readable without privileges: what the unit is and where it runs from.
          sh`systemctl show -p LoadState -p ActiveState -p SubState -p FragmentPath -p WorkingDirectory -p ExecStart -p CanReload -- ${pre.service.name} 2>/dev/null | sed 's/^/unit-/' || echo unit-LoadState=unreadable`
        ]
      : []),
    ...(pre.proxy
      ? [
          // nginx lives in sbin, which a login that is not root may not have on its PATH.
          sh`if [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1; then echo proxy-nginx=yes; else echo proxy-nginx=no; fi`,
          sh`if grep -rqsF -- ${pre.proxy.upstreamFile} /etc/nginx; then echo proxy-include=yes; else echo proxy-include=no; fi`
        ]
      : []),
    ...pre.sudo.map(
      (words, i) =>
        sh`if sudo -n -l ${words} >/dev/null 2>&1; then echo ${`sudo-${i}=yes`}; else echo ${`sudo-${i}=no`}; fi`
    )
  );
}

/** How many of the newest deployment records the probe reads. */
export const PROBE_HISTORY_LINES = 200;

/**
 * Prints `lines=N` (the whole record's line count, a last line cut short included) and then the
 * last `limit` lines of `deployments.jsonl`, ending in a newline even when its last line was cut
 * short (whatever the script prints next must not glue onto it). Prints `lines=0` when there is
 * no record yet.
 */
export function readDeployments(layout: Layout, limit: number): Shell {
  const f = layout.deploymentsLog;
  return lines(
    // One awk keeps the last `limit` lines as it counts them all (print ends each with a newline).
    sh`if [ -f ${f} ]; then awk -v lim=${limit} '{ l[NR % lim] = $0 } END { print "lines=" NR; for (i = NR > lim ? NR - lim + 1 : 1; i <= NR; i++) print l[i % lim] }' ${f}; else echo lines=0; fi`
  );
}

/**
 * Appends one record line to `deployments.jsonl`. The file is never rewritten: a line cut short
 * by an earlier failure (a lost connection, a full disk) is ended with a newline first, so the
 * new record does not glue onto it, and readers skip the broken line.
 */
export function appendDeployment(layout: Layout, line: string, id?: string): Shell {
  const f = layout.deploymentsLog;
  const append = lines(
    makeDirs([layout.stateDir]),
    // \`read\` fails at end of input without a newline: the last line was cut short.
    sh`if [ -s ${f} ] && ! tail -c 1 -- ${f} | { IFS= read -r _; }; then printf '\\n' >> ${f}; fi`,
    sh`printf '%s\\n' ${line} >> ${f}`
  );
  // Written once per deploy: when a script that appended it lost its answer, sending it again
  // (from the close of every path) adds nothing.
  return id
    ? lines(sh`if ! { [ -f ${f} ] && grep -qF -- ${`"id":"${id}"`} ${f}; }; then`, append, sh`fi`)
    : append;
}

/**
 * Takes the lock with an atomic `mkdir`. Prints `acquired`, or `taken-over` followed by the
 * previous owner when the old lock is older than the TTL, or exits LOCK_BUSY printing the owner.
 */
export function lockAcquire(layout: Layout, owner: string, ttlSeconds: number): Shell {
  const lock = layout.lockDir;
  const stale = `${lock}.stale`;
  const takeover = `${lock}.takeover`;
  return lines(
    makeDirs([layout.statusDir, layout.manifestsDir]),
    sh`if mkdir -- ${lock} 2>/dev/null; then printf '%s\\n' ${owner} > ${lock}/owner; echo acquired; exit 0; fi`,
    sh`now=$(date +%s); since=$(stat -c %Y -- ${lock} 2>/dev/null || echo "$now"); age=$((now - since))`,
    sh`if [ "$age" -ge ${ttlSeconds} ]; then`,
    // Two deploys can both find the lock stale. A second atomic mkdir decides which one takes it
    // over, and the winner checks again that the lock is still the stale one: the loser may have
    // found it stale before the winner replaced it.
    sh`  if mkdir -- ${takeover} 2>/dev/null; then`,
    sh`    since=$(stat -c %Y -- ${lock} 2>/dev/null || echo "$now"); age=$((now - since))`,
    sh`    if [ "$age" -ge ${ttlSeconds} ]; then`,
    sh`      rm -rf -- ${stale}; mv -T -- ${lock} ${stale}`,
    sh`      if ! mkdir -- ${lock} 2>/dev/null; then rmdir -- ${takeover}; rm -rf -- ${stale}; echo "age=0"; exit ${LOCK_BUSY}; fi`,
    sh`      printf '%s\\n' ${owner} > ${lock}/owner; rmdir -- ${takeover}`,
    sh`      echo taken-over; echo "age=$age"; cat -- ${stale}/owner 2>/dev/null || true; rm -rf -- ${stale}; exit 0`,
    sh`    fi`,
    sh`    rmdir -- ${takeover}`,
    sh`  else`,
    // A takeover marker left by a run killed mid-takeover is cleared after a minute.
    sh`    since=$(stat -c %Y -- ${takeover} 2>/dev/null || echo "$now")`,
    sh`    if [ $((now - since)) -ge 60 ]; then rmdir -- ${takeover} 2>/dev/null || true; fi`,
    sh`  fi`,
    sh`fi`,
    sh`echo "age=$age"; cat -- ${lock}/owner 2>/dev/null || true; exit ${LOCK_BUSY}`
  );
}

/**
 * A condition: the lock's owner file carries this token (read by the shell itself; a lock that is
 * gone or unreadable is not ours).
 */
export function lockHeld(layout: Layout, token: string): Shell {
  return sh`{ o=; { IFS= read -r o || :; } 2>/dev/null < ${layout.lockDir}/owner || :; case $o in *${token}*) ;; *) false ;; esac; }`;
}

/** Removes the lock only when it still carries our token, so we never free someone else's. */
export function lockRelease(layout: Layout, token: string): Shell {
  return sh`if ${lockHeld(layout, token)}; then rm -rf -- ${layout.lockDir}; echo released; fi`;
}

/**
 * The holder's heartbeat: the lock's mtime is when it was last refreshed, and a lock left
 * unrefreshed for the TTL is abandoned (its deploy died). Exits LOCK_LOST when another deploy
 * has taken the lock over.
 */
export function lockRefresh(layout: Layout, token: string): Shell {
  return sh`if ${lockHeld(layout, token)}; then touch -c -- ${layout.lockDir}; else exit ${LOCK_LOST}; fi`;
}

/** A fresh, empty staging directory for the upload. */
export function prepareStaging(dir: string): Shell {
  return lines(removeIfThere([dir]), sh`mkdir -p -- ${dir}`);
}

/**
 * `mkdir -p` of the directories, run only when one is missing: each program the scripts start
 * costs the host a process, and most deploys find every directory there.
 */
export function makeDirs(dirs: readonly string[]): Shell {
  return sh`${dirs.map(d => sh`[ -d ${d} ]`).reduce((a, b) => sh`${a} && ${b}`)} || mkdir -p -- ${dirs}`;
}

/** `rm -rf` of the paths, run only when one of them is there (as `makeDirs`, to spare a process). */
export function removeIfThere(paths: readonly string[]): Shell {
  const there = paths.map(p => sh`[ -e ${p} ] || [ -L ${p} ]`).reduce((a, b) => sh`${a} || ${b}`);
  return sh`if ${there}; then ${removePaths(paths)}; fi`;
}

/**
 * Verifies every file against the manifest on stdin and that the tree holds no file the manifest
 * does not name. Prints `count=N` on success; mismatches go to stdout as `FILE: FAILED`. The
 * manifest is kept at `keep` once it verified, so the release can be checked again before reuse.
 */
export function verifyManifest(dir: string, expectedFiles: number, keep: string): Shell {
  return verifyScript(dir, expectedFiles, keep);
}

/** Deletes every kept manifest except the live release's (in-place targets keep no old trees). */
export function pruneManifests(layout: Layout, liveId: string): Shell {
  return sh`if [ -d ${layout.manifestsDir} ]; then find ${layout.manifestsDir} -maxdepth 1 -type f ! -name ${`${liveId}.sha256`} -delete; fi`;
}

/**
 * What an incremental upload needs from the previous release: its kept manifest, then (after a
 * `--modes--` line) the permission bits of its files. Exits RELEASE_MISSING when either is gone.
 */
export function readPreviousRelease(release: string, manifest: string): Shell {
  return lines(
    readManifest(release, manifest),
    sh`echo --modes--`,
    sh`cd -- ${release} && find . -type f -printf '%m %P\\n'`
  );
}

/** Exit code of `readManifest` when the release or its manifest is gone. */
export const RELEASE_MISSING = 6;

/** Prints a kept release's manifest, or exits RELEASE_MISSING when the release or manifest is gone. */
export function readManifest(release: string, manifest: string): Shell {
  return lines(
    sh`if [ ! -d ${release} ] || [ -L ${release} ]; then echo "release directory missing: "${release} >&2; exit ${RELEASE_MISSING}; fi`,
    sh`if [ ! -f ${manifest} ]; then echo "no manifest kept for this release: "${manifest} >&2; exit ${RELEASE_MISSING}; fi`,
    sh`cat -- ${manifest}`
  );
}

/** Checks a kept release against the manifest lines on stdin (shared entries left out). */
export function checkRelease(release: string): Shell {
  return lines(sh`cd -- ${release}`, sh`sha256sum -c --quiet --strict -`);
}

/** Moves a verified staging directory to its final name (atomic rename on one filesystem). */
export function promote(from: string, to: string): Shell {
  return lines(
    sh`if [ -e ${to} ]; then echo "release directory already exists: "${to} >&2; exit 5; fi`,
    makeDirs([posix.dirname(to)]),
    sh`mv -T -- ${from} ${to}`
  );
}

/**
 * Links each shared entry into the release. A missing shared entry is seeded from the release
 * when it ships one (first deploy), otherwise created empty: a directory for `name/`, a file else.
 */
export function linkShared(sharedDir: string, release: string, entries: readonly string[]): Shell {
  return lines(
    ...entries.flatMap(entry => {
      const isDir = entry.endsWith('/');
      const name = entry.replace(/\/+$/, '');
      const shared = posix.join(sharedDir, name);
      const inRelease = posix.join(release, name);
      return [
        sh`if [ ! -e ${shared} ] && [ ! -L ${shared} ]; then`,
        sh`  mkdir -p -- ${posix.dirname(shared)}`,
        sh`  if [ -e ${inRelease} ]; then cp -a -- ${inRelease} ${shared};`,
        isDir ? sh`  else mkdir -p -- ${shared}; fi` : sh`  else : > ${shared}; fi`,
        sh`fi`,
        sh`rm -rf -- ${inRelease}; mkdir -p -- ${posix.dirname(inRelease)}; ln -s -- ${shared} ${inRelease}`
      ];
    })
  );
}

/**
 * Writes the release's env file from standard input, so no value is ever on a command line (the
 * host's process list): created 0600 under a temporary name, then renamed over the final one (a
 * file of the artifact at that path, or a hard link to the previous release's, is replaced, never
 * written through).
 */
export function writeEnvFile(path: string): Shell {
  const tmp = `${path}.deployguard-tmp`;
  return lines(
    sh`umask 077`,
    sh`mkdir -p -- ${posix.dirname(path)}`,
    sh`rm -f -- ${tmp}`,
    sh`cat > ${tmp}`,
    sh`chmod 600 -- ${tmp}`,
    sh`mv -f -- ${tmp} ${path}`
  );
}

/** The env file's text: `NAME='value'` lines (values were refused at config time if they could break one). */
export function envFileText(vars: readonly { readonly name: string; readonly value: string }[]): string {
  return [
    '# Written by deployguard for this release from `env:` in deployguard.yml; edits here are lost.',
    ...vars.map(v => `${v.name}='${v.value}'`),
    ''
  ].join('\n');
}

/** Runs the user's `before-switch` command inside the new release, with the release in its env. */
export function beforeSwitch(release: string, releaseId: string, command: string): Shell {
  return lines(
    sh`cd -- ${release}`,
    sh`export DEPLOYGUARD_RELEASE=${releaseId} DEPLOYGUARD_RELEASE_DIR=${release}`,
    userScript(command)
  );
}

/** Points `current` at a release atomically: a new link under a temporary name, then `mv -T`. */
export function switchCurrent(layout: Layout, release: string, releaseId: string): Shell {
  const tmp = `${layout.current}.tmp-${releaseId}`;
  // Never a dangling `current`: a release that is gone is refused, and `current` stays as it is.
  return lines(
    sh`if [ ! -d ${release} ]; then echo "release directory missing: "${release} >&2; exit ${RELEASE_MISSING}; fi`,
    sh`ln -sfn -- ${release} ${tmp} && mv -T -- ${tmp} ${layout.current}`
  );
}

/** Prints where `current` points (`live` for an in-place tree), or nothing when nothing is live. */
export function readLive(layout: Layout): Shell {
  return sh`if [ -e ${layout.current} ]; then readlink -- ${layout.current} || echo live; fi`;
}

/** Exits 1 when a release directory is gone. */
export function releasePresent(release: string): Shell {
  return sh`test -d ${release}`;
}

/** Undo of the first switch on a fresh host: there was no `current` before. */
export function removeCurrent(layout: Layout): Shell {
  return sh`rm -f -- ${layout.current}`;
}

/** In-place: a full copy of the live tree, taken before anything replaces it. */
export function backupTree(layout: Layout, backup: string): Shell {
  return lines(
    sh`if [ -d ${layout.current} ]; then`,
    sh`  cp -a -- ${layout.current} ${backup}.partial`,
    sh`  mv -T -- ${backup}.partial ${backup}`,
    sh`fi`
  );
}

/** In-place: replace the live tree with the verified new one. */
export function replaceTree(layout: Layout, incoming: string): Shell {
  const old = `${layout.current}.deployguard-old`;
  return lines(
    sh`rm -rf -- ${old}`,
    sh`if [ -e ${layout.current} ]; then mv -T -- ${layout.current} ${old}; fi`,
    // If the new tree cannot be moved in, put the old one straight back before failing.
    sh`if ! mv -T -- ${incoming} ${layout.current}; then`,
    sh`  if [ -e ${old} ]; then mv -T -- ${old} ${layout.current}; fi`,
    sh`  exit 1`,
    sh`fi`,
    sh`rm -rf -- ${old}`
  );
}

/** In-place rollback: put the backup copy back (the backup itself stays for a later look). */
export function restoreTree(layout: Layout, backup: string | undefined): Shell {
  if (!backup) return sh`rm -rf -- ${layout.current}`;
  return lines(
    sh`rm -rf -- ${layout.current}.deployguard-restore`,
    sh`cp -a -- ${backup} ${layout.current}.deployguard-restore`,
    sh`rm -rf -- ${layout.current}`,
    sh`mv -T -- ${layout.current}.deployguard-restore ${layout.current}`
  );
}

/**
 * Records a release's outcome and commit: pruning reads these to tell good releases from failed
 * ones, and the secret scan starts from the commit of the newest good one.
 */
export function markRelease(
  layout: Layout,
  releaseId: string,
  status: string,
  at: Date,
  commit: string
): Shell {
  return sh`printf '%s %s %s\\n' ${status} ${at.toISOString()} ${commit} > ${posix.join(layout.statusDir, releaseId)}`;
}

/** Lists releases with their recorded status, one `id<TAB>status time` line each. */
export function listReleases(layout: Layout): Shell {
  const dir = layout.strategy === 'releases' ? layout.releasesDir : layout.stateDir;
  const glob = layout.strategy === 'releases' ? sh`*` : sh`backups/*`;
  return lines(
    sh`cd -- ${dir} 2>/dev/null || exit 0`,
    layout.strategy === 'releases'
      ? // The first line of each status file (an empty or missing one reads as unknown), by builtins only.
        sh`for r in ${glob}; do [ -d "$r" ] || continue; s=; { IFS= read -r s || :; } 2>/dev/null < ${layout.statusDir}/"$r" || :; printf '%s\\t%s\\n' "$r" "\${s:-unknown}"; done`
      : sh`ls -1d -- ${layout.base}.backup-* 2>/dev/null || true`
  );
}

/** The line before and after the release listing in the probe's answer (see `releaseListing`). */
export const RELEASES_MARK = '--deployguard-releases--';

/**
 * The releases (or in-place backups) on the host with their status lines (see `listReleases`),
 * between two `RELEASES_MARK` lines: read with the host state, under the lock, it is what the
 * prune after a good deploy decides from, with no listing of its own at the end.
 */
export function releaseListing(layout: Layout): Shell {
  // The closing mark only after a listing that succeeded: without it, nothing is pruned.
  return lines(
    sh`echo ${RELEASES_MARK}`,
    sh`(`,
    listReleases(layout),
    sh`) && echo ${RELEASES_MARK} || true`
  );
}

/** Deletes releases or backups by full path. */
export function removePaths(paths: readonly string[]): Shell {
  return paths.length ? sh`rm -rf -- ${paths}` : sh`:`;
}

/**
 * Prunes old releases without making the deploy wait for thousands of unlinks: each tree is
 * renamed into the state directory's trash at once (a rename: both live under the target path),
 * so no later step or deploy sees it among the releases, and the trash is deleted by a process of
 * its own, detached from the session. A tree that cannot be renamed is deleted in place. `files`
 * (a release's status, manifest and stat record) go at once.
 *
 * A trash still there is what an earlier deletion left: cut short, or refused (a directory the
 * release made read-only is made writable first; files another user owns in a directory of theirs
 * are not the deploy user's to delete). It is deleted first, in the session. When that fails, this
 * prune deletes its releases in place and still fails, with rm's error, so the deploy warns about
 * the leftover on every run instead of the disk filling unseen, and pruning itself goes on.
 */
export function pruneReleases(layout: Layout, trees: readonly string[], files: readonly string[]): Shell {
  const trash = posix.join(layout.stateDir, 'trash');
  // Directories only: the files of a release share their inodes with the releases linked from it.
  // Made writable only when a plain rm -rf fails: the walk over the tree is rarely needed.
  const empty = sh`rm -rf -- ${trash} 2>/dev/null || { find ${trash} -type d ! -perm -u=w -exec chmod u+w -- {} + 2>/dev/null || true; rm -rf -- ${trash}; }`;
  return lines(
    sh`stuck=0`,
    sh`if [ -e ${trash} ] || [ -L ${trash} ]; then ${empty} || stuck=1; fi`,
    sh`if [ "$stuck" = 1 ]; then`,
    sh`  ${removePaths([...trees, ...files])} || true`,
    sh`  echo "deployguard: could not delete an earlier prune's leftovers in "${trash} >&2; exit 1`,
    sh`fi`,
    sh`mkdir -p -- ${trash}`,
    ...trees.map(t => sh`mv -T -- ${t} ${trash}/${posix.basename(t)}.$$ 2>/dev/null || rm -rf -- ${t}`),
    removePaths(files),
    sh`({ ${empty}; } </dev/null >/dev/null 2>&1 &)`
  );
}

/**
 * Shell test for "the process in $pid is alive": it exists and is not a zombie. A crashed daemon
 * whose parent does not reap it still answers `kill -0`, so that alone would call it running.
 */
const PID_ALIVE = sh`[ "\${pid:-0}" -gt 0 ] && [ -r "/proc/$pid/stat" ] && [ "$(sed 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f1)" != Z ]`;

/** A service's state, as the `status` script of `serviceCommands` prints it. */
export interface ServiceState {
  readonly active: string;
  readonly sub: string;
  readonly pid: number;
  /** systemd only. */
  readonly restarts?: number;
  readonly alive: boolean;
}

/** Reads the `KEY=value` lines the `status` script prints. */
export function parseServiceStatus(out: string): ServiceState {
  const get = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(out)?.[1]?.trim();
  const restarts = get('NRestarts');
  return {
    active: get('ActiveState') || 'unknown',
    sub: get('SubState') ?? '',
    pid: Number(get('MainPID') || 0),
    ...(restarts ? { restarts: Number(restarts) } : {}),
    alive: get('PidAlive') === 'yes'
  };
}

/** Service control for the configured manager. */
export interface ServiceCommands {
  readonly stop: Shell;
  readonly start: Shell;
  /** Prints `ActiveState=`, `MainPID=`, `NRestarts=` and `PidAlive=yes|no` lines. */
  readonly status: Shell;
  /** The service's recent log lines, for error messages (never fails). */
  readonly logs: Shell;
  /**
   * systemd only: `LoadState=` and `ActiveState=`, read without sudo (anyone may ask systemd),
   * to tell whether a stop that failed changed anything.
   */
  readonly state?: Shell;
}

/**
 * The systemd commands a deploy runs, as words: the service scripts below are built from these,
 * and the preflight asks `sudo -n -l` about exactly these, so the two cannot drift apart.
 */
export function systemdWords(unit: string): {
  readonly stop: readonly string[];
  readonly start: readonly string[];
  readonly status: readonly string[];
  readonly logs: readonly string[];
  readonly reload: readonly string[];
} {
  return {
    reload: ['systemctl', 'reload', '--', unit],
    stop: ['systemctl', 'stop', '--', unit],
    start: ['systemctl', 'start', '--', unit],
    status: [
      'systemctl',
      'show',
      '-p',
      'ActiveState',
      '-p',
      'SubState',
      '-p',
      'MainPID',
      '-p',
      'NRestarts',
      '--',
      unit
    ],
    logs: ['journalctl', '-u', unit, '-n', '30', '--no-pager', '-o', 'short-iso']
  };
}

/** `sudo -n ` before a command when the service is run through sudo, nothing otherwise. */
export function sudoPrefix(sudo: boolean): Shell {
  return sudo ? sh`sudo -n ` : sh``;
}

export function serviceCommands(service: ServiceSettings, layout: Layout): ServiceCommands | undefined {
  if (service.manager === 'none') return undefined;
  const workDir = layout.current;
  if (service.manager === 'systemd') {
    const sudo = sudoPrefix(service.sudo);
    const unit = service.name;
    const words = systemdWords(unit);
    return {
      stop: sh`${sudo}${words.stop}`,
      start: sh`${sudo}${words.start}`,
      status: lines(
        sh`out=$(${sudo}${words.status})`,
        sh`printf '%s\\n' "$out"`,
        sh`pid=$(printf '%s\\n' "$out" | sed -n 's/^MainPID=//p')`,
        sh`if ${PID_ALIVE}; then echo PidAlive=yes; else echo PidAlive=no; fi`
      ),
      state: sh`systemctl show -p LoadState -p ActiveState -- ${unit}`,
      logs: sh`${sudo}${words.logs} 2>&1 || true`
    };
  }
  const pidfile = service.pidfile;
  const graceTenths = Math.max(1, Math.ceil(service.stopGraceMs / 100));
  const stop = service.stop
    ? lines(sh`cd -- ${workDir} 2>/dev/null || cd /`, userScript(service.stop))
    : pidfile
      ? lines(
          sh`pid=$(cat -- ${pidfile} 2>/dev/null || true)`,
          // A zombie has exited: kill -0 still finds it until its parent (often init) reaps it.
          sh`if ${PID_ALIVE}; then`,
          sh`  kill -TERM "$pid"; i=0`,
          sh`  while ${PID_ALIVE} && [ "$i" -lt ${graceTenths} ]; do sleep 0.1; i=$((i + 1)); done`,
          sh`  if ${PID_ALIVE}; then kill -KILL "$pid"; echo "stopped with SIGKILL after the grace period" >&2; fi`,
          sh`fi`
        )
      : sh`:`;
  const status = pidfile
    ? lines(
        sh`pid=$(cat -- ${pidfile} 2>/dev/null || true)`,
        sh`if ${PID_ALIVE}; then echo ActiveState=active; echo "MainPID=$pid"; echo PidAlive=yes;`,
        sh`else echo ActiveState=inactive; echo MainPID=0; echo PidAlive=no; fi`
      )
    : lines(
        sh`if (cd -- ${workDir} && ${userScript(service.status ?? 'false')}) >/dev/null 2>&1; then`,
        sh`  echo ActiveState=active; echo PidAlive=yes; else echo ActiveState=inactive; echo PidAlive=no; fi`
      );
  // The start command's own output goes to a file: a daemon it leaves running must not hold the
  // SSH channel open, and the file is shown when the start fails.
  const startLog = posix.join(layout.stateDir, 'service-start.log');
  return {
    stop,
    start: lines(
      sh`cd -- ${workDir}`,
      // Started already, from this very release: a start sent again after the link dropped under
      // the first one must not launch a second copy (which would fail to bind and take the pidfile).
      ...(pidfile
        ? [
            sh`pid=$(cat -- ${pidfile} 2>/dev/null || true)`,
            sh`if ${PID_ALIVE} && [ "$(readlink -- "/proc/$pid/cwd" 2>/dev/null)" = "$(pwd -P)" ]; then echo "already running from this release (pid $pid)"; exit 0; fi`
          ]
        : []),
      sh`if ${userScript(service.start)} </dev/null >${startLog} 2>&1; then rc=0; else rc=$?; fi`,
      sh`cat -- ${startLog} 2>/dev/null || true`,
      sh`exit "$rc"`
    ),
    status,
    logs: sh`tail -n 30 -- ${startLog} 2>/dev/null || true`
  };
}

/** The mark a step group prints before its steps and after each one that succeeded. */
export const STEP_MARK = 'deployguard-step-ok';

/**
 * Several consecutive steps sent as one script (one round trip instead of one each). Each step runs
 * in its own subshell, so an `exit` in one ends only that step, and a failing step ends the group
 * with its exit code. It prints `STEP_MARK start <s>` first and, after each step that succeeded,
 * `STEP_MARK <index> <s>`, where `<s>` is the host's uptime in seconds (to the hundredth, read
 * from /proc/uptime by the shell itself: `date` would be a process per mark; 0 where unreadable):
 * the executor turns these lines back into one record per step and knows which step failed.
 * `after`, when given, runs once every step succeeded (a read whose answer the executor needs next).
 */
export function stepGroup(scripts: readonly Shell[], after?: Shell): Shell {
  return lines(
    sh`dg_mark() { dg_t=0; { read -r dg_t _ < /proc/uptime; } 2>/dev/null || dg_t=0; printf '%s %s %s\\n' ${STEP_MARK} "$1" "$dg_t"; }`,
    sh`dg_mark start`,
    ...scripts.flatMap((script, i) => [sh`(`, script, sh`)`, sh`dg_mark ${i}`]),
    after
  );
}

/** The line that separates the lock's answer from the probe's in `lockThenProbe`. */
export const PROBE_MARK = '--deployguard-probe--';

/**
 * Takes the lock and, once it is held, reads the host state in the same round trip. A busy lock
 * or a lock that cannot be taken ends the script with the lock's exit code, as `lockAcquire` alone
 * would; the probe only runs under the lock. The probe's own exit code follows its output as
 * `probe-rc=N` on a line of its own, so a probe that fails never reads as a lock that was not taken.
 *
 * It first reads LOCK_GO from stdin, which the deploy sends with the command: a script that sshd
 * starts only after the connection dropped (a host slow to fork) reads end-of-file instead and
 * takes nothing. Otherwise it could take the lock after the deploy, its answer lost, had already
 * reconnected and released it, and leave it behind.
 */
export function lockThenProbe(lock: Shell, probeScript: Shell): Shell {
  return lines(
    sh`IFS= read -r go || exit ${LOCK_NO_GO}; [ "$go" = ${LOCK_GO} ] || exit ${LOCK_NO_GO}`,
    sh`(`,
    lock,
    sh`)`,
    sh`echo ${PROBE_MARK}`,
    withCode(probeScript, 'probe-rc')
  );
}

/** The line `lockThenProbe` waits for on stdin before it takes the lock. */
export const LOCK_GO = 'deployguard-lock-go';

/** Exit code of `lockThenProbe` when its stdin ended before LOCK_GO: nothing was taken. */
export const LOCK_NO_GO = 79;

/**
 * Runs a script whose failure must not end the script around it: its output, then its exit code
 * as `NAME=N` on a line of its own. errexit is off only to catch the code; on again inside.
 */
export function withCode(script: Shell, name: string): Shell {
  return lines(
    sh`set +e`,
    sh`(`,
    sh`set -e`,
    script,
    sh`)`,
    sh`rc=$?`,
    sh`set -e`,
    sh`printf '\\n%s=%s\\n' ${name} "$rc"`
  );
}

/** The line before the previous release's manifest in the probe's output. */
export const PREVIOUS_MARK = '--deployguard-previous--';

/**
 * What an incremental upload needs from the live release, appended to the probe so it costs no
 * round trip of its own: after PREVIOUS_MARK, the release's name, its kept manifest and the
 * permission bits of its files (after `--modes--`). (Its stat record stays on the host, where the
 * verification reads it.) Prints nothing when no release is live or it has no manifest.
 */
export function previousReleaseFacts(layout: Layout): Shell {
  return lines(
    sh`if [ -L ${layout.current} ]; then`,
    // The probe's reading of the link when it ran first in this script: one process fewer.
    sh`  cur=\${dg_live-}; [ -n "$cur" ] || cur=$(readlink -- ${layout.current}); id=\${cur%/}; id=\${id##*/}; m=${layout.manifestsDir}/"$id".sha256`,
    sh`  if [ -d "$cur" ] && [ -f "$m" ]; then`,
    sh`    echo ${PREVIOUS_MARK}; printf '%s\\n' "$id"; cat -- "$m"`,
    sh`    echo --modes--; (cd -- "$cur" && find . -type f -printf '%m %P\\n')`,
    sh`  fi`,
    sh`fi`
  );
}

/** Where a release's stat record (inode, size, mtime and path of each file, when verified) is kept. */
export function statPath(manifest: string): string {
  return manifest.replace(/\.sha256$/, '') + '.stat';
}

/** Sets the shell variable `cores` to the host's cores, at most `max`. */
function cores(max: number): Shell {
  return sh`cores=$(nproc 2>/dev/null || echo 1); if [ "$cores" -gt ${max} ]; then cores=${max}; fi`;
}

/** The line the upload prints once its staging directory is ready (the staging step's own success). */
export const STAGED_MARK = '--deployguard-staged--';

/** Where the upload leaves the hashes it took of the files as they landed (beside the staging dir). */
export function sumsPath(staging: string): string {
  return `${staging}.sums`;
}

/** The unchanged files an incremental upload links from the previous release (see `uploadScript`). */
export interface LinkList {
  /** The previous release's directory. */
  readonly from: string;
  /**
   * Bytes of stdin taken by the directories, NUL-separated, that come first (made before the
   * links); 0 when none are sent. The script reads them whenever there are any.
   */
  readonly dirBytes: number;
  /** Bytes of stdin taken by the files' paths, NUL-separated, that follow them. */
  readonly bytes: number;
  /** How many files. */
  readonly count: number;
  /** One `cp` per core, each a share of the list (see {@link PARALLEL_LINKS}); else one `cp`. */
  readonly parallel: boolean;
}

/**
 * From this many files on, an incremental upload links them with one `cp` per core, the
 * artifact's directories made first so that the copies never race to create one; below it, one
 * `cp` links them all and makes the directories itself. Linking is system time per file, so a few
 * hundred files gain nothing from the cores, while the core count and the directories cost the
 * host five more processes.
 */
export const PARALLEL_LINKS = 500;

/** Files per hashing process while the upload lands. */
const HASH_BATCH = 256;

/** The program the upload hashes its files with as they land. */
export type Hasher = 'openssl' | 'sha256sum';

/**
 * OpenSSL's SHA-256 uses the CPU's SHA instructions where coreutils' does not: on the benchmark's
 * machine it hashed the 97 MB tree in 183 ms of CPU against sha256sum's 339 ms. But it is slower to
 * start, once per batch of {@link HASH_BATCH} files: 100 files of 644 KB took it 8.9 ms against
 * 6.2 ms. It pays from about 2 MB per batch; a small upload (most incremental ones) is hashed with
 * sha256sum.
 */
export function hasherFor(bytes: number, files: number): Hasher {
  return bytes / Math.max(1, Math.ceil(files / HASH_BATCH)) >= 2_000_000 ? 'openssl' : 'sha256sum';
}

/**
 * The whole upload in one round trip: a fresh staging directory; when `link` is given, stdin starts
 * with the NUL-separated directories of the artifact (`link.dirBytes` bytes, made first; only
 * sent for parallel links) and the paths of the unchanged files (`link.bytes`), hard-linked
 * from the previous release (the verification checks them against what that release recorded, see
 * `verifySent`); then the tar stream. `head -c` reads exactly that many bytes, so the tar stream
 * starts intact after them. tar then sets every directory's mode.
 *
 * While tar extracts, each regular file is hashed from the disk once tar has moved on to the next
 * member (it lists a member as it starts it, so the one before is complete), into `sumsPath`: the
 * verification then only compares, and hashes again what is missing or differs. The hashes are a
 * head start, never trusted on their own: a file whose line does not match is hashed again.
 */
export function uploadScript(staging: string, link?: LinkList, hasher: Hasher = 'openssl'): Shell {
  const sums = sumsPath(staging);
  const regular = sh`[ -n "$prev" ] && [ -f "$prev" ] && [ ! -L "$prev" ] && printf './%s\\n' "$prev" || true`;
  return lines(
    prepareStaging(staging),
    removeIfThere([sums, `${staging}.tar-rc`]),
    sh`echo ${STAGED_MARK}`,
    link &&
      lines(
        link.dirBytes > 0 && sh`head -c ${link.dirBytes} | { cd -- ${staging} && xargs -0 -r mkdir -p --; }`,
        // Directories cp makes get the default mode, not the previous release's: one read-only
        // there would refuse the files tar writes into it (tar sets every directory's mode last).
        // Linking is mostly system time per file: in parallel, one cp per core (at most 4), each a
        // share of the list.
        link.parallel && sh`${cores(4)}; n=$(( (${link.count} + cores - 1) / cores ))`,
        sh`head -c ${link.bytes} | { cd -- ${link.from} && xargs -0 -r ${link.parallel ? sh`-P "$cores" -n "$n"` : sh``} cp -al --no-preserve=mode --parents -t ${staging} --; }`
      ),
    sh`cd -- ${staging}`,
    // OpenSSL's `-r` lines differ from sha256sum's only by a `*` before the name, which the
    // verification reads either way. sha256sum where there is no OpenSSL (see `hasherFor`).
    hasher === 'openssl'
      ? sh`if command -v openssl >/dev/null 2>&1; then hasher='openssl dgst -sha256 -r'; else hasher='sha256sum --'; fi`
      : sh`hasher='sha256sum --'`,
    // No pipefail in POSIX sh: tar's own exit code is kept in a file and checked after the pipe.
    sh`{ tar -x -v -f - --quoting-style=literal --no-same-owner --preserve-permissions --delay-directory-restore || echo "$?" > ${staging}.tar-rc; } |`,
    sh`  { prev=; while IFS= read -r f; do ${regular}; prev=$f; done; ${regular}; } |`,
    sh`  { xargs -d '\\n' -r -n ${HASH_BATCH} $hasher > ${sums} 2>/dev/null || true; }`,
    sh`if [ -s ${staging}.tar-rc ]; then rc=$(cat -- ${staging}.tar-rc); rm -f -- ${staging}.tar-rc ${sums}; exit "$rc"; fi`
  );
}

/** The line the incremental verification prints: how many linked files differ from their record. */
export const LINKED_CHANGED = 'linked-changed';

/**
 * The verification of an incremental upload (`deploy.verify: sent`): stdin holds the release's
 * whole manifest, then a `--check--` line, then the lines of the files that were sent. Only those
 * are hashed again. Every other file was linked from the previous release and must be that
 * release's very file: the same inode, size, mtime and path as in `previousRecord`, what that
 * release recorded when it was verified (a hard link shares the inode, so a file changed on the
 * host since shows). When one is not, or there is no record, every file is hashed instead, and
 * `linked-changed=N` says how many differed (`all` without a record). The file count covers the
 * whole tree, and the whole manifest is kept.
 */
export function verifySent(dir: string, expectedFiles: number, keep: string, previousRecord: string): Shell {
  return verifyScript(dir, expectedFiles, keep, previousRecord);
}

function verifyScript(dir: string, expectedFiles: number, keep: string, previousRecord?: string): Shell {
  const sent = previousRecord !== undefined;
  const check = sent ? `${keep}.check` : `${keep}.tmp`;
  const record = `${statPath(keep)}.tmp`;
  return lines(
    makeDirs([posix.dirname(keep)]),
    sent
      ? sh`awk -v keep=${`${keep}.tmp`} -v check=${check} 'f { print > check; next } /^--check--$/ { f = 1; next } { print > keep }'`
      : sh`cat > ${keep}.tmp`,
    sh`cd -- ${dir}`,
    // One walk counts the files and records what the next incremental deploy compares its linked
    // files with, instead of hashing them: inode, size, mtime (to the nanosecond) and path of each.
    // (Not the ctime: linking a file moves it.)
    sh`find . -type f -printf '%i %s %T@ %p\n' > ${record}`,
    sh`: >> ${check}`,
    sent
      ? lines(
          // Each file not sent against the previous release's record of it.
          sh`if [ -f ${previousRecord} ]; then`,
          sh`  changed=$(awk 'FILENAME == ARGV[1] { rec[$0] = 1; next } FILENAME == ARGV[2] { sub(/^[0-9a-f]+  /, ""); sent[$0] = 1; next } { p = $0; sub(/^[0-9]+ [0-9]+ [0-9.]+ /, "", p); if (!(p in sent) && !($0 in rec)) n++ } END { print n + 0 }' ${previousRecord} ${check} ${record})`,
          sh`else changed=all; fi`,
          sh`printf '%s=%s\n' ${LINKED_CHANGED} "$changed"`,
          sh`if [ "$changed" != 0 ]; then cp -- ${`${keep}.tmp`} ${check}; fi`
        )
      : undefined,
    // The hashes the upload took as the files landed (an OpenSSL line's \` *\` read as sha256sum's
    // two spaces): only lines missing there go to the todo list, to be hashed now. The same awk
    // counts the files in the record.
    sh`sums=${sumsPath(dir)}; [ -s "$sums" ] || sums=/dev/null`,
    sh`count=$(awk -v todo=${`${keep}.todo`} 'BEGIN { printf "" > todo } FILENAME == ARGV[1] { if (substr($0, 65, 2) == " *") $0 = substr($0, 1, 64) "  " substr($0, 67); have[$0] = 1; next } FILENAME == ARGV[2] { if (!($0 in have)) print > todo; next } { n++ } END { print n + 0 }' "$sums" ${check} ${record})`,
    // Usually nothing is left to hash (the upload hashed every file it sent, and they matched).
    // Otherwise one sha256sum per core (at most 8), each over every n-th line, so big files spread out.
    sh`rc=0; if [ -s ${keep}.todo ]; then`,
    sh`  ${cores(8)}`,
    sh`  rm -f -- ${keep}.part.*`,
    sh`  split -n r/"$cores" -d -- ${keep}.todo ${keep}.part.`,
    sh`  pids=; for part in ${keep}.part.*; do [ -s "$part" ] || continue; sha256sum -c --quiet --strict -- "$part" & pids="$pids $!"; done`,
    sh`  for pid in $pids; do wait "$pid" || rc=1; done`,
    sh`fi`,
    sh`rm -f -- ${sumsPath(dir)} ${keep}.todo ${keep}.part.*${sent ? sh` ${check}` : sh``}`,
    sh`if [ "$rc" -ne 0 ]; then rm -f -- ${record}; exit 1; fi`,
    sh`if [ "$count" -ne ${expectedFiles} ]; then rm -f -- ${record}; echo "file count $count, expected "${expectedFiles} >&2; exit 4; fi`,
    sh`mv -f -- ${record} ${statPath(keep)}`,
    sh`mv -f -- ${keep}.tmp ${keep}`,
    sh`echo "count=$count"`
  );
}
