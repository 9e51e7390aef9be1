import * as core from '@actions/core';
import { dryRun, runDeploy } from './deploy.js';
import { describeError } from './errors.js';
import { actionsLogger } from './io/log.js';
import { secrets } from './io/secrets.js';
import { renderFindings, renderSummary, verdictLine } from './report/summary.js';
import type { Finding } from './scan/gitleaks.js';
import { artifactRootOf, reportOf, secretGate, testGate, type ScanReport } from './scan/pre-deploy.js';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings } from './settings/load.js';
import type { Settings } from './settings/types.js';

/** State key under which held locks are passed to the post step. */
export const LOCK_STATE = 'deployguard-locks';

/** The action's main step: every phase of the guarded deploy. */
export async function run(): Promise<void> {
  const held = new Map<string, string>();
  const abort = new AbortController();
  const cancel = () => abort.abort();
  process.once('SIGINT', cancel);
  process.once('SIGTERM', cancel);
  try {
    const settings = loadActionSettings();
    if (settings.dryRun) {
      const text = await dryRun(settings);
      core.info(text);
      await core.summary.addHeading('deployguard: dry run', 2).addCodeBlock(text, 'text').write();
      core.setOutput('status', 'dry-run');
      core.setOutput('release', settings.releaseId);
      return;
    }
    const workspace = process.env.GITHUB_WORKSPACE ?? process.cwd();
    const artifactRoot = artifactRootOf(workspace, settings.artifact);
    const gateOpts = {
      workspace,
      env: process.env,
      log: actionsLogger,
      outDir: process.env.RUNNER_TEMP ?? tmpdir(),
      event: readEvent(),
      signal: abort.signal,
      onFinding: (f: Finding) =>
        core.error(
          `${f.rule}: ${f.description || 'a secret'}${f.commit ? ` (commit ${f.commit.slice(0, 12)})` : ''}. Rotate it, then remove it.`,
          {
            title: 'Secret found by gitleaks',
            file: f.source === 'artifact' ? join(artifactRoot, f.file) : f.file,
            startLine: f.line,
            endLine: f.endLine
          }
        )
    };
    // Tests run before any host is contacted; the secret scan runs once every host is locked and
    // read, so it can start from the last good deploy they recorded.
    try {
      await testGate(settings, gateOpts);
    } catch (err) {
      await blocked(settings, err);
      return;
    }
    let scan: ScanReport | undefined;
    const result = await runDeploy(settings, {
      log: actionsLogger,
      signal: abort.signal,
      beforeChanges: async ({ lastDeployedCommit }) => {
        scan = await secretGate(settings, { ...gateOpts, lastDeployedCommit });
      },
      onLock: (host, isHeld, token) => {
        if (isHeld) held.set(host.name, token);
        else held.delete(host.name);
        core.saveState(LOCK_STATE, JSON.stringify([...held.entries()]));
      }
    });
    const scanned = scan ?? reportOf(result.blockedBy)?.scan;
    core.setOutput('sarif-path', scanned?.sarifPath ?? '');
    core.setOutput('status', result.status);
    core.setOutput('release', result.releaseId);
    core.setOutput('previous-release', result.previousRelease ?? '');
    core.setOutput('rolled-back', String(result.rolledBack));
    // The runner masks its log, not the summary file: redact it ourselves.
    const findings = renderFindings(scanned?.findings ?? [], artifactRoot);
    await core.summary
      .addRaw(secrets.redact(`${renderSummary(result, settings.environment)}\n${findings}`), true)
      .write();
    core.info(verdictLine(result));
    if (result.status !== 'deployed')
      core.setFailed(secrets.redact(`${verdictLine(result)}\n${result.error ?? ''}`.trim()));
  } catch (err) {
    core.setOutput('status', 'failed');
    core.setFailed(describeError(err));
  } finally {
    process.off('SIGINT', cancel);
    process.off('SIGTERM', cancel);
  }
}

/** Outputs and summary of a deploy stopped by the test command, before any host was contacted. */
async function blocked(settings: Settings, err: unknown): Promise<void> {
  core.setOutput('status', 'blocked');
  core.setOutput('release', settings.releaseId);
  core.setOutput('rolled-back', 'false');
  core.setOutput('sarif-path', '');
  const text = [
    `## deployguard: ${settings.environment}`,
    '',
    '**Status:** ⛔ blocked before deploy (nothing was changed)',
    '',
    '```',
    describeError(err),
    '```'
  ];
  await core.summary.addRaw(secrets.redact(text.join('\n')), true).write();
  core.setFailed(secrets.redact(describeError(err)));
}

/** GITHUB_EVENT_NAME and the event payload, for working out which commits go out. */
function readEvent(): { name: string; payload: unknown } | undefined {
  const name = process.env.GITHUB_EVENT_NAME;
  const path = process.env.GITHUB_EVENT_PATH;
  if (!name || !path) return undefined;
  try {
    return { name, payload: JSON.parse(readFileSync(path, 'utf8')) as unknown };
  } catch {
    return undefined;
  }
}

/** Settings from the action's inputs and the workspace's deployguard.yml, secrets masked on read. */
export function loadActionSettings(): Settings {
  return loadSettings({
    input: name => core.getInput(name),
    env: process.env,
    cwd: process.env.GITHUB_WORKSPACE ?? process.cwd(),
    now: new Date(),
    onSecret: maskSecret
  });
}

/**
 * Masks a secret in the runner's log (as a whole and line by line: the runner masks multi-line
 * values per line) and registers it for the outputs the runner does not mask.
 */
export function maskSecret(value: string): void {
  for (const piece of secrets.add(value)) core.setSecret(piece);
}
