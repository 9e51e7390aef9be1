/**
 * Runs once, after all test files. Stops any host this run started and never stopped (a test that
 * failed before its afterAll, or forgot it), so no sshd, systemd, mount or cgroup outlives the run.
 */
import { createRequire } from 'node:module';
import * as fs from 'node:fs';

// See global-setup.ts for why this is require() of the .ts file rather than an import.
const require = createRequire(import.meta.url);
type Hosts = typeof import('./hosts.js');

export default async function globalTeardown(): Promise<void> {
  const runId = process.env.DEPLOYGUARD_TEST_RUN_ID;
  const hosts = require('./hosts.ts') as Hosts;
  // No host was ever started on this machine: nothing to clean.
  if (!fs.existsSync(hosts.HOSTS_DIR)) return;
  const removed = await hosts.cleanupInstances(runId ? { runId } : {});
  if (removed.length > 0) {
    console.warn(
      `\n[deployguard harness] stopped ${removed.length} host(s) that tests left running: ${removed.join(', ')}`
    );
  }
}
