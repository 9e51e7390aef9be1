/**
 * Runs once, before any test file. When the selected tests include integration tests (anything
 * under an `integration` directory, or a file that uses the host harness), it makes sure the
 * machine can run them and builds the cached Debian root up front, so its one-time build (a few
 * minutes) shows up here with a clear log line instead of as a mysterious beforeAll timeout in
 * whichever test happens to run first. Unit-only runs skip all of this.
 */
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

// Jest loads this file outside its module system: the moduleNameMapper that turns './hosts.js'
// into './hosts.ts' for test files does not apply here, and Node cannot resolve a '.js' import to
// a '.ts' file. Jest's require hook for '.ts' is active while global setup runs, though, so
// require() with the real file name goes through ts-jest. The type comes from the usual import.
const require = createRequire(import.meta.url);
type Hosts = typeof import('./hosts.js');

/** The few fields of jest's configs we read (jest's own types are not a dependency of this repo). */
interface GlobalConfigLike {
  rootDir: string;
  listTests?: boolean;
  testPathPatterns?: { toExecutor?: (o: { rootDir: string }) => { isMatch(absPath: string): boolean } };
}
interface ProjectConfigLike {
  rootDir: string;
  roots?: string[];
  testPathIgnorePatterns?: string[];
}

/** Integration tests: anything under an `integration` directory, or any test that uses the harness. */
const INTEGRATION_DIR = `${path.sep}integration${path.sep}`;
const HARNESS_IMPORT = /harness\/hosts(\.js)?['"]/;

function* testFiles(dir: string): Generator<string> {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* testFiles(p);
    else if (/\.test\.[cm]?[jt]s$/.test(e.name)) yield p;
  }
}

/** Will this run include an integration test? Errs on the side of yes. */
function integrationTestsSelected(globalConfig: GlobalConfigLike, projectConfig: ProjectConfigLike): boolean {
  if (globalConfig.listTests) return false;
  const matcher = globalConfig.testPathPatterns?.toExecutor?.({ rootDir: globalConfig.rootDir });
  const ignore = (projectConfig.testPathIgnorePatterns ?? []).map(p => new RegExp(p));
  for (const root of projectConfig.roots ?? [projectConfig.rootDir]) {
    for (const file of testFiles(root)) {
      if (ignore.some(re => re.test(file))) continue;
      if (matcher && !matcher.isMatch(file)) continue;
      if (file.includes(INTEGRATION_DIR) || HARNESS_IMPORT.test(fs.readFileSync(file, 'utf8'))) return true;
    }
  }
  return false;
}

function onPath(bin: string): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin')
    .split(':')
    .concat(['/usr/sbin', '/sbin'])
    .some(d => fs.existsSync(path.join(d, bin)));
}

export default async function globalSetup(
  globalConfig: GlobalConfigLike,
  projectConfig: ProjectConfigLike
): Promise<void> {
  // Identifies this run's hosts, so the teardown can remove the ones a test forgot to stop.
  // Workers inherit the environment set here.
  process.env.DEPLOYGUARD_TEST_RUN_ID ??= `${process.pid}-${randomBytes(4).toString('hex')}`;

  if (!integrationTestsSelected(globalConfig, projectConfig)) return;

  if (process.getuid?.() !== 0) {
    throw new Error(
      'The integration tests start real sshd and systemd hosts (mounts, namespaces, cgroups) and must run as root.'
    );
  }
  const missing = ['sshd', 'ssh', 'ssh-keygen', 'ssh-keyscan', 'debootstrap', 'unshare', 'mount'].filter(
    b => !onPath(b)
  );
  if (missing.length > 0) {
    throw new Error(
      `The integration tests need ${missing.join(', ')}, which ${missing.length > 1 ? 'are' : 'is'} not installed: ` +
        'run  apt-get install -y openssh-server debootstrap'
    );
  }

  const hosts = require('./hosts.ts') as Hosts;

  // Hosts left behind by a run that crashed or was killed: their mounts and processes would
  // otherwise pile up (and their cgroups keep the machine's memory accounting busy).
  const stale = await hosts.cleanupInstances();
  if (stale.length > 0) {
    console.log(
      `\n[deployguard harness] removed ${stale.length} host(s) left by an earlier run: ${stale.join(', ')}`
    );
  }

  const cached = await hosts.rootfsPath();
  const building = !fs.existsSync(path.join(cached, '.deployguard-rootfs'));
  if (building) {
    console.log(
      '\n[deployguard harness] building the Debian test root with debootstrap ' +
        `(once per machine and package list; 1.5-4 minutes measured here) into ${cached}`
    );
  }
  const started = Date.now();
  // Also when cached: rootfs.sh then only marks the root as recently used (see its pruning).
  const root = await hosts.ensureRootfs();
  if (building) {
    console.log(
      `[deployguard harness] test root ready in ${Math.round((Date.now() - started) / 1000)} s: ${root}`
    );
  }
}
