/**
 * The CLI's terminal: the workflow commands libraries print (@actions/core's `::debug::`, which
 * @actions/tool-cache uses when it looks for gitleaks; `::add-mask::`) never reach it raw.
 * `--verbose` shows debug lines in plain form.
 */
import * as core from '@actions/core';
import { tmpdir } from 'node:os';
import { consoleLogger, plainLine } from '../../src/io/log.js';

/** Runs `fn` with stdout and stderr recorded (and restored after), outside GitHub Actions. */
async function terminal(fn: () => Promise<void> | void): Promise<string> {
  const seen: string[] = [];
  const own = {
    stdout: Object.getOwnPropertyDescriptor(process.stdout, 'write'),
    stderr: Object.getOwnPropertyDescriptor(process.stderr, 'write')
  };
  const wasActions = process.env.GITHUB_ACTIONS;
  delete process.env.GITHUB_ACTIONS;
  for (const s of [process.stdout, process.stderr])
    Object.defineProperty(s, 'write', {
      value: (chunk: unknown) => seen.push(String(chunk)) > 0,
      configurable: true,
      writable: true
    });
  try {
    await fn();
  } finally {
    for (const [name, d] of Object.entries(own)) {
      const s = name === 'stdout' ? process.stdout : process.stderr;
      if (d) Object.defineProperty(s, 'write', d);
      else delete (s as { write?: unknown }).write;
    }
    if (wasActions !== undefined) process.env.GITHUB_ACTIONS = wasActions;
  }
  return seen.join('');
}

test("the CLI's logger turns @actions/core's workflow commands into plain lines; debug only when verbose", async () => {
  const quiet = await terminal(async () => {
    const log = consoleLogger();
    log.info('deploying');
    core.debug('checking cache: /x/gitleaks');
    core.setSecret('hunter2-secret');
    core.warning('disk almost full');
    // tool-cache looking for gitleaks, as the CLI's gitleaks lookup does (an empty cache).
    const was = process.env.RUNNER_TOOL_CACHE;
    process.env.RUNNER_TOOL_CACHE = tmpdir();
    try {
      const tc = await import('@actions/tool-cache');
      expect(tc.find('deployguard-no-such-tool', '8.28.0', 'x64')).toBe('');
    } finally {
      if (was === undefined) delete process.env.RUNNER_TOOL_CACHE;
      else process.env.RUNNER_TOOL_CACHE = was;
    }
  });
  expect(quiet).not.toContain('::');
  expect(quiet).not.toContain('hunter2-secret');
  expect(quiet).toContain('deploying\n');
  expect(quiet).toContain('warning: disk almost full\n');
  expect(quiet).not.toMatch(/debug|checking cache/);

  const verbose = await terminal(() => {
    consoleLogger({ verbose: true }).debug('from the logger');
    core.debug('from a library%');
  });
  expect(verbose).toBe('debug: from the logger\ndebug: from a library%\n');
});

test('plainLine: commands become text, partial or ordinary lines stay as they are', () => {
  expect(plainLine('::error file=a.ts,line=3::bad%0Anext', false)).toBe('error: bad\nnext');
  expect(plainLine('::group::Deploy web-1', false)).toBe('▸ Deploy web-1');
  expect(plainLine('::endgroup::', false)).toBeUndefined();
  expect(plainLine('[command]/usr/bin/tar xz', true)).toBe('debug: /usr/bin/tar xz');
  expect(plainLine('[command]/usr/bin/tar xz', false)).toBeUndefined();
  expect(plainLine('a line with :: inside', false)).toBe('a line with :: inside');
});

/** A line GitHub's runner would take as a workflow command: `::` first, after any spaces. */
const COMMAND_LINE = /^\s*::[a-z-]+/im;

test("text from a host cannot issue workflow commands: not in the action's log, the CLI's log or its output", async () => {
  const hostile = 'check failed:\n  ::error::forged annotation\n::add-mask::x\n::stop-commands::tok';
  const seen = await terminal(async () => {
    process.env.GITHUB_ACTIONS = 'true';
    const { actionsLogger } = await import('../../src/io/actions-log.js');
    actionsLogger.info(hostile);
    consoleLogger({ stream: process.stdout }).info(hostile);
    delete process.env.GITHUB_ACTIONS;
    const { main } = await import('../../src/cli.js');
    // An unknown command echoes what was typed: a value from elsewhere, as a host's text would be.
    await main([hostile], process.stdout, process.stdout);
  });
  expect(seen).toContain('forged annotation');
  expect(seen).not.toMatch(COMMAND_LINE);
  // The line reads the same to a person: only a zero-width space between the colons.
  expect(seen).toContain(':\u200b:error::forged annotation');
});
