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

const metas = new Map<string, Meta>();
const meta = (file: string) => {
  if (!metas.has(file)) metas.set(file, parse(readFileSync(file, 'utf8')) as Meta);
  return metas.get(file)!;
};

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

/** The Markdown tables in `text`: header cells and body rows, cells trimmed (escaped pipes kept). */
function parseTables(text: string): { head: string[]; rows: string[][] }[] {
  const cells = (line: string) =>
    line
      .trim()
      .replace(/^\||\|$/g, '')
      .split(/(?<!\\)\|/)
      .map(c => c.trim());
  const tables: { head: string[]; rows: string[][] }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i]!.startsWith('|') || !/^\|[\s|:-]+\|$/.test(lines[i + 1]!.trim())) continue;
    const table = { head: cells(lines[i]!), rows: [] as string[][] };
    for (i += 2; i < lines.length && lines[i]!.startsWith('|'); i++) table.rows.push(cells(lines[i]!));
    tables.push(table);
  }
  return tables;
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

  test('the README has one inputs table and one outputs table, with a column per action', () => {
    const readme = readFileSync('README.md', 'utf8');
    const usage = readme.slice(readme.indexOf('<!-- usage:start'), readme.indexOf('<!-- usage:end'));
    const tables = parseTables(usage);
    const inputs = tables.filter(t => t.head[0] === 'input');
    const outputs = tables.filter(t => t.head[0] === 'output');
    expect([inputs.length, outputs.length]).toEqual([1, 1]);
    const columns = ['all', 'pre-deploy', 'deploy', 'post-deploy', 'rollback'];
    expect(inputs[0]!.head).toEqual(['input', ...columns, 'default', 'description']);
    expect(outputs[0]!.head).toEqual(['output', ...columns, 'description']);
    for (const [table, kind] of [
      [inputs[0]!, 'inputs'],
      [outputs[0]!, 'outputs']
    ] as const) {
      const declared = new Set(ACTION_FILES.flatMap(f => Object.keys(meta(f)[kind])));
      const listed = table.rows.map(r => r[0]!.replace(/`/g, ''));
      expect(listed.sort()).toEqual([...declared].sort());
      // Each mark says exactly what that action's metadata says.
      for (const row of table.rows) {
        const name = row[0]!.replace(/`/g, '');
        ACTION_FILES.forEach((file, i) => {
          const spec = meta(file)[kind][name] as { required?: boolean; default?: string } | undefined;
          const want = !spec ? '' : spec.required && spec.default === undefined ? 'required' : '✓';
          expect({ name, file, mark: row[i + 1] }).toEqual({ name, file, mark: want });
        });
      }
    }
  });

  test('the README has a table of contents that links every section, and every link lands', () => {
    const readme = readFileSync('README.md', 'utf8');
    const prose = readme.replace(/^```[\s\S]*?^```/gm, '');
    const slug = (h: string) =>
      h
        .toLowerCase()
        .replace(/[^\w\s-]/g, '')
        .trim()
        .replace(/\s/g, '-');
    const headings = [...prose.matchAll(/^(#{2,3}) (.+)$/gm)].map(m => ({
      level: m[1]!.length,
      id: slug(m[2]!)
    }));
    const contents = prose.slice(
      prose.indexOf('## Contents'),
      prose.indexOf('\n## ', prose.indexOf('## Contents') + 1)
    );
    const listed = [...contents.matchAll(/\]\(#([\w-]+)\)/g)].map(m => m[1]!);
    const sections = headings.filter(h => h.level === 2 && h.id !== 'contents').map(h => h.id);
    expect(sections.filter(id => !listed.includes(id))).toEqual([]);
    const ids = new Set(headings.map(h => h.id));
    const links = [...prose.matchAll(/\]\(#([\w-]+)\)/g)].map(m => m[1]!);
    expect(links.filter(id => !ids.has(id))).toEqual([]);
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
