import { checksFor, hostContextOf, runChecks } from './checks/runner.js';
import type { CheckResult, HostContext } from './checks/types.js';
import { ConfigError } from './errors.js';
import type { Logger } from './io/log.js';
import { connectHost, type RemoteShell } from './io/ssh.js';
import { blueGreenOf, liveColour, readLiveColour } from './remote/blue-green.js';
import { judgesEachHost, type Settings, type Stage } from './settings/types.js';

/**
 * `deployguard check`: the checks of one stage, from anywhere, with no GitHub context. Hosts are
 * contacted only when a selected check runs on them.
 */
export async function checkNow(settings: Settings, stage: Stage, log: Logger): Promise<CheckResult[]> {
  const selected = checksFor(settings.checks, stage);
  if (selected.length === 0) {
    throw new ConfigError(
      `no checks for the ${stage} stage in ${settings.configPath ?? 'deployguard.yml'}`,
      'Add `checks:` (see `deployguard init`), or tag checks with `stages: [' + stage + ']`.'
    );
  }
  const shells: RemoteShell[] = [];
  try {
    const hosts: HostContext[] = [];
    if (selected.some(judgesEachHost)) {
      if (settings.hosts.length === 0) {
        throw new ConfigError(
          'checks that run on hosts need `hosts:` (or the `host` input) and SSH credentials; so do checks whose url names {host} or {port}'
        );
      }
      for (const h of settings.hosts) {
        const shell = await connectHost(h, settings.ssh, log);
        shells.push(shell);
        // blue-green: the checks judge the colour the proxy serves now.
        const bg = blueGreenOf(settings.service);
        const colour = bg ? liveColour((await shell.exec(readLiveColour(bg))).stdout) : undefined;
        hosts.push(hostContextOf(settings, h, shell, colour));
      }
    }
    return await runChecks(selected, stage, {
      context: { release: settings.releaseId, commit: settings.run.commit },
      hosts
    });
  } finally {
    for (const s of shells) s.close();
  }
}
