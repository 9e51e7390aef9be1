/**
 * The pipeline behind the Action and the CLI, driven through a host that records what it is
 * asked to do. Only the paths that contact no host: the dry run, a config mistake found by the
 * host's own mode, and red tests (which stop the run before any connection).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.js';
import { memoryLogger } from '../../src/io/log.js';
import { runPipeline, type PipelineHost, type PipelineRun } from '../../src/pipeline.js';
import type { Settings } from '../../src/settings/types.js';
import { BASE_INPUTS, settingsFrom } from '../helpers/settings.js';

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'dg-pipeline-'));
  mkdirSync(join(work, 'dist'));
  writeFileSync(join(work, 'dist', 'app.js'), 'ok\n');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function host(inputs: Record<string, string>) {
  const calls: string[] = [];
  const log = memoryLogger();
  let finished: PipelineRun | undefined;
  let cancelListeners = 0;
  const h: PipelineHost = {
    settings: purpose => {
      calls.push(`settings ${purpose}`);
      return settingsFrom({ ...BASE_INPUTS, artifact: join(work, 'dist'), ...inputs });
    },
    workspace: work,
    env: { PATH: process.env.PATH },
    log,
    redact: t => t,
    onCancel: () => {
      cancelListeners++;
      return () => cancelListeners--;
    },
    showPlan: async (_s: Settings, plan: string) => {
      calls.push(`plan ${plan.split('\n')[0]}`);
      return 0;
    },
    outputs: run => calls.push(`outputs ${run.result.status}`),
    record: () => {
      calls.push('record?');
      return undefined;
    },
    finish: async run => {
      finished = run;
      calls.push(`finish ${run.result.status}`);
      return run.result.status === 'deployed' ? 0 : 1;
    }
  };
  return { h, calls, log, finished: () => finished, listening: () => cancelListeners };
}

test('a dry run shows the plan and ends there: no mode, no gate, no listener', async () => {
  const t = host({ 'dry-run': 'true', 'test-command': 'exit 3' });
  let asked = 0;
  const mode = () => (asked++, { kind: 'full' as const });
  expect(await runPipeline(t.h, { ships: true, mode })).toBe(0);
  expect(t.calls).toEqual(['settings deploy', expect.stringMatching(/^plan Dry run: release /)]);
  expect(asked).toBe(0);
  expect(t.listening()).toBe(0);
});

test('a run that ships nothing reads settings for the hosts and ignores dry-run', async () => {
  const t = host({ 'dry-run': 'true' });
  const wrong = new ConfigError('--to: expected previous or a release id, got "x y"');
  await expect(
    runPipeline(t.h, {
      ships: false,
      mode: () => {
        throw wrong;
      }
    })
  ).rejects.toBe(wrong);
  expect(t.calls).toEqual(['settings hosts']);
});

test('red tests stop the run before any host: a blocked result, outputs, record asked, finish', async () => {
  const t = host({ 'test-command': 'echo failing test >&2; exit 3' });
  expect(await runPipeline(t.h, { ships: true, mode: () => ({ kind: 'full' }) })).toBe(1);
  expect(t.calls).toEqual(['settings deploy', 'outputs blocked', 'record?', 'finish blocked']);
  const run = t.finished()!;
  expect(run.blockedBy).toBe('tests');
  expect(String((run.failedTests as Error).message)).toMatch(/the test command failed \(exit 3\)/);
  expect(run.testPhases).toEqual([expect.objectContaining({ name: 'Tests', ok: false })]);
  expect(run.result.hosts).toEqual([]);
  // Outside Actions (no GitHub side) nothing asks for a pull request or a reason.
  expect(run.pr).toBeUndefined();
  expect(run.why).toBeUndefined();
  expect(t.listening()).toBe(0);
});
