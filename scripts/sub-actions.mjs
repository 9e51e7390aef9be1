#!/usr/bin/env node
// Writes pre-deploy/, deploy/, post-deploy/ and rollback/action.yml from the top-level action.yml:
// the inputs they share keep one description, so the four files never drift from it.
// --check: fail when a committed file differs from what this script would write.
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { parse, stringify } from 'yaml';

const top = parse(readFileSync('action.yml', 'utf8'));

/** Inputs every phase takes: where the hosts are, how to reach them, what the record says. */
const COMMON = [
  'config',
  'environment',
  'target-path',
  'strategy',
  'host',
  'host-name',
  'port',
  'user',
  'ssh-key',
  'ssh-passphrase',
  'ssh-password',
  'known-hosts',
  'host-key',
  'insecure-skip-host-key-check',
  'service-manager',
  'service-name',
  'health-url',
  'max-parallel',
  'canary',
  'lock-wait',
  'connect-timeout',
  'reason',
  'comment',
  'environment-url',
  'github-token'
];

const OWN_INPUTS = {
  release: {
    description: 'The release the deploy step switched to: `${{ steps.deploy.outputs.release }}`.',
    required: true
  },
  'previous-release': {
    description:
      "The release to return to on failure: `${{ steps.deploy.outputs.previous-release }}`. Defaults to the one the host's record names.",
    required: false
  },
  to: {
    description:
      '`previous` (the newest good release before the live one) or a release id (`deployguard history` lists them).',
    required: false,
    default: 'previous'
  }
};

const OUT = {
  status: null,
  release: null,
  'previous-release': null,
  'rolled-back': null,
  'log-path': null,
  'environment-url': null,
  reused: null
};

const PHASES = {
  'pre-deploy': {
    description:
      'deployguard pre-deploy: the test command, the gitleaks secret scan (from the last good deploy the hosts recorded) and the health of production. Changes nothing.',
    inputs: [...COMMON, 'artifact', 'test-command', 'scan', 'gitleaks-path', 'gitleaks-config'],
    outputs: {
      status:
        '`passed`, `blocked` (tests, a secret, or unhealthy production) or `failed` (a host could not be read).',
      'sarif-path': top.outputs['sarif-path'].description,
      'last-deployed-commit':
        'The commit of the last good deploy every host recorded (empty on a first deploy).',
      'live-release': 'The release the hosts serve now.',
      'log-path': 'The record of this check (Markdown) as a file.'
    },
    post: false
  },
  deploy: {
    description:
      'deployguard deploy: lock, upload, verify every checksum on the host, stop, switch, start. The health checks and the rollback are post-deploy. A release of this commit still on the hosts is verified and switched to, not uploaded again.',
    inputs: [...COMMON, 'artifact', 'before-switch', 'release-id', 'dry-run', 'github-deployment'],
    outputs: {
      status:
        '`switched` (the new release runs, not yet judged), `rolled-back`, `rollback-failed`, `failed` or `dry-run`.',
      release: 'The release now live: pass it to post-deploy.',
      'previous-release': 'The release it replaced: pass it to post-deploy.',
      reused:
        '`true` when the release was already on the hosts and verified (a re-run): nothing was uploaded.',
      'log-path': OUT['log-path'],
      'rolled-back': top.outputs['rolled-back'].description,
      'environment-url': top.outputs['environment-url'].description
    },
    post: true
  },
  'post-deploy': {
    description:
      'deployguard post-deploy: the service really runs, the health checks pass through the stability window; otherwise roll back and verify. Posts the deployment record.',
    inputs: [...COMMON, 'release', 'previous-release', 'stability-window'],
    outputs: {
      status: '`deployed`, `rolled-back`, `rollback-failed` or `failed`.',
      release: top.outputs.release.description,
      'previous-release': top.outputs['previous-release'].description,
      'rolled-back': top.outputs['rolled-back'].description,
      'log-path': top.outputs['log-path'].description,
      'environment-url': top.outputs['environment-url'].description
    },
    post: true
  },
  rollback: {
    description:
      'deployguard rollback: switch back to a release kept on the hosts (verified against its checksums first), restart, check. Posts the deployment record.',
    inputs: [...COMMON, 'to', 'stability-window'],
    outputs: {
      status:
        '`deployed` (the rollback target is live and healthy), `rolled-back` (it failed and the release before stays), `rollback-failed` or `failed`.',
      release: 'The release rolled back to.',
      'previous-release': 'The release that was live before the rollback.',
      'rolled-back': top.outputs['rolled-back'].description,
      'log-path': top.outputs['log-path'].description,
      'environment-url': top.outputs['environment-url'].description
    },
    post: true
  }
};

function render(name, phase) {
  const inputs = {};
  for (const key of phase.inputs) {
    const spec = top.inputs[key] ?? OWN_INPUTS[key];
    if (!spec) throw new Error(`${name}: no input ${key} in action.yml`);
    inputs[key] = spec;
  }
  const outputs = Object.fromEntries(
    Object.entries(phase.outputs).map(([k, d]) => [k, { description: d ?? top.outputs[k].description }])
  );
  const doc = {
    name: `deployguard ${name}`,
    description: phase.description,
    author: top.author,
    branding: top.branding,
    inputs,
    outputs,
    runs: {
      using: top.runs.using,
      main: `../dist/${name}/index.cjs`,
      ...(phase.post ? { post: '../dist/post/index.cjs', 'post-if': 'always()' } : {})
    }
  };
  return `# Generated from ../action.yml by scripts/sub-actions.mjs: edit those, then run \`npm run actions\`.\n${stringify(doc, { lineWidth: 0 })}`;
}

const check = process.argv.includes('--check');
const stale = [];
for (const [name, phase] of Object.entries(PHASES)) {
  const text = render(name, phase);
  const path = `${name}/action.yml`;
  if (check) {
    if (!existsSync(path) || readFileSync(path, 'utf8') !== text) stale.push(path);
  } else {
    mkdirSync(name, { recursive: true });
    writeFileSync(path, text);
  }
}
if (stale.length) {
  console.error(`out of date: ${stale.join(', ')}; run \`npm run actions\``);
  process.exit(1);
}
