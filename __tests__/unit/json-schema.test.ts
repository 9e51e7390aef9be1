import { readFileSync } from 'node:fs';
import { configJsonSchema } from '../../src/settings/config.js';

test('deployguard.schema.json is generated from the validator and up to date', () => {
  const shipped = JSON.parse(readFileSync('deployguard.schema.json', 'utf8'));
  // Regenerate with `npm run schema` after changing src/settings/config.ts.
  expect(shipped).toEqual(JSON.parse(JSON.stringify(configJsonSchema())));
  expect(shipped.properties.target.properties['keep-releases']).toMatchObject({
    type: 'integer',
    minimum: 1,
    maximum: 100,
    default: 5
  });
  expect(shipped.additionalProperties).toBe(false);
});
