import { parseSettings } from '../../src/settings/parse.js';
import type { Settings } from '../../src/settings/types.js';

/** A valid key-shaped value for settings tests (parse checks the shape, never uses it). */
export const FAKE_KEY =
  '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----\n';
export const FAKE_PIN = 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s';

/** Settings from inputs and optional YAML, as the action would parse them. */
export function settingsFrom(
  inputs: Record<string, string>,
  configText?: string,
  env: Record<string, string> = {}
): Settings {
  return parseSettings({
    input: n => inputs[n],
    env,
    configText,
    configPath: 'deployguard.yml',
    now: new Date('2026-11-26T12:00:00Z'),
    onSecret: () => {}
  });
}

export const BASE_INPUTS: Record<string, string> = {
  host: '192.0.2.10',
  user: 'deploy',
  'ssh-key': FAKE_KEY,
  'host-key': FAKE_PIN,
  artifact: 'dist',
  'target-path': '/srv/app'
};
