import * as core from '@actions/core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, describeError } from './errors.js';
import { actionsLogger } from './io/actions-log.js';
import { githubApi } from './io/github.js';
import { secrets } from './io/secrets.js';
import type { DeployMode, DeployResult } from './execute/result.js';
import { runPipeline, type PipelineHost } from './pipeline.js';
import { verdictLine } from './report/summary.js';
import { artifactRootOf, type ScanReport } from './scan/pre-deploy.js';
import { releaseId } from './settings/inputs.js';
import { loadSettings } from './settings/load.js';
import { validate } from './settings/schema.js';
import type { Settings } from './settings/types.js';

/**
 * The GitHub Action, whole or one phase at a time. The top-level action runs every phase in one
 * step; the sub-actions `pre-deploy/`, `deploy/`, `post-deploy/` and `rollback/` run one each,
 * passing what a later phase needs through their outputs and the hosts' deployment records.
 */
export type ActionPhase = 'all' | 'pre-deploy' | 'deploy' | 'post-deploy' | 'rollback';

/** State key under which held locks are passed to the post step. */
export const LOCK_STATE = 'deployguard-locks';

/** A release id input, by the one declaration `release-id` uses too. */
const isReleaseId = (text: string) => validate(releaseId, text).ok;
/** A value shown in a message: quoted and escaped, so it cannot start a log line of its own. */
const shown = (text: string) => JSON.stringify(text.slice(0, 60));

/** The phase's own inputs (beyond the shared ones), checked before any host is contacted. */
function phaseMode(phase: ActionPhase): DeployMode {
  switch (phase) {
    case 'all':
      return { kind: 'full' };
    case 'pre-deploy':
      return { kind: 'pre' };
    case 'deploy':
      return { kind: 'switch' };
    case 'post-deploy': {
      const release = core.getInput('release').trim();
      const previous = core.getInput('previous-release').trim();
      if (!isReleaseId(release))
        throw new ConfigError(
          `input \`release\`: expected the release id the deploy step switched to, got ${shown(release)}`,
          'Example: release: ${{ steps.deploy.outputs.release }}'
        );
      if (previous && !isReleaseId(previous))
        throw new ConfigError(`input \`previous-release\`: ${shown(previous)} is not a release id`);
      return { kind: 'post', release, previous: previous || undefined };
    }
    case 'rollback': {
      const to = core.getInput('to').trim() || 'previous';
      if (to !== 'previous' && !isReleaseId(to))
        throw new ConfigError(
          `input \`to\`: expected \`previous\` or a release id, got ${shown(to)}`,
          'Example: to: previous (or a release id from `deployguard history`)'
        );
      return { kind: 'rollback', to };
    }
  }
}

/** Runs one phase (or all of them) as an action step: outputs, the job summary, the record. */
export async function runAction(phase: ActionPhase): Promise<void> {
  try {
    const mode = phaseMode(phase);
    const ships = mode.kind === 'full' || mode.kind === 'switch';
    await runPipeline(actionsHost(phase), {
      ships,
      mode: settings => {
        if (mode.kind === 'post' || mode.kind === 'switch' || mode.kind === 'rollback')
          if (settings.target.strategy !== 'releases')
            throw new ConfigError(
              `the ${phase} action needs \`strategy: releases\` (it switches between releases kept on the hosts)`,
              'For in-place targets, use the top-level action, which runs every phase in one step.'
            );
        return mode;
      }
    });
  } catch (err) {
    core.setOutput('status', 'failed');
    core.setFailed(secrets.redact(describeError(err)));
  }
}

/**
 * The pipeline's host in a workflow step: inputs and GITHUB_* variables in, workflow commands,
 * outputs, the job summary and the post step's state out.
 */
function actionsHost(phase: ActionPhase): PipelineHost {
  const workspace = process.env.GITHUB_WORKSPACE ?? process.cwd();
  return {
    settings: purpose => loadActionSettings(purpose),
    workspace,
    env: process.env,
    log: actionsLogger,
    redact: text => secrets.redact(text),
    github: settings => ({
      event: readEvent(),
      api:
        settings.report.githubToken && settings.run.repository
          ? githubApi(settings.report.githubToken, settings.run.apiUrl)
          : undefined
    }),
    onCancel: cancel => {
      process.once('SIGINT', cancel);
      process.once('SIGTERM', cancel);
      return () => {
        process.off('SIGINT', cancel);
        process.off('SIGTERM', cancel);
      };
    },
    onFinding: (f, settings) => {
      const artifactRoot = settings.artifact ? artifactRootOf(workspace, settings.artifact) : workspace;
      core.error(
        `${f.rule}: ${f.description || 'a secret'}${f.commit ? ` (commit ${f.commit.slice(0, 12)})` : ''}. Rotate it, then remove it.`,
        {
          title: 'Secret found by gitleaks',
          file: f.source === 'artifact' ? join(artifactRoot, f.file) : f.file,
          startLine: f.line,
          endLine: f.endLine
        }
      );
    },
    saveLocks: held => core.saveState(LOCK_STATE, JSON.stringify(held)),
    showPlan: async (settings, text) => {
      core.info(text);
      await core.summary.addHeading('deployguard: dry run', 2).addCodeBlock(text, 'text').write();
      core.setOutput('status', 'dry-run');
      core.setOutput('release', settings.releaseId);
      return 0;
    },
    outputs: run => setOutputs(phase, run.settings, run.result, run.scanned),
    // The record is made every time, and posted once the release is judged: by the whole
    // action, post-deploy or rollback.
    record: ({ mode }) => ({
      post: mode.kind === 'full' || mode.kind === 'post' || mode.kind === 'rollback'
    }),
    recorded: record => core.setOutput('log-path', record.path),
    finish: async ({ result, failedTests }, record) => {
      // The runner masks its log, not the summary file: the record (findings table included) is redacted.
      if (record) await core.summary.addRaw(secrets.redact(record.markdown), true).write();
      core.info(verdictLine(result));
      const ok = ['deployed', 'switched', 'checked'].includes(result.status);
      if (failedTests !== undefined) core.setFailed(secrets.redact(describeError(failedTests)));
      else if (!ok) core.setFailed(secrets.redact(`${verdictLine(result)}\n${result.error ?? ''}`.trim()));
      return ok && failedTests === undefined ? 0 : 1;
    }
  };
}

/** Each phase's outputs, as its action.yml lists them. */
function setOutputs(
  phase: ActionPhase,
  settings: Settings,
  result: DeployResult,
  scanned: ScanReport | undefined
): void {
  if (phase === 'pre-deploy') {
    core.setOutput(
      'status',
      result.status === 'checked' ? 'passed' : result.status === 'blocked' ? 'blocked' : 'failed'
    );
    core.setOutput('sarif-path', scanned?.sarifPath ?? '');
    core.setOutput('last-deployed-commit', result.lastDeployedCommit ?? '');
    core.setOutput('live-release', result.hosts.find(h => h.previousDeploy)?.previousDeploy?.release ?? '');
    return;
  }
  core.setOutput('status', result.status);
  core.setOutput('release', result.releaseId);
  core.setOutput('previous-release', result.previousRelease ?? '');
  core.setOutput('rolled-back', String(result.rolledBack));
  core.setOutput('environment-url', settings.report.environmentUrl ?? '');
  core.setOutput('reused', String(result.reused));
  if (phase === 'all') core.setOutput('sarif-path', scanned?.sarifPath ?? '');
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
export function loadActionSettings(purpose: 'deploy' | 'hosts' = 'deploy'): Settings {
  return loadSettings({
    input: name => core.getInput(name),
    env: process.env,
    cwd: process.env.GITHUB_WORKSPACE ?? process.cwd(),
    now: new Date(),
    onSecret: maskSecret,
    purpose
  });
}

/**
 * Masks a secret in the runner's log (as a whole and line by line: the runner masks multi-line
 * values per line) and registers it for the outputs the runner does not mask.
 */
export function maskSecret(value: string): void {
  for (const piece of secrets.add(value)) core.setSecret(piece);
}
