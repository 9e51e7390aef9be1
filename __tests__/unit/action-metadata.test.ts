/**
 * The action metadata says what the code does: every sub-action is generated from action.yml and
 * current, points at a bundle that exists, every input the code reads is declared (and every
 * declared input is read), and the README's tables are the ones the metadata generates.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';

const ACTION_FILES = [
  'action.yml',
  'pre-deploy/action.yml',
  'deploy/action.yml',
  'post-deploy/action.yml',
  'rollback/action.yml'
];

interface Meta {
  name: string;
  description: string;
  branding?: { icon: string; color: string };
  inputs: Record<string, { description: string; required?: boolean; default?: string }>;
  outputs: Record<string, { description: string }>;
  runs: { using: string; main: string; post?: string };
}

const meta = (file: string) => parse(readFileSync(file, 'utf8')) as Meta;

function script(name: string, args: string[] = []): { code: number; out: string } {
  try {
    return {
      code: 0,
      out: execFileSync(process.execPath, [join('scripts', name), ...args], {
        encoding: 'utf8',
        stdio: 'pipe'
      })
    };
  } catch (err) {
    const e = err as { status: number; stderr: string };
    return { code: e.status, out: e.stderr };
  }
}

describe('action metadata', () => {
  test('the sub-actions are generated from action.yml and up to date', () => {
    expect(script('sub-actions.mjs', ['--check'])).toEqual({ code: 0, out: '' });
  });

  test('the README tables are generated from the metadata and up to date', () => {
    const r = script('readme-usage.mjs', ['--check']);
    expect(r).toEqual({ code: 0, out: '' });
    const readme = readFileSync('README.md', 'utf8');
    for (const file of ACTION_FILES)
      for (const input of Object.keys(meta(file).inputs)) expect(readme).toContain(`| \`${input}\``);
  });

  test.each(ACTION_FILES)('%s: node24, a bundle that exists, described, branded', file => {
    const m = meta(file);
    expect(m.runs.using).toBe('node24');
    for (const entry of [m.runs.main, m.runs.post].filter(Boolean) as string[])
      expect(existsSync(join(dirname(file), entry))).toBe(true);
    expect(m.branding).toEqual({ icon: 'shield', color: 'green' });
    for (const [name, spec] of [...Object.entries(m.inputs), ...Object.entries(m.outputs)])
      expect({ name, described: (spec.description ?? '').length > 15 }).toEqual({ name, described: true });
  });

  test('every input the code reads is declared in action.yml, and every declared input is read', () => {
    const sources = ['src/settings/parse.ts', 'src/action.ts', 'src/settings/load.ts']
      .map(f => readFileSync(f, 'utf8'))
      .join('\n');
    const read = new Set(
      [
        ...sources.matchAll(/\b(?:get|getInput|input)\('([a-z-]+)'\)/g),
        ...sources.matchAll(/inputBool\(p, '([a-z-]+)'/g)
      ].map(m => m[1]!)
    );
    const declared = new Set(ACTION_FILES.flatMap(f => Object.keys(meta(f).inputs)));
    expect([...read].filter(n => !declared.has(n)).sort()).toEqual([]);
    expect([...declared].filter(n => !read.has(n)).sort()).toEqual([]);
  });

  test('the outputs each phase sets are the outputs its action.yml declares', () => {
    const code = readFileSync('src/action.ts', 'utf8');
    const set = new Set([...code.matchAll(/setOutput\('([a-z-]+)'/g)].map(m => m[1]!));
    for (const file of ACTION_FILES)
      for (const output of Object.keys(meta(file).outputs))
        expect({ file, output, set: set.has(output) }).toEqual({ file, output, set: true });
  });
});
