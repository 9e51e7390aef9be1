import { createHash, createHmac, generateKeyPairSync } from 'node:crypto';
import { DeployError } from '../../src/errors.js';
import { connectHost } from '../../src/io/ssh.js';
import { memoryLogger } from '../../src/io/log.js';
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

/** An SSH RSA public key blob: "ssh-rsa", then e and n as mpints. */
function rsaBlob(): Buffer {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  const str = (b: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
  };
  const mpint = (b64: string) => {
    const b = Buffer.from(b64, 'base64url');
    return str(b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
  };
  return Buffer.concat([str(Buffer.from('ssh-rsa')), mpint(jwk.e!), mpint(jwk.n!)]);
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
      `h ssh-ed25519 ${blob.toString('base64')}\nh ssh-rsa ${rsaBlob().toString('base64')}`
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
    expect(() => parseKnownHosts('this is not a key')).toThrow(
      /line 1 "this is not a key" is malformed: the third field is not an SSH public key/
    );
    expect(() => parseKnownHosts('# pins\nweb-1 ssh-ed25519')).toThrow(/line 2 .* expected three fields/);
  });

  // A pin copied in part used to parse (its type name survives the cut) and then fail at connect
  // as "HOST KEY DOES NOT MATCH THE PIN ... man-in-the-middle".
  test.each([
    ['ed25519', () => ed25519Blob(), 'ssh-ed25519'],
    ['rsa', () => rsaBlob(), 'ssh-rsa']
  ])('a truncated %s key line is malformed, whatever the cut', (_kind, make, type) => {
    const b64 = make().toString('base64');
    for (const keep of [24, 28, 40, b64.length - 8, b64.length - 4]) {
      const line = `web.example ${type} ${b64.slice(0, keep)}`;
      expect(() => parseKnownHosts(line)).toThrow(
        /^line 1 ".*" is malformed: .*(cut short|incomplete|base64)/
      );
    }
    expect(parseKnownHosts(`web.example ${type} ${b64}`)).toHaveLength(1);
  });

  test('a key whose data names another type than the line is malformed', () => {
    expect(() => parseKnownHosts(`h ssh-rsa ${blob.toString('base64')}`)).toThrow(
      /is malformed: the key data is a "ssh-ed25519" key, not ssh-rsa/
    );
  });

  test('connecting with a truncated pin says malformed, not man-in-the-middle, and contacts nobody', async () => {
    const b64 = blob.toString('base64');
    const host = {
      name: 'web-1',
      host: '127.0.0.1',
      port: 1,
      user: 'deploy',
      knownHosts: [`[127.0.0.1]:1 ssh-ed25519 ${b64.slice(0, 40)}`],
      fingerprints: []
    };
    const ssh = { insecureSkipHostKeyCheck: false, connectTimeoutMs: 1000, connectRetries: 0 };
    const err = await connectHost(host, ssh, memoryLogger()).then(
      () => undefined,
      (e: unknown) => e
    );
    expect(err).toBeInstanceOf(DeployError);
    expect((err as Error).message).toMatch(/web-1: a known_hosts pin for 127\.0\.0\.1:1 is malformed/);
    expect((err as Error).message).not.toMatch(/man-in-the-middle|DOES NOT MATCH/);
  });

  test('the suggested known_hosts line round-trips', () => {
    const line = knownHostsLine(offered, '192.0.2.1', 2201);
    expect(
      verifyHostKey(offered, { entries: parseKnownHosts(line), fingerprints: [] }, '192.0.2.1', 2201).ok
    ).toBe(true);
  });
});
