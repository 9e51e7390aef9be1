/**
 * What `deployguard init` writes: a minimal file for the common case (one host, a systemd
 * service, one HTTP check) that the real settings parser accepts as it stands, with the schema
 * line editors read first.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parseSettings } from '../../src/settings/parse.js';
import { SCHEMA_URL, STARTER_CONFIG } from '../../src/settings/starter.js';
import { FAKE_KEY } from '../helpers/settings.js';

function parseStarter(purpose: 'deploy' | 'check', env: Record<string, string>) {
  return parseSettings({
    input: () => undefined,
    env,
    configText: STARTER_CONFIG,
    configPath: 'deployguard.yml',
    now: new Date('2026-12-01T12:00:00Z'),
    onSecret: () => {},
    purpose
  });
}

test('the starter parses with no errors given only the SSH key, as one host, a systemd service and one http check', () => {
  const s = parseStarter('deploy', { DEPLOYGUARD_SSH_KEY: FAKE_KEY });
  expect(s.hosts.map(h => `${h.user}@${h.host}:${h.port}`)).toEqual(['deploy@203.0.113.10:22']);
  expect(s.service).toMatchObject({ manager: 'systemd', name: 'myapp', sudo: true });
  expect(s.checks.map(c => [c.name, c.type])).toEqual([['health', 'http']]);
  expect(s.target.path).toBe('/srv/myapp');
});

test('`deployguard check` with the starter needs no inputs at all', () => {
  expect(parseStarter('check', {}).checks).toHaveLength(1);
});

test('it is minimal: no key the common case does not need, under 40 lines', () => {
  const doc = parse(STARTER_CONFIG) as Record<string, unknown>;
  expect(Object.keys(doc)).toEqual([
    'version',
    'environment',
    'artifact',
    'target',
    'hosts',
    'service',
    'checks'
  ]);
  expect(STARTER_CONFIG.trimEnd().split('\n').length).toBeLessThanOrEqual(40);
  // The pin is explained, not faked: a made-up fingerprint would fail at the first connect.
  expect(STARTER_CONFIG).toContain('deployguard pin 203.0.113.10');
  expect(STARTER_CONFIG).not.toMatch(/^\s*(host-key|known-hosts):/m);
});

test('the first line points editors at the schema this repository ships (json-schema.test keeps it current)', () => {
  expect(STARTER_CONFIG.split('\n')[0]).toBe(`# yaml-language-server: $schema=${SCHEMA_URL}`);
  const file = SCHEMA_URL.split('/').at(-1)!;
  expect(file).toBe('deployguard.schema.json');
  expect(existsSync(file)).toBe(true);
  expect(JSON.parse(readFileSync(file, 'utf8'))).toHaveProperty('$schema');
});
