/**
 * The host's deployments.jsonl: the line format, reading it back when lines are broken, and the
 * remote commands that append and read it, run by a real `sh` on a local file.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appendDeployment, readDeployments } from '../../src/remote/commands.js';
import { layoutFor } from '../../src/remote/layout.js';
import {
  MAX_ENTRY_BYTES,
  deployedRelease,
  lastDeployed,
  parseDeploymentLog,
  parseDeploymentsOutput,
  serializeEntry,
  type DeploymentEntry
} from '../../src/record/host-record.js';
import { renderHistory } from '../../src/report/history.js';
import { SecretRegistry } from '../../src/io/secrets.js';

const layout = layoutFor({ path: '/srv/app', strategy: 'releases', keepReleases: 5, shared: [] });

function entry(over: Partial<DeploymentEntry> = {}): DeploymentEntry {
  return {
    v: 1,
    time: '2026-11-26T12:00:00.000Z',
    environment: 'production',
    host: 'web-1',
    release: 'r1',
    commit: 'a'.repeat(40),
    ref: 'refs/heads/main',
    actor: 'octocat',
    runUrl: 'https://github.com/acme/shop/actions/runs/1',
    status: 'deployed',
    durationMs: 1234,
    checks: [{ name: 'api', stage: 'post', ok: true, ms: 12, reason: 'HTTP 200' }],
    ...over
  };
}

const line = (over: Partial<DeploymentEntry> = {}) => JSON.stringify(entry(over));

describe('reading deployments.jsonl', () => {
  test('broken lines are reported with their number and skipped; the others are read', () => {
    const text = [
      line({ release: 'r1' }),
      '{"v":1,"time":"2026-11-26T12:01:00.000Z","release":"r2","sta', // cut short
      line({ release: 'r3', status: 'rolled-back' }),
      '[1,2]',
      JSON.stringify({ ...entry({ release: 'r4' }), v: 9 }),
      JSON.stringify({ ...entry(), status: 'exploded' }),
      JSON.stringify({ ...entry(), commit: undefined }),
      '',
      line({ release: 'r5' })
    ].join('\n');
    const log = parseDeploymentLog(`${text}\n`);
    expect(log.entries.map(e => [e.release, e.line])).toEqual([
      ['r1', 1],
      ['r3', 3],
      ['r5', 9]
    ]);
    expect(log.problems.map(p => p.line)).toEqual([2, 4, 5, 6, 7]);
    expect(log.problems[0]!.reason).toMatch(/not valid JSON/);
    expect(log.problems[2]!.reason).toMatch(/newer deployguard \(format 9\)/);
    expect(log.problems[3]!.reason).toMatch(/unknown status "exploded"/);
    expect(log.problems[4]!.reason).toMatch(/`commit` is missing/);
    expect(log.totalLines).toBe(9);
  });

  test('the last deployed entry and the deploy of a given release ignore failed ones', () => {
    const log = parseDeploymentLog(
      [
        line({ release: 'r1', commit: '1'.repeat(40) }),
        line({ release: 'r2', commit: '2'.repeat(40) }),
        line({ release: 'r3', commit: '3'.repeat(40), status: 'rolled-back' }),
        line({ release: 'r1', commit: '1'.repeat(40), runUrl: 'https://x/runs/9' })
      ].join('\n')
    );
    expect(lastDeployed(log)?.release).toBe('r1');
    expect(deployedRelease(log, 'r1')?.runUrl).toBe('https://x/runs/9');
    expect(deployedRelease(log, 'r2')?.commit).toBe('2'.repeat(40));
    expect(deployedRelease(log, 'r3')).toBeUndefined();
  });

  test('the tail read from the host keeps the file line numbers', () => {
    const out = `lines=250\n${line({ release: 'r249' })}\nbroken\n`;
    const log = parseDeploymentsOutput(out);
    expect(log.entries[0]!.line).toBe(249);
    expect(log.problems).toEqual([{ line: 250, reason: expect.stringMatching(/not valid JSON/) }]);
    expect(log.totalLines).toBe(250);
    expect(parseDeploymentsOutput('lines=0\n').entries).toEqual([]);
  });

  test('the history table lists newest first with the skipped lines', () => {
    const log = parseDeploymentLog(
      [
        line({ release: 'r1' }),
        'oops',
        line({ release: 'r2', time: '2026-11-27T08:00:00.000Z', reason: 'hotfix\nmore' })
      ].join('\n')
    );
    const text = renderHistory('web-1', log);
    const rows = text.split('\n');
    expect(rows[0]).toBe('web-1: 2 deployment(s)');
    expect(rows[2]).toMatch(
      /^2026-11-27 08:00:00Z\s+deployed\s+r2\s+aaaaaaaaaaaa\s+octocat\s+main\s+hotfix$/
    );
    expect(rows[3]).toMatch(/^2026-11-26 12:00:00Z\s+deployed\s+r1/);
    expect(rows[4]).toMatch(/line 2 skipped: not valid JSON/);
  });
});

describe('writing a record line', () => {
  test('every string is redacted before it reaches the host, inside JSON escapes too', () => {
    const reg = new SecretRegistry();
    reg.add('tok"en-12345');
    const text = serializeEntry(entry({ reason: 'uses tok"en-12345', checks: [] }), s => reg.redact(s));
    expect(text).not.toContain('tok');
    expect(JSON.parse(text).reason).toBe('uses ***');
  });

  test('a huge entry is cut down below the limit, keeping the fields deployguard reads back', () => {
    const checks = Array.from({ length: 400 }, (_, i) => ({
      name: `check-${i}`,
      stage: 'post',
      ok: false,
      ms: 1,
      reason: 'x'.repeat(250)
    }));
    const text = serializeEntry(entry({ checks, reason: 'y'.repeat(5000) }), s => s);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_ENTRY_BYTES);
    const back = parseDeploymentLog(text);
    expect(back.problems).toEqual([]);
    expect(back.entries[0]!.release).toBe('r1');
    expect(back.entries[0]!.commit).toBe('a'.repeat(40));
  });

  test('the append command ends a cut-short line first and never rewrites the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dg-append-'));
    try {
      const local = layoutFor({ path: join(dir, 'app'), strategy: 'releases', keepReleases: 2, shared: [] });
      const send = (line: string) =>
        execFileSync('sh', ['-c', `set -eu\n${appendDeployment(local, line).text}`]);
      // No record yet: the state directory is made and the line is the whole file.
      send('{"v":1}');
      expect(readFileSync(local.deploymentsLog, 'utf8')).toBe('{"v":1}\n');
      // A line cut short (a dropped link, a full disk), then one ending in NUL bytes (a crash of
      // a host that had not written the file out): each is ended before the next line.
      writeFileSync(local.deploymentsLog, '{"v":1}\n{"v":1,"cut');
      send('{"v":2}');
      appendFileSync(local.deploymentsLog, Buffer.from([0x7b, 0, 0]));
      send('{"v":3}');
      expect(readFileSync(local.deploymentsLog, 'latin1')).toBe(
        '{"v":1}\n{"v":1,"cut\n{"v":2}\n{\0\0\n{"v":3}\n'
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(appendDeployment(layout, 'x').text).not.toMatch(/ > |sed -i|mv /);
  });

  test('an entry with an id is appended once, however often its script is sent', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dg-append-'));
    try {
      const local = layoutFor({ path: join(dir, 'app'), strategy: 'releases', keepReleases: 2, shared: [] });
      const send = (line: string, id?: string) =>
        execFileSync('sh', ['-c', `set -eu\n${appendDeployment(local, line, id).text}`]);
      send('{"v":1,"id":"run-1"}', 'run-1');
      send('{"v":1,"id":"run-1"}', 'run-1');
      send('{"v":1,"id":"run-2"}', 'run-2');
      send('{"v":1}');
      send('{"v":1}');
      expect(readFileSync(local.deploymentsLog, 'utf8')).toBe(
        '{"v":1,"id":"run-1"}\n{"v":1,"id":"run-2"}\n{"v":1}\n{"v":1}\n'
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the read command prints the line count and the newest lines, each ended', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dg-read-'));
    try {
      const local = layoutFor({ path: join(dir, 'app'), strategy: 'releases', keepReleases: 2, shared: [] });
      const read = (limit: number) =>
        execFileSync('sh', ['-c', `set -eu\n${readDeployments(local, limit).text}`]).toString();
      expect(read(3)).toBe('lines=0\n');
      mkdirSync(local.stateDir, { recursive: true });
      writeFileSync(local.deploymentsLog, '');
      expect(read(3)).toBe('lines=0\n');
      writeFileSync(local.deploymentsLog, 'a\nb\n');
      expect(read(3)).toBe('lines=2\na\nb\n');
      // Five lines, the last cut short: all are counted, the last three printed, each ended.
      writeFileSync(local.deploymentsLog, 'a\nb\nc\nd\ne-cut');
      expect(read(3)).toBe('lines=5\nc\nd\ne-cut\n');
      expect(read(5)).toBe('lines=5\na\nb\nc\nd\ne-cut\n');
      expect(read(1)).toBe('lines=5\ne-cut\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
