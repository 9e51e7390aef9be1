import { createHash, createHmac, generateKeyPairSync } from 'node:crypto';
import {
  describeKey,
  entryMatchesHost,
  fingerprintOf,
  hostKeyAlgorithms,
  knownHostsLine,
  parseKnownHosts,
  verifyHostKey
} from '../../src/remote/hostkeys.js';

/** An SSH ed25519 public key blob: string "ssh-ed25519" then the 32-byte key, both length-prefixed. */
function ed25519Blob(): Buffer {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]);
}

describe('host key pinning', () => {
  const blob = ed25519Blob();
  const other = ed25519Blob();
  const offered = describeKey(blob);

  test('fingerprint is SHA256 base64 without padding, like ssh-keygen -l', () => {
    const expected = 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
    expect(fingerprintOf(blob)).toBe(expected);
    expect(offered.type).toBe('ssh-ed25519');
  });

  test('a known_hosts line for [host]:port matches only that host and port', () => {
    const entries = parseKnownHosts(`[10.0.0.5]:2222 ssh-ed25519 ${blob.toString('base64')}`);
    expect(verifyHostKey(offered, { entries, fingerprints: [] }, '10.0.0.5', 2222)).toEqual({
      ok: true,
      how: 'known_hosts'
    });
    expect(verifyHostKey(offered, { entries, fingerprints: [] }, '10.0.0.5', 22)).toEqual({
      ok: false,
      reason: 'unpinned'
    });
    expect(verifyHostKey(offered, { entries, fingerprints: [] }, '10.0.0.6', 2222)).toEqual({
      ok: false,
      reason: 'unpinned'
    });
  });

  test('a different key for a pinned host is a mismatch, not "unpinned"', () => {
    const entries = parseKnownHosts(`web.example ssh-ed25519 ${other.toString('base64')}`);
    expect(verifyHostKey(offered, { entries, fingerprints: [] }, 'web.example', 22)).toEqual({
      ok: false,
      reason: 'mismatch'
    });
  });

  test('fingerprint pins work with or without base64 padding', () => {
    const fp = fingerprintOf(blob);
    expect(verifyHostKey(offered, { entries: [], fingerprints: [fp] }, 'h', 22).ok).toBe(true);
    expect(verifyHostKey(offered, { entries: [], fingerprints: [fp + '='] }, 'h', 22).ok).toBe(true);
    expect(verifyHostKey(offered, { entries: [], fingerprints: [fingerprintOf(other)] }, 'h', 22)).toEqual({
      ok: false,
      reason: 'mismatch'
    });
  });

  test('hashed known_hosts entries (ssh-keygen -H) match', () => {
    const salt = Buffer.from('0123456789abcdef0123');
    const hash = createHmac('sha1', salt).update('[db.internal]:2200').digest();
    const line = `|1|${salt.toString('base64')}|${hash.toString('base64')} ssh-ed25519 ${blob.toString('base64')}`;
    const [entry] = parseKnownHosts(line);
    expect(entryMatchesHost(entry!, 'db.internal', 2200)).toBe(true);
    expect(entryMatchesHost(entry!, 'db.internal', 22)).toBe(false);
  });

  test('wildcards and negations follow known_hosts rules', () => {
    const [entry] = parseKnownHosts(`*.example.com,!evil.example.com ssh-ed25519 ${blob.toString('base64')}`);
    expect(entryMatchesHost(entry!, 'web1.example.com', 22)).toBe(true);
    expect(entryMatchesHost(entry!, 'evil.example.com', 22)).toBe(false);
  });

  test('a revoked key is refused even if also listed as good', () => {
    const b64 = blob.toString('base64');
    const entries = parseKnownHosts(`h ssh-ed25519 ${b64}\n@revoked h ssh-ed25519 ${b64}`);
    expect(verifyHostKey(offered, { entries, fingerprints: [] }, 'h', 22)).toEqual({
      ok: false,
      reason: 'revoked'
    });
  });

  test('only the pinned key types are negotiated, so a multi-key host offers the pinned one', () => {
    const entries = parseKnownHosts(
      `h ssh-ed25519 ${blob.toString('base64')}\nh ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7`
    );
    expect(hostKeyAlgorithms({ entries, fingerprints: [] }, 'h', 22)).toEqual([
      'ssh-ed25519',
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-rsa'
    ]);
    expect(hostKeyAlgorithms({ entries: [], fingerprints: ['SHA256:x'] }, 'h', 22)).toBeUndefined();
  });

  test('garbage is rejected with the line shown', () => {
    expect(() => parseKnownHosts('this is not a key')).toThrow(/not a known_hosts line: "this is not a key"/);
  });

  test('the suggested known_hosts line round-trips', () => {
    const line = knownHostsLine(offered, '192.0.2.1', 2201);
    expect(
      verifyHostKey(offered, { entries: parseKnownHosts(line), fingerprints: [] }, '192.0.2.1', 2201).ok
    ).toBe(true);
  });
});
