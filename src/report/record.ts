import type { CheckResult } from '../checks/types.js';
import type { DeployResult, HostReport, PhaseRecord, StepRecord } from '../execute/result.js';
import type { Finding } from '../scan/gitleaks.js';
import type { RunContext } from '../settings/types.js';
import type { Changes } from './changes.js';
import { recordMarker, type PullRef } from './publish.js';

/**
 * The deployment record: what went out, why, what changed, health before and after, how to go
 * back, how long each phase took, and how it ended. A pure function of the deploy's result, so
 * each outcome has a snapshot test, and the same text goes to the PR or commit comment, the job
 * summary and the `log-path` file.
 *
 * Short on purpose (about 40 lines for a healthy deploy): people read it in a PR thread. Tables
 * only where they compare (health, hosts, secrets); the timeline and every host step are folded
 * into a `<details>` that opens on demand.
 */

export type BlockedBy = 'tests' | 'secrets' | 'health';

/** What stopped a blocked deploy: the test command, the secret scan, or unhealthy production. */
export function blockedReason(result: DeployResult, testsFailed = false): BlockedBy | undefined {
  if (result.status !== 'blocked') return undefined;
  if (testsFailed) return 'tests';
  return result.blockedBy !== undefined ? 'secrets' : 'health';
}

export interface Why {
  readonly text: string;
  readonly source: 'reason' | 'pull-request' | 'commit';
}

export interface RecordInput {
  readonly environment: string;
  readonly result: DeployResult;
  readonly run: RunContext;
  readonly environmentUrl?: string;
  readonly why?: Why;
  readonly pr?: PullRef;
  readonly changes?: Changes;
  /** What stopped a `blocked` deploy. */
  readonly blockedBy?: BlockedBy;
  /** Secrets the scan found: each is listed by rule, file, line and commit (never the secret). */
  readonly findings?: readonly Finding[];
  /** Where artifact findings' files live, relative to the repository (scan/pre-deploy.ts). */
  readonly artifactRoot?: string;
  /** Phases timed outside the executor (the test command). */
  readonly extraPhases?: readonly PhaseRecord[];
  /** For the CLI rollback command. */
  readonly configPath?: string;
}

const HEADLINE: Record<DeployResult['status'], string> = {
  deployed: '✅ Deployed',
  switched: '🔀 Switched (not verified yet)',
  checked: '🔎 Pre-deploy checks passed',
  'rolled-back': '↩️ Rolled back',
  'rollback-failed': '🔥 Rollback FAILED',
  failed: '❌ Failed (nothing changed)',
  'failed-live': '❌ Failed, and the failed release is live',
  blocked: '⛔ Blocked before the deploy'
};

/** A failed first deploy was not rolled back to anything: its headline says so. */
function headline(r: DeployResult): string {
  if (r.status === 'rolled-back' && rolledBackHosts(r).restored.length === 0)
    return '↩️ Taken down (nothing is live)';
  return HEADLINE[r.status];
}

const BLOCKED_TEXT: Record<BlockedBy, string> = {
  tests: 'the test command failed',
  secrets: 'the secret scan found secrets or could not run',
  health: 'production was already unhealthy'
};

function statusText(input: RecordInput): string {
  const r = input.result;
  switch (r.status) {
    case 'deployed':
      return `✅ deployed: every host serves \`${r.releaseId}\`, verified healthy${r.reused ? ' (the release was already on the hosts and verified: only switched)' : ''}`;
    case 'checked':
      return '🔎 the pre-deploy gates passed; nothing was changed';
    case 'switched':
      return `🔀 switched: every host runs \`${r.releaseId}\`; the post-deploy checks decide whether it stays`;
    case 'rolled-back': {
      // A host with no release before this one had the failed release taken down: nothing
      // serves there, and the record must not say that something earlier does.
      const { restored, takenDown } = rolledBackHosts(r);
      if (restored.length === 0)
        return '↩️ taken down: the release failed and there was no release before it, so nothing is live now';
      const back = `the previous release${r.previousRelease ? ` \`${r.previousRelease}\`` : ''} serves again`;
      if (takenDown.length === 0) return `↩️ rolled back: the release failed, ${back} and passed its checks`;
      return `↩️ rolled back: the release failed; ${back} on ${names(restored)} and passed its checks; ${names(takenDown)} had no release before: taken down, nothing is live there`;
    }
    case 'rollback-failed':
      return '🔥 the release failed and the ROLLBACK FAILED: a host needs a person now (see Rollback plan)';
    case 'failed':
      return '❌ failed before the service was touched: nothing changed';
    case 'failed-live':
      return '❌ failed, and rollback is off: the failed release is live';
    case 'blocked':
      return `⛔ blocked before the deploy, nothing changed: ${input.blockedBy ? BLOCKED_TEXT[input.blockedBy] : 'a pre-deploy gate failed'}${input.blockedBy === 'secrets' && input.findings?.length ? ` (${input.findings.length} finding${input.findings.length === 1 ? '' : 's'})` : ''}`;
  }
}

/** Table cells hold one line, no pipes. */
export function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ').trim();
}

/** Text from commits and PRs must not ping people or open HTML: @names and `<` are defused. */
function inert(text: string): string {
  return text.replace(/@(?=[A-Za-z0-9_-])/g, '@\u200b').replace(/</g, '&lt;');
}

function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

function fence(text: string, lang = ''): string[] {
  // A fence longer than any backtick run inside, so log lines cannot close it.
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map(m => m[0].length));
  const f = '`'.repeat(longest + 1);
  return [`${f}${lang}`, text.trimEnd(), f];
}

function shortSha(sha: string): string {
  return /^[0-9a-f]{40}$/.test(sha) ? sha.slice(0, 7) : sha;
}

function commitLink(run: RunContext, sha: string): string {
  return run.repository && /^[0-9a-f]{40}$/.test(sha)
    ? `[\`${shortSha(sha)}\`](${run.serverUrl}/${run.repository}/commit/${sha})`
    : `\`${shortSha(sha)}\``;
}

/** Stopped before any host was contacted (the test command): nothing about the hosts is known. */
function untouched(r: DeployResult): boolean {
  return r.hosts.length === 0;
}

/** Hosts rolled back to a release they had before, and hosts whose failed first release was taken down. */
function rolledBackHosts(r: DeployResult): { restored: HostReport[]; takenDown: HostReport[] } {
  const back = r.hosts.filter(h => h.outcome === 'rolled-back');
  return { restored: back.filter(h => h.previousRelease), takenDown: back.filter(h => !h.previousRelease) };
}

function names(hosts: readonly HostReport[]): string {
  return hosts.map(h => cell(h.name)).join(', ');
}

/** The host's state was read (its probe step ran): what it reported live is known. */
function wasRead(h: HostReport): boolean {
  return h.steps.some(s => s.id === 'probe' && s.ok);
}

/**
 * What served before this run, from what the hosts reported: the release the deploy replaced,
 * else the release \`current\` named when the host was read, else the release the host's record
 * says was deployed last. \`none\` only when a host was read and reported nothing live;
 * \`unread\` when no host was read at all.
 */
export function liveBefore(r: DeployResult): { kind: 'release'; id: string } | { kind: 'none' | 'unread' } {
  if (r.previousRelease) return { kind: 'release', id: r.previousRelease };
  for (const h of r.hosts) {
    const id = h.previousRelease ?? h.liveBefore ?? h.previousDeploy?.release;
    if (id) return { kind: 'release', id };
  }
  return r.hosts.some(wasRead) ? { kind: 'none' } : { kind: 'unread' };
}

function header(input: RecordInput): string[] {
  const { result: r, run } = input;
  const ref = run.ref.replace(/^refs\/(heads|tags)\//, '');
  const secs = r.finishedAt.getTime() - r.startedAt.getTime();
  const before = liveBefore(r);
  const previous =
    before.kind === 'release'
      ? `previous: \`${before.id}\``
      : before.kind === 'none'
        ? 'first deploy'
        : untouched(r)
          ? 'previous: not read (no host was contacted)'
          : 'previous: not read (no host was read)';
  const rows: [string, string][] = [
    // The environment is in the heading; its URL goes with the release it now serves.
    [
      'Release',
      `${r.releaseId ? `\`${r.releaseId}\`` : 'none: no release to go back to was found'} (${previous})${input.environmentUrl ? ` · [${cell(input.environmentUrl)}](${input.environmentUrl})` : ''}`
    ],
    [
      'Commit',
      `${commitLink(run, run.commit)} on \`${cell(ref)}\` by ${cell(run.actor)}${run.runUrl ? ` · run [${run.runId}](${run.runUrl})` : ''}`
    ],
    ['Started', `${r.startedAt.toISOString()} · took ${duration(secs)}`]
  ];
  return [
    `## ${headline(r)}: ${cell(input.environment)}${r.releaseId ? ` \`${r.releaseId}\`` : ''}`,
    '',
    `| **Status** | ${statusText(input)} |`,
    '| --- | --- |',
    ...rows.map(([k, v]) => `| **${k}** | ${v} |`),
    ''
  ];
}

function whySection(input: RecordInput): string[] {
  if (input.pr)
    return [
      `**Why:** Pull request [#${input.pr.number}](${input.pr.url}): ${inert(cell(input.pr.title))}`,
      ''
    ];
  if (input.why) {
    const [first = '', ...rest] = input.why.text.trim().split('\n');
    const from = input.why.source === 'reason' ? 'reason given' : 'commit message';
    // The first line inline; a body (a commit message's) quoted below it, ten lines at most.
    const body = rest.join('\n').trim() ? rest.join('\n').trim().split('\n').slice(0, 9) : [];
    return [
      `**Why** (${from}): ${inert(cell(first))}`,
      ...(body.length ? ['', ...body.map(l => `> ${inert(l)}`)] : []),
      ''
    ];
  }
  return ['**Why:** _no reason was given (the `reason` input, or `--reason` on the command line)._', ''];
}

/** Commits listed in the record; the compare link has the rest. */
const COMMITS_SHOWN = 5;

function changesSection(input: RecordInput): string[] {
  const c = input.changes;
  if (!c) return [];
  const lines: string[] = [];
  if (c.commits.length) {
    const shown = c.commits.slice(0, COMMITS_SHOWN);
    const newest = c.total > shown.length ? `, the ${shown.length} newest` : '';
    lines.push(
      `**Changes:** ${c.total} commit${c.total === 1 ? '' : 's'}${c.base ? ` since \`${shortSha(c.base)}\`` : ''}${c.compareUrl ? ` ([compare](${c.compareUrl}))` : ''}${newest}${c.note ? `. _${c.note}_` : ''}`
    );
    for (const k of shown)
      lines.push(`- ${commitLink(input.run, k.sha)} ${inert(cell(k.subject))} (${inert(cell(k.author))})`);
  } else if (c.note) {
    lines.push(
      `**Changes:** _${c.note}_${c.compareUrl && !c.note.startsWith('The same') ? ` ([compare](${c.compareUrl}))` : ''}`
    );
  } else if (c.compareUrl) lines.push(`**Changes:** [compare](${c.compareUrl})`);
  else return [];
  lines.push('');
  return lines;
}

/** The secrets the scan found: rule, file, line and commit of each; never the secret itself. */
function findingsSection(input: RecordInput): string[] {
  const found = input.findings ?? [];
  if (found.length === 0) return [];
  const root = (input.artifactRoot ?? '.').replace(/\/+$/, '');
  const shown = found.slice(0, 20);
  const lines = [
    `### Secrets found: ${found.length}`,
    '',
    '| rule | file | line | commit |',
    '| --- | --- | --- | --- |',
    ...shown.map(f => {
      const file = f.source === 'artifact' && root !== '.' ? `${root}/${f.file}` : f.file;
      const commit = f.commit ? commitLink(input.run, f.commit) : '(the artifact, not a commit)';
      return `| ${cell(f.rule)} | \`${cell(file)}\` | ${f.line} | ${commit} |`;
    })
  ];
  if (found.length > shown.length) lines.push(`| … and ${found.length - shown.length} more | | | |`);
  lines.push(
    '',
    'Rotate each secret first (it is already exposed), then remove it. A false positive: allowlist it in `.gitleaks.toml`, or add its fingerprint to `.gitleaksignore`.',
    ''
  );
  return lines;
}

function checkKey(c: CheckResult, deployHost: string | undefined, manyHosts: boolean): string {
  if (c.host) return `${c.name} @ ${c.host}`;
  return manyHosts && deployHost ? `${c.name} (after ${deployHost})` : c.name;
}

function verdict(c: CheckResult | undefined): string {
  if (!c) return '—';
  return `${c.ok ? '✅ pass' : '❌ fail'} (${duration(c.durationMs)})`;
}

function healthSection(input: RecordInput): string[] {
  const r = input.result;
  const many = r.hosts.length > 1;
  const before = new Map<string, CheckResult>();
  const after = new Map<string, CheckResult>();
  const restored = new Map<string, CheckResult>();
  for (const c of r.preChecks) before.set(checkKey(c, undefined, false), c);
  for (const h of r.hosts) {
    for (const c of h.checks) after.set(checkKey(c, h.name, many), c);
    for (const c of h.rollbackChecks) restored.set(checkKey(c, h.name, many), c);
  }
  // A check run from here after each host that passed every time is one row, not one per host.
  const merged = new Map<string, number>();
  if (many && restored.size === 0) {
    const runs = r.hosts.map(h => h.checks.filter(c => !c.host));
    for (const name of new Set(runs.flat().map(c => c.name))) {
      const all = runs.map(list => list.find(c => c.name === name));
      if (!all.every((c): c is CheckResult => c !== undefined && c.ok)) continue;
      r.hosts.forEach(h => after.delete(`${name} (after ${h.name})`));
      after.set(
        name,
        all.reduce((a, b) => (b.durationMs > a.durationMs ? b : a))
      );
      merged.set(name, all.length);
    }
  }
  const keys = [...new Set([...before.keys(), ...after.keys(), ...restored.keys()])];
  if (untouched(r))
    return ['**Health:** _not checked: the deploy stopped before any host was contacted._', ''];
  if (keys.length === 0) return ['**Health:** _no health check ran._', ''];
  const withRollback = restored.size > 0;
  const lines = [
    `| health check | before | after${withRollback ? ' | after rollback' : ''} | detail |`,
    `| --- | --- | ---${withRollback ? ' | ---' : ''} | --- |`
  ];
  for (const k of keys) {
    // A key like "api (after web-1)" pairs with the plain "api" of the pre-deploy run.
    const pre = before.get(k) ?? before.get(k.replace(/ \(after [^)]*\)$/, ''));
    const post = after.get(k);
    const rb = restored.get(k);
    const detail = [post, rb, pre].find(c => c && !c.ok)?.reason ?? post?.reason ?? pre?.reason ?? '';
    lines.push(
      `| ${cell(k)} | ${verdict(pre)} | ${merged.has(k) ? `✅ pass after each of ${merged.get(k)} hosts (slowest ${duration(post!.durationMs)})` : verdict(post)}${withRollback ? ` | ${verdict(rb)}` : ''} | ${inert(cell(detail).slice(0, 200))} |`
    );
  }
  lines.push('');
  return lines;
}

function hostsSection(input: RecordInput): string[] {
  const r = input.result;
  if (r.hosts.length === 0) return [];
  const icon: Record<HostReport['outcome'], string> = {
    deployed: '✅ deployed',
    switched: '🔀 switched, not verified yet',
    'rolled-back': '↩️ rolled back',
    'rollback-failed': '🔥 rollback failed',
    failed: '❌ failed, nothing changed',
    'failed-live': '❌ failed, failed release live',
    'not-started': '⏸️ not started'
  };
  const lines = ['| host | result | now serving | time |', '| --- | --- | --- | --- |'];
  for (const h of r.hosts) {
    const serving =
      h.outcome === 'deployed' || h.outcome === 'failed-live' || h.outcome === 'switched'
        ? `\`${r.releaseId}\``
        : h.previousRelease
          ? `\`${h.previousRelease}\``
          : h.outcome === 'rollback-failed'
            ? 'unknown'
            : h.liveBefore || h.previousDeploy
              ? `\`${h.liveBefore ?? h.previousDeploy!.release}\``
              : wasRead(h)
                ? h.outcome === 'rolled-back'
                  ? 'nothing (taken down; no release before)'
                  : 'nothing (first deploy)'
                : 'not read';
    const ms = h.steps.reduce((a, s) => a + s.ms, 0);
    lines.push(`| ${cell(h.name)} | ${icon[h.outcome]} | ${serving} | ${duration(ms)} |`);
  }
  lines.push('');
  return lines;
}

function rollbackSection(input: RecordInput): string[] {
  const r = input.result;
  const lines: string[] = [];
  const stuck = r.hosts.filter(h => h.recovery);
  if (stuck.length) {
    lines.push('### Rollback plan', '', '**The automatic rollback did not finish. Recover by hand:**', '');
    for (const h of stuck) lines.push(...fence(h.recovery!, 'sh'), '');
  }
  const say = (text: string) => [...lines, `**Rollback plan:** ${text}`, ''];
  const before = liveBefore(r);
  const prev = before.kind === 'release' ? before.id : undefined;
  if (untouched(r)) return say('nothing to do: no host was contacted, so nothing changed.');
  if (r.status === 'rolled-back') {
    const { restored, takenDown } = rolledBackHosts(r);
    if (restored.length === 0)
      return say(
        'done: the failed release was taken down; there was no release before it, so nothing is live. A fixed release is the way forward.'
      );
    if (takenDown.length)
      return say(
        `done: ${names(restored)} ${restored.length === 1 ? 'was' : 'were'} returned to \`${prev}\` and verified; on ${names(takenDown)} the failed release was taken down and nothing is live (no release before).`
      );
    return say(`done: every host was returned to \`${prev}\` and verified.`);
  }
  if (!prev)
    return before.kind === 'unread'
      ? say('not known: no host was read, so what serves is not known from this run.')
      : r.status === 'failed' || r.status === 'blocked' || r.status === 'checked'
        ? say('nothing to do: no release was live before this one, and nothing was changed.')
        : say('no release was live before this one: going back means stopping the service.');
  if (r.status === 'failed' || r.status === 'blocked' || r.status === 'checked')
    return say(`nothing to do: \`${prev}\` still serves; nothing was changed.`);
  const source = r.hosts.find(h => h.previousDeploy?.release === prev)?.previousDeploy;
  lines.push(
    `**Rollback plan:** to return to \`${prev}\`${source ? ` (commit ${commitLink(input.run, source.commit)}, deployed ${source.time})` : ''}, either:`
  );
  lines.push(
    source?.runUrl
      ? `1. Re-run the workflow run that deployed it: [${source.runUrl.replace(/^https?:\/\/[^/]+\//, '')}](${source.runUrl}) → **Re-run all jobs**. Its release is still on the hosts, so it only switches back and checks.`
      : '1. Re-run the workflow run that deployed it (not recorded on the hosts: it was not deployed from a workflow).'
  );
  const config = input.configPath ? ` --config ${input.configPath}` : '';
  lines.push(`2. From a terminal: \`deployguard rollback${config} --to ${prev}\``, '');
  return lines;
}

function debugSection(input: RecordInput): string[] {
  const failed = input.result.hosts.filter(
    h => h.outcome !== 'deployed' && h.outcome !== 'not-started' && (h.error || h.logTail || h.keptAt)
  );
  if (failed.length === 0) return [];
  const lines = ['### Debugging the failed release', ''];
  for (const h of failed) {
    lines.push(`**${cell(h.name)}**`, '');
    const bad = h.checks.filter(c => !c.ok);
    for (const c of bad) lines.push(`- check **${cell(c.name)}** failed: ${inert(cell(c.reason))}`);
    // The error is already under "What went wrong" when it is the deploy's own.
    if (h.error && bad.length === 0 && !input.result.error?.includes(h.error)) lines.push(...fence(h.error));
    if (h.keptAt) lines.push(`- the failed release is kept on the host at \`${h.keptAt}\``);
    lines.push('');
    if (h.logTail) lines.push("The service's last log lines:", '', ...fence(h.logTail), '');
  }
  return lines;
}

/** Which part of the deploy a host step belongs to, for the timeline. */
function stepPhase(s: StepRecord): string {
  if (s.undo) return 'Rollback';
  switch (s.id) {
    case 'lock':
    case 'probe':
      return 'Lock and read';
    case 'stage':
    case 'upload':
      return 'Upload';
    case 'verify':
      return 'Verify checksums';
    case 'stop':
    case 'switch':
    case 'start':
      return 'Stop, switch, start';
    case 'running':
      return 'Running check';
    case 'checks':
      return 'Health and stability';
    case 'mark-good':
      return 'Finish';
    default:
      return 'Prepare';
  }
}

interface Bar {
  readonly section: string;
  readonly name: string;
  readonly start: number;
  readonly end: number;
  readonly ok: boolean;
}

/** The gates, then each host's steps merged into phases, in time order. */
export function timeline(input: RecordInput): Bar[] {
  const bars: Bar[] = [];
  for (const p of [...(input.extraPhases ?? []), ...input.result.phases])
    bars.push({ section: 'Gates', name: p.name, start: p.start, end: p.start + p.ms, ok: p.ok });
  for (const h of input.result.hosts) {
    let cur: { name: string; start: number; end: number; ok: boolean } | undefined;
    for (const s of h.steps) {
      const name = stepPhase(s);
      if (cur && cur.name === name) {
        cur.end = Math.max(cur.end, s.at + s.ms);
        cur.ok &&= s.ok;
      } else {
        if (cur) bars.push({ section: h.name, ...cur });
        cur = { name, start: s.at, end: s.at + s.ms, ok: s.ok };
      }
    }
    if (cur) bars.push({ section: h.name, ...cur });
  }
  return bars.sort((a, b) => a.start - b.start);
}

/**
 * The timeline, folded: one row per place (the gates, then each host) with its phases in order,
 * and every step of a host that did not deploy cleanly. Each host's deployments.jsonl keeps the
 * rest (`deployguard history`).
 */
function timelineSection(input: RecordInput): string[] {
  const bars = timeline(input);
  const r = input.result;
  const t0 = Math.min(r.startedAt.getTime(), ...bars.map(b => b.start));
  const total = duration(r.finishedAt.getTime() - r.startedAt.getTime());
  const lines = [`<details><summary>Timeline and steps (${total} in all)</summary>`, ''];
  const sections = [...new Set(bars.map(b => b.section))];
  if (sections.length) {
    lines.push('| where | starts at | phases, in order |', '| --- | --- | --- |');
    for (const section of sections) {
      const own = bars.filter(b => b.section === section);
      const phases = own
        .map(b => `${b.ok ? '' : '❌ '}${cell(b.name)} ${duration(b.end - b.start)}`)
        .join(' · ');
      lines.push(`| ${cell(section)} | +${duration(own[0]!.start - t0)} | ${phases} |`);
    }
    lines.push('');
  }
  for (const h of r.hosts.filter(x => x.steps.length && x.outcome !== 'deployed')) {
    lines.push(`**Steps on ${cell(h.name)}**`, '', '| step | result | took |', '| --- | --- | --- |');
    for (const st of h.steps)
      lines.push(
        `| ${st.undo ? '↩️ ' : ''}${cell(st.title)} | ${st.ok ? '✅' : `❌ ${inert(cell(st.detail ?? '')).slice(0, 300)}`} | ${duration(st.ms)} |`
      );
    lines.push('');
  }
  // `</details>` may follow a paragraph directly: an HTML block of its kind ends one.
  lines.push(
    'Written by deployguard. Each host keeps this deploy in its deployments.jsonl (`deployguard history`).',
    '</details>',
    ''
  );
  return lines;
}

function errorSection(input: RecordInput): string[] {
  const e = input.result.error;
  if (!e || input.result.status === 'deployed') return [];
  // The findings have their own table: their error's list would say the same again.
  const text = input.findings?.length
    ? e.split('\n')[0]!.replace(/:$/, '.')
    : e.split('\n').slice(0, 40).join('\n');
  return ['### What went wrong', '', ...fence(text), ''];
}

/** The whole record as Markdown, starting with the hidden marker that finds its comment again. */
export function renderRecord(input: RecordInput): string {
  return [
    recordMarker(input.environment),
    ...header(input),
    ...whySection(input),
    ...errorSection(input),
    ...findingsSection(input),
    ...changesSection(input),
    ...healthSection(input),
    ...hostsSection(input),
    ...rollbackSection(input),
    ...debugSection(input),
    ...timelineSection(input)
  ].join('\n');
}
