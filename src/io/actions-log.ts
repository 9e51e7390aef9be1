import * as core from '@actions/core';
import type { Logger } from './log.js';

/** The action's logger: workflow commands through @actions/core (groups, annotations). */
export const actionsLogger: Logger = {
  info: m => core.info(m),
  warn: m => core.warning(m),
  error: m => core.error(m),
  debug: m => core.debug(m),
  group: (title, fn) => core.group(title, fn)
};
