import { posix } from 'node:path';
import { describeError } from './errors.js';
import { consoleLogger, redacting, type Logger } from './io/log.js';
import { connectHost } from './io/ssh.js';
import {
  blueGreenOf,
  colourLink,
  colourService,
  colourWords,
  COLOURS,
  instanceOf,
  PROXY_WORDS
} from './remote/blue-green.js';
import { HOST_TOOLS, preflightScript, systemdWords, type PreflightProbe } from './remote/commands.js';
import { layoutFor, type Layout } from './remote/layout.js';
import type { HostSettings, Settings } from './settings/types.js';
import { scanArtifact, type Artifact } from './transfer/artifact.js';

/**
 * The preflight: before a deploy touches anything, can it work on each host? Login, the host
 * tools the remote scripts call, exactly the `sudo -n` commands the deploy runs, the systemd unit
 * and where it runs from, write access and free disk for the artifact. The facts come from one
 * read-only remote script per host (commands.ts); judging them is pure, and every failure names
 * its fix: the sudoers line, the unit file line, the package to install.
 */

export type PreflightCheck = 'login' | 'tools' | 'write' | 'disk' | 'unit' | 'sudo' | 'proxy';
export type PreflightLevel = 'ok' | 'warn' | 'fail';

export interface PreflightFinding {
  readonly check: PreflightCheck;
  readonly level: PreflightLevel;
  readonly message: string;
  /** What to do, exactly (a line to add, a command to run). */
  readonly fix?: string;
}

export interface HostPreflight {
  readonly host: string;
  readonly ok: boolean;
  readonly findings: readonly PreflightFinding[];
}

export interface PreflightReport {
  /** No host has a failing finding (warnings allowed). */
  readonly ok: boolean;
  readonly hosts: readonly HostPreflight[];
}

/** What the preflight script reported, parsed. */
export interface PreflightFacts {
  readonly missingTools: readonly string[];
  /** Absolute paths of the programs asked about (empty when not found). */
  readonly paths: ReadonlyMap<string, string>;
  /** Per command of `PreflightProbe.sudo`, in order: may the user run it with `sudo -n`? */
  readonly sudo: readonly boolean[];
  readonly unwritable: readonly string[];
  readonly diskDir?: string;
  readonly diskFreeKb?: number;
  /** The unit's `systemctl show` properties (systemd only). */
  readonly unit: ReadonlyMap<string, string>;
  /** blue-green: is nginx installed, and does its configuration include the upstream file? */
  readonly proxy?: { readonly installed: boolean; readonly includes: boolean };
}

/** How much room the upload needs: its bytes, a block per file, and a margin. */
export interface DiskNeed {
  readonly bytes: number;
  readonly files: number;
}

/** An invocation id in the shape journalctl takes, to ask `sudo -l` about the journal check's command. */
const SAMPLE_INVOCATION = '0123456789abcdef0123456789abcdef';

/**
 * The `sudo -n` commands a deploy with these settings runs, as words; with the sudoers pattern
 * of each when it differs (the journal check's arguments change from run to run).
 */
export function sudoCommands(settings: Settings): { words: readonly string[]; pattern: readonly string[] }[] {
  const svc = settings.service;
  if (svc.manager !== 'systemd' || !svc.sudo) return [];
  const units = svc.blueGreen ? COLOURS.map(c => instanceOf(svc.name, c)) : [svc.name];
  return units
    .flatMap(unit => unitSudo(settings, unit))
    .concat(
      svc.blueGreen ? [PROXY_WORDS.test, PROXY_WORDS.reload].map(words => ({ words, pattern: words })) : []
    );
}

/** The `sudo -n` commands run on one unit (a blue-green deploy has two instances). */
function unitSudo(
  settings: Settings,
  unit: string
): { words: readonly string[]; pattern: readonly string[] }[] {
  const svc = settings.service;
  if (svc.manager !== 'systemd') return [];
  const w = systemdWords(unit);
  const used = svc.blueGreen
    ? (() => {
        const c = colourWords(svc.name, unit.endsWith('@blue') ? 'blue' : 'green');
        return [c.restart, c.start, c.stop, c.status, c.logs];
      })()
    : svc.switch === 'reload'
      ? [w.stop, w.start, w.reload, w.status, w.logs]
      : [w.stop, w.start, w.status, w.logs];
  const out = used.map(words => ({ words, pattern: words }));
  if (settings.checks.some(c => c.type === 'logs' && c.source === 'journal')) {
    // What the logs check (checks/host-probes.ts) runs to read the unit's journal.
    const props = ['-p', 'LoadState', '-p', 'ActiveState', '-p', 'InvocationID'];
    const more = ['-p', 'ActiveEnterTimestamp', '-p', 'ExecMainStartTimestamp', '--', unit];
    const journal = ['journalctl', '--no-pager', '-o', 'cat', '--show-cursor'];
    const show = (...words: string[]) => ({ words, pattern: words });
    out.push(
      show('systemctl', 'show', '--timestamp=us+utc', ...props, ...more),
      show('systemctl', 'show', ...props, ...more),
      {
        words: [...journal, `_SYSTEMD_INVOCATION_ID=${SAMPLE_INVOCATION}`],
        pattern: [...journal, '_SYSTEMD_INVOCATION_ID=*']
      }
    );
  }
  return out;
}

/** What the preflight asks a host, for these settings. */
export function preflightProbe(settings: Settings): PreflightProbe {
  const layout = layoutFor(settings.target);
  const svc = settings.service;
  const systemd = svc.manager === 'systemd';
  const sudo = sudoCommands(settings);
  const bg = blueGreenOf(svc);
  return {
    // blue-green: the template is described through its blue instance.
    service: colourService(svc, 'blue'),
    tools: [
      ...HOST_TOOLS.map(t => t.tool),
      ...(systemd ? ['systemctl', 'journalctl'] : []),
      ...(sudo.length ? ['sudo'] : [])
    ],
    paths: [...(systemd ? ['systemctl', 'journalctl'] : []), ...(bg ? ['nginx'] : [])],
    sudo: sudo.map(c => c.words),
    creates: [...creates(layout), ...(bg ? [bg.upstreamFile] : [])],
    ...(bg ? { proxy: { upstreamFile: bg.upstreamFile } } : {})
  };
}

/** Where the deploy creates entries: the directory above each must be writable by the deploy user. */
function creates(layout: Layout): string[] {
  return layout.strategy === 'releases'
    ? [layout.lockDir, posix.join(layout.releasesDir, 'x'), layout.current]
    : [layout.lockDir, layout.current];
}

/** Reads the `key=value` lines of the preflight script (anything else is ignored). */
export function parsePreflight(stdout: string): PreflightFacts {
  const missingTools: string[] = [];
  const paths = new Map<string, string>();
  const sudo: boolean[] = [];
  const unwritable: string[] = [];
  const unit = new Map<string, string>();
  let diskDir: string | undefined;
  let diskFreeKb: number | undefined;
  const proxy = { installed: false, includes: false };
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'missing-tool') missingTools.push(value);
    else if (key.startsWith('path-')) paths.set(key.slice(5), value);
    else if (/^sudo-\d+$/.test(key)) sudo[Number(key.slice(5))] = value === 'yes';
    else if (key === 'unwritable' && !unwritable.includes(value)) unwritable.push(value);
    else if (key === 'disk-dir') diskDir = value;
    else if (key === 'disk-free-kb' && /^\d+$/.test(value)) diskFreeKb = Number(value);
    else if (key.startsWith('unit-')) unit.set(key.slice(5), value);
    else if (key === 'proxy-nginx') proxy.installed = value === 'yes';
    else if (key === 'proxy-include') proxy.includes = value === 'yes';
  }
  return {
    missingTools,
    paths,
    sudo,
    unwritable,
    diskDir,
    diskFreeKb,
    unit,
    ...(/^proxy-nginx=/m.test(stdout) ? { proxy } : {})
  };
}

/** A sudoers word: the characters sudoers reads as syntax are escaped. */
function sudoersWord(word: string, pattern: boolean): string {
  const special = pattern ? /[\\,:=()!]/g : /[\\,:=()!*?[\]]/g;
  return word.replace(special, c => `\\${c}`);
}

/** The exact sudoers line that allows the deploy's `sudo -n` commands (real paths). */
export function sudoersLine(settings: Settings, user: string, paths: ReadonlyMap<string, string>): string {
  const cmds = sudoCommands(settings).map(({ pattern }) => {
    const [tool = '', ...args] = pattern;
    const path = paths.get(tool) || (tool === 'nginx' ? '/usr/sbin/nginx' : `/usr/bin/${tool}`);
    return [path, ...args.map(a => sudoersWord(a, a.endsWith('=*')))].join(' ');
  });
  return `${user} ALL=(root) NOPASSWD: ${[...new Set(cmds)].join(', ')}`;
}

const MIB = 1024 * 1024;

/** Bytes the upload needs on the host: the files, a 4 KiB block each, 10% (at least 1 MiB) spare. */
export function diskNeeded(need: DiskNeed, strategy: Layout['strategy']): number {
  const tree = need.bytes + need.files * 4096;
  // In place, the live tree is copied aside before it is replaced: about twice the room.
  return (strategy === 'in-place' ? 2 * tree : tree) + Math.max(Math.ceil(need.bytes / 10), MIB);
}

const mb = (bytes: number) => `${(bytes / MIB).toFixed(1)} MiB`;

/** Strips the prefixes systemd shows on a path (`-` ignore missing, `!`, `+`, `~`). */
const bare = (p: string) => p.replace(/^[-!+@:~]+/, '');
const under = (p: string, dir: string) => p === dir || p.startsWith(`${dir}/`);

function judgeUnit(settings: Settings, layout: Layout, facts: PreflightFacts): PreflightFinding[] {
  const svc = settings.service;
  if (svc.manager !== 'systemd') return [];
  // blue-green: the template, seen through its blue instance, must run from <target>/blue.
  const bg = svc.blueGreen;
  const name = bg ? instanceOf(svc.name, 'blue') : svc.name;
  const load = facts.unit.get('LoadState');
  const live = bg ? colourLink(layout, 'blue') : layout.current;
  if (load === undefined || load === 'unreadable')
    return facts.missingTools.includes('systemctl')
      ? []
      : [
          {
            check: 'unit',
            level: 'fail',
            message: `systemctl could not describe the unit ${name}`,
            fix: `run on the host: systemctl show -p LoadState -- ${name}; systemd must be PID 1 there (a container without systemd needs service.manager: command)`
          }
        ];
  if (load === 'not-found')
    return [
      {
        check: 'unit',
        level: 'fail',
        message: bg
          ? `the systemd template unit ${svc.name}@.service does not exist on the host (service.name in the config, switch: blue-green)`
          : `the systemd unit ${name} does not exist on the host (service.name in the config)`,
        fix: bg
          ? `create /etc/systemd/system/${svc.name}@.service with EnvironmentFile=${layout.base}/%i.env, WorkingDirectory=${layout.base}/%i and an ExecStart= that runs the app from ${layout.base}/%i and listens on $PORT, then run: systemctl daemon-reload`
          : `create /etc/systemd/system/${name}.service with WorkingDirectory=${live} and an ExecStart= that runs the app from ${live}, then run: systemctl daemon-reload (or correct service.name)`
      }
    ];
  if (load === 'masked')
    return [
      {
        check: 'unit',
        level: 'fail',
        message: `the systemd unit ${name} is masked: it cannot be started`,
        fix: `systemctl unmask ${name}`
      }
    ];
  if (load !== 'loaded')
    return [{ check: 'unit', level: 'fail', message: `the systemd unit ${name} is ${load}` }];
  const file = facts.unit.get('FragmentPath') || `/etc/systemd/system/${name}.service`;
  const workDir = bare(facts.unit.get('WorkingDirectory') ?? '');
  const argv = /argv\[\]=([^;]*)/.exec(facts.unit.get('ExecStart') ?? '')?.[1]?.trim() ?? '';
  const refs = [workDir, ...argv.split(/\s+/).filter(w => w.startsWith('/'))].filter(Boolean);
  const cannotReload =
    svc.switch === 'reload' && facts.unit.get('CanReload') === 'no'
      ? [
          {
            check: 'unit' as const,
            level: 'fail' as const,
            message: `the unit ${name} cannot reload (no ExecReload=), and service.switch is reload`,
            fix: `in ${facts.unit.get('FragmentPath') || `/etc/systemd/system/${name}.service`}, add an ExecReload= that makes the service pick up ${live} gracefully (for example ExecReload=/bin/kill -HUP $MAINPID, if the app re-executes on SIGHUP), then: systemctl daemon-reload; or use switch: restart`
          }
        ]
      : [];
  if (cannotReload.length) return cannotReload;
  if (refs.some(r => under(r, live)))
    return [
      {
        check: 'unit',
        level: 'ok',
        message: `unit ${name} runs from ${live}${facts.unit.get('ActiveState') ? ` (${facts.unit.get('ActiveState')})` : ''}`
      }
    ];
  return [
    {
      check: 'unit',
      level: 'warn',
      message: `the unit ${name} does not run from ${live} (WorkingDirectory=${workDir || '(unset)'}, ExecStart=${argv || '(unset)'}): deploying would not change what runs`,
      fix: `in ${file}, ${workDir ? `change WorkingDirectory=${workDir} to` : 'set'} WorkingDirectory=${live} and make ExecStart= run the app from ${live}, then: systemctl daemon-reload`
    }
  ];
}

/** blue-green: nginx is installed and its configuration includes the upstream file deployguard writes. */
function judgeProxy(settings: Settings, facts: PreflightFacts): PreflightFinding[] {
  const svc = settings.service;
  if (svc.manager !== 'systemd' || !svc.blueGreen) return [];
  const bg = svc.blueGreen;
  if (!facts.proxy?.installed)
    return [
      {
        check: 'proxy',
        level: 'fail',
        message: 'nginx is not installed on the host, and switch: blue-green flips traffic in it',
        fix: 'apt-get install -y nginx'
      }
    ];
  if (!facts.proxy.includes)
    return [
      {
        check: 'proxy',
        level: 'fail',
        message: `no file under /etc/nginx includes ${bg.upstreamFile}: a flip would not change where traffic goes`,
        fix: `in the site's nginx config: upstream ${svc.name} { include ${bg.upstreamFile}; } and proxy_pass http://${svc.name}; then: nginx -t && systemctl reload nginx (README: "Zero-downtime deploys")`
      }
    ];
  return [
    {
      check: 'proxy',
      level: 'ok',
      message: `nginx includes ${bg.upstreamFile}, the upstream deployguard flips`
    }
  ];
}

/**
 * Judges one host's facts: every check gets a finding (`ok`, `warn` or `fail`). `need` is the
 * upload, when this deploy ships one (a reused release or a rollback uploads nothing).
 */
export function judgePreflight(
  settings: Settings,
  host: HostSettings,
  facts: PreflightFacts,
  need?: DiskNeed
): PreflightFinding[] {
  const layout = layoutFor(settings.target);
  const out: PreflightFinding[] = [];
  const pkgOf = (tool: string) =>
    HOST_TOOLS.find(t => t.tool === tool)?.pkg ?? (tool === 'sudo' ? 'sudo' : 'systemd');
  if (facts.missingTools.length) {
    const pkgs = [...new Set(facts.missingTools.map(pkgOf))];
    out.push({
      check: 'tools',
      level: 'fail',
      message: `missing on the host: ${facts.missingTools.join(', ')}`,
      fix: `apt-get install ${pkgs.join(' ')} (the package${pkgs.length > 1 ? 's' : ''} that ship${pkgs.length > 1 ? '' : 's'} them)`
    });
  } else out.push({ check: 'tools', level: 'ok', message: 'every tool the deploy calls is installed' });

  if (facts.unwritable.length)
    out.push({
      check: 'write',
      level: 'fail',
      message: `${host.user} cannot write ${facts.unwritable.join(', ')}, where the deploy creates ${layout.strategy === 'releases' ? 'its releases, state and lock' : 'the new tree, its state and lock'}`,
      fix: `as root: install -d -o ${host.user} -g ${host.user} ${layout.strategy === 'releases' ? layout.base : `${layout.stateDir} && chown ${host.user}: ${posix.dirname(layout.base)}`} (or chown -R ${host.user}: the existing directories)`
    });
  else
    out.push({
      check: 'write',
      level: 'ok',
      message: `${host.user} can write where the deploy creates files`
    });

  if (need) {
    const bytes = diskNeeded(need, layout.strategy);
    const where = facts.diskDir ?? layout.stateDir;
    if (facts.diskFreeKb === undefined)
      out.push({
        check: 'disk',
        level: 'warn',
        message: `the free space on ${where} could not be read (df)`
      });
    else if (facts.diskFreeKb * 1024 < bytes)
      out.push({
        check: 'disk',
        level: 'fail',
        message: `not enough free disk on ${where}: ${mb(facts.diskFreeKb * 1024)} free, the upload needs about ${mb(bytes)} (${mb(need.bytes)} in ${need.files} files, plus margin)`,
        fix: `free at least ${mb(bytes - facts.diskFreeKb * 1024)} on that filesystem (old releases: lower target.keep-releases), or set target.path on a larger one`
      });
    else
      out.push({
        check: 'disk',
        level: 'ok',
        message: `${mb(facts.diskFreeKb * 1024)} free on ${where}; the upload needs about ${mb(bytes)}`
      });
  }

  out.push(...judgeUnit(settings, layout, facts));
  out.push(...judgeProxy(settings, facts));

  const sudo = sudoCommands(settings);
  // Without sudo on the host the tools check already says to install it; the sudoers line
  // comes after that.
  if (sudo.length && facts.missingTools.includes('sudo'))
    out.push({
      check: 'sudo',
      level: 'fail',
      message: `sudo is not installed, and service.sudo is on`,
      fix: `install sudo (apt-get install -y sudo), then add this line with: visudo -f /etc/sudoers.d/deployguard\n${sudoersLine(settings, host.user, facts.paths)}`
    });
  else if (sudo.length) {
    const denied = sudo.filter((_c, i) => facts.sudo[i] !== true);
    if (denied.length)
      out.push({
        check: 'sudo',
        level: 'fail',
        message: `${host.user} may not run without a password: ${denied.map(c => `sudo -n ${c.words.join(' ')}`).join('; ')}`,
        fix: `add this line with: visudo -f /etc/sudoers.d/deployguard\n${sudoersLine(settings, host.user, facts.paths)}`
      });
    else
      out.push({
        check: 'sudo',
        level: 'ok',
        message: `${host.user} may run the ${sudo.length} sudo -n commands of the deploy`
      });
  }
  return out;
}

/** A host's findings as the report keeps them. */
export function hostPreflight(host: string, findings: readonly PreflightFinding[]): HostPreflight {
  return { host, ok: !findings.some(f => f.level === 'fail'), findings };
}

/** The failures (and warnings) of one host as indented text, each with its fix. */
export function describeFindings(
  findings: readonly PreflightFinding[],
  levels: readonly PreflightLevel[]
): string {
  return findings
    .filter(f => levels.includes(f.level))
    .map(
      f =>
        `  ${f.level === 'fail' ? '✗' : f.level === 'warn' ? '!' : '✓'} ${f.check}: ${f.message}${f.fix ? `\n    fix: ${f.fix.split('\n').join('\n      ')}` : ''}`
    )
    .join('\n');
}

/** The report as text for a terminal: one block per host, then a line that says how it ended. */
export function renderPreflight(report: PreflightReport): string {
  const blocks = report.hosts.map(
    h => `${h.host}: ${h.ok ? 'ready' : 'NOT ready'}\n${describeFindings(h.findings, ['ok', 'warn', 'fail'])}`
  );
  const failed = report.hosts.filter(h => !h.ok).length;
  const warned = report.hosts.filter(h => h.findings.some(f => f.level === 'warn')).length;
  const end = report.ok
    ? `preflight passed on ${report.hosts.length} host${report.hosts.length === 1 ? '' : 's'}${warned ? ` (${warned} with warnings)` : ''}; nothing was changed`
    : `preflight FAILED on ${failed} of ${report.hosts.length} host${report.hosts.length === 1 ? '' : 's'}; nothing was changed`;
  return [...blocks, end].join('\n\n');
}

export interface PreflightOptions {
  /** The artifact to check free disk for; without one the disk check is left out. */
  readonly artifact?: Artifact;
  /** Opens a shell to a host (default: a real SSH connection). */
  readonly connect?: (host: HostSettings) => ReturnType<typeof connectHost>;
}

/** Runs the preflight on every host (a few at a time), changing nothing. */
export async function runPreflight(
  settings: Settings,
  log: Logger,
  opts: PreflightOptions = {}
): Promise<PreflightReport> {
  const layout = layoutFor(settings.target);
  const script = preflightScript(layout, preflightProbe(settings));
  const need = opts.artifact
    ? { bytes: opts.artifact.totalBytes, files: opts.artifact.fileCount }
    : undefined;
  const connect = opts.connect ?? (h => connectHost(h, settings.ssh, log));
  const one = async (host: HostSettings): Promise<HostPreflight> => {
    let shell;
    try {
      shell = await connect(host);
    } catch (err) {
      return hostPreflight(host.name, [
        {
          check: 'login',
          level: 'fail',
          message: `could not log in as ${host.user}@${host.host}:${host.port}: ${describeError(err)}`
        }
      ]);
    }
    try {
      const r = await shell.exec(script, { timeoutMs: 60_000 });
      if (r.code !== 0)
        return hostPreflight(host.name, [
          {
            check: 'login',
            level: 'fail',
            message: `logged in, but the preflight script failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' ')}`
          }
        ]);
      return hostPreflight(host.name, [
        { check: 'login', level: 'ok', message: `logged in as ${host.user}` },
        ...judgePreflight(settings, host, parsePreflight(r.stdout), need)
      ]);
    } finally {
      shell.close();
    }
  };
  const hosts: HostPreflight[] = [];
  for (let i = 0; i < settings.hosts.length; i += PARALLEL)
    hosts.push(...(await Promise.all(settings.hosts.slice(i, i + PARALLEL).map(one))));
  return { ok: hosts.every(h => h.ok), hosts };
}

/** Hosts checked at once: a burst of logins trips rate limits, as for deploys. */
const PARALLEL = 8;

/**
 * `deployguard preflight`: checks every host, prints the report (text or JSON), returns the exit
 * code: 0 when every host is ready (warnings allowed), 1 when not. The artifact is read when its
 * path exists, for the disk check.
 */
export async function preflightCommand(
  settings: Settings,
  write: (text: string) => void,
  json: boolean,
  log: Logger = redacting(consoleLogger())
): Promise<number> {
  const artifact = settings.artifact
    ? await scanArtifact(settings.artifact, { exclude: settings.exclude }).catch((err: unknown) => {
        log.warn(`the disk check is left out: ${describeError(err)}`);
        return undefined;
      })
    : undefined;
  const report = await runPreflight(settings, log, { artifact });
  write(json ? JSON.stringify(report, null, 2) : renderPreflight(report));
  return report.ok ? 0 : 1;
}
