#!/usr/bin/env node
// Writes the inputs and outputs of every action (action.yml and the sub-actions) into README.md,
// between the usage markers, so the README says exactly what the metadata does.
// --check: fail when README.md differs from what this script would write.
import { readFileSync, writeFileSync } from 'node:fs';
import * as prettier from 'prettier';
import { parse } from 'yaml';

export const ACTIONS = [
  ['org/deployguard@v1', 'action.yml'],
  ['org/deployguard/pre-deploy@v1', 'pre-deploy/action.yml'],
  ['org/deployguard/deploy@v1', 'deploy/action.yml'],
  ['org/deployguard/post-deploy@v1', 'post-deploy/action.yml'],
  ['org/deployguard/rollback@v1', 'rollback/action.yml']
];

const START = '<!-- usage:start (generated from action.yml files by `npm run readme`) -->';
const END = '<!-- usage:end -->';

/** One table cell: one line, pipes escaped, and `<` outside code spans kept from reading as HTML. */
const cell = text =>
  String(text ?? '')
    .replace(/\s*\n\s*/g, ' ')
    .split('`')
    .map((part, i) => (i % 2 ? part : part.replace(/</g, '&lt;')))
    .join('`')
    .replace(/\|/g, '\\|')
    .trim();

export function usage() {
  const out = [];
  for (const [uses, file] of ACTIONS) {
    const meta = parse(readFileSync(file, 'utf8'));
    out.push(
      `### \`${uses}\``,
      '',
      cell(meta.description),
      '',
      '| input | required | default | description |',
      '| --- | --- | --- | --- |'
    );
    for (const [name, spec] of Object.entries(meta.inputs ?? {})) {
      const dflt = spec.default === undefined || spec.default === '' ? '' : `\`${cell(spec.default)}\``;
      out.push(`| \`${name}\` | ${spec.required ? 'yes' : 'no'} | ${dflt} | ${cell(spec.description)} |`);
    }
    out.push('', '| output | description |', '| --- | --- |');
    for (const [name, spec] of Object.entries(meta.outputs ?? {}))
      out.push(`| \`${name}\` | ${cell(spec.description)} |`);
    out.push('');
  }
  return out.join('\n');
}

/** README.md with fresh tables, formatted as `npm run lint` wants it. */
export async function withUsage(readme) {
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no usage markers (${START} ... ${END})`);
  const text = `${readme.slice(0, a + START.length)}\n\n${usage()}\n${readme.slice(b)}`;
  const options = (await prettier.resolveConfig('README.md')) ?? {};
  return prettier.format(text, { ...options, filepath: 'README.md' });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const readme = readFileSync('README.md', 'utf8');
  const next = await withUsage(readme);
  if (process.argv.includes('--check')) {
    if (next !== readme) {
      console.error('README.md usage tables are out of date: run `npm run readme`');
      process.exit(1);
    }
  } else writeFileSync('README.md', next);
}
