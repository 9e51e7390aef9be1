/**
 * Incremental deploys over a real sshd: only changed files travel, unchanged ones are hard-linked
 * from the previous release, and the new release is exactly the artifact (same manifest as a full
 * upload would give), with deleted files gone and the previous release untouched. A previous
 * release changed on the host is caught by the verification and the deploy sends everything.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  existsSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync
} from 'node:fs';
import { cp, mkdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Sandbox } from '../../src/demo/sandbox.js';
import { SETTLE_MS } from '../../src/transfer/delta.js';
import { deployQuiet, settingsFor } from '../helpers/deploy.js';
import { startTestHost, type TestHost } from '../helpers/test-host.js';

let t: TestHost;
let host: Sandbox;
let base: string;
let target: string;
let art: string;

beforeAll(async () => {
  // DEBUG1: sshd logs the algorithms it agreed on, compression included.
  t = await startTestHost({ prefix: 'incr', logLevel: 'DEBUG1' });
  ({ host, work: base, target } = t);
  art = join(base, 'artifact');
  for (let i = 0; i < 200; i++) {
    await mkdir(join(art, `dir-${i % 10}`), { recursive: true });
    writeFileSync(join(art, `dir-${i % 10}`, `file-${i}.txt`), `content of file ${i}\n`.repeat(20 + i));
  }
  writeFileSync(join(art, 'run.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(art, 'run.sh'), 0o644);
}, 30_000);

afterAll(async () => {
  await t?.stop();
});

const yaml = [
  'version: 1',
  'service: { manager: none }',
  'post-deploy: { stability-window: 0s }',
  'pre-deploy: { gitleaks: false }'
].join('\n');

/** Deploys a snapshot of the artifact directory as it is now. */
async function deploy(release: string, extra = '') {
  const snap = join(base, `snap-${release}`);
  await cp(art, snap, { recursive: true, preserveTimestamps: true });
  return deployQuiet(
    settingsFor(host, { artifact: snap, 'target-path': target, 'release-id': release }, `${yaml}\n${extra}`)
  );
}

function manifest(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else
        out[relative(dir, p)] =
          `${createHash('sha256').update(readFileSync(p)).digest('hex')} ${(statSync(p).mode & 0o777).toString(8)}`;
    }
  };
  walk(dir);
  return out;
}

const rel = (id: string, p = '') => join(target, 'releases', id, p);
const inode = (p: string) => statSync(p).ino;

describe('incremental deploys', () => {
  test('the first deploy sends everything; the next sends only what changed and links the rest', async () => {
    expect((await deploy('r1')).result.status).toBe('deployed');
    const before = manifest(rel('r1'));
    // 2 files changed, 1 deleted, 1 added, 1 only made executable.
    appendFileSync(join(art, 'dir-1', 'file-1.txt'), 'changed\n');
    appendFileSync(join(art, 'dir-2', 'file-2.txt'), 'changed\n');
    rmSync(join(art, 'dir-3', 'file-3.txt'));
    writeFileSync(join(art, 'dir-4', 'new.txt'), 'new\n');
    chmodSync(join(art, 'run.sh'), 0o755);
    const sshdLog = join(host.dir, 'sshd.log');
    const logBefore = readFileSync(sshdLog, 'utf8').length;
    const { result, log } = await deploy('r2');
    expect(result.status).toBe('deployed');
    // Four remote commands (sshd logs each one at DEBUG1): the lock with the host state and the
    // release listing; the upload; the verification, promotion and switch; the release marked
    // good with the prune, the record and the unlock.
    const served = readFileSync(sshdLog, 'utf8').slice(logBefore);
    expect(served.match(/request exec/g)).toHaveLength(4);
    // The login goes straight to the key: no "none" request first (a round trip to learn the
    // methods), as sshd logs each request's method.
    expect(served).toMatch(/userauth-request for user \S+ service ssh-connection method publickey/);
    expect(served).not.toMatch(/method none/);
    expect(log.join('\n')).toMatch(
      /: 4 files, [\d.]+ MB sent in [\d.]+ s \([\d.]+ MB\/s\); 197 unchanged files linked from r1/
    );
    // Exactly the artifact: content and modes, the deleted file gone.
    expect(manifest(rel('r2'))).toEqual(manifest(art));
    expect(manifest(rel('r2'))['dir-3/file-3.txt']).toBeUndefined();
    // Unchanged files share the previous release's inode; changed ones do not.
    expect(inode(rel('r2', 'dir-5/file-5.txt'))).toBe(inode(rel('r1', 'dir-5/file-5.txt')));
    expect(inode(rel('r2', 'dir-1/file-1.txt'))).not.toBe(inode(rel('r1', 'dir-1/file-1.txt')));
    expect(inode(rel('r2', 'run.sh'))).not.toBe(inode(rel('r1', 'run.sh')));
    // The previous release, the rollback target, is untouched.
    expect(manifest(rel('r1'))).toEqual(before);
  }, 90_000);

  test('a previous release changed on the host fails the verification, and the deploy sends everything', async () => {
    appendFileSync(rel('r2', 'dir-6/file-6.txt'), 'edited on the host\n');
    const { result, log } = await deploy('r3');
    expect(result.status).toBe('deployed');
    expect(log.join('\n')).toMatch(/the incremental upload did not verify .*sending every file/);
    expect(manifest(rel('r3'))).toEqual(manifest(art));
    expect(inode(rel('r3', 'dir-6/file-6.txt'))).not.toBe(inode(rel('r2', 'dir-6/file-6.txt')));
  }, 90_000);

  test('with compression on, sshd agrees to zlib and the release is still exact', async () => {
    const logBefore = readFileSync(join(host.dir, 'sshd.log'), 'utf8').length;
    appendFileSync(join(art, 'dir-7', 'file-7.txt'), 'compressed\n');
    const { result } = await deploy('r4', 'ssh: { compress: true }\ndeploy: { incremental: false }');
    expect(result.status).toBe('deployed');
    expect(manifest(rel('r4'))).toEqual(manifest(art));
    // The server's own account of the connection: compression negotiated both ways.
    const kex = readFileSync(join(host.dir, 'sshd.log'), 'utf8').slice(logBefore);
    expect(kex).toMatch(/kex: client->server cipher: \S+ MAC: \S+ compression: zlib@openssh\.com/);
    expect(kex).toMatch(/kex: server->client cipher: \S+ MAC: \S+ compression: zlib@openssh\.com/);
    // Not linked: incremental was off, every file travelled (compressed).
    expect(inode(rel('r4', 'dir-5/file-5.txt'))).not.toBe(inode(rel('r3', 'dir-5/file-5.txt')));
  }, 90_000);

  test('the host tar killed mid-upload fails the deploy at once: r4 stays live, the lock is free', async () => {
    // 48 MiB that does not compress: the upload lasts long enough to be cut.
    for (let i = 0; i < 12; i++) writeFileSync(join(art, `blob-${i}.bin`), randomBytes(4 * 1024 * 1024));
    const running = deploy('r5', 'deploy: { incremental: false }');
    const staging = join(target, '.deployguard', 'staging');
    // Wait until the host's tar has written into the staging directory, then kill it.
    let killed = false;
    for (let i = 0; i < 400 && !killed; i++) {
      await new Promise(r => setTimeout(r, 25));
      const started = readdirSync(staging, { recursive: true }).some(p => String(p).includes('blob-'));
      if (started) killed = spawnSync('pkill', ['-KILL', '-u', host.user, '-x', 'tar']).status === 0;
    }
    expect(killed).toBe(true);
    const t0 = Date.now();
    const { result } = await running;
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(result.status).toBe('failed');
    expect(JSON.stringify(result)).toMatch(/upload failed/);
    expect(readlinkSync(join(target, 'current'))).toMatch(/r4$/);
    expect(manifest(join(target, 'current'))).toEqual(manifest(rel('r4')));
    expect(existsSync(rel('r5'))).toBe(false);
    // The lock is free: the same release goes out now.
    expect((await deploy('r6')).result.status).toBe('deployed');
    expect(manifest(rel('r6'))).toEqual(manifest(art));
  }, 120_000);

  test("with the CLI's hash cache, files untouched since the last deploy are not read again; a changed one still travels", async () => {
    const src = join(base, 'cached-build');
    await cp(art, src, { recursive: true });
    const hashCache = join(base, 'hash-cache');
    await mkdir(hashCache, { mode: 0o700 });
    const files = readdirSync(src, { recursive: true }).filter(p => statSync(join(src, String(p))).isFile());
    const ship = (release: string) =>
      deployQuiet(settingsFor(host, { artifact: src, 'target-path': target, 'release-id': release }, yaml), {
        hashCache
      });
    // Only files that have not changed for SETTLE_MS are kept (see hashArtifact).
    await new Promise(r => setTimeout(r, SETTLE_MS + 200));
    const first = await ship('r7');
    expect(first.result.status).toBe('deployed');
    expect(first.log.join('\n')).not.toMatch(/hashes from the cache/);
    // Same size, its times put back to the nanosecond: only its ctime tells that it changed.
    const changed = join(src, 'dir-8', 'file-8.txt');
    const times = join(base, 'times');
    spawnSync('touch', ['-r', changed, times]);
    writeFileSync(changed, readFileSync(changed, 'utf8').toUpperCase());
    spawnSync('touch', ['-r', times, changed]);
    const second = await ship('r8');
    expect(second.result.status).toBe('deployed');
    expect(second.log.join('\n')).toMatch(
      new RegExp(
        `: 1 files, [\\d.]+ MB sent .*; ${files.length - 1} unchanged files linked from r7 \\(${files.length - 1} of the artifact's hashes from the cache\\)`
      )
    );
    expect(manifest(rel('r8'))).toEqual(manifest(src));
  }, 120_000);
});
