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

/** Parses known_hosts text; comments, blank lines and @cert-authority lines are skipped. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let revoked = false;
    if (fields[0]?.startsWith('@')) {
      const marker = fields.shift();
      if (marker === '@cert-authority') continue;
      revoked = marker === '@revoked';
    }
    const [hosts, type, key] = fields;
    if (!hosts || !type || !key || !/^[A-Za-z0-9+/]+=*$/.test(key)) {
      throw new Error(`not a known_hosts line: "${line.slice(0, 80)}"`);
    }
    const blob = Buffer.from(key, 'base64');
    // The blob names its own type: a line whose key does not decode to that type is not a key.
    if (describeKey(blob).type !== type) throw new Error(`not a known_hosts line: "${line.slice(0, 80)}"`);
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
  }
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
