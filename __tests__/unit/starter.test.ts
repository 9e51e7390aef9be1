import { parse } from 'yaml';
import { configSchema } from '../../src/settings/config.js';
import { validate } from '../../src/settings/schema.js';
import { STARTER_CONFIG } from '../../src/settings/starter.js';

test('the starter config of `deployguard init` is valid and has one check of each kind', () => {
  const r = validate(configSchema, parse(STARTER_CONFIG));
  expect(r.ok ? [] : r.errors).toEqual([]);
  const kinds = (parse(STARTER_CONFIG).checks as { type: string }[]).map(c => c.type).sort();
  expect(kinds).toEqual(['command', 'file-fresh', 'http', 'logs', 'process', 'tcp', 'version']);
});
