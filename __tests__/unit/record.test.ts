/**
 * The deployment record, rendered from fixed results: one snapshot per outcome, plus assertions
 * on the parts a broken renderer would get wrong (links, the rollback plan, the timeline, what is
 * defused or escaped).
 */
import type { CheckResult } from '../../src/checks/types.js';
import type { DeployResult, HostReport, StepRecord } from '../../src/execute/result.js';
import type { Changes } from '../../src/report/changes.js';
import type { Finding } from '../../src/scan/gitleaks.js';
import { commentTargets } from '../../src/report/deliver.js';
import { COMMENT_LIMIT, fitComment, recordMarker } from '../../src/report/publish.js';
import { renderRecord, timeline, type RecordInput } from '../../src/report/record.js';
import type { RunContext } from '../../src/settings/types.js';

const T0 = Date.UTC(2026, 10, 26, 12, 0, 0);
const SHA = 'a'.repeat(39) + '1';
const PREV_SHA = 'b'.repeat(39) + '2';

const run: RunContext = {
  runId: '4242',
  commit: SHA,
  ref: 'refs/heads/main',
  actor: 'octocat',
  runUrl: 'https://github.com/acme/shop/actions/runs/4242',
  repository: 'acme/shop',
  serverUrl: 'https://github.com',
  apiUrl: 'https://api.github.com'
};

function check(name: string, ok: boolean, ms: number, reason: string, host?: string): CheckResult {
  return { name, ok, durationMs: ms, reason, attempts: ok ? 1 : 3, stage: 'post', ...(host ? { host } : {}) };
}

let clock = T0;
function step(id: string, title: string, ms: number, ok = true, undo = false, detail?: string): StepRecord {
  const at = clock;
  clock += ms;
  return { id, title, ms, ok, undo, at, ...(detail ? { detail } : {}) };
}

function host(name: string, outcome: HostReport['outcome'], over: Partial<HostReport> = {}): HostReport {
  return {
    name,
    outcome,
    previousRelease: 'r1',
    steps: [],
    checks: [],
    rollbackChecks: [],
    previousDeploy: {
      release: 'r1',
      commit: PREV_SHA,
      runUrl: 'https://github.com/acme/shop/actions/runs/4100',
      time: '2026-11-20T09:00:00.000Z'
    },
    ...over
  };
}

function deploySteps(fail?: 'checks'): StepRecord[] {
  clock = T0 + 1500;
  const s = [
    step('lock', 'Lock the host', 80),
    step('probe', 'Read the host state', 40),
    step('stage', 'Prepare a staging directory', 30),
    step('upload', 'Upload the artifact', 900),
    step('verify', 'Verify the SHA-256 of every file on the host', 120),
    step('promote', 'Move the verified tree to releases/r2', 20),
    step('stop', 'Stop the service', 300),
    step('switch', 'Switch current to r2', 15),
    step('start', 'Start the service', 200),
    step('running', 'Service is active and its main PID alive', 2000)
  ];
  if (fail === 'checks') {
    s.push(
      step(
        'checks',
        'Post-deploy health checks',
        3000,
        false,
        false,
        'web-1: 1/2 health checks failed: api: HTTP 500'
      )
    );
    s.push(step('stop-new', 'Stop the new release', 250, true, true));
    s.push(step('switch-back', 'Switch current back to r1', 10, true, true));
    s.push(step('restart-old', 'Start the service again', 200, true, true));
    s.push(step('verify-rollback', 'Verify the restored release', 1500, true, true));
  } else {
    s.push(step('checks', 'Post-deploy health checks', 3000));
    s.push(step('mark-good', 'Record release r2 as good', 20));
  }
  return s;
}

const finding = (over: Partial<Finding>): Finding => ({
  rule: 'github-pat',
  description: 'GitHub Personal Access Token',
  file: 'config/prod.env',
  line: 12,
  endLine: 12,
  fingerprint: 'x',
  source: 'commits',
  redacted: 'token=REDACTED',
  ...over
});
const FINDINGS: Finding[] = [
  finding({ commit: 'c'.repeat(40), author: 'Ada', date: '2026-11-25T10:00:00Z' }),
  finding({ rule: 'aws-access-token', file: 'js/app.js', line: 3, endLine: 3, source: 'artifact' })
];

const changes: Changes = {
  base: PREV_SHA,
  head: SHA,
  total: 3,
  compareUrl: `https://github.com/acme/shop/compare/${PREV_SHA}...${SHA}`,
  commits: [
    { sha: 'c'.repeat(40), subject: 'Fix checkout | totals', author: 'Ada' },
    { sha: 'd'.repeat(40), subject: 'Thanks @someone for <b>this</b>', author: 'Bob' },
    { sha: SHA, subject: 'Bump deps', author: 'Cy' }
  ]
};

function result(
  status: DeployResult['status'],
  hosts: HostReport[],
  over: Partial<DeployResult> = {}
): DeployResult {
  return {
    status,
    releaseId: 'r2',
    previousRelease: 'r1',
    rolledBack: status === 'rolled-back',
    hosts,
    preChecks: [check('api', true, 45, 'HTTP 200'), check('db', true, 3, 'connected')].map(c => ({
      ...c,
      stage: 'pre' as const
    })),
    startedAt: new Date(T0),
    finishedAt: new Date(T0 + 12_000),
    phases: [
      { name: 'Connect', start: T0 + 100, ms: 400, ok: true },
      { name: 'Pre-deploy checks', start: T0 + 700, ms: 300, ok: true },
      { name: 'Secret scan', start: T0 + 1000, ms: 450, ok: true }
    ],
    lastDeployedCommit: PREV_SHA,
    commit: SHA,
    reused: false,
    ...over
  };
}

function input(r: DeployResult, over: Partial<RecordInput> = {}): RecordInput {
  return {
    environment: 'production',
    result: r,
    run,
    environmentUrl: 'https://shop.example.com',
    why: { text: 'Faster checkout', source: 'pull-request' },
    pr: { number: 17, title: 'Faster checkout', url: 'https://github.com/acme/shop/pull/17' },
    changes,
    configPath: 'deploy/deployguard.yml',
    ...over
  };
}

const cases: Record<string, () => RecordInput> = {
  deployed: () =>
    input(
      result('deployed', [
        host('web-1', 'deployed', {
          steps: deploySteps(),
          checks: [check('api', true, 40, 'HTTP 200 in 40 ms'), check('db', true, 2, 'connected')]
        })
      ])
    ),
  'rolled-back': () =>
    input(
      result(
        'rolled-back',
        [
          host('web-1', 'rolled-back', {
            steps: deploySteps('checks'),
            checks: [check('api', false, 3000, 'HTTP 500 (expected 200)'), check('db', true, 2, 'connected')],
            rollbackChecks: [check('api', true, 30, 'HTTP 200'), check('db', true, 2, 'connected')],
            error: 'web-1: 1/2 health checks failed: api: HTTP 500',
            logTail:
              '2026-11-26T12:00:08Z boom: TypeError: cannot read ```x```\n2026-11-26T12:00:09Z exiting',
            keptAt: '/srv/shop/releases/r2'
          })
        ],
        { error: 'web-1: 1/2 health checks failed: api: HTTP 500' }
      )
    ),
  'rollback-failed': () =>
    input(
      result(
        'rollback-failed',
        [
          host('web-1', 'rollback-failed', {
            steps: deploySteps('checks'),
            checks: [check('api', false, 3000, 'HTTP 500')],
            error: 'web-1: 1/1 health checks failed: api: HTTP 500',
            recovery:
              "Recover web-1 by hand:\n  ssh -p 22 deploy@203.0.113.10\n  # Start the service again\n  sh -c 'set -eu\nsystemctl start -- shop'",
            keptAt: '/srv/shop/releases/r2'
          })
        ],
        { error: 'web-1: 1/1 health checks failed: api: HTTP 500' }
      )
    ),
  failed: () => {
    clock = T0 + 1500;
    return input(
      result(
        'failed',
        [
          host('web-1', 'failed', {
            steps: [
              step('lock', 'Lock the host', 50),
              step('upload', 'Upload the artifact', 300, false, false, 'upload failed (exit 2): disk full')
            ],
            error: 'web-1: upload failed (exit 2): disk full'
          })
        ],
        { error: 'web-1: upload failed (exit 2): disk full' }
      )
    );
  },
  'failed-live': () =>
    input(
      result(
        'failed-live',
        [
          host('web-1', 'failed-live', {
            steps: deploySteps(),
            checks: [check('api', false, 3000, 'HTTP 502')],
            error: 'api: HTTP 502',
            keptAt: '/srv/shop/releases/r2'
          })
        ],
        { error: 'web-1: api: HTTP 502' }
      )
    ),
  'deployed-reused': () =>
    input(
      result(
        'deployed',
        [host('web-1', 'deployed', { steps: deploySteps(), checks: [check('api', true, 40, 'HTTP 200')] })],
        { reused: true }
      )
    ),
  switched: () =>
    input(result('switched', [host('web-1', 'switched', { steps: deploySteps().slice(0, 9) })]), {
      pr: undefined,
      why: { text: 'Nightly build\n\nWith a body line', source: 'commit' }
    }),
  checked: () =>
    input(result('checked', [host('web-1', 'not-started')]), {
      changes: {
        head: SHA,
        commits: [],
        total: 0,
        note: 'First deploy: no earlier deployment is recorded on the hosts.'
      }
    }),
  'blocked-secrets': () =>
    input(
      result('blocked', [host('web-1', 'not-started')], {
        error:
          'gitleaks found 2 secrets; nothing was deployed:\n  - github-pat at config/prod.env:12 in cccccccccccc\n  - aws-access-token at artifact: js/app.js:3'
      }),
      { blockedBy: 'secrets', findings: FINDINGS, artifactRoot: 'build/' }
    ),
  'blocked-health': () =>
    input(
      result('blocked', [host('web-1', 'not-started')], {
        preChecks: [{ ...check('api', false, 5000, 'connection refused'), stage: 'pre' }],
        error: 'Deploy blocked: production is already unhealthy'
      }),
      { blockedBy: 'health' }
    ),
  'blocked-tests': () =>
    input(
      {
        status: 'blocked',
        releaseId: 'r2',
        rolledBack: false,
        hosts: [],
        preChecks: [],
        error: 'the test command failed (exit 1):\nFAIL src/cart.test.js',
        startedAt: new Date(T0),
        finishedAt: new Date(T0 + 9000),
        phases: [],
        commit: SHA,
        reused: false
      },
      {
        blockedBy: 'tests',
        extraPhases: [{ name: 'Tests', start: T0, ms: 9000, ok: false }],
        changes: undefined
      }
    )
};

describe('the deployment record', () => {
  for (const [name, make] of Object.entries(cases)) {
    test(`${name}: snapshot`, () => {
      expect(renderRecord(make())).toMatchSnapshot();
    });
  }

  test('starts with the marker of its environment, so the comment is found again', () => {
    const md = renderRecord(cases.deployed!());
    expect(md.split('\n')[0]).toBe(recordMarker('production'));
    expect(recordMarker('prod --> x')).not.toContain('-->  x');
    expect(recordMarker('prod --> x').match(/-->/g)).toHaveLength(1);
  });

  test('links the commit, the compare view and the run; names hosts by alias', () => {
    const md = renderRecord(cases.deployed!());
    expect(md).toContain(`[\`aaaaaaa\`](https://github.com/acme/shop/commit/${SHA})`);
    expect(md).toContain(`([compare](https://github.com/acme/shop/compare/${PREV_SHA}...${SHA}))`);
    expect(md).toContain('[4242](https://github.com/acme/shop/actions/runs/4242)');
    expect(md).toContain('| web-1 | ✅ deployed | `r2` |');
    expect(md).not.toContain('***');
  });

  test('the rollback plan gives the run that deployed the previous release and the CLI command', () => {
    const md = renderRecord(cases.deployed!());
    expect(md).toContain('(https://github.com/acme/shop/actions/runs/4100) → **Re-run all jobs**');
    expect(md).toContain('`deployguard rollback --config deploy/deployguard.yml --to r1`');
  });

  test('the health table pairs each check before and after, with the rollback column when one ran', () => {
    const ok = renderRecord(cases.deployed!());
    expect(ok).toContain('| api | ✅ pass (45 ms) | ✅ pass (40 ms) | HTTP 200 in 40 ms |');
    expect(ok).not.toContain('after rollback');
    const rb = renderRecord(cases['rolled-back']!());
    expect(rb).toContain(
      '| api | ✅ pass (45 ms) | ❌ fail (3.0 s) | ✅ pass (30 ms) | HTTP 500 (expected 200) |'
    );
  });

  test('a failed release says how to debug it: failing checks, last log lines, where it is kept', () => {
    const md = renderRecord(cases['rolled-back']!());
    expect(md).toContain('- check **api** failed: HTTP 500 (expected 200)');
    expect(md).toContain('- the failed release is kept on the host at `/srv/shop/releases/r2`');
    // The log holds a triple backtick: the fence around it must be longer.
    expect(md).toContain('````\n2026-11-26T12:00:08Z boom');
  });

  test('commit text cannot ping people, open HTML or break the table', () => {
    const md = renderRecord(cases.deployed!());
    expect(md).toContain('Thanks @\u200bsomeone for &lt;b>this&lt;/b>');
    expect(md).toContain('Fix checkout \\| totals');
  });

  test('the timeline merges steps into phases per host, folded into a <details> with the steps of a failed host', () => {
    const bars = timeline(cases['rolled-back']!());
    const web = bars.filter(b => b.section === 'web-1').map(b => `${b.name}:${b.ok}`);
    expect(web).toEqual([
      'Lock and read:true',
      'Upload:true',
      'Verify checksums:true',
      'Prepare:true',
      'Stop, switch, start:true',
      'Running check:true',
      'Health and stability:false',
      'Rollback:true'
    ]);
    const md = renderRecord(cases['rolled-back']!());
    const folded = md.slice(md.indexOf('<details>'), md.indexOf('</details>'));
    expect(md.indexOf('<details>')).toBeGreaterThan(md.indexOf('**Rollback plan:**'));
    expect(folded).toContain('<summary>Timeline and steps (12.0 s in all)</summary>');
    expect(folded).toContain(
      '| Gates | +100 ms | Connect 400 ms · Pre-deploy checks 300 ms · Secret scan 450 ms |'
    );
    expect(folded).toContain('❌ Health and stability 3.0 s · Rollback 2.0 s |');
    expect(folded).toContain('| ↩️ Switch current back to r1 | ✅ | 10 ms |');
    // A healthy host's steps are not listed one by one: its phases say enough.
    expect(renderRecord(cases.deployed!())).not.toContain('| Lock the host |');
  });

  test('a healthy deploy fits in 40 lines, timeline included', () => {
    const md = renderRecord(cases.deployed!());
    expect(md.trimEnd().split('\n').length).toBeLessThanOrEqual(40);
    // More commits than shown: the list stops at five, and the compare link has the rest.
    const many: Changes = {
      ...changes,
      total: 30,
      commits: Array.from({ length: 30 }, (_, i) => ({ sha: SHA, subject: `change ${i}`, author: 'Ada' }))
    };
    const long = renderRecord({ ...cases.deployed!(), changes: many });
    expect(long).toContain(`([compare](${changes.compareUrl})), the 5 newest\n`);
    expect(long).not.toContain('change 5 (Ada)');
    expect(long.trimEnd().split('\n').length).toBeLessThanOrEqual(40);
  });

  test('three healthy hosts: one health row per check, and still about 40 lines', () => {
    const hosts = ['web-1', 'web-2', 'web-3'].map((name, i) =>
      host(name, 'deployed', {
        steps: deploySteps(),
        checks: [check('api', true, 40 + i, `HTTP 200 in ${40 + i} ms`), check('db', true, 2, 'connected')]
      })
    );
    const md = renderRecord(input(result('deployed', hosts)));
    expect(md).toContain(
      '| api | ✅ pass (45 ms) | ✅ pass after each of 3 hosts (slowest 42 ms) | HTTP 200 in 42 ms |'
    );
    expect(md).not.toContain('(after web-');
    expect(md.trimEnd().split('\n').length).toBeLessThanOrEqual(42);
    // A check that failed after one host keeps its rows per host.
    const failing = hosts.map((h, i) => ({
      ...h,
      checks: [check('api', i !== 1, 40, i === 1 ? 'HTTP 500' : 'HTTP 200')]
    }));
    const bad = renderRecord(input(result('failed-live', failing)));
    expect(bad).toContain('| api (after web-2) | ✅ pass (45 ms) | ❌ fail (40 ms) | HTTP 500 |');
  });

  test('each secret finding says its rule, file, line and commit (or that it is in the artifact)', () => {
    const md = renderRecord(cases['blocked-secrets']!());
    expect(md).toContain('| rule | file | line | commit |');
    expect(md).toContain(
      `| github-pat | \`config/prod.env\` | 12 | [\`ccccccc\`](https://github.com/acme/shop/commit/${'c'.repeat(40)}) |`
    );
    expect(md).toContain('| aws-access-token | `build/js/app.js` | 3 | (the artifact, not a commit) |');
    // The error's own list of findings is not repeated under "What went wrong".
    expect(md).not.toContain('- github-pat at config/prod.env:12');
    expect(md).not.toContain('REDACTED');
  });

  test('each status says how it ended, including what blocked a blocked deploy', () => {
    expect(renderRecord(cases['blocked-secrets']!())).toContain(
      'the secret scan found secrets or could not run (2 findings)'
    );
    expect(renderRecord(cases['blocked-health']!())).toContain('production was already unhealthy');
    expect(renderRecord(cases['blocked-tests']!())).toContain('the test command failed');
    expect(renderRecord(cases['rollback-failed']!())).toContain(
      '**The automatic rollback did not finish. Recover by hand:**'
    );
    expect(renderRecord(cases['failed']!())).toContain('nothing to do: `r1` still serves');
    expect(renderRecord(cases['deployed-reused']!())).toContain(
      'already on the hosts and verified: only switched'
    );
    expect(renderRecord(cases['switched']!())).toContain('the post-deploy checks decide whether it stays');
    expect(renderRecord(cases['switched']!())).toContain(
      '**Why** (commit message): Nightly build\n\n> With a body line\n'
    );
    expect(renderRecord(cases['checked']!())).toContain('the pre-deploy gates passed; nothing was changed');
    const tests = renderRecord(cases['blocked-tests']!());
    expect(tests).toContain(
      '| **Release** | `r2` (previous: not read (no host was contacted)) · [https://shop.example.com](https://shop.example.com) |'
    );
    expect(tests).toContain('nothing to do: no host was contacted');
    expect(tests).not.toContain('first deploy');
  });
});

describe('where the record goes', () => {
  const pr = { number: 5, title: 't', url: 'u' };
  test.each([
    ['auto', true, ['pr']],
    ['auto', false, ['commit']],
    ['pr', false, []],
    ['pr', true, ['pr']],
    ['commit', true, ['commit']],
    ['both', true, ['pr', 'commit']],
    ['none', true, []]
  ] as const)('comment: %s with a PR: %s', (mode, hasPr, kinds) => {
    expect(commentTargets(mode, hasPr ? pr : undefined, SHA).map(t => t.kind)).toEqual(kinds);
  });

  test('no commit comment for a commit that is not a full sha (a local run)', () => {
    expect(commentTargets('commit', undefined, 'unknown')).toEqual([]);
  });

  test('a record too long for a comment is cut at a section and says where the whole is', () => {
    const long = `## head\n${'x'.repeat(40_000)}\n### Hosts\n${'y'.repeat(40_000)}\n`;
    const cut = fitComment(long, 'the job summary');
    expect(cut.length).toBeLessThanOrEqual(COMMENT_LIMIT);
    expect(cut).not.toContain('### Hosts');
    expect(cut).toMatch(/the whole record is in the job summary/);
    expect(fitComment('short', 'x')).toBe('short');
  });
});
