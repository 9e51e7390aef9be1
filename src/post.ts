import * as core from '@actions/core';
import { describeError } from './errors.js';
import { actionsLogger } from './io/actions-log.js';
import { connectHost } from './io/ssh.js';
import { lockRelease } from './remote/commands.js';
import { layoutFor } from './remote/layout.js';
import { loadActionSettings, LOCK_STATE } from './action.js';

/**
 * The post step runs even when the job was cancelled: it frees any lock the main step still held,
 * so a cancelled run never blocks the next deploy. It only warns; it never fails the job.
 */
export async function run(): Promise<void> {
  const raw = core.getState(LOCK_STATE);
  if (!raw) return;
  let held: [string, string][];
  try {
    held = JSON.parse(raw) as [string, string][];
  } catch {
    return;
  }
  if (held.length === 0) return;
  try {
    const settings = loadActionSettings('hosts');
    const layout = layoutFor(settings.target);
    for (const [name, token] of held) {
      const host = settings.hosts.find(h => h.name === name);
      if (!host) continue;
      try {
        const shell = await connectHost(host, settings.ssh, actionsLogger);
        const r = await shell.exec(lockRelease(layout, token));
        shell.close();
        core.warning(
          `${name}: the deploy ended without releasing its lock; ${r.stdout.includes('released') ? 'released it now' : 'it was already gone'}.`
        );
      } catch (err) {
        core.warning(`${name}: could not release the deploy lock: ${describeError(err)}`);
      }
    }
  } catch (err) {
    core.warning(`deployguard post step: ${describeError(err)}`);
  }
}
