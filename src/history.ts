import { describeError } from './errors.js';
import type { Logger } from './io/log.js';
import { connectHost } from './io/ssh.js';
import { readDeployments } from './remote/commands.js';
import { layoutFor } from './remote/layout.js';
import { parseDeploymentsOutput, type DeploymentLog } from './record/host-record.js';
import type { Settings } from './settings/types.js';

export interface HostHistory {
  readonly host: string;
  readonly log?: DeploymentLog;
  /** Set when the host could not be read; the other hosts are still listed. */
  readonly error?: string;
}

/**
 * `deployguard history`: each host's deployments.jsonl, newest `limit` lines. Read-only and
 * lock-free: the file is only ever appended to, so reading it during a deploy is safe.
 */
export async function readHistory(settings: Settings, limit: number, log: Logger): Promise<HostHistory[]> {
  const layout = layoutFor(settings.target);
  const out: HostHistory[] = [];
  for (const host of settings.hosts) {
    let shell;
    try {
      shell = await connectHost(host, settings.ssh, log);
      const r = await shell.exec(readDeployments(layout, limit), { timeoutMs: 60_000 });
      if (r.code !== 0)
        throw new Error(`reading ${layout.deploymentsLog} failed (exit ${r.code}): ${r.stderr.trim()}`);
      out.push({ host: host.name, log: parseDeploymentsOutput(r.stdout) });
    } catch (err) {
      out.push({ host: host.name, error: describeError(err) });
    } finally {
      shell?.close();
    }
  }
  return out;
}
