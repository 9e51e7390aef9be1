import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../errors.js';
import { parseSettings, type SettingsSource } from './parse.js';
import { formatIssues, str, validate } from './schema.js';
import type { Settings } from './types.js';

/** The config file's path: any file name, but one line, so messages naming it stay one line. */
const configFile = str({ minLength: 1, maxLength: 1024, example: 'deploy/production.yml' });

/**
 * Reads deployguard.yml (the `config` input, default `deployguard.yml`, optional unless named)
 * and hands everything to the pure parser.
 */
export function loadSettings(
  src: Omit<SettingsSource, 'configText' | 'configPath'> & { readonly cwd: string }
): Settings {
  const named = src.input('config')?.trim();
  const checked = named ? validate(configFile, named, 'config') : undefined;
  if (checked && !checked.ok) {
    const label = src.wording?.kind === 'cli' ? '`--config`' : 'input `config`';
    throw new ConfigError(formatIssues(checked.errors).replace(/^`config`/, label));
  }
  const path = resolve(src.cwd, named || 'deployguard.yml');
  let configText: string | undefined;
  try {
    configText = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (named || code !== 'ENOENT') {
      throw new ConfigError(
        `cannot read the config file ${JSON.stringify(path)}: ${code ?? (err as Error).message}`,
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
