import { createHash, createHmac } from 'node:crypto';

/**
 * Host key pinning, pure: parse known_hosts lines and `SHA256:` fingerprints, decide whether an
 * offered key matches, and say which key algorithms to negotiate so a host with several keys
 * offers the pinned one (otherwise an ed25519 pin fails against a host that prefers ECDSA).
 */

export interface OfferedKey {
  readonly type: string;
  readonly blob: Buffer;
  readonly fingerprint: string;
}

export interface KnownHostEntry {
  readonly patterns: readonly string[] | { readonly salt: Buffer; readonly hash: Buffer };
  readonly type: string;
  readonly blob: Buffer;
  readonly revoked: boolean;
}

/** `SHA256:<base64 without padding>`, exactly as `ssh-keygen -lf` prints it. */
export function fingerprintOf(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** Reads the key type out of an SSH public key blob (a length-prefixed string comes first). */
export function describeKey(blob: Buffer): OfferedKey {
  let type = 'unknown';
  if (blob.length >= 4) {
    const len = blob.readUInt32BE(0);
    if (len > 0 && len < 64 && blob.length >= 4 + len) type = blob.subarray(4, 4 + len).toString('latin1');
  }
  return { type, blob, fingerprint: fingerprintOf(blob) };
}

/** The public key fields after the type name, per key type, as SSH encodes them (RFC 4253, 5656, 8709). */
const KEY_FIELDS: Record<string, (fields: readonly Buffer[]) => boolean> = {
  'ssh-ed25519': f => f.length === 1 && f[0]!.length === 32,
  'sk-ssh-ed25519@openssh.com': f => f.length === 2 && f[0]!.length === 32,
  'ecdsa-sha2-nistp256': f => f.length === 2 && f[0]!.toString() === 'nistp256' && f[1]!.length === 65,
  'ecdsa-sha2-nistp384': f => f.length === 2 && f[0]!.toString() === 'nistp384' && f[1]!.length === 97,
  'ecdsa-sha2-nistp521': f => f.length === 2 && f[0]!.toString() === 'nistp521' && f[1]!.length === 133,
  'sk-ecdsa-sha2-nistp256@openssh.com': f =>
    f.length === 3 && f[0]!.toString() === 'nistp256' && f[1]!.length === 65,
  // e and n; a modulus under 1024 bits is no key anyone still accepts.
  'ssh-rsa': f => f.length === 2 && f[1]!.length >= 128,
  'ssh-dss': f => f.length === 4
};

/**
 * Why a public key blob is not a whole key of its type, or undefined when it is: every field is
 * length-prefixed, so a key cut short (a line copied in part) ends inside a field or lacks one.
 */
export function keyBlobProblem(type: string, blob: Buffer): string | undefined {
  const fields: Buffer[] = [];
  let at = 0;
  while (at < blob.length) {
    const len = at + 4 <= blob.length ? blob.readUInt32BE(at) : Infinity;
    if (at + 4 + len > blob.length)
      return fields.length === 0
        ? 'the third field is not an SSH public key'
        : `the ${type} key is cut short (its data ends inside a field: copied in part?)`;
    fields.push(blob.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  const named = fields.shift()?.toString('latin1');
  if (named !== type)
    return `the key data is ${named ? `a ${JSON.stringify(named.slice(0, 40))} key` : 'empty'}, not ${type}`;
  const whole = KEY_FIELDS[type];
  if (whole && !whole(fields)) return `the ${type} key is incomplete or damaged (copied in part?)`;
  return undefined;
}

/**
 * Parses known_hosts text; comments, blank lines and @cert-authority lines are skipped. A line
 * that is not one, or whose key is truncated or damaged, throws an error naming the line: such a
 * pin is a typo to fix, never a reason to suspect the host.
 */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const shown = JSON.stringify(line.length > 60 ? `${line.slice(0, 60)}…` : line);
    const bad = (why: string) => new Error(`line ${index + 1} ${shown} is malformed: ${why}`);
    const fields = line.split(/\s+/);
    let revoked = false;
    if (fields[0]?.startsWith('@')) {
      const marker = fields.shift();
      if (marker === '@cert-authority') return;
      if (marker !== '@revoked') throw bad(`unknown marker ${JSON.stringify(marker?.slice(0, 20))}`);
      revoked = true;
    }
    const [hosts, type, key] = fields;
    if (!hosts || !type || !key)
      throw bad('expected three fields: host patterns, key type, base64 key (what ssh-keyscan prints)');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(key) || key.replace(/=+$/, '').length % 4 === 1)
      throw bad(`the ${type.slice(0, 40)} key is not base64 (cut short or mistyped?)`);
    const blob = Buffer.from(key, 'base64');
    const problem = keyBlobProblem(type, blob);
    if (problem) throw bad(problem);
    if (hosts.startsWith('|1|')) {
      const [, , salt, hash] = hosts.split('|');
      out.push({
        patterns: { salt: Buffer.from(salt ?? '', 'base64'), hash: Buffer.from(hash ?? '', 'base64') },
        type,
        blob,
        revoked
      });
    } else {
      out.push({ patterns: hosts.split(','), type, blob, revoked });
    }
  });
  return out;
}

function wildcard(pattern: string, value: string): boolean {
  const re = new RegExp(
    '^' +
      pattern
        .split('')
        .map(c => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')))
        .join('') +
      '$',
    'i'
  );
  return re.test(value);
}

/** Whether a known_hosts entry names this host and port (plain, wildcard, negated or hashed). */
export function entryMatchesHost(entry: KnownHostEntry, host: string, port: number): boolean {
  const name = port === 22 ? host : `[${host}]:${port}`;
  if (!Array.isArray(entry.patterns)) {
    const { salt, hash } = entry.patterns as { salt: Buffer; hash: Buffer };
    return createHmac('sha1', salt).update(name).digest().equals(hash);
  }
  let matched = false;
  for (const p of entry.patterns as readonly string[]) {
    const negated = p.startsWith('!');
    const pat = negated ? p.slice(1) : p;
    if (wildcard(pat, name) || (port === 22 && wildcard(pat, `[${host}]:22`))) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

export interface Pins {
  readonly entries: readonly KnownHostEntry[];
  readonly fingerprints: readonly string[];
}

export type Verdict =
  | { readonly ok: true; readonly how: string }
  | { readonly ok: false; readonly reason: 'unpinned' | 'mismatch' | 'revoked' };

/** Decides whether the key a host offered is one of its pins. */
export function verifyHostKey(offered: OfferedKey, pins: Pins, host: string, port: number): Verdict {
  const entries = pins.entries.filter(e => entryMatchesHost(e, host, port));
  if (entries.some(e => e.revoked && e.blob.equals(offered.blob))) return { ok: false, reason: 'revoked' };
  const live = entries.filter(e => !e.revoked);
  if (live.some(e => e.blob.equals(offered.blob))) return { ok: true, how: 'known_hosts' };
  const want = pins.fingerprints.map(f => f.replace(/=+$/, ''));
  if (want.includes(offered.fingerprint)) return { ok: true, how: 'fingerprint' };
  return { ok: false, reason: live.length === 0 && want.length === 0 ? 'unpinned' : 'mismatch' };
}

const ALGORITHMS_BY_KEY_TYPE: Record<string, readonly string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']
};

/** Every host key algorithm family, in the order we try them when hunting for a pinned key. */
export const ALL_KEY_TYPES = Object.keys(ALGORITHMS_BY_KEY_TYPE);

/** Host key algorithms to offer: only the pinned key types when known_hosts names any. */
export function hostKeyAlgorithms(pins: Pins, host: string, port: number): string[] | undefined {
  const types = new Set(
    pins.entries.filter(e => !e.revoked && entryMatchesHost(e, host, port)).map(e => e.type)
  );
  if (types.size === 0) return undefined;
  return [...types].flatMap(t => ALGORITHMS_BY_KEY_TYPE[t] ?? [t]);
}

export function algorithmsForKeyType(type: string): string[] {
  return [...(ALGORITHMS_BY_KEY_TYPE[type] ?? [type])];
}

/** The known_hosts line a user can pin, for the "how to pin it" part of an error. */
export function knownHostsLine(offered: OfferedKey, host: string, port: number): string {
  const name = port === 22 ? host : `[${host}]:${port}`;
  return `${name} ${offered.type} ${offered.blob.toString('base64')}`;
}
