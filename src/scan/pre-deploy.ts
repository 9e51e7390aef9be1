import { existsSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { SecretScanError } from '../errors.js';
import type { Logger } from '../io/log.js';
import { runShell } from '../io/process.js';
import { secrets } from '../io/secrets.js';
import type { Settings } from '../settings/types.js';
import { ensureGitleaks } from './acquire.js';
import { scanCommits, scanDirectory, type Finding } from './gitleaks.js';
import { resolveRange, type CommitRange } from './range.js';
import { writeSarif } from './sarif.js';

/**
 * The local parts of the pre-deploy gate: the test command (before any host is contacted), then
 * gitleaks on the commits going out and on the artifact (once the hosts are locked and read, so
 * the range starts at their last good deploy). Any failure or finding stops the deploy.
 */

export interface TestRun {
  readonly command: string;
  readonly ok: boolean;
  readonly exitCode: number | null;
  readonly durationMs: number;
  /** The last lines of its output, secrets redacted. */
  readonly tail: string;
}

export interface ScanReport {
  readonly engine: { readonly path: string; readonly version: string };
  readonly range?: CommitRange;
  readonly scannedArtifact: boolean;
  readonly findings: readonly Finding[];
  readonly sarifPath: string;
}

/** What a failed secret gate attaches to its error, for the summary and outputs. */
export interface PreDeployReport {
  readonly scan?: ScanReport;
}

export interface PreDeployOptions {
  /** The repository checkout (GITHUB_WORKSPACE, or the CLI's working directory). */
  readonly workspace: string;
  readonly env: NodeJS.ProcessEnv;
  readonly log: Logger;
  /** Where the SARIF report is written: the run's private directory (io/private-dir.ts). */
  readonly outDir: string;
  /** GITHUB_EVENT_NAME and its payload, when running in Actions. */
  readonly event?: { readonly name: string; readonly payload: unknown };
  /** The commit of the last good deploy to this environment, when the hosts record one. */
  readonly lastDeployedCommit?: string;
  /** Called for each finding (the action turns them into annotations). */
  readonly onFinding?: (f: Finding) => void;
  readonly signal?: AbortSignal;
}

const TAIL_LINES = 30;
/** The test command is bounded by the job's own timeout; this only stops one that never ends. */
const TEST_TIMEOUT_MS = 24 * 3600_000;

/**
 * Where artifact findings live, relative to the workspace: the artifact directory, or for a
 * single-file artifact its folder (gitleaks names such a finding by the file). Used for the SARIF
 * paths and the annotations alike.
 */
export function artifactRootOf(workspace: string, artifact: string): string {
  const path = resolve(workspace, artifact);
  const isFile = existsSync(path) && statSync(path).isFile();
  return relative(workspace, isFile ? dirname(path) : path) || '.';
}

/** Runs the test command in the workspace; its output is kept (tail only) and never echoed raw. */
export async function runTestCommand(
  command: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
  signal?: AbortSignal
): Promise<TestRun> {
  const lines: string[] = [];
  let partial = '';
  const take = (b: Buffer) => {
    const text = partial + b.toString('utf8');
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    if (lines.length > TAIL_LINES * 4) lines.splice(0, lines.length - TAIL_LINES);
  };
  // Its own process group: a cancel kills what the command started too (see `runShell`).
  const r = await runShell(command, { cwd, env, signal, timeoutMs: TEST_TIMEOUT_MS, onOutput: take });
  if (r.outcome === 'error') {
    return {
      command,
      ok: false,
      exitCode: null,
      durationMs: r.ms,
      tail: r.error?.message ?? 'could not run'
    };
  }
  if (partial) lines.push(partial);
  return {
    command,
    ok: r.outcome === 'exit' && r.code === 0,
    exitCode: r.code,
    durationMs: r.ms,
    tail: secrets.redact(lines.slice(-TAIL_LINES).join('\n'))
  };
}

function describeFinding(f: Finding): string {
  const where = `${f.source === 'artifact' ? 'artifact: ' : ''}${f.file}:${f.line}`;
  const who = f.commit
    ? ` in ${f.commit.slice(0, 12)}${f.author ? ` by ${f.author}` : ''}${f.date ? ` (${f.date.slice(0, 10)})` : ''}`
    : '';
  return `${f.rule} at ${where}${who}`;
}

/**
 * The environment of the test command: the runner's, without the SSH credentials deployguard
 * reads (the key, its passphrase, a password, any variable holding a host's own key). The tests never
 * need them, and a test or a dependency it installs could send them anywhere.
 */
export function testEnvironment(settings: Settings, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const drop = new Set([
    'DEPLOYGUARD_SSH_KEY',
    'DEPLOYGUARD_SSH_PASSPHRASE',
    'DEPLOYGUARD_SSH_PASSWORD',
    'INPUT_SSH-KEY',
    'INPUT_SSH-PASSPHRASE',
    'INPUT_SSH-PASSWORD'
  ]);
  // A host's own key comes from a variable the config names: found by its value.
  const credentials = [
    settings.ssh.privateKey,
    settings.ssh.passphrase,
    settings.ssh.password,
    ...settings.hosts.flatMap(h => [h.privateKey, h.jump?.privateKey])
  ].filter((v): v is string => !!v);
  return Object.fromEntries(
    Object.entries(env).filter(([name, value]) => !drop.has(name) && !(value && credentials.includes(value)))
  );
}

/** The test command, when one is set. Throws SecretScanError (with the output tail) when it fails. */
export async function testGate(settings: Settings, opts: PreDeployOptions): Promise<TestRun | undefined> {
  const command = settings.preDeploy.testCommand;
  if (!command) return undefined;
  const tests = await opts.log.group(`Pre-deploy: test command (${command})`, () =>
    runTestCommand(command, opts.workspace, testEnvironment(settings, opts.env), opts.signal)
  );
  if (!tests.ok) {
    throw new SecretScanError(
      `the test command failed (exit ${tests.exitCode ?? 'none'}) after ${Math.round(tests.durationMs / 1000)} s; nothing was deployed. Last lines:\n${tests.tail}`,
      'pre-deploy',
      'Fix the failing tests; a deploy never goes out with red tests.'
    );
  }
  opts.log.info(`✓ test command passed in ${Math.round(tests.durationMs / 1000)} s`);
  return tests;
}

/**
 * gitleaks on the commits going out (from `lastDeployedCommit` when the hosts recorded one) and
 * on the artifact. Throws SecretScanError, with the report attached, on any finding.
 */
export async function secretGate(
  settings: Settings,
  opts: PreDeployOptions
): Promise<ScanReport | undefined> {
  const pre = settings.preDeploy;
  if (pre.scan === 'off') {
    opts.log.warn('secret scan is off (pre-deploy.gitleaks: false or scan: none)');
    return undefined;
  }
  const scan = await opts.log.group('Pre-deploy: secret scan (gitleaks)', async () => {
    const engine = await ensureGitleaks({ inputPath: pre.gitleaksPath, env: opts.env, log: opts.log });
    opts.log.info(`gitleaks ${engine.version} (${engine.source})`);
    const configPath = pre.gitleaksConfig
      ? resolve(opts.workspace, pre.gitleaksConfig)
      : existsSync(join(opts.workspace, '.gitleaks.toml'))
        ? join(opts.workspace, '.gitleaks.toml')
        : undefined;
    if (configPath && !existsSync(configPath)) {
      throw new SecretScanError(
        `the gitleaks config ${configPath} does not exist`,
        'pre-deploy',
        'Check the gitleaks-config input.'
      );
    }
    const ignore = join(opts.workspace, '.gitleaksignore');
    const scanOpts = { configPath, ignorePath: existsSync(ignore) ? ignore : undefined };
    const findings: Finding[] = [];
    let range: CommitRange | undefined;
    if (pre.scan === 'both' || pre.scan === 'commits') {
      range = await resolveRange({
        repoDir: opts.workspace,
        head: opts.env.GITHUB_SHA ?? 'HEAD',
        lastDeployedCommit: opts.lastDeployedCommit,
        event: opts.event as { name: string; payload: unknown } | undefined
      });
      opts.log.info(
        `commits: ${range.commits.length} (${range.source}${range.base ? ` ${range.base.slice(0, 12)}..${range.head.slice(0, 12)}` : ` up to ${range.head.slice(0, 12)}`})${range.note ? `; ${range.note}` : ''}`
      );
      findings.push(
        ...(await scanCommits(engine, opts.workspace, range.commits, { ...scanOpts, logOpts: range.logOpts }))
      );
    }
    const scannedArtifact = pre.scan === 'both' || pre.scan === 'artifact';
    if (scannedArtifact) {
      const artifact = resolve(opts.workspace, settings.artifact);
      opts.log.info(`artifact: ${relative(opts.workspace, artifact) || artifact}`);
      findings.push(...(await scanDirectory(engine, artifact, scanOpts)));
    }
    // Findings in a single-file artifact are named by the file, so its folder is the root.
    const artifactRoot = artifactRootOf(opts.workspace, settings.artifact);
    const sarifPath = writeSarif(opts.outDir, findings, engine, { artifactRoot });
    for (const f of findings) opts.onFinding?.(f);
    return {
      engine: { path: engine.path, version: engine.version },
      range,
      scannedArtifact,
      findings,
      sarifPath
    };
  });

  if (scan.findings.length > 0) {
    const list = scan.findings.slice(0, 20).map(f => `  - ${describeFinding(f)}`);
    if (scan.findings.length > 20)
      list.push(`  - and ${scan.findings.length - 20} more (see the SARIF report)`);
    throw Object.assign(
      new SecretScanError(
        `gitleaks found ${scan.findings.length} secret${scan.findings.length === 1 ? '' : 's'}; nothing was deployed:\n${list.join('\n')}`,
        'pre-deploy',
        'Rotate each secret first (it is exposed already), then remove it from the code or the build output. For a false positive, add an allowlist to .gitleaks.toml or its fingerprint to .gitleaksignore.'
      ),
      { report: { scan } satisfies PreDeployReport }
    );
  }
  opts.log.info(
    `✓ no secrets found (${scan.range ? `${scan.range.commits.length} commits` : 'no commits'}${scan.scannedArtifact ? ' and the artifact' : ''})`
  );
  return scan;
}

/** The report attached to a failed pre-deploy gate, if any (for the summary and outputs). */
export function reportOf(err: unknown): PreDeployReport | undefined {
  return (err as { report?: PreDeployReport } | undefined)?.report;
}
