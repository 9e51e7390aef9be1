/**
 * `deployguard check` as a user runs it: the bundled CLI in a subprocess, against real HTTP
 * servers, with a secret header taken from the environment. Exit codes, the table, the JSON, and
 * that the secret never appears in any of it.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBundle } from '../helpers/deploy.js';

const TOKEN = 'tok-9f8e7d6c5b4a-very-secret';
let server: Server;
let port: number;
let dir: string;
const seen: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(String(req.headers.authorization));
    if (req.url === '/health') {
      // A careless server that echoes the credential it got in an error body.
      const ok = req.headers.authorization === `Bearer ${TOKEN}`;
      res.writeHead(ok ? 200 : 401).end(ok ? 'ok' : `bad auth: ${req.headers.authorization}`);
    } else if (req.url === '/broken') {
      res.writeHead(500).end(`boom, you sent ${req.headers.authorization}`);
    } else res.writeHead(404).end();
  });
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
  dir = mkdtempSync(join(tmpdir(), 'dg-cli-'));
});

afterAll(() => new Promise<void>(r => server.close(() => r())));

/** The bundled CLI in a subprocess (async: the HTTP servers it calls live in this process). */
function cli(args: string[], env: Record<string, string> = {}) {
  return runBundle('cli', args, { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: dir, ...env } });
}

function config(name: string, checks: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, ['version: 1', 'checks:', ...checks].join('\n') + '\n');
  return path;
}

const authed = (path: string) =>
  `  - { name: api, type: http, url: "http://127.0.0.1:${port}${path}", headers: { Authorization: "Bearer \${HEALTH_TOKEN}" }, timeout: 2s }`;

describe('deployguard check', () => {
  test('all checks pass: exit 0, a table, "N/M checks passed"', async () => {
    const file = config('ok.yml', [
      authed('/health'),
      `  - { name: port, type: tcp, host: 127.0.0.1, port: ${port} }`
    ]);
    const r = await cli(['check', '--config', file], { HEALTH_TOKEN: TOKEN });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^RESULT\s+CHECK\s+STAGE\s+ATTEMPTS\s+DURATION\s+REASON$/m);
    expect(r.stdout).toMatch(/^PASS\s+api\s+schedule\s+1\s+\d+ ms\s+HTTP 200/m);
    expect(r.stdout).toMatch(/^2\/2 checks passed$/m);
    expect(seen.at(-1)).toBe(`Bearer ${TOKEN}`); // the header really reached the server
  });

  test('one failure: exit 1, the other results still shown; --json has the table; the secret is nowhere', async () => {
    const file = config('bad.yml', [
      authed('/broken'),
      `  - { name: port, type: tcp, host: 127.0.0.1, port: ${port} }`
    ]);
    const r = await cli(['check', '--config', file, '--json'], { HEALTH_TOKEN: TOKEN });
    expect(r.code).toBe(1);
    const json = JSON.parse(r.stdout);
    expect(json).toMatchObject({ stage: 'schedule', passed: 1, total: 2, ok: false });
    expect(json.results.map((x: { name: string; ok: boolean }) => [x.name, x.ok])).toEqual([
      ['api', false],
      ['port', true]
    ]);
    expect(json.results[0].reason).toMatch(/HTTP 500/);
    expect(seen.at(-1)).toBe(`Bearer ${TOKEN}`);
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
  });

  test('a missing environment variable for a header is a config error (exit 2), not an empty header', async () => {
    const file = config('noenv.yml', [authed('/health')]);
    const r = await cli(['check', '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /checks\[0\]\.headers\.Authorization: the environment variable HEALTH_TOKEN is not set/
    );
  });

  test('--stage selects the checks tagged for it', async () => {
    const file = config('stages.yml', [
      `  - { name: only-pre, type: tcp, host: 127.0.0.1, port: ${port}, stages: [pre] }`,
      `  - { name: only-post, type: tcp, host: 127.0.0.1, port: 1, stages: [post] }`
    ]);
    expect((await cli(['check', '--config', file, '--stage', 'pre'])).code).toBe(0);
    expect((await cli(['check', '--config', file, '--stage', 'post'])).code).toBe(1);
    expect((await cli(['check', '--config', file, '--stage', 'schedule'])).code).toBe(2);
  });

  test('init writes a minimal starter that the CLI accepts as it stands, and refuses to overwrite', async () => {
    expect((await cli(['init'])).code).toBe(0);
    const written = readFileSync(join(dir, 'deployguard.yml'), 'utf8');
    expect(written).toMatch(/^# yaml-language-server: \$schema=https:\/\/\S+\/deployguard\.schema\.json\n/);
    expect(written.match(/^ {2}- name: /gm)).toHaveLength(2); // one host, one check
    // Its one check runs (and fails here, offline): a config error would exit 2 before any check.
    const checked = await cli(['check', '--config', 'deployguard.yml']);
    expect(checked.stdout).toMatch(/^FAIL\s+health\s+schedule\s/m);
    expect(checked.code).toBe(1);
    const again = await cli(['init']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/exists; not overwriting/);
  });
});
