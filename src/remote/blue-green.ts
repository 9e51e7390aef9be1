import { posix } from 'node:path';
import type { BlueGreenSettings, Colour, ServiceSettings } from '../settings/types.js';
import { sudoPrefix, switchCurrent, systemdWords } from './commands.js';
import type { Layout } from './layout.js';
import { lines, sh, Shell } from './shell.js';

/**
 * The remote scripts of `switch: blue-green`. Two instances of the user's template unit,
 * `NAME@blue` and `NAME@green`, run from `<target>/blue` and `<target>/green` (links to releases)
 * with the port in `<target>/<colour>.env`. The proxy sends traffic to whichever colour the
 * upstream file names; a flip rewrites that file, has nginx test and reload its configuration, and
 * waits until nginx runs workers of the new configuration. Like commands.ts: pure builders, every
 * value quoted by `sh`.
 */

export const COLOURS: readonly Colour[] = ['blue', 'green'];

export const otherColour = (c: Colour): Colour => (c === 'blue' ? 'green' : 'blue');

/** The systemd instance of a colour: `myapp@blue`. */
export const instanceOf = (unit: string, colour: Colour): string => `${unit}@${colour}`;

/** The blue-green settings of a service, when it switches that way. */
export function blueGreenOf(service: ServiceSettings): BlueGreenSettings | undefined {
  return service.manager === 'systemd' ? service.blueGreen : undefined;
}

/** The service as it runs for `colour`: for blue-green, that colour's instance; else unchanged. */
export function colourService(service: ServiceSettings, colour: Colour | undefined): ServiceSettings {
  return service.manager === 'systemd' && service.blueGreen && colour
    ? { ...service, name: instanceOf(service.name, colour) }
    : service;
}

/** Where a colour runs from: a link to its release. */
export const colourLink = (layout: Layout, colour: Colour): string => posix.join(layout.base, colour);

/** The colour's environment file (its port), read by the unit's `EnvironmentFile=`. */
export const colourEnv = (layout: Layout, colour: Colour): string => posix.join(layout.base, `${colour}.env`);

/** The first line of the upstream file, naming the live colour; the probe reads it back. */
export const UPSTREAM_MARK = '# deployguard live=';

/** Programs the flip calls, as words: the preflight asks `sudo -n -l` about exactly these. */
export const PROXY_WORDS = {
  test: ['nginx', '-t', '-q'],
  reload: ['systemctl', 'reload', '--', 'nginx']
} as const;

/** The systemd commands of one colour, as words (the scripts below and the preflight share them). */
export function colourWords(unit: string, colour: Colour) {
  const inst = instanceOf(unit, colour);
  const w = systemdWords(inst);
  return {
    /** The idle colour is restarted: it may still run an older release from an earlier deploy. */
    restart: ['systemctl', 'restart', '--', inst],
    /** The old colour is started for a flip back: a no-op while it still runs (before the drain). */
    start: w.start,
    stop: w.stop,
    status: w.status,
    logs: w.logs
  };
}

/** The upstream file's text for a colour. */
export function upstreamText(bg: BlueGreenSettings, colour: Colour, releaseId: string): string {
  return [
    `${UPSTREAM_MARK}${colour} release=${releaseId}`,
    '# Written by deployguard at each flip; edits here are lost.',
    `server 127.0.0.1:${bg.ports[colour]};`,
    ''
  ].join('\n');
}

/** Prints `colour=blue|green` when the upstream file names a live colour (for the probe). */
export function readLiveColour(bg: BlueGreenSettings): Shell {
  return sh`if [ -f ${bg.upstreamFile} ]; then sed -n ${`1s/^${UPSTREAM_MARK}\\([a-z]*\\).*/colour=\\1/p`} -- ${bg.upstreamFile}; fi`;
}

/** The live colour from the output of `readLiveColour` (or a probe that includes it). */
export function liveColour(stdout: string): Colour | undefined {
  const c = /^colour=(blue|green)$/m.exec(stdout)?.[1];
  return c === 'blue' || c === 'green' ? c : undefined;
}

/** Points a colour at a release and writes its port, both renamed into place. */
export function pointColour(layout: Layout, bg: BlueGreenSettings, colour: Colour, release: string): Shell {
  const link = colourLink(layout, colour);
  const env = colourEnv(layout, colour);
  return lines(
    sh`if [ ! -d ${release} ]; then echo "release directory missing: "${release} >&2; exit 6; fi`,
    sh`ln -sfn -- ${release} ${`${link}.tmp`} && mv -T -- ${`${link}.tmp`} ${link}`,
    sh`printf 'PORT=%s\\nDEPLOYGUARD_COLOUR=%s\\n' ${bg.ports[colour]} ${colour} > ${`${env}.tmp`}`,
    sh`mv -f -- ${`${env}.tmp`} ${env}`
  );
}

/**
 * The worker processes of the running nginx master, one pid a line (none when nginx is down).
 * A reload that nginx accepted starts new workers; one it refused leaves the old ones alone.
 */
const WORKERS = sh`workers() { m=$(cat /run/nginx.pid 2>/dev/null || true); [ -n "$m" ] || return 0; grep -l "^PPid:[[:space:]]*$m\$" /proc/[0-9]*/status 2>/dev/null | cut -d/ -f3 || true; }`;

/** How long the flip waits for nginx to run workers of the new configuration only (tenths of a second). */
const RELOAD_WAIT_TENTHS = 100;

/**
 * Tests the proxy's configuration and reloads it. nginx starts the new workers first and tells
 * the old ones to stop accepting about 100 ms later: until then both configurations answer. So
 * the flip is done only when a new worker runs and every old one has exited or says it is
 * shutting down (such a worker still finishes the requests of the connections it holds).
 */
function reloadProxy(sudo: boolean): Shell {
  return lines(
    WORKERS,
    // Unquoted on purpose: the words of the list, one space apart.
    sh`before=$(echo $(workers))`,
    sh`${sudoPrefix(sudo)}${PROXY_WORDS.reload}`,
    sh`i=0`,
    sh`while :; do`,
    sh`  fresh=; for w in $(workers); do case " $before " in *" $w "*) ;; *) fresh=$w ;; esac; done`,
    sh`  serving=; for w in $before; do if [ -r "/proc/$w/cmdline" ] && ! grep -qa 'shutting down' "/proc/$w/cmdline"; then serving=$w; fi; done`,
    sh`  [ -n "$fresh" ] && [ -z "$serving" ] && break`,
    sh`  i=$((i + 1)); if [ "$i" -ge ${RELOAD_WAIT_TENTHS} ]; then echo "nginx did not take the new configuration within 10 s after the reload (new worker: \${fresh:-none}; old worker still accepting: \${serving:-none}); see its error log" >&2; exit 1; fi`,
    sh`  sleep 0.1`,
    sh`done`
  );
}

/**
 * Stops a colour once nginx no longer carries requests to it: workers of an earlier configuration
 * (after a flip away from this colour) finish what they hold first, for at most `waitMs`.
 * Stopping at once would fail those requests.
 */
export function stopColour(unit: string, sudo: boolean, colour: Colour, waitMs: number): Shell {
  return lines(
    sh`i=0; while [ "$i" -lt ${Math.ceil(waitMs / 100)} ]; do`,
    sh`  busy=; for f in /proc/[0-9]*/cmdline; do if grep -qa 'nginx: worker process is shutting down' "$f" 2>/dev/null; then busy=1; break; fi; done`,
    sh`  [ -z "$busy" ] && break`,
    sh`  i=$((i + 1)); sleep 0.1`,
    sh`done`,
    sh`${sudoPrefix(sudo)}${colourWords(unit, colour).stop}`
  );
}

/**
 * The flip: the upstream file names `colour` (the old file kept beside it), nginx tests the whole
 * configuration (a refusal puts the old file back and changes nothing), reloads, and runs new
 * workers; then `current` points at the colour's release, so everything else (history, rollback,
 * the preflight) sees what the proxy serves.
 */
export function flip(
  layout: Layout,
  bg: BlueGreenSettings,
  sudo: boolean,
  colour: Colour,
  release: string,
  /** Names this flip's temporary files (a release id, `rollback-<id>`, …). */
  tag: string
): Shell {
  const f = bg.upstreamFile;
  const prev = `${f}.deployguard-prev`;
  const tmp = `${f}.deployguard-tmp`;
  return lines(
    // nginx lives in sbin, which the PATH of a login that is not root may lack (sudo has its own).
    sh`PATH="$PATH:/usr/sbin:/sbin"`,
    sh`if [ ! -d ${release} ]; then echo "release directory missing: "${release} >&2; exit 6; fi`,
    sh`mkdir -p -- ${posix.dirname(f)}`,
    sh`if [ -f ${f} ]; then cp -p -- ${f} ${prev}; else rm -f -- ${prev}; fi`,
    sh`printf '%s' ${upstreamText(bg, colour, posix.basename(release))} > ${tmp}`,
    sh`mv -f -- ${tmp} ${f}`,
    sh`if ! out=$(${sudoPrefix(sudo)}${PROXY_WORDS.test} 2>&1); then`,
    sh`  if [ -f ${prev} ]; then mv -f -- ${prev} ${f}; else rm -f -- ${f}; fi`,
    sh`  printf 'nginx refused the configuration with the new upstream; the old upstream file is back:\\n%s\\n' "$out" >&2`,
    sh`  exit 1`,
    sh`fi`,
    reloadProxy(sudo),
    switchCurrent(layout, release, `flip-${tag}`)
  );
}

/** Undo of a flip: start the old colour (a no-op while it runs), then flip back to it. */
export function flipBack(
  layout: Layout,
  bg: BlueGreenSettings,
  unit: string,
  sudo: boolean,
  colour: Colour,
  release: string,
  tag: string
): Shell {
  return lines(
    sh`${sudoPrefix(sudo)}${colourWords(unit, colour).start}`,
    flip(layout, bg, sudo, colour, release, tag)
  );
}

/**
 * Undo of a flip when no colour was live before (the first blue-green deploy): the upstream file
 * as it was, the proxy reloaded, and `current` back where it pointed (or gone).
 */
export function unflip(layout: Layout, bg: BlueGreenSettings, sudo: boolean, previous?: string): Shell {
  const f = bg.upstreamFile;
  const prev = `${f}.deployguard-prev`;
  return lines(
    sh`if [ -f ${prev} ]; then mv -f -- ${prev} ${f}; ${sudoPrefix(sudo)}${PROXY_WORDS.reload}; fi`,
    previous ? switchCurrent(layout, previous, 'unflip') : sh`rm -f -- ${layout.current}`
  );
}

/** After the flip: the old colour serves what it has in flight for the drain time, then stops. */
export function drain(unit: string, sudo: boolean, colour: Colour, drainMs: number): Shell {
  return lines(
    sh`sleep ${(drainMs / 1000).toFixed(3)}`,
    sh`${sudoPrefix(sudo)}${colourWords(unit, colour).stop}`
  );
}
