import { NodeSSH, type Config } from 'node-ssh';
import type { ClientChannel } from 'ssh2';
import { connect as tcpConnect, type Socket } from 'node:net';
import type { Duplex, Readable, Writable } from 'node:stream';
import { DeployError } from '../errors.js';
import {
  ALL_KEY_TYPES,
  algorithmsForKeyType,
  describeKey,
  hostKeyAlgorithms,
  knownHostsLine,
  parseKnownHosts,
  verifyHostKey,
  type OfferedKey,
  type Pins
} from '../remote/hostkeys.js';
import { remoteCommandLine, type Shell } from '../remote/shell.js';
import type { HostSettings, SshSettings } from '../settings/types.js';
import type { Logger } from './log.js';

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  /**
   * The command's standard input: a string is sent and closed; a function is handed the channel to
   * write to and must end it (a rejection closes the channel and is reported in `stderr`).
   */
  readonly stdin?: string | ((channel: Writable) => Promise<unknown>);
  readonly timeoutMs?: number;
  /** Closes the channel and resolves with code 130 when aborted. */
  readonly signal?: AbortSignal;
}

/**
 * One open connection to one host. `exec` is the single choke point through which every remote
 * script runs: always as `sh -c 'set -eu; ...'`, always with its exit code returned.
 */
export interface RemoteShell {
  readonly alias: string;
  /** False once the connection under it is known to be gone (undefined: cannot tell). */
  readonly alive?: boolean;
  exec(script: Shell, opts?: ExecOptions): Promise<ExecResult>;
  close(): void;
}

/** Host keys that fail verification are retried on the other key types only to explain the error. */
class HostKeyRejected extends Error {
  constructor(
    readonly offered: OfferedKey,
    readonly reason: 'unpinned' | 'mismatch' | 'revoked'
  ) {
    super(reason);
  }
}

const MAX_OUTPUT = 4 * 1024 * 1024;

function collect(stream: Readable, sink: Buffer[], total: { n: number }): void {
  stream.on('data', (b: Buffer) => {
    // Keep memory bounded even if a remote command floods its output.
    if (total.n < MAX_OUTPUT) sink.push(b);
    total.n += b.length;
  });
}

/**
 * A command that never reached the host: the connection was gone before its channel opened. It
 * is safe to send again over a new connection (see {@link ReconnectingShell}).
 */
export class CommandNotSent extends DeployError {
  constructor(message: string) {
    super(message, 'deploy');
  }
}

class Ssh2Shell implements RemoteShell {
  private dead = false;

  constructor(
    readonly alias: string,
    private readonly ssh: NodeSSH,
    log: Logger,
    /** The jump host's connection this one runs through: it closes with this one. */
    private readonly via?: Ssh2Shell
  ) {
    const client = ssh.connection;
    // node-ssh stops listening for errors once connected: without a listener, a reset
    // connection's 'error' event would end the whole process instead of failing one command.
    client?.on('error', (err: Error) => {
      this.dead = true;
      log.debug(`${alias}: connection error: ${err.message}`);
    });
    client?.on('close', () => (this.dead = true));
    client?.on('end', () => (this.dead = true));
  }

  get alive(): boolean {
    return !this.dead && this.ssh.connection !== null && this.via?.alive !== false;
  }

  /**
   * A TCP connection from this host to `host:port` (the sshd's own `direct-tcpip` forwarding): the
   * socket a connection through a jump host runs over. Refused when the jump host's sshd forbids
   * forwarding, or nothing listens there.
   */
  forward(host: string, port: number): Promise<Duplex> {
    const client = this.ssh.connection;
    if (!client || this.dead) return Promise.reject(new Error(`${this.alias}: connection is closed`));
    return new Promise((resolve, reject) => {
      try {
        client.forwardOut('127.0.0.1', 0, host, port, (err, channel) =>
          err ? reject(err) : resolve(channel)
        );
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  exec(script: Shell, opts: ExecOptions = {}): Promise<ExecResult> {
    const client = this.ssh.connection;
    if (!client || this.dead)
      return Promise.reject(new CommandNotSent(`${this.alias}: connection is closed`));
    // No `exec` in front, though it would spare the login shell a fork: a restricted shell (rbash)
    // refuses `exec`, and would refuse every command of the deploy.
    const command = remoteCommandLine(script);
    return new Promise((resolve, reject) => {
      const notSent = (err: Error) => {
        this.dead = true;
        reject(new CommandNotSent(`${this.alias}: could not run a command: ${err.message}`));
      };
      try {
        client.exec(command, (err, channel) => {
          if (err) return notSent(err);
          this.run(channel, opts, resolve);
        });
      } catch (err) {
        // ssh2 throws "Not connected" at once when its socket is already gone.
        notSent(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  private run(channel: ClientChannel, opts: ExecOptions, resolve: (r: ExecResult) => void): void {
    const out: Buffer[] = [];
    const errOut: Buffer[] = [];
    collect(channel, out, { n: 0 });
    collect(channel.stderr, errOut, { n: 0 });
    let code: number | null = null;
    let signal: string | undefined;
    let settled = false;
    const finish = (r: ExecResult) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve(r);
    };
    const text = () => ({
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(errOut).toString('utf8')
    });
    // A channel whose remote command still runs may never emit `close` after we close it:
    // a timeout or an abort resolves at once instead of waiting for the command to end.
    const giveUp = (why: string, exitCode: number) => {
      const t = text();
      finish({ code: exitCode, stdout: t.stdout, stderr: `${t.stderr}\n(${why})` });
      channel.close();
    };
    const onAbort = () => giveUp('cancelled', 130);
    const timer = opts.timeoutMs
      ? setTimeout(() => giveUp(`timed out after ${opts.timeoutMs} ms`, 124), opts.timeoutMs)
      : undefined;
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort);
    channel.on('exit', (c: number | null, sig?: string) => {
      code = c;
      if (sig) signal = sig;
    });
    channel.on('close', () => {
      const t = text();
      // No exit status at all means the connection or the remote shell died: never success.
      finish({
        code: code ?? 255,
        stdout: t.stdout,
        stderr: signal ? `${t.stderr}\n(killed by ${signal})` : t.stderr
      });
    });
    const stdin = opts.stdin;
    if (stdin === undefined) channel.end();
    else if (typeof stdin === 'string') channel.end(stdin);
    else {
      // The writer ends the channel when it is done; if it fails, the remote command must not
      // wait for more input, and its output says why it stopped.
      stdin(channel).catch((e: unknown) => {
        channel.stderr.emit(
          'data',
          Buffer.from(`\nlocal input failed: ${e instanceof Error ? e.message : String(e)}`)
        );
        channel.close();
      });
    }
  }

  close(): void {
    this.ssh.dispose();
    this.via?.close();
  }
}

function hintFor(host: HostSettings, message: string): string {
  const where = `${host.user}@${host.host}:${host.port}`;
  if (host.jump && /through the jump host/.test(message)) {
    const jump = `${host.jump.host}:${host.jump.port}`;
    if (/prohibited|forwarding/i.test(message))
      return `The sshd on ${jump} does not allow TCP forwarding for ${host.jump.user}: set \`AllowTcpForwarding yes\` there (or in a \`Match User ${host.jump.user}\` block).`;
    return `${jump} could not reach ${host.host}:${host.port}. From the jump host, check that sshd on ${host.host} listens on port ${host.port} and that the firewall lets the jump host in.`;
  }
  if (/ECONNREFUSED/.test(message))
    return `Nothing accepts connections on ${host.host}:${host.port}. Is sshd running, and is the port right?`;
  if (/ENOTFOUND|EAI_AGAIN/.test(message)) return `The name ${host.host} does not resolve from this runner.`;
  if (/timed out|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/i.test(message))
    return `No answer from ${host.host}:${host.port}. Check the firewall or security group allows this runner, or use a jump host for private networks.`;
  if (/authentication/i.test(message))
    return `The server refused the key for ${where}. Check that the public half of the key (the \`ssh-key\` input) is in ~${host.user}/.ssh/authorized_keys and that the user is right.`;
  if (/passphrase|encrypted|private key/i.test(message))
    return 'The private key could not be read. Check that the `ssh-key` input holds the whole key (BEGIN/END lines included) and that the `ssh-passphrase` input matches.';
  return `Check that ${where} is reachable from this runner and accepts the key.`;
}

function isPermanent(message: string): boolean {
  return /authentication|passphrase|private key|ENOTFOUND|host key|prohibited/i.test(message);
}

/**
 * Connects to a host with its host key pinned, retrying transient failures with backoff.
 * Never falls back to trust-on-first-use: an unpinned or mismatched key stops here, and the
 * error shows the key the host offered so it can be checked and pinned.
 */
export async function connectHost(
  host: HostSettings,
  ssh: SshSettings,
  log: Logger,
  sleep: (ms: number) => Promise<void> = ms => new Promise(r => setTimeout(r, ms))
): Promise<RemoteShell> {
  let pins: Pins;
  try {
    pins = { entries: host.knownHosts.flatMap(l => parseKnownHosts(l)), fingerprints: host.fingerprints };
  } catch (err) {
    // A damaged pin is a typo to fix, not a sign of an attack: say so before any connection.
    throw new DeployError(
      `${host.name}: a known_hosts pin for ${host.host}:${host.port} is malformed: ${(err as Error).message}. Nothing was sent to the host.`,
      'connect',
      `Copy the whole line again: \`ssh-keyscan -p ${host.port} ${host.host}\` from a network you trust, checked against \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` on the host.`
    );
  }
  if (ssh.password && !ssh.privateKey && !host.privateKey) {
    log.warn(
      `${host.name}: using password authentication. Keys are safer: a password can be guessed, and is sent to whoever answers if a host key pin is ever skipped.`
    );
  }
  // Through a jump host: that hop is connected first, pinned and retried in its own right, and
  // every attempt at the host below opens a new forwarded connection through it.
  const jump = host.jump ? ((await connectHost(host.jump, ssh, log, sleep)) as Ssh2Shell) : undefined;
  const route: Route | undefined = jump && {
    via: jump,
    open: () =>
      jump.forward(host.host, host.port).catch((err: unknown) => {
        // The SSH channel-open failure code says which: 1 is a refusal by policy, 2 a failed connect.
        const code = (err as { reason?: unknown }).reason;
        const why =
          code === 1
            ? 'forwarding is prohibited there'
            : code === 2
              ? `it could not connect to ${host.host}:${host.port}`
              : err instanceof Error
                ? err.message
                : String(err);
        throw new Error(`through the jump host ${host.jump!.host}:${host.jump!.port}: ${why}`);
      })
  };
  const attempts = Math.max(1, ssh.connectRetries + 1);
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await connectOnce(host, ssh, pins, log, hostKeyAlgorithms(pins, host.host, host.port), route);
    } catch (err) {
      if (err instanceof HostKeyRejected) {
        return huntPinnedKey(host, ssh, pins, log, err, route).catch((e: unknown) => {
          jump?.close();
          throw e;
        });
      }
      lastError = err;
      const message = err instanceof Error ? err.message : String(err);
      if (isPermanent(message) || attempt === attempts) break;
      const wait = Math.min(8000, 500 * 2 ** (attempt - 1));
      log.warn(
        `${host.name}: connection attempt ${attempt}/${attempts} failed (${message}); retrying in ${wait} ms`
      );
      await sleep(wait);
    }
  }
  jump?.close();
  const message = lastError instanceof Error ? lastError.message : String(lastError);
  return Promise.reject(
    new DeployError(
      `${host.name}: could not connect to ${host.user}@${host.host}:${host.port}: ${message}`,
      'connect',
      hintFor(host, message)
    )
  );
}

/** How a host is reached when it is not reached directly: a jump host's forwarded connection. */
interface Route {
  readonly via: Ssh2Shell;
  readonly open: () => Promise<Duplex>;
}

async function connectOnce(
  host: HostSettings,
  ssh: SshSettings,
  pins: Pins,
  log: Logger,
  serverHostKey: string[] | undefined,
  route?: Route
): Promise<Ssh2Shell> {
  let rejected: HostKeyRejected | undefined;
  const started = Date.now();
  const sock = coalesceWrites(
    route ? await route.open() : await openTcp(host.host, host.port, ssh.connectTimeoutMs)
  );
  const client = new NodeSSH();
  const config: Config = {
    host: host.host,
    port: host.port,
    username: host.user,
    // One budget for the TCP connect and the SSH handshake together.
    readyTimeout: Math.max(1, ssh.connectTimeoutMs - (Date.now() - started)),
    keepaliveInterval: 10_000,
    keepaliveCountMax: 3,
    hostVerifier: (key: Buffer) => {
      const offered = describeKey(key);
      if (ssh.insecureSkipHostKeyCheck) {
        log.warn(
          `${host.name}: host key NOT verified (insecure-skip-host-key-check is on). The host offered ${offered.type} ${offered.fingerprint}; pin it to close this hole.`
        );
        return true;
      }
      const verdict = verifyHostKey(offered, pins, host.host, host.port);
      if (verdict.ok) return true;
      rejected = new HostKeyRejected(offered, verdict.reason);
      return false;
    }
  };
  const compress = wantsCompression(ssh.compress, host.host);
  config.algorithms = {
    ...(serverHostKey ? { serverHostKey: serverHostKey as never } : {}),
    // The whole SSH stream (the artifact above all) is zlib-compressed where that pays: across
    // the internet. On loopback and private networks compressing costs more CPU than it saves.
    compress: (compress ? ['zlib@openssh.com', 'zlib', 'none'] : ['none']) as never
  };
  config.sock = sock as Config['sock'];
  const key = host.privateKey ?? ssh.privateKey;
  if (key) config.privateKey = key;
  if (ssh.passphrase) config.passphrase = ssh.passphrase;
  if (ssh.password) config.password = ssh.password;
  // The key first, then the password; not ssh2's own order, which asks for "none" first (a round
  // trip to learn the methods the server allows, which a refusal names anyway) and sends the
  // password before trying the key.
  const methods = [...(key ? ['publickey'] : []), ...(ssh.password ? ['password'] : [])];
  if (methods.length) config.authHandler = methods as Config['authHandler'];
  try {
    await client.connect(config);
  } catch (err) {
    client.dispose();
    sock.destroy();
    if (rejected) throw rejected;
    throw err;
  }
  return new Ssh2Shell(host.name, client, log, route?.via);
}

/**
 * Makes the writes of one tick leave as one: ssh2 writes each packet in three pieces (length,
 * body, tag), and with Nagle off each piece would be a system call and a TCP segment of its own
 * (three per 32 KiB of the artifact, one of them 4 bytes long). Corked on the first write of a
 * tick and uncorked at its end, they go out in one `writev`, and no later than they would have.
 */
export function coalesceWrites<T extends Writable>(stream: T): T {
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = () => {
    corked = false;
    stream.uncork();
  };
  stream.write = ((...args: unknown[]) => {
    if (!corked) {
      corked = true;
      stream.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  }) as T['write'];
  return stream;
}

/**
 * The TCP connection to a host, with Nagle's algorithm off from its first byte. The handshake and
 * every step are short messages each waiting for an answer: with Nagle on, a message written while
 * the previous one is unacknowledged waits for the peer's delayed ACK (40 ms on Linux), several
 * times per handshake and per command. Opened here rather than by ssh2 so that it is off before
 * the first packet, and so that a refused or silent port fails with its own error.
 */
export function openTcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`timed out after ${timeoutMs} ms opening a TCP connection to ${host}:${port}`));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeListener('error', failed);
      resolve(sock);
    });
    const failed = (err: Error & { code?: string }) => {
      clearTimeout(timer);
      sock.destroy();
      reject(tcpError(err, host, port));
    };
    sock.once('error', failed);
  });
}

/**
 * A TCP connect error as the hints read it. A name with several addresses that all refuse fails
 * with an AggregateError whose message is empty: its code is what tells.
 */
export function tcpError(err: Error & { code?: string }, host: string, port: number): Error {
  if (err.message) return err;
  return Object.assign(new Error(`connect ${err.code ?? 'failed'} ${host}:${port}`), { code: err.code });
}

/** `auto` compresses for public addresses and names; loopback and private ranges go plain. */
export function wantsCompression(setting: SshSettings['compress'], host: string): boolean {
  if (setting !== undefined && setting !== 'auto') return setting;
  const local =
    /^(localhost|127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.|::1$|f[cd][0-9a-f]{2}:|fe80:)/i.test(
      host
    ) || /\.(local|internal|lan|home\.arpa)$/i.test(host);
  return !local;
}

/**
 * A host offered a key that is not pinned. Before calling it an attack, ask the host for its keys
 * of every other type: a `SHA256:` pin may name its ed25519 key while negotiation picked ECDSA.
 * A pinned key found that way is used; otherwise the error lists every key the host has.
 */
async function huntPinnedKey(
  host: HostSettings,
  ssh: SshSettings,
  pins: Pins,
  log: Logger,
  first: HostKeyRejected,
  route?: Route
): Promise<RemoteShell> {
  const offered: OfferedKey[] = [first.offered];
  for (const type of ALL_KEY_TYPES) {
    if (offered.some(k => k.type === type)) continue;
    try {
      const shell = await connectOnce(
        host,
        { ...ssh, connectTimeoutMs: Math.min(ssh.connectTimeoutMs, 5000) },
        pins,
        log,
        algorithmsForKeyType(type),
        route
      );
      log.info(
        `${host.name}: connected with its pinned ${type} key (the host prefers ${first.offered.type}).`
      );
      return shell;
    } catch (err) {
      if (err instanceof HostKeyRejected) offered.push(err.offered);
    }
  }
  const list = offered.map(k => `  ${k.type} ${k.fingerprint}`).join('\n');
  const lines = offered.map(k => `  ${knownHostsLine(k, host.host, host.port)}`).join('\n');
  const keyscan = `ssh-keyscan -p ${host.port} ${host.host} | ssh-keygen -lf -`;
  if (first.reason === 'unpinned') {
    throw new DeployError(
      `${host.name}: the host key of ${host.host}:${host.port} is not pinned, so the host cannot be trusted. It offered:\n${list}`,
      'connect',
      `Check the fingerprint out of band (on the host: \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\`; or \`${keyscan}\` from a network you trust), then pin it ${host.jumpFor ? `under \`proxy-jump:\` of host ${host.jumpFor} in deployguard.yml, as \`known-hosts:\`` : 'with the `known-hosts` input (or `known-hosts:` on the host in deployguard.yml)'}:\n${lines}\nor with host-key: ${first.offered.fingerprint}`
    );
  }
  throw new DeployError(
    `${host.name}: HOST KEY ${first.reason === 'revoked' ? 'IS REVOKED' : 'DOES NOT MATCH THE PIN'} for ${host.host}:${host.port}. The host offered:\n${list}\nThis is what a man-in-the-middle attack looks like; nothing was sent to the host.`,
    'connect',
    `If the host was rebuilt and its key legitimately changed, verify the new fingerprint out of band (\`${keyscan}\`) and update the pin.`
  );
}

/**
 * A host connection that comes back. When the link dropped, the next command first opens a new
 * connection (with the usual retries and the same pinned host key); a command that found the link
 * already gone, before its channel opened, is sent again over the new one. Never a command that
 * was running when it dropped: it has failed (no exit status) and may or may not have run on the
 * host, so the deploy treats its step as failed and rolls back, over the new connection, and still
 * writes its record and frees its lock there.
 */
export class ReconnectingShell implements RemoteShell {
  private closed = false;
  constructor(
    private current: RemoteShell,
    private readonly reconnect: () => Promise<RemoteShell>,
    private readonly log: Logger
  ) {}

  get alias(): string {
    return this.current.alias;
  }

  get alive(): boolean {
    return this.current.alive !== false;
  }

  async exec(script: Shell, opts?: ExecOptions): Promise<ExecResult> {
    if (!this.closed && this.current.alive === false) await this.replace(this.current);
    const used = this.current;
    try {
      return await used.exec(script, opts);
    } catch (err) {
      // The command never left (the link was already gone): send it again over a new one.
      if (this.closed || !(err instanceof CommandNotSent)) throw err;
      await this.replace(used);
      return this.current.exec(script, opts);
    }
  }

  private replacing: Promise<void> | undefined;

  /** Replaces a dead connection; commands that find it dead at the same time share one reconnect. */
  private async replace(dead: RemoteShell): Promise<void> {
    if (this.current !== dead) return; // someone else already did
    this.replacing ??= (async () => {
      this.log.warn(`${this.alias}: the connection dropped; connecting again for the next command`);
      dead.close();
      this.current = await this.reconnect();
      this.log.info(`${this.alias}: connected again`);
    })().finally(() => (this.replacing = undefined));
    await this.replacing;
  }

  close(): void {
    this.closed = true;
    this.current.close();
  }
}
