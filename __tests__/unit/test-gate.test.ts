/**
 * The test command runs with the runner's environment minus the SSH credentials deployguard
 * reads: a test (or a package it installs) never sees the deploy key.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memoryLogger } from '../../src/io/log.js';
import { testGate } from '../../src/scan/pre-deploy.js';
import { parseSettings } from '../../src/settings/parse.js';
import { BASE_INPUTS, FAKE_KEY } from '../helpers/settings.js';

const HOST_KEY = FAKE_KEY.replace('b3BlbnNzaC1rZXktdjEAAAAABG5vbmU=', 'aG9zdC1vd24ta2V5LWZvci13ZWIy');

test('the test command sees the environment without any SSH credential', async () => {
  const work = mkdtempSync(join(tmpdir(), 'dg-testgate-'));
  const env = {
    PATH: process.env.PATH,
    DEPLOYGUARD_SSH_KEY: FAKE_KEY,
    DEPLOYGUARD_SSH_PASSPHRASE: 'correct horse battery',
    WEB2_KEY: HOST_KEY,
    APP_SETTING: 'kept'
  };
  const settings = parseSettings({
    input: n =>
      ({ ...BASE_INPUTS, host: undefined, 'ssh-key': undefined, 'test-command': 'env > seen.txt' })[n],
    env,
    configText: [
      'version: 1',
      'hosts:',
      '  - { name: web-1, host: 192.0.2.10, user: deploy }',
      '  - { name: web-2, host: 192.0.2.11, user: deploy, ssh-key-env: WEB2_KEY }'
    ].join('\n'),
    configPath: 'deployguard.yml',
    now: new Date(),
    onSecret: () => undefined
  });
  try {
    const run = await testGate(settings, { workspace: work, env, log: memoryLogger(), outDir: work });
    expect(run?.ok).toBe(true);
    const seen = readFileSync(join(work, 'seen.txt'), 'utf8');
    expect(seen).toContain('APP_SETTING=kept');
    expect(seen).not.toMatch(/PRIVATE KEY|DEPLOYGUARD_SSH|WEB2_KEY|correct horse/);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
