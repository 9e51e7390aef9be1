/**
 * A systemd host set up for blue-green deploys the way the README tells users to do it: a template
 * unit `<unit>@.service` whose instances `<unit>@blue` and `<unit>@green` run the release linked at
 * `<target>/<colour>` on the port from `<target>/<colour>.env`, and an nginx site that proxies to
 * whatever server the upstream file names.
 *
 * Only type imports on purpose: the benchmark loads this file outside jest (Node's own TypeScript
 * support), where the `.js` to `.ts` mapping of jest's config does not exist.
 */
import type { ExecResult, SystemdHost } from '../harness/hosts.js';

export type Colour = 'blue' | 'green';

export interface BlueGreenOptions {
  /** Deploy base directory on the host, e.g. /srv/app. */
  readonly target: string;
  /** Name of the template unit without `@.service`, e.g. 'app'. */
  readonly unit: string;
  readonly ports: { readonly blue: number; readonly green: number };
  /** Where nginx listens on 127.0.0.1 (hosts share this machine's network: pick a free port). */
  readonly proxyPort: number;
}

export interface BlueGreenHost {
  readonly upstreamFile: string;
  readonly siteFile: string;
  /** http://127.0.0.1:<proxyPort> */
  readonly proxyUrl: string;
  /** The colour deployguard's upstream file marks live, or null before the first blue-green deploy. */
  liveColour(): Promise<Colour | null>;
  /** `systemctl is-active` of `<unit>@<colour>`: 'active', 'inactive', 'failed', ... */
  state(colour: Colour): Promise<string>;
}

/** Shell-quotes one word for the host's /bin/sh. */
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

async function must(host: SystemdHost, cmd: string): Promise<ExecResult> {
  const r = await host.exec(cmd);
  if (r.code !== 0) throw new Error(`${cmd}\n-> exit ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

/** The template unit exactly as the README shows it, for `target` and node at /usr/bin/node. */
export function templateUnit(target: string, unit: string): string {
  return [
    '[Unit]',
    `Description=${unit} (%i)`,
    '[Service]',
    `EnvironmentFile=${target}/%i.env`,
    `WorkingDirectory=${target}/%i`,
    `ExecStart=/usr/bin/node ${target}/%i/server.js`,
    'Restart=on-failure',
    ''
  ].join('\n');
}

/** deployguard's default upstream file for a target. */
const upstreamOf = (target: string) => `${target}/upstream.conf`;

/** The nginx site: the README's upstream block and server. */
export function nginxSite(opts: BlueGreenOptions): string {
  const upstreamFile = upstreamOf(opts.target);
  return [
    `upstream ${opts.unit} { include ${upstreamFile}; keepalive 16; }`,
    'server {',
    `  listen 127.0.0.1:${opts.proxyPort};`,
    '  location / {',
    `    proxy_pass http://${opts.unit};`,
    '    proxy_http_version 1.1;',
    '    proxy_set_header Connection "";',
    '  }',
    '}',
    ''
  ].join('\n');
}

/**
 * Writes the template unit and the nginx site, and starts nginx.
 *
 * nginx refuses to start while the included upstream file is missing or names no server, and the
 * file is deployguard's to write. So before the first deploy the helper writes a placeholder that
 * points at the blue port, WITHOUT the `# deployguard live=` line: deployguard reads that as
 * "nothing live yet" and overwrites it at its first flip. Until blue runs, the proxy answers 502.
 * An existing upstream file (a host set up before) is left as it is.
 */
export async function installBlueGreen(host: SystemdHost, opts: BlueGreenOptions): Promise<BlueGreenHost> {
  const upstreamFile = upstreamOf(opts.target);
  const siteFile = `/etc/nginx/sites-enabled/${opts.unit}.conf`;
  const unitFile = `/etc/systemd/system/${opts.unit}@.service`;
  const placeholder = `# placeholder until the first deploy\nserver 127.0.0.1:${opts.ports.blue};\n`;
  await must(
    host,
    [
      'set -e',
      `mkdir -p ${q(opts.target)} "$(dirname ${q(upstreamFile)})"`,
      `printf %s ${q(templateUnit(opts.target, opts.unit))} > ${q(unitFile)}`,
      'systemctl daemon-reload',
      `test -s ${q(upstreamFile)} || printf %s ${q(placeholder)} > ${q(upstreamFile)}`,
      `printf %s ${q(nginxSite(opts))} > ${q(siteFile)}`,
      'nginx -t -q',
      // restart, not start: a second call (new options) must load the new site.
      'systemctl restart nginx'
    ].join('\n')
  );
  return {
    upstreamFile,
    siteFile,
    proxyUrl: `http://127.0.0.1:${opts.proxyPort}`,
    async liveColour() {
      const r = await host.exec(`cat ${q(upstreamFile)}`);
      const m = /^# deployguard live=(blue|green)\b/m.exec(r.stdout);
      return m ? (m[1] as Colour) : null;
    },
    async state(colour) {
      const r = await host.exec(`systemctl is-active ${q(`${opts.unit}@${colour}`)}`);
      return r.stdout.trim();
    }
  };
}
