/**
 * Real test hosts for the integration tests: throw-away OpenSSH servers on loopback, and whole
 * Debian hosts with systemd as PID 1, journald and sshd, booted from a cached debootstrap root.
 *
 * Nothing here is a stand-in: tests talk to a real sshd with the real `ssh` client, and units run
 * under a real systemd. The comments below record the facts (measured on the Debian 12 test
 * machine) behind each choice.
 *
 * Every host lives in its own instance directory under HOSTS_DIR, which also records who owns it
 * (pid + start time + run id). That record is what lets a later run, or the global teardown, find
 * and remove hosts a crashed or careless test run left behind, without touching hosts that belong
 * to another run still in progress.
 *
 * This module must only import node built-ins: global-setup/global-teardown load it outside jest's
 * module system (see global-setup.ts), where the moduleNameMapper does not apply.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestHost {
  /** Readable alias, e.g. 'sshd-1' or 'systemd-1'. */
  readonly name: string;
  /** Always '127.0.0.1'. */
  readonly host: string;
  /** A free port chosen by the harness. */
  readonly port: number;
  /** Always 'root'. */
  readonly user: string;
  /** OpenSSH-format ed25519 private key text (no passphrase) authorized on this host. */
  readonly privateKey: string;
  /** known_hosts line for this host's key, e.g. '[127.0.0.1]:2201 ssh-ed25519 AAAA...'. */
  readonly knownHostsLine: string;
  /** 'SHA256:...' of the host key, exactly as `ssh-keygen -lf` prints it. */
  readonly fingerprint: string;
  /** Run a shell command on the host over the real `ssh` CLI (pinned host key); never throws on non-zero exit. */
  exec(command: string): Promise<ExecResult>;
  /** Stop the host and remove everything it left on this machine. Idempotent. */
  stop(): Promise<void>;
}

export type HostKeyType = 'ed25519' | 'ecdsa';

export interface SystemdHost extends TestHost {
  /**
   * The host's root directory as seen from this machine. Files written by the host show up here,
   * except on the tmpfs mounts systemd makes inside its own mount namespace (/run, /dev/shm).
   */
  readonly rootfs: string;
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/** Where rootfs.sh caches the debootstrap root (outside the repo: it is 300+ MB). */
export const CACHE_DIR = process.env.DEPLOYGUARD_TEST_CACHE ?? '/var/cache/deployguard-tests';
/** Instance directories of running hosts (one per host; removed by stop()). */
export const HOSTS_DIR =
  process.env.DEPLOYGUARD_TEST_HOSTS_DIR ?? path.join(os.tmpdir(), 'deployguard-test-hosts');
export const ROOTFS_SCRIPT = fileURLToPath(new URL('./rootfs.sh', import.meta.url));

const SSHD = '/usr/sbin/sshd';
const SYSTEMD = '/lib/systemd/systemd';
const INSTALL_HINT = 'apt-get install -y openssh-server debootstrap';
const SSHD_START_TIMEOUT_MS = 10_000;
/** TESTING.md: the systemd host answers after about 5 s; 30 s leaves room for a loaded CI machine. */
const SYSTEMD_BOOT_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** DEPLOYGUARD_HARNESS_DEBUG=1 logs where start and stop spend their time. */
function debug(message: string): void {
  if (process.env.DEPLOYGUARD_HARNESS_DEBUG) console.log(`[deployguard harness] ${message}`);
}

/**
 * Identifies this test run, so the global teardown can remove hosts this run leaked even while
 * the owning process (jest itself, when running in band) is still alive. global-setup sets it
 * before workers start; outside jest each process gets its own.
 */
function runId(): string {
  if (!process.env.DEPLOYGUARD_TEST_RUN_ID) {
    process.env.DEPLOYGUARD_TEST_RUN_ID = `${process.pid}-${randomBytes(4).toString('hex')}`;
  }
  return process.env.DEPLOYGUARD_TEST_RUN_ID;
}

// ---------------------------------------------------------------------------------------------
// Small process and file helpers
// ---------------------------------------------------------------------------------------------

/** Run a program to completion; resolves with its exit status and output, rejects only if it cannot be started. */
function run(
  cmd: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; stderr?: 'pipe' | 'inherit' } = {}
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', opts.stderr ?? 'pipe'],
      env: opts.env ?? process.env
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    // 'close' (not 'exit') so that all output has been read.
    child.on('close', (code, signal) => {
      resolve({
        // A signal death has no exit code; report it the way a shell would.
        code: code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8')
      });
    });
  });
}

async function runOk(cmd: string, args: readonly string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms));

interface ProcStat {
  state: string;
  ppid: number;
  startTime: string;
}

/** /proc/PID/stat, or null if there is no such process. */
function procStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', ppid: Number(fields[1]), startTime: fields[19] ?? '' };
}

/**
 * A zombie counts as dead. PID 1 on the test machine is not a regular init and reaps orphans only
 * after a delay of seconds, so waiting for a killed orphan to vanish would stall stop() needlessly.
 */
function isAlive(pid: number, startTime?: string): boolean {
  const st = procStat(pid);
  if (!st || st.state === 'Z' || st.state === 'X') return false;
  return startTime === undefined || st.startTime === startTime;
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

function allPids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter(n => /^\d+$/.test(n))
    .map(Number);
}

/** All descendants of pid (snapshot), deepest last. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of allPids()) {
    const st = procStat(p);
    if (!st) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(p);
    children.set(st.ppid, list);
  }
  const out: number[] = [];
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length > 0) {
    const p = queue.shift() as number;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone: that is what we wanted.
  }
}

/** Wait until the process is gone; also resolves when the given ChildProcess (our child) exits. */
async function waitGone(pid: number, timeoutMs: number, child?: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    // For our own child, only 'exit' means node has reaped it (otherwise it lingers as a zombie).
    if (child ? child.exitCode !== null || child.signalCode !== null : !isAlive(pid)) return true;
    await sleep(50);
  }
  return false;
}

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function tail(text: string | undefined, lines = 30): string {
  return (text ?? '').trimEnd().split('\n').slice(-lines).join('\n');
}

function writeFileAtomic(file: string, data: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/** Mount points at or below dir, deepest first (so they can be unmounted in order). */
function mountsUnder(dir: string): string[] {
  const text = readIfExists('/proc/self/mountinfo') ?? '';
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return text
    .split('\n')
    .map(line => line.split(' ')[4])
    .filter((m): m is string => m !== undefined)
    .map(m => m.replace(/\\(\d{3})/g, (_s, oct: string) => String.fromCharCode(parseInt(oct, 8))))
    .filter(m => m === dir || m.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}

// ---------------------------------------------------------------------------------------------
// Ports and keys
// ---------------------------------------------------------------------------------------------

/** Ports this process already handed out: the kernel may offer a just-closed port again. */
const issuedPorts = new Set<number>();

/** A port that was free a moment ago. Callers retry on EADDRINUSE: another process may take it first. */
async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.on('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
      });
    });
    if (port > 0 && !issuedPorts.has(port)) {
      issuedPorts.add(port);
      return port;
    }
  }
}

/**
 * Resolve once something on 127.0.0.1:port sends an SSH identification string. A bare TCP
 * connect is not enough: the port may briefly belong to someone else, and a listening socket
 * accepts before sshd is ready to talk.
 */
function sshBanner(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise(resolve => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('data', (b: Buffer) => {
      data += b.toString('latin1');
      if (data.includes('\n')) done(data.startsWith('SSH-2.0-'));
    });
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
  });
}

async function waitForSsh(port: number, deadline: number, stillStarting: () => string | null): Promise<void> {
  for (;;) {
    const problem = stillStarting();
    if (problem) throw new Error(problem);
    if (await sshBanner(port, Math.max(100, Math.min(2000, deadline - Date.now())))) return;
    if (Date.now() >= deadline) throw new Error(`nothing answered SSH on 127.0.0.1:${port} in time`);
    await sleep(100);
  }
}

async function keygen(
  file: string,
  comment: string,
  passphrase = '',
  type: HostKeyType = 'ed25519'
): Promise<void> {
  await runOk('ssh-keygen', ['-q', '-t', type, '-N', passphrase, '-C', comment, '-f', file]);
}

/** 'SHA256:...' exactly as `ssh-keygen -lf` prints it (second field of '256 SHA256:... comment (ED25519)'). */
async function fingerprintOf(pubKeyFile: string): Promise<string> {
  const out = await runOk('ssh-keygen', ['-lf', pubKeyFile]);
  const fp = out.trim().split(/\s+/)[1];
  if (!fp?.startsWith('SHA256:')) throw new Error(`unexpected ssh-keygen -lf output: ${out}`);
  return fp;
}

/** 'ssh-ed25519 AAAA...' without the comment. */
function publicKeyBody(pubKeyText: string): string {
  return pubKeyText.trim().split(/\s+/).slice(0, 2).join(' ');
}

/** An extra ed25519 key pair, e.g. for 'wrong key' tests; with a passphrase the private key is encrypted. */
export async function makeKeyPair(
  opts: { passphrase?: string } = {}
): Promise<{ privateKey: string; publicKey: string }> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'deployguard-key-'));
  try {
    const file = path.join(dir, 'id_ed25519');
    await keygen(file, 'deployguard-test-extra', opts.passphrase ?? '');
    return {
      privateKey: await fsp.readFile(file, 'utf8'),
      publicKey: (await fsp.readFile(`${file}.pub`, 'utf8')).trim()
    };
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Instance directories: ownership records and cleanup
// ---------------------------------------------------------------------------------------------

interface InstanceState {
  kind: 'sshd' | 'systemd';
  name: string;
  owner: { pid: number; startTime: string; runId: string };
  port: number;
  /** systemd hosts: the booted root (mount point of the overlay, or the copy). */
  root?: string;
  copyMode?: 'overlay' | 'copy';
  /** systemd hosts: the per-host cgroup directories, one per hierarchy. */
  cgroups?: string[];
  /** systemd hosts: host-side pids of unshare and of systemd (PID 1 inside), with start times. */
  unshare?: { pid: number; startTime: string };
  systemd?: { pid: number; startTime: string };
}

const STATE_FILE = 'instance.json';

function readState(dir: string): InstanceState | null {
  const text = readIfExists(path.join(dir, STATE_FILE));
  if (!text) return null;
  try {
    return JSON.parse(text) as InstanceState;
  } catch {
    return null;
  }
}

async function newInstanceDir(kind: InstanceState['kind'], name: string): Promise<string> {
  await fsp.mkdir(HOSTS_DIR, { recursive: true });
  const safe = name.replace(/[^A-Za-z0-9_.-]/g, '_');
  return fsp.mkdtemp(path.join(HOSTS_DIR, `${kind}-${safe}-`));
}

function ownerRecord(): InstanceState['owner'] {
  return { pid: process.pid, startTime: procStat(process.pid)?.startTime ?? '', runId: runId() };
}

/** Processes whose root directory is `root`: the processes of a systemd host, wherever their parents went. */
function processesRootedAt(root: string): number[] {
  const out: number[] = [];
  for (const pid of allPids()) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/root`) === root) out.push(pid);
    } catch {
      // Gone, or a kernel thread.
    }
  }
  return out;
}

/** rmdir a cgroup and its children, deepest first. Cgroups of just-killed processes can stay busy briefly. */
async function removeCgroup(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      const rmTree = (d: string): void => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
          if (e.isDirectory()) rmTree(path.join(d, e.name));
        }
        fs.rmdirSync(d);
      };
      rmTree(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      await sleep(100);
    }
  }
  throw new Error(`could not remove cgroup ${dir}`);
}

/**
 * Stop whatever an instance directory describes and delete it. Used by stop() and to clean up after
 * crashed runs, so it only trusts what it can verify: a pid is killed only if it is still the very
 * process recorded (same start time) or its command line names this instance.
 */
async function destroyInstance(dir: string, children: ChildProcess[] = []): Promise<void> {
  const state = readState(dir);
  const childFor = (pid: number): ChildProcess | undefined => children.find(c => c.pid === pid);

  // Plain sshd: the PID in its own pid file (never by name), plus its connection handlers and
  // whatever they run, which would otherwise outlive the listener.
  const sshdPid = Number(readIfExists(path.join(dir, 'sshd.pid'))?.trim());
  const sshdCandidates = [sshdPid, ...(state?.kind === 'sshd' ? children.map(c => c.pid) : [])];
  for (const pid of new Set(sshdCandidates)) {
    if (!pid || !isAlive(pid) || !cmdline(pid).includes(dir)) continue;
    const tree = descendants(pid);
    kill(pid, 'SIGKILL');
    for (const p of tree) kill(p, 'SIGKILL');
    await waitGone(pid, STOP_TIMEOUT_MS, childFor(pid));
  }

  if (state?.kind === 'systemd' && state.root) {
    // SIGKILL systemd, PID 1 inside (it ignores SIGTERM); the kernel then kills everything else
    // in its PID namespace, and unshare, its parent, exits.
    const victims = new Set<number>();
    if (state.systemd && isAlive(state.systemd.pid, state.systemd.startTime)) victims.add(state.systemd.pid);
    if (state.unshare && isAlive(state.unshare.pid, state.unshare.startTime)) {
      for (const p of descendants(state.unshare.pid).slice(0, 1)) victims.add(p);
    }
    // Belt and braces for a crashed run whose records are incomplete: anything chrooted into this root.
    for (const p of processesRootedAt(state.root)) victims.add(p);
    for (const p of victims) kill(p, 'SIGKILL');
    // cgroup v2 can kill a whole subtree in one go, including anything that escaped the namespace.
    for (const cg of state.cgroups ?? []) {
      if (fs.existsSync(path.join(cg, 'cgroup.kill'))) {
        try {
          fs.writeFileSync(path.join(cg, 'cgroup.kill'), '1');
        } catch {
          // Removed already.
        }
      }
    }
    for (const p of victims) await waitGone(p, STOP_TIMEOUT_MS);
    if (state.unshare) {
      const child = childFor(state.unshare.pid);
      if (!(await waitGone(state.unshare.pid, STOP_TIMEOUT_MS, child))) {
        kill(state.unshare.pid, 'SIGKILL');
        await waitGone(state.unshare.pid, STOP_TIMEOUT_MS, child);
      }
    }
    for (const cg of state.cgroups ?? []) await removeCgroup(cg);
  }

  // Unmount the overlay (and anything else under the instance) before deleting, so that rm can
  // never descend into a mounted file system.
  for (const m of mountsUnder(dir)) {
    if ((await run('umount', [m])).code !== 0) await run('umount', ['-l', m]);
  }
  const left = mountsUnder(dir);
  if (left.length > 0) throw new Error(`cannot remove ${dir}: still mounted: ${left.join(', ')}`);
  await fsp.rm(dir, { recursive: true, force: true });
}

/**
 * Remove instance directories whose owner process is gone (a crashed or killed run), and, with
 * `runId`, those of that run too (the global teardown uses it for hosts a test never stopped).
 * Hosts of other live runs are left alone. Returns the names of the instances removed.
 */
export async function cleanupInstances(opts: { runId?: string } = {}): Promise<string[]> {
  let entries: string[];
  try {
    entries = await fsp.readdir(HOSTS_DIR);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const entry of entries) {
    const dir = path.join(HOSTS_DIR, entry);
    const state = readState(dir);
    if (state) {
      const ownerAlive = isAlive(state.owner.pid, state.owner.startTime);
      if (ownerAlive && state.owner.runId !== opts.runId) continue;
    } else {
      // No record yet: possibly being created right now by another process. Only old ones are debris.
      const st = await fsp.stat(dir).catch(() => null);
      if (!st || Date.now() - st.mtimeMs < 60_000) continue;
    }
    try {
      await destroyInstance(dir);
      removed.push(entry);
    } catch (e) {
      // One broken leftover must not stop the run; the next cleanup tries again.
      console.warn(`deployguard harness: could not clean up ${dir}: ${(e as Error).message}`);
    }
  }
  return removed;
}

/** Stale instances are cleaned once per module instance (each jest test file gets its own). */
let staleCleanup: Promise<unknown> | undefined;
function cleanupStaleOnce(): Promise<unknown> {
  staleCleanup ??= cleanupInstances();
  return staleCleanup;
}

// ---------------------------------------------------------------------------------------------
// The hosts
// ---------------------------------------------------------------------------------------------

interface HostFiles {
  dir: string;
  keyFile: string;
  knownHostsFile: string;
}

class Host implements TestHost {
  readonly host = '127.0.0.1';
  readonly user = 'root';
  private stopping: Promise<void> | undefined;

  constructor(
    readonly name: string,
    readonly port: number,
    readonly privateKey: string,
    readonly knownHostsLine: string,
    readonly fingerprint: string,
    private readonly files: HostFiles,
    private readonly children: ChildProcess[]
  ) {}

  exec(command: string): Promise<ExecResult> {
    return run(
      'ssh',
      [
        // Ignore ~/.ssh/config and any agent: only this host's key, only this host's pinned key.
        '-F',
        '/dev/null',
        '-i',
        this.files.keyFile,
        '-p',
        String(this.port),
        '-o',
        'IdentitiesOnly=yes',
        '-o',
        'IdentityAgent=none',
        '-o',
        'BatchMode=yes',
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        `UserKnownHostsFile=${this.files.knownHostsFile}`,
        '-o',
        'GlobalKnownHostsFile=/dev/null',
        '-o',
        'UpdateHostKeys=no',
        '-o',
        'ConnectTimeout=10',
        '-o',
        'LogLevel=ERROR',
        '-T',
        `${this.user}@${this.host}`,
        command
      ],
      { env: { ...process.env, SSH_AUTH_SOCK: '' } }
    );
  }

  /** Concurrent and repeated calls share one stop; after a failed stop, the next call tries again. */
  stop(): Promise<void> {
    if (!this.stopping) {
      const t0 = Date.now();
      this.stopping = destroyInstance(this.files.dir, this.children).then(
        () => debug(`${this.name} stopped in ${Date.now() - t0} ms`),
        (e: unknown) => {
          this.stopping = undefined;
          throw e;
        }
      );
    }
    return this.stopping;
  }
}

class BootedHost extends Host implements SystemdHost {
  constructor(
    readonly rootfs: string,
    ...rest: ConstructorParameters<typeof Host>
  ) {
    super(...rest);
  }
}

let sshdCounter = 0;
let systemdCounter = 0;

/** Key material every host gets: a fresh host key and a fresh authorized user key, in dir. */
async function makeHostKeys(
  dir: string,
  name: string,
  hostKeyType: HostKeyType = 'ed25519'
): Promise<{ hostKeyFile: string; userKeyFile: string; privateKey: string; userPub: string }> {
  const hostKeyFile = path.join(dir, `ssh_host_${hostKeyType}_key`);
  const userKeyFile = path.join(dir, 'id_ed25519');
  await Promise.all([
    keygen(hostKeyFile, `${name}-host`, '', hostKeyType),
    keygen(userKeyFile, `deployguard-test@${name}`)
  ]);
  return {
    hostKeyFile,
    userKeyFile,
    privateKey: await fsp.readFile(userKeyFile, 'utf8'),
    userPub: (await fsp.readFile(`${userKeyFile}.pub`, 'utf8')).trim()
  };
}

async function pinHostKey(
  dir: string,
  hostKeyFile: string,
  port: number
): Promise<{ knownHostsLine: string; knownHostsFile: string; fingerprint: string }> {
  // The ssh client looks up non-22 ports as '[host]:port' in known_hosts.
  const knownHostsLine = `[127.0.0.1]:${port} ${publicKeyBody(await fsp.readFile(`${hostKeyFile}.pub`, 'utf8'))}`;
  const knownHostsFile = path.join(dir, 'known_hosts');
  await fsp.writeFile(knownHostsFile, `${knownHostsLine}\n`);
  return { knownHostsLine, knownHostsFile, fingerprint: await fingerprintOf(`${hostKeyFile}.pub`) };
}

function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) {
    throw new Error(`${what} needs root (host keys in /run/sshd, mounts, namespaces): run the tests as root`);
  }
}

/**
 * A throw-away OpenSSH server on 127.0.0.1 (commands run on this machine as root). Answers in about
 * half a second. Several can run at once (a fleet); each has its own directory, keys and port.
 */
export async function startSshd(
  opts: {
    name?: string;
    /** sshd_config lines placed before the defaults (sshd keeps the first value it reads). */
    extraConfig?: readonly string[];
    /** The host key's type: ed25519 unless a test needs a host without one. */
    hostKey?: HostKeyType;
  } = {}
): Promise<TestHost> {
  requireRoot('startSshd');
  if (!fs.existsSync(SSHD)) throw new Error(`${SSHD} not found: run  ${INSTALL_HINT}`);
  await cleanupStaleOnce();
  const name = opts.name ?? `sshd-${++sshdCounter}`;
  const t0 = Date.now();
  const dir = await newInstanceDir('sshd', name);
  try {
    // sshd's privilege separation directory; it refuses to start without it.
    await fsp.mkdir('/run/sshd', { recursive: true, mode: 0o755 });
    const keys = await makeHostKeys(dir, name, opts.hostKey);
    const authorizedKeys = path.join(dir, 'authorized_keys');
    await fsp.writeFile(authorizedKeys, `${keys.userPub}\n`, { mode: 0o600 });
    const configFile = path.join(dir, 'sshd_config');
    const logFile = path.join(dir, 'sshd.log');
    const pidFile = path.join(dir, 'sshd.pid');

    // The chosen port can be taken by someone else between choosing and binding: retry then.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const state: InstanceState = { kind: 'sshd', name, owner: ownerRecord(), port };
      writeFileAtomic(path.join(dir, STATE_FILE), JSON.stringify(state, null, 2));
      await fsp.writeFile(
        configFile,
        [
          ...(opts.extraConfig ?? []),
          `Port ${port}`,
          'ListenAddress 127.0.0.1',
          `HostKey ${keys.hostKeyFile}`,
          `AuthorizedKeysFile ${authorizedKeys}`,
          `PidFile ${pidFile}`,
          'PermitRootLogin prohibit-password',
          'PubkeyAuthentication yes',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          // No PAM stack needed (or configured) for a loopback test server; StrictModes would
          // reject the keys in a world-readable temp directory.
          'UsePAM no',
          'StrictModes no',
          // Deploy code may use SFTP; the in-process server needs no helper binary path.
          'Subsystem sftp internal-sftp',
          // Tests open many connections at once (parallel uploads, fleets); the default 10:30:100
          // would randomly drop some of them.
          'MaxStartups 200',
          'MaxSessions 100',
          'LogLevel VERBOSE',
          ''
        ].join('\n')
      );
      await fsp.rm(pidFile, { force: true });
      // -D keeps sshd in the foreground as our child, so node reaps it the moment it dies and we
      // see its exit (a daemonized sshd would be an orphan, reaped late by PID 1 here). It still
      // writes its pid file, which stop() uses.
      const child = spawn(SSHD, ['-D', '-f', configFile, '-E', logFile], { stdio: 'ignore', detached: true });
      child.on('error', () => undefined);
      // A test that forgets stop() must not keep jest alive; the teardown removes the host.
      child.unref();
      const exited = (): string | null =>
        child.exitCode !== null || child.signalCode !== null
          ? `sshd exited (${child.exitCode ?? child.signalCode}): ${tail(readIfExists(logFile), 10)}`
          : null;
      try {
        await waitForSsh(port, Date.now() + SSHD_START_TIMEOUT_MS, exited);
        // The pid file is written after the sockets are bound; wait for it so stop() can use it.
        const deadline = Date.now() + SSHD_START_TIMEOUT_MS;
        while (!readIfExists(pidFile)?.trim()) {
          if (Date.now() > deadline) throw new Error(`sshd did not write ${pidFile}`);
          await sleep(20);
        }
      } catch (e) {
        const log = readIfExists(logFile) ?? '';
        kill(child.pid ?? 0, 'SIGKILL');
        await waitGone(child.pid ?? 0, STOP_TIMEOUT_MS, child);
        if (attempt < 5 && /Address already in use|Cannot bind any address/.test(log)) continue;
        throw new Error(`startSshd(${name}): ${(e as Error).message}\n${tail(log)}`, { cause: e });
      }
      const pin = await pinHostKey(dir, keys.hostKeyFile, port);
      debug(`${name}: sshd on port ${port} answers ${Date.now() - t0} ms after start`);
      return new Host(
        name,
        port,
        keys.privateKey,
        pin.knownHostsLine,
        pin.fingerprint,
        { dir, keyFile: keys.userKeyFile, knownHostsFile: pin.knownHostsFile },
        [child]
      );
    }
  } catch (e) {
    await destroyInstance(dir).catch(() => undefined);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// systemd hosts
// ---------------------------------------------------------------------------------------------

const ROOTFS_MARKER = '.deployguard-rootfs';

/**
 * The cached debootstrap root, built by rootfs.sh if missing (1.5-4 minutes measured here, once
 * per machine and package list). global-setup normally does this up front and passes the path in
 * the environment.
 */
export async function ensureRootfs(opts: { quiet?: boolean } = {}): Promise<string> {
  const given = process.env.DEPLOYGUARD_TEST_ROOTFS;
  if (given && fs.existsSync(path.join(given, ROOTFS_MARKER))) return given;
  const r = await run('bash', [ROOTFS_SCRIPT], {
    env: { ...process.env, DEPLOYGUARD_TEST_CACHE: CACHE_DIR },
    // Progress of a first build is worth seeing; it is the only slow step.
    stderr: opts.quiet ? 'pipe' : 'inherit'
  });
  const root = r.stdout.trim().split('\n').pop() ?? '';
  if (r.code !== 0 || !fs.existsSync(path.join(root, ROOTFS_MARKER))) {
    throw new Error(
      `building the test root with ${ROOTFS_SCRIPT} failed (exit ${r.code}). It needs root and debootstrap: ` +
        `run  ${INSTALL_HINT}\n${tail(r.stderr)}`
    );
  }
  process.env.DEPLOYGUARD_TEST_ROOTFS = root;
  return root;
}

/** Path of the cached root without building it (it may not exist yet). */
export async function rootfsPath(): Promise<string> {
  return (await runOk('bash', [ROOTFS_SCRIPT, '--print-path'])).trim();
}

/**
 * Give the host its own writable root. An overlay mount takes ~20 ms and no space; a full copy
 * (~300 MB, ~1.2 s plus ~0.5 s to delete here) is the fallback where overlayfs is unavailable,
 * e.g. when the cache itself sits on an overlay inside a container.
 */
async function makeRootCopy(lower: string, dir: string): Promise<{ root: string; mode: 'overlay' | 'copy' }> {
  const root = path.join(dir, 'root');
  const upper = path.join(dir, 'upper');
  const work = path.join(dir, 'work');
  await Promise.all([root, upper, work].map(d => fsp.mkdir(d)));
  if (process.env.DEPLOYGUARD_TEST_ROOT_COPY !== 'copy') {
    const r = await run('mount', [
      '-t',
      'overlay',
      'overlay',
      '-o',
      `lowerdir=${lower},upperdir=${upper},workdir=${work}`,
      root
    ]);
    if (r.code === 0) return { root, mode: 'overlay' };
  }
  await fsp.rm(root, { recursive: true });
  await runOk('cp', ['-a', '--reflink=auto', lower, root]);
  // The root must be a mount point: systemd's per-service sandboxing (ProtectSystem= and friends,
  // used by systemd-logind among others) builds mount namespaces from it and fails otherwise.
  await runOk('mount', ['--bind', root, root]);
  return { root, mode: 'copy' };
}

/** Parse /proc/self/mountinfo into cgroup hierarchy mounts: mount point, root within it, and options. */
function cgroupMounts(): { mountPoint: string; root: string; fsType: string; superOpts: string[] }[] {
  const text = readIfExists('/proc/self/mountinfo') ?? '';
  const out: { mountPoint: string; root: string; fsType: string; superOpts: string[] }[] = [];
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const l = left.split(' ');
    const r = right.split(' ');
    const fsType = r[0] ?? '';
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') continue;
    out.push({ mountPoint: l[4] ?? '', root: l[3] ?? '/', fsType, superOpts: (r[2] ?? '').split(',') });
  }
  return out;
}

/**
 * Create one cgroup per hierarchy for this host, below the cgroups this process is in.
 *
 * Why: systemd inside uses its own cgroup as the root of its tree. Without this, every host's
 * systemd would manage the *machine's* root cgroup (seen here: /sys/fs/cgroup/unified/system.slice/
 * ssh.service holding a host's sshd), so two hosts would share 'system.slice/foo.service' and one
 * stopping a unit could kill or wait for the other's processes. With a cgroup per host plus a cgroup
 * namespace, each systemd sees only its own subtree, and stop() can kill the whole subtree at once.
 * Nesting below our own cgroups (rather than at the top) keeps the hosts inside whatever memory
 * limits the machine put on this test run.
 */
function makeCgroups(id: string): string[] {
  const self = readIfExists('/proc/self/cgroup') ?? '';
  const mounts = cgroupMounts();
  const dirs: string[] = [];
  for (const line of self.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const [, hid, controllers = '', cgPath = '/'] = m;
    const mount =
      hid === '0'
        ? mounts.find(x => x.fsType === 'cgroup2')
        : mounts.find(
            x => x.fsType === 'cgroup' && controllers.split(',').every(c => x.superOpts.includes(c))
          );
    if (!mount) continue;
    const rel = path.relative(mount.root, cgPath);
    if (rel.startsWith('..')) continue;
    const dir = path.join(mount.mountPoint, rel, `deployguard-${id}`);
    try {
      fs.mkdirSync(dir);
      // A new cpuset cgroup starts with no CPUs or memory nodes and accepts no processes.
      if (controllers.split(',').includes('cpuset')) {
        for (const f of ['cpuset.cpus', 'cpuset.mems']) {
          fs.writeFileSync(path.join(dir, f), fs.readFileSync(path.join(dir, '..', f), 'utf8'));
        }
      }
      dirs.push(dir);
    } catch {
      // A hierarchy we cannot use (read-only, delegated elsewhere): leave its processes where they are.
      try {
        fs.rmdirSync(dir);
      } catch {
        // Not created.
      }
    }
  }
  return dirs;
}

function writeInto(root: string, rel: string, data: string, mode = 0o644): void {
  const file = path.join(root, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // A file in the root may be a symlink to an absolute path, which from out here names this
  // machine's file: remove it first, so we never write through it.
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, data, { mode });
  fs.chmodSync(file, mode);
}

/**
 * A real Debian host: systemd as PID 1 (of its own PID, mount, UTS and cgroup namespaces) chrooted
 * into its own copy of the cached root, sharing this machine's network, with sshd on a free port
 * on 127.0.0.1. A service inside listening on 127.0.0.1:PORT is reachable from the test process.
 * Boots in a few seconds once the root is cached.
 */
export async function startSystemdHost(opts: { name?: string } = {}): Promise<SystemdHost> {
  requireRoot('startSystemdHost');
  await cleanupStaleOnce();
  const lower = await ensureRootfs();
  const name = opts.name ?? `systemd-${++systemdCounter}`;
  const t0 = Date.now();
  const dir = await newInstanceDir('systemd', name);
  const children: ChildProcess[] = [];
  const logFile = path.join(dir, 'systemd.log');
  try {
    const port = await freePort();
    const state: InstanceState = { kind: 'systemd', name, owner: ownerRecord(), port };
    writeFileAtomic(path.join(dir, STATE_FILE), JSON.stringify(state, null, 2));
    const [keys, copy] = await Promise.all([makeHostKeys(dir, name), makeRootCopy(lower, dir)]);
    const root = copy.root;
    debug(`${name}: keys and ${copy.mode} root in ${Date.now() - t0} ms`);
    Object.assign(state, { root, copyMode: copy.mode });
    writeFileAtomic(path.join(dir, STATE_FILE), JSON.stringify(state, null, 2));

    // Per-host identity, written into the copy before boot. The cached root has no host keys and a
    // shared machine id on purpose (see rootfs.sh).
    writeInto(root, 'etc/ssh/ssh_host_ed25519_key', await fsp.readFile(keys.hostKeyFile, 'utf8'), 0o600);
    writeInto(
      root,
      'etc/ssh/ssh_host_ed25519_key.pub',
      await fsp.readFile(`${keys.hostKeyFile}.pub`, 'utf8')
    );
    fs.mkdirSync(path.join(root, 'root/.ssh'), { recursive: true, mode: 0o700 });
    writeInto(root, 'root/.ssh/authorized_keys', `${keys.userPub}\n`, 0o600);
    // Debian's sshd_config includes sshd_config.d/*.conf first, and the first value wins.
    writeInto(
      root,
      'etc/ssh/sshd_config.d/deployguard-test.conf',
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        'HostKey /etc/ssh/ssh_host_ed25519_key',
        'PasswordAuthentication no',
        'MaxStartups 200',
        'MaxSessions 100',
        ''
      ].join('\n')
    );
    const hostname =
      name
        .toLowerCase()
        .replace(/[^a-z0-9-]/g, '-')
        .slice(0, 63) || 'systemd-host';
    writeInto(root, 'etc/hostname', `${hostname}\n`);
    writeInto(
      root,
      'etc/hosts',
      `127.0.0.1\tlocalhost\n127.0.1.1\t${hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`
    );
    writeInto(root, 'etc/machine-id', `${randomBytes(16).toString('hex')}\n`, 0o444);

    const cgroups = makeCgroups(path.basename(dir));
    state.cgroups = cgroups;
    writeFileAtomic(path.join(dir, STATE_FILE), JSON.stringify(state, null, 2));
    const useCgroupNs = cgroups.length > 0;
    if (!useCgroupNs) {
      console.warn(
        `deployguard harness: no usable cgroup hierarchy for ${name}; booting without a cgroup namespace ` +
          '(hosts running at the same time then share systemd cgroups)'
      );
    }

    // The boot command from TESTING.md, plus --cgroup (see makeCgroups) and --show-status=false
    // (boot status goes to /dev/console, and /dev inside is this machine's devtmpfs, so that would
    // be the machine's console). --root is essential: systemd booted on the machine's own root
    // emptied the machine's /tmp.
    // The shell moves itself into the host's cgroups first, because a cgroup namespace is rooted
    // at the cgroup its creator is in; `setsid` detaches the host from the test's session.
    // unshare stays our child, so we see its exit and node reaps it at once.
    const logFd = fs.openSync(logFile, 'a');
    const script =
      'root=$1; shift; for f in "$@"; do echo $$ > "$f" || exit 97; done; ' +
      `exec setsid unshare --fork --pid --mount --uts ${useCgroupNs ? '--cgroup ' : ''}--mount-proc ` +
      `--root="$root" ${SYSTEMD} --system --show-status=false`;
    const unshare = spawn(
      '/bin/sh',
      ['-c', script, 'sh', root, ...cgroups.map(c => path.join(c, 'cgroup.procs'))],
      {
        stdio: ['ignore', logFd, logFd],
        // systemd as PID 1 starts from a clean environment, as at boot. `container` tells it that
        // it shares the kernel (as under nspawn or docker), so it skips units meant for real
        // hardware; rootfs.sh masks the ones that would change kernel-wide settings.
        env: { PATH: PATH_ENV, container: 'deployguard-test' }
      }
    );
    fs.closeSync(logFd);
    unshare.on('error', () => undefined);
    unshare.unref();
    children.push(unshare);
    const unsharePid = unshare.pid;
    if (!unsharePid) throw new Error('could not start unshare');
    state.unshare = { pid: unsharePid, startTime: procStat(unsharePid)?.startTime ?? '' };
    writeFileAtomic(path.join(dir, STATE_FILE), JSON.stringify(state, null, 2));

    const deadline = Date.now() + SYSTEMD_BOOT_TIMEOUT_MS;
    const exited = (): string | null =>
      unshare.exitCode !== null || unshare.signalCode !== null
        ? `the host's systemd exited (${unshare.exitCode ?? unshare.signalCode})`
        : null;

    // systemd's host-side pid is unshare's only child; record it so stop() can SIGKILL it.
    for (;;) {
      const problem = exited();
      if (problem) throw new Error(problem);
      const child = descendants(unsharePid).find(p => cmdline(p).startsWith(SYSTEMD));
      if (child) {
        state.systemd = { pid: child, startTime: procStat(child)?.startTime ?? '' };
        writeFileAtomic(path.join(dir, STATE_FILE), JSON.stringify(state, null, 2));
        break;
      }
      if (Date.now() > deadline) throw new Error('systemd did not start under unshare');
      await sleep(20);
    }

    await waitForSsh(port, deadline, exited);
    debug(`${name}: sshd answers ${Date.now() - t0} ms after start`);
    const pin = await pinHostKey(dir, keys.hostKeyFile, port);
    const host = new BootedHost(
      root,
      name,
      port,
      keys.privateKey,
      pin.knownHostsLine,
      pin.fingerprint,
      { dir, keyFile: keys.userKeyFile, knownHostsFile: pin.knownHostsFile },
      children
    );
    // "Up" means systemd finished starting the boot transaction, not just that sshd answers.
    const secs = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
    const up = await host.exec(`timeout ${secs} systemctl is-system-running --wait`);
    const status = up.stdout.trim();
    if (status === 'degraded') {
      // Usable, but something in the root is broken; say what, so rootfs.sh can be fixed.
      const failed = await host.exec('systemctl --failed --no-legend --plain');
      console.warn(`deployguard harness: ${name} booted degraded; failed units:\n${failed.stdout}`);
    } else if (status !== 'running') {
      throw new Error(`systemctl is-system-running: '${status}' (exit ${up.code}) ${up.stderr.trim()}`);
    }
    debug(`${name}: ${status} ${Date.now() - t0} ms after start`);
    return host;
  } catch (e) {
    const log = tail(readIfExists(logFile));
    await destroyInstance(dir, children).catch(() => undefined);
    throw new Error(`startSystemdHost(${name}): ${(e as Error).message}${log ? `\n${log}` : ''}`, {
      cause: e
    });
  }
}
