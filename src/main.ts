import * as core from '@actions/core';
import { dryRun, runDeploy } from './deploy.js';
import { describeError } from './errors.js';
import { actionsLogger } from './io/log.js';
import { secrets } from './io/secrets.js';
import { githubApi } from './io/github.js';
import type { DeployResult } from './plan/execute.js';
import { blockedResult } from './plan/execute.js';
import { deployReason } from './report/changes.js';
import { deliverRecord, finishGithubDeployment, startGithubDeployment } from './report/deliver.js';
import { findPullRequest } from './report/publish.js';
import type { BlockedBy } from './report/record.js';
import { renderFindings, verdictLine } from './report/summary.js';
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
    const outDir = process.env.RUNNER_TEMP ?? tmpdir();
    const artifactRoot = artifactRootOf(workspace, settings.artifact);
    const event = readEvent();
    const api =
      settings.report.githubToken && settings.run.repository
        ? githubApi(settings.report.githubToken, settings.run.apiUrl)
        : undefined;
    const gateOpts = {
      workspace,
      env: process.env,
      log: actionsLogger,
      outDir,
      event,
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
    const pr = await findPullRequest(api, settings.run.repository, event, settings.run.commit, actionsLogger);
    const why = await deployReason({
      reason: settings.report.reason,
      pr,
      event,
      repoDir: workspace,
      commit: settings.run.commit
    });
    // Tests run before any host is contacted; the secret scan runs once every host is locked and
    // read, so it can start from the last good deploy they recorded.
    const testStart = Date.now();
    const failedTests = await testGate(settings, gateOpts).then(
      () => undefined,
      (err: unknown) => err ?? new Error('the test command failed')
    );
    const testPhase = settings.preDeploy.testCommand
      ? [{ name: 'Tests', start: testStart, ms: Date.now() - testStart, ok: failedTests === undefined }]
      : [];
    let scan: ScanReport | undefined;
    let result: DeployResult;
    let deploymentId: number | undefined;
    if (failedTests !== undefined) {
      result = blockedResult(settings, failedTests, new Date(testStart));
    } else {
      deploymentId = await startGithubDeployment(settings, api, actionsLogger);
      result = await runDeploy(settings, {
        log: actionsLogger,
        signal: abort.signal,
        why: why?.text,
        redact: text => secrets.redact(text),
        beforeChanges: async ({ lastDeployedCommit }) => {
          scan = await secretGate(settings, { ...gateOpts, lastDeployedCommit });
        },
        onLock: (host, isHeld, token) => {
          if (isHeld) held.set(host.name, token);
          else held.delete(host.name);
          core.saveState(LOCK_STATE, JSON.stringify([...held.entries()]));
        }
      });
    }
    const scanned = scan ?? reportOf(result.blockedBy)?.scan;
    const blockedBy: BlockedBy | undefined =
      result.status !== 'blocked'
        ? undefined
        : failedTests !== undefined
          ? 'tests'
          : result.blockedBy !== undefined
            ? 'secrets'
            : 'health';
    core.setOutput('sarif-path', scanned?.sarifPath ?? '');
    core.setOutput('status', result.status);
    core.setOutput('release', result.releaseId);
    core.setOutput('previous-release', result.previousRelease ?? '');
    core.setOutput('rolled-back', String(result.rolledBack));
    core.setOutput('environment-url', settings.report.environmentUrl ?? '');
    const record = await deliverRecord({
      settings,
      result,
      api,
      pr,
      why,
      blockedBy,
      findings: scanned?.findings.length,
      extraPhases: testPhase,
      workspace,
      outDir,
      log: actionsLogger,
      redact: text => secrets.redact(text),
      commentSha: pr?.headSha && /^pull_request/.test(event?.name ?? '') ? pr.headSha : undefined
    });
    core.setOutput('log-path', record.path);
    await finishGithubDeployment(settings, api, deploymentId, result.status, actionsLogger);
    // The runner masks its log, not the summary file: the record is redacted, and so are findings.
    const findings = renderFindings(scanned?.findings ?? [], artifactRoot);
    await core.summary.addRaw(secrets.redact(`${record.markdown}\n${findings}`), true).write();
    core.info(verdictLine(result));
    if (failedTests !== undefined) core.setFailed(secrets.redact(describeError(failedTests)));
    else if (result.status !== 'deployed')
      core.setFailed(secrets.redact(`${verdictLine(result)}\n${result.error ?? ''}`.trim()));
  } catch (err) {
    core.setOutput('status', 'failed');
    core.setFailed(describeError(err));
  } finally {
    process.off('SIGINT', cancel);
    process.off('SIGTERM', cancel);
  }
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
