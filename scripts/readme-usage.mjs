#!/usr/bin/env node
// Writes the inputs and outputs of every action (action.yml and the sub-actions) into README.md,
// between the usage markers, as one table of inputs and one of outputs with a column per action,
// so the README says exactly what the metadata does.
// --check: fail when README.md differs from what this script would write.
import { readFileSync, writeFileSync } from 'node:fs';
import * as prettier from 'prettier';
import { parse } from 'yaml';

export const ACTIONS = [
  ['org/deployguard@v1', 'action.yml', 'all'],
  ['org/deployguard/pre-deploy@v1', 'pre-deploy/action.yml', 'pre-deploy'],
  ['org/deployguard/deploy@v1', 'deploy/action.yml', 'deploy'],
  ['org/deployguard/post-deploy@v1', 'post-deploy/action.yml', 'post-deploy'],
  ['org/deployguard/rollback@v1', 'rollback/action.yml', 'rollback']
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

/**
 * The text of one row's cell, given what each action that has the row says: the shared text when
 * they agree, else each variant led by the actions it belongs to.
 */
function merged(byAction, format) {
  const groups = new Map();
  for (const [short, value] of byAction) {
    const text = format(value);
    groups.set(text, [...(groups.get(text) ?? []), short]);
  }
  if (groups.size <= 1) return [...groups.keys()][0] ?? '';
  return [...groups]
    .filter(([text]) => text !== '')
    .map(([text, shorts]) => `**${shorts.join(', ')}:** ${text}`)
    .join(' ');
}

/** One table for `kind` (inputs or outputs): a row per name, a column per action. */
function table(metas, kind) {
  const names = [];
  for (const { meta } of metas)
    for (const name of Object.keys(meta[kind] ?? {})) if (!names.includes(name)) names.push(name);
  const head = [kind === 'inputs' ? 'input' : 'output', ...metas.map(m => m.short)];
  if (kind === 'inputs') head.push('default');
  head.push('description');
  const rows = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const name of names) {
    const has = metas.filter(m => m.meta[kind]?.[name] !== undefined).map(m => [m.short, m.meta[kind][name]]);
    const marks = metas.map(m => {
      const spec = m.meta[kind]?.[name];
      if (spec === undefined) return '';
      return spec.required && spec.default === undefined ? 'required' : '✓';
    });
    const row = [`\`${name}\``, ...marks];
    if (kind === 'inputs')
      row.push(
        merged(has, spec =>
          spec.default === undefined || spec.default === '' ? '' : `\`${cell(spec.default)}\``
        )
      );
    row.push(merged(has, spec => cell(spec.description)));
    rows.push(`| ${row.join(' | ')} |`);
  }
  return rows;
}

/** The usage text between the markers: what each action is, then one table of inputs, one of outputs. */
export function usage() {
  const metas = ACTIONS.map(([uses, file, short]) => ({
    uses,
    short,
    meta: parse(readFileSync(file, 'utf8'))
  }));
  return [
    '| column | action | what it does |',
    '| --- | --- | --- |',
    ...metas.map(m => `| ${m.short} | \`${m.uses}\` | ${cell(m.meta.description)} |`),
    '',
    '### Inputs',
    '',
    '✓: the action takes the input; required: it must be set there. Inputs are strings, as for every action.',
    '',
    ...table(metas, 'inputs'),
    '',
    '### Outputs',
    '',
    ...table(metas, 'outputs'),
    ''
  ].join('\n');
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
