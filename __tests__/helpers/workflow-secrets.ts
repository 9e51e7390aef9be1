/**
 * Where a workflow reads its secrets. The rule the deploy workflow's safety rests on: a secret is
 * read only by a job that runs in a GitHub environment, because only such a job waits for the
 * environment's reviewers, and only such a job can see the environment's own secrets. A job
 * without `environment:` runs before anyone approved anything, so it must read no secret at all.
 */
import type { Workflow } from './workflows.js';

type Dict = Record<string, unknown>;

const isDict = (v: unknown): v is Dict => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every string value inside a YAML value (expressions sit in values only). */
function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) strings(x, out);
  else if (isDict(v)) for (const x of Object.values(v)) strings(x, out);
  return out;
}

/**
 * The secrets an expression text reads, by name: `secrets.X`, `secrets['X']`, and `*` for the
 * whole context (`toJSON(secrets)`, `secrets[matrix.k]`, a bare `secrets`). Only text inside
 * `${{ }}` counts; GITHUB_TOKEN is the run's own token, not a deploy secret.
 */
export function secretsIn(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/\$\{\{([\s\S]*?)\}\}/g)) {
    const inner = m[1]!;
    for (const r of inner.matchAll(
      /\bsecrets\b(?:\s*\.\s*([\w-]+)|\s*\[\s*'([^']*)'\s*\]|\s*\[\s*"([^"]*)"\s*\])?/g
    )) {
      const name = r[1] ?? r[2] ?? r[3] ?? '*';
      if (name.toUpperCase() !== 'GITHUB_TOKEN') found.push(name);
    }
  }
  return found;
}

/**
 * Problems with where `wf` reads secrets: the workflow-level `env:` (every job sees it), and any
 * job without `environment:` that runs steps and reads a secret. A job that calls a reusable
 * workflow passes secrets through without reading them; the called file is checked on its own.
 */
export function secretScopeProblems(wf: Workflow): string[] {
  const problems: string[] = [];
  const top = (wf as Dict).env;
  for (const name of new Set(secretsIn(strings(top).join('\n'))))
    problems.push(`the workflow's env reads secrets.${name}, which every job then sees`);
  for (const [id, job] of Object.entries(wf.jobs ?? {})) {
    const j = job as Dict;
    if (typeof j.uses === 'string') continue;
    if (j.environment !== undefined) continue;
    for (const name of new Set(secretsIn(strings(j).join('\n'))))
      problems.push(`job ${id} reads secrets.${name} but runs in no environment, so before any approval`);
  }
  return problems;
}

/** The jobs that read the secret `name` (case-insensitive, as GitHub compares secret names). */
export function jobsReading(wf: Workflow, name: string): string[] {
  return Object.entries(wf.jobs ?? {})
    .filter(([, job]) => secretsIn(strings(job).join('\n')).some(n => n.toUpperCase() === name.toUpperCase()))
    .map(([id]) => id);
}
