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

/** Does `uses` call the reusable deploy workflow (deployguard's own, or a copy kept as deployguard.yml)? */
export function callsDeployWorkflow(uses: string): boolean {
  return (
    /^org\/deployguard\/\.github\/workflows\/deploy\.yml@/.test(uses) ||
    uses === './.github/workflows/deployguard.yml' ||
    uses === './.github/workflows/deploy.yml'
  );
}

/**
 * Jobs of `wf` that call the reusable deploy workflow pass only inputs and secrets it declares
 * (`secrets: inherit` passes all), and every input it requires.
 */
export function deployCallProblems(wf: Workflow, called: Workflow): string[] {
  const call = isDict(called.on) && isDict(called.on.workflow_call) ? called.on.workflow_call : {};
  const inputs = isDict(call.inputs) ? call.inputs : {};
  const secrets = isDict(call.secrets) ? call.secrets : {};
  const problems: string[] = [];
  for (const [id, job] of Object.entries(wf.jobs ?? {})) {
    const j = job as Dict;
    if (typeof j.uses !== 'string' || !callsDeployWorkflow(j.uses)) continue;
    const given = isDict(j.with) ? j.with : {};
    for (const name of Object.keys(given))
      if (!(name in inputs)) problems.push(`job ${id}: input ${name} is not an input of the deploy workflow`);
    for (const [name, spec] of Object.entries(inputs))
      if (isDict(spec) && spec.required === true && !(name in given))
        problems.push(`job ${id}: required input ${name} is missing`);
    if (j.secrets !== undefined && j.secrets !== 'inherit') {
      for (const name of Object.keys(isDict(j.secrets) ? j.secrets : {}))
        if (!(name in secrets))
          problems.push(`job ${id}: secret ${name} is not a secret of the deploy workflow`);
    }
  }
  return problems;
}
