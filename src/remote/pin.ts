import ssh2 from 'ssh2';
import { describeKey, knownHostsLine, type OfferedKey } from './hostkeys.js';

/**
 * `deployguard pin HOST`: asks a host for its SSH host key and prints it in the two forms
 * deployguard pins keys by (a known_hosts line and a SHA256 fingerprint), with how to check it.
 *
 * Only the key exchange runs: the host key arrives in it, and the handshake is stopped right
 * there by refusing the key, so no user name, key or password is ever sent. A key read over the
 * network proves nothing by itself (a machine in the middle would show its own), so the output
 * says to compare the fingerprint on the host before pinning it.
 */

export interface PinOptions {
  /** The login user, only for the config snippet printed (nothing is sent). */
  readonly user?: string;
  /** How long the host may take to answer. Default 10 s. */
  readonly timeoutMs?: number;
}

const HOST = /^[A-Za-z0-9._:-]{1,253}$/;
const USER = /^[a-z_][a-z0-9_.-]{0,31}$/;

/** Fails the handshake on purpose, once the key is in hand. */
const STOPPED = 'deployguard: host key read, handshake stopped';

/**
 * The key the host offers for these host key algorithms (all it supports when omitted). Resolves
 * with the key, or rejects with why the handshake did not get that far.
 */
export function offeredHostKey(
  host: string,
  port: number,
  algorithms: readonly string[] | undefined,
  timeoutMs: number
): Promise<OfferedKey> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let key: OfferedKey | undefined;
    const finish = (err?: Error) => {
      client.removeAllListeners();
      client.on('error', () => undefined);
      client.end();
      if (key) resolve(key);
      else reject(err ?? new Error('the connection closed before the host sent its key'));
    };
    client.on('error', err => finish(err));
    client.on('close', () => finish());
    client.on('ready', () => finish(new Error(STOPPED)));
    client.connect({
      host,
      port,
      // Required by the library; never sent, since the handshake ends before authentication.
      username: 'deployguard-pin',
      readyTimeout: timeoutMs,
      ...(algorithms ? { algorithms: { serverHostKey: [...algorithms] as never } } : {}),
      hostVerifier: (blob: Buffer) => {
        key = describeKey(blob);
        return false;
      }
    });
  });
}

/** What went wrong, for a person: which host, and what to check. */
function unreachable(host: string, port: number, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const hint = /ECONNREFUSED/.test(message)
    ? 'nothing accepts connections there: is sshd running, and is the port right?'
    : /ENOTFOUND|EAI_AGAIN/.test(message)
      ? 'the name does not resolve: check the spelling, or use the IP address.'
      : /Timed out|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/.test(message)
        ? 'no answer: check the address, the port, and any firewall between here and the host.'
        : 'check that it is an SSH server.';
  return `error: could not read the host key of ${host} port ${port}: ${message}\n${hint}`;
}

/**
 * Reads the host key of `host` and writes it with instructions through `write`. Returns the exit
 * status: 0 printed, 1 the host could not be asked, 2 bad input (nothing was contacted).
 */
export async function pinCommand(
  host: string,
  port: number,
  write: (text: string) => void,
  opts: PinOptions = {}
): Promise<number> {
  if (!HOST.test(host) || host.startsWith('-')) {
    write(
      `error: pin: ${JSON.stringify(host.slice(0, 60))} is not a host name or IP address. Example: deployguard pin 203.0.113.10 --port 22`
    );
    return 2;
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    write(
      `error: pin: --port must be a whole number from 1 to 65535, got ${String(port)}. Example: --port 2222`
    );
    return 2;
  }
  if (opts.user !== undefined && !USER.test(opts.user)) {
    write(
      `error: pin: --user ${JSON.stringify(opts.user.slice(0, 40))} is not a user name. Example: --user deploy`
    );
    return 2;
  }
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let key: OfferedKey;
  try {
    // ed25519 first: the key type deployguard's examples pin, and what most hosts have.
    key = await offeredHostKey(host, port, ['ssh-ed25519'], timeoutMs).catch((err: unknown) => {
      if (err instanceof Error && /host key|no matching/i.test(err.message))
        return offeredHostKey(host, port, undefined, timeoutMs);
      throw err;
    });
  } catch (err) {
    write(unreachable(host, port, err));
    return 1;
  }
  const line = knownHostsLine(key, host, port);
  const keyFile = `/etc/ssh/ssh_host_${key.type.replace(/^ssh-|-sha2-nistp\d+$/g, '')}_key.pub`;
  write(
    [
      `${host} port ${port} offers this ${key.type} host key:`,
      '',
      `  fingerprint:      ${key.fingerprint}`,
      `  known_hosts line: ${line}`,
      '',
      'This key came over the network, and a machine in the middle would show its own. Before you',
      'pin it, compare the fingerprint with the one the host itself prints (on its console, or in',
      'a session you already trust):',
      '',
      `  ssh-keygen -lf ${keyFile}`,
      '',
      'If they match, pin it in deployguard.yml:',
      '',
      'hosts:',
      `  - host: ${host}`,
      ...(port !== 22 ? [`    port: ${port}`] : []),
      ...(opts.user ? [`    user: ${opts.user}`] : []),
      `    known-hosts: "${line}"`,
      '',
      'or give the same line as the known-hosts input (DEPLOYGUARD_KNOWN_HOSTS for the CLI), or the',
      `fingerprint as host-key: ${key.fingerprint}`
    ].join('\n')
  );
  return 0;
}
