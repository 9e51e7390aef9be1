import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { parseSettings, type SettingsSource } from './parse.js';
import type { Settings } from './types.js';

/**
 * Reads deployguard.yml (the `config` input, default `deployguard.yml`, optional unless named)
 * and hands everything to the pure parser.
 */
export function loadSettings(
  src: Omit<SettingsSource, 'configText' | 'configPath'> & { readonly cwd: string }
): Settings {
  const named = src.input('config')?.trim();
  const path = resolve(src.cwd, named || 'deployguard.yml');
  let configText: string | undefined;
  try {
    configText = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (named || code !== 'ENOENT') {
      throw new ConfigError(
        `cannot read the config file ${path}: ${code ?? (err as Error).message}`,
        named
          ? src.wording?.kind === 'cli'
            ? 'Check --config: the path is relative to the current directory.'
            : 'Check the `config` input: the path is relative to the workspace.'
          : undefined
      );
    }
  }
  return parseSettings({ ...src, configText, configPath: named || 'deployguard.yml' });
}
