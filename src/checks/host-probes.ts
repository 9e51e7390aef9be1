import type {
  CommandCheck,
  FileFreshCheck,
  LogsCheck,
  ProcessCheck,
  VersionCheck
} from '../settings/types.js';
import type { CheckContext, HostContext, Probe } from './types.js';

// PLACEHOLDERS (being implemented): checks that run on a host over its SSH connection.
const todo: Probe = async () => ({ ok: false, reason: 'not implemented yet' });
export const hostCommandProbe = (_c: CommandCheck, _h: HostContext): Probe => todo;
export const processProbe = (_c: ProcessCheck, _h: HostContext): Probe => todo;
export const logsProbe = (_c: LogsCheck, _h: HostContext): Probe => todo;
export const fileFreshProbe = (_c: FileFreshCheck, _h: HostContext): Probe => todo;
export const hostVersionProbe = (_c: VersionCheck, _x: CheckContext, _h: HostContext): Probe => todo;
