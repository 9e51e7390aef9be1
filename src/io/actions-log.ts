import * as core from '@actions/core';
import { inertCommands, type Logger } from './log.js';

/**
 * The action's logger: workflow commands through @actions/core (groups, annotations). Plain
 * lines may carry a host's output, so they cannot issue commands; the annotations escape their
 * own text.
 */
export const actionsLogger: Logger = {
  info: m => core.info(inertCommands(m)),
  warn: m => core.warning(m),
  error: m => core.error(m),
  debug: m => core.debug(m),
  group: (title, fn) => core.group(title, fn)
};
