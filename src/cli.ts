import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { checkNow } from './check.js';
import { secretGate, testGate } from './scan/pre-deploy.js';
import { privateDir } from './io/private-dir.js';
import { STARTER_CONFIG } from './settings/starter.js';
import { renderCheckTable } from './report/summary.js';
import { secrets } from './io/secrets.js';
import { dryRun, runDeploy } from './deploy.js';
import { runDemo } from './demo/demo.js';
import { describeError, ConfigError } from './errors.js';
import { consoleLogger, redacting } from './io/log.js';
import { verdictLine } from './report/summary.js';
import { deployReason } from './report/changes.js';
import { deliverRecord } from './report/deliver.js';
import { blockedReason } from './report/record.js';
import { renderHistory } from './report/history.js';
import { readHistory } from './history.js';
import { configJsonSchema } from './settings/config.js';
import { loadSettings } from './settings/load.js';
import type { Stage } from './settings/types.js';

const USAGE = `deployguard: a deploy gate: verified SSH deploys, health checks, automatic rollback.

Usage:
  deployguard deploy [--config FILE] [--dry-run] [--json] [--reason TEXT] [--record FILE]
                     [--<input> VALUE ...]   --record writes the deployment record (Markdown)
  deployguard check  [--config FILE] [--stage pre|post|schedule] [--json]
  deployguard rollback [--config FILE] [--to previous|RELEASE] [--json]
                     switch back to a release kept on the hosts, verified by its checksums first
  deployguard history [--config FILE] [--limit N] [--json]
                     list each host's deployments (its deployments.jsonl), newest first
  deployguard init   [--config FILE] [--force]   write a commented starter deployguard.yml
  deployguard schema print the JSON Schema of deployguard.yml (for editors)
  deployguard demo   deploy a sample app to a sandbox sshd on loopback: v1, then a broken v2
                     that is rolled back automatically

Every action input is also a flag: --host, --port, --user, --target-path, --artifact,
--service-name, --health-url, --release-id, --known-hosts, --host-key, ...
Secrets come from the environment (DEPLOYGUARD_SSH_KEY, DEPLOYGUARD_SSH_PASSPHRASE) or
--ssh-key-file PATH; never from flags, which other users can read in the process list.

Exit status: 0 only when everything passed.`;

interface Parsed {
  readonly command: string | undefined;
  readonly flags: Map<string, string>;
}

const BOOLEAN_FLAGS = new Set([
  'dry-run',
  'json',
  'verbose',
  'insecure-skip-host-key-check',
  'help',
  'force'
]);

/** `--name value`, `--name=value` and boolean `--name`. */
export function parseArgs(argv: readonly string[]): Parsed {
  const flags = new Map<string, string>();
  let command: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h') flags.set('help', 'true');
    else if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      if (eq > 0) flags.set(name, a.slice(eq + 1));
      else if (BOOLEAN_FLAGS.has(name)) flags.set(name, 'true');
      else {
        const v = argv[i + 1];
        if (v === undefined || v.startsWith('--'))
          throw new ConfigError(`flag --${name} needs a value`, `Example: --${name} VALUE`);
        flags.set(name, v);
        i++;
      }
    } else if (command === undefined) command = a;
    else throw new ConfigError(`unexpected argument "${a}"`, 'Run `deployguard --help` for usage.');
  }
  return { command, flags };
}

/** Runs the CLI and returns the exit code (never calls process.exit, so tests can call it). */
export async function main(
  argv: readonly string[],
  out: NodeJS.WritableStream = process.stdout
): Promise<number> {
  const log = redacting(consoleLogger());
  try {
    const { command, flags } = parseArgs(argv);
    if (flags.has('help') || command === undefined || command === 'help') {
      out.write(USAGE + '\n');
      return command === undefined && !flags.has('help') ? 2 : 0;
    }
    for (const secret of ['ssh-key', 'ssh-passphrase', 'ssh-password']) {
      if (flags.has(secret)) {
        throw new ConfigError(
          `--${secret} would put a secret in the process list`,
          `Use DEPLOYGUARD_${secret.replace(/-/g, '_').toUpperCase()} in the environment${secret === 'ssh-key' ? ' or --ssh-key-file PATH' : ''}.`
        );
      }
    }
    const keyFile = flags.get('ssh-key-file');
    const input = (name: string): string | undefined =>
      name === 'ssh-key' && keyFile ? readFileSync(keyFile, 'utf8') : flags.get(name);
    const base = {
      input,
      env: process.env,
      cwd: process.cwd(),
      now: new Date(),
      onSecret: (v: string) => secrets.add(v)
    };
    const write = (text: string) => out.write(secrets.redact(text) + '\n');
    const json = flags.has('json');
    switch (command) {
      case 'demo':
        return await runDemo(log);
      case 'schema':
        write(JSON.stringify(configJsonSchema(), null, 2));
        return 0;
      case 'deploy':
      case 'rollback': {
        const rollingBack = command === 'rollback';
        const settings = loadSettings({ ...base, purpose: rollingBack ? 'hosts' : 'deploy' });
        const to = flags.get('to') ?? 'previous';
        if (rollingBack && to !== 'previous' && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(to))
          throw new ConfigError(
            `--to: expected previous or a release id, got "${to.slice(0, 60)}"`,
            'Example: --to previous'
          );
        if (settings.dryRun && !rollingBack) {
          write(await dryRun(settings));
          return 0;
        }
        // Ctrl-C stops between steps and rolls back, instead of leaving a host half-deployed.
        const abort = new AbortController();
        const onSignal = () => {
          log.warn('interrupted: stopping at the next step and rolling back (interrupt again to force quit)');
          abort.abort();
          process.once('SIGINT', () => process.exit(130));
        };
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        const gateOpts = {
          workspace: process.cwd(),
          env: process.env,
          log,
          outDir: privateDir(),
          signal: abort.signal
        };
        const failedTests = rollingBack
          ? undefined
          : await testGate(settings, gateOpts).then(
              () => undefined,
              (err: unknown) => err
            );
        if (failedTests !== undefined) {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          log.error(describeError(failedTests));
          if (json) write(JSON.stringify({ status: 'blocked', error: describeError(failedTests) }, null, 2));
          return 1;
        }
        const result = await runDeploy(
          settings,
          {
            log,
            signal: abort.signal,
            why: settings.report.reason,
            redact: text => secrets.redact(text),
            beforeChanges: rollingBack
              ? undefined
              : async ({ lastDeployedCommit }) => {
                  await secretGate(settings, { ...gateOpts, lastDeployedCommit });
                }
          },
          rollingBack ? { kind: 'rollback', to } : { kind: 'full' }
        ).finally(() => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        });
        const recordPath = flags.get('record');
        if (recordPath) {
          const why = await deployReason({
            reason: settings.report.reason,
            repoDir: process.cwd(),
            commit: settings.run.commit
          });
          const delivered = await deliverRecord({
            settings: { ...settings, report: { ...settings.report, comment: 'none' } },
            result,
            why,
            blockedBy: blockedReason(result),
            workspace: process.cwd(),
            outDir: privateDir(),
            log,
            redact: text => secrets.redact(text)
          });
          writeFileSync(recordPath, delivered.markdown);
          log.info(`deployment record written to ${recordPath}`);
        }
        write(json ? JSON.stringify(result, null, 2) : verdictLine(result));
        return result.status === 'deployed' ? 0 : 1;
      }
      case 'check': {
        const settings = loadSettings({ ...base, purpose: 'check' });
        const stage = (flags.get('stage') ?? 'schedule') as Stage;
        if (!['pre', 'post', 'schedule'].includes(stage))
          throw new ConfigError(`--stage: expected pre, post or schedule, got "${stage}"`);
        const results = await checkNow(settings, stage, log);
        const passed = results.filter(r => r.ok).length;
        if (json)
          write(
            JSON.stringify(
              { stage, passed, total: results.length, ok: passed === results.length, results },
              null,
              2
            )
          );
        else write(renderCheckTable(results));
        return passed === results.length ? 0 : 1;
      }
      case 'history': {
        const settings = loadSettings({ ...base, purpose: 'hosts' });
        const limitText = flags.get('limit') ?? '20';
        if (!/^\d{1,6}$/.test(limitText) || Number(limitText) < 1)
          throw new ConfigError(
            `--limit: expected a positive number, got "${limitText}"`,
            'Example: --limit 50'
          );
        const hosts = await readHistory(settings, Number(limitText), log);
        for (const h of hosts) {
          if (h.error) log.error(`${h.host}: ${h.error}`);
          for (const p of h.log?.problems ?? [])
            log.warn(`${h.host}: deployments.jsonl line ${p.line} skipped: ${p.reason}`);
        }
        if (json) write(JSON.stringify({ hosts }, null, 2));
        else
          write(
            hosts
              .filter(h => h.log)
              .map(h => renderHistory(h.host, h.log!))
              .join('\n\n')
          );
        return hosts.some(h => h.error) ? 1 : 0;
      }
      case 'init': {
        const path = flags.get('config') ?? 'deployguard.yml';
        if (existsSync(path) && !flags.has('force'))
          throw new ConfigError(`${path} exists; not overwriting it`, 'Pass --force to replace it.');
        writeFileSync(path, STARTER_CONFIG);
        write(
          `wrote ${path}: a starter with one check of each kind. Edit it, then run: deployguard check --config ${path}`
        );
        return 0;
      }
      default:
        throw new ConfigError(
          `unknown command "${command}"`,
          'Commands: deploy, rollback, check, history, init, schema, demo. Run `deployguard --help`.'
        );
    }
  } catch (err) {
    log.error(describeError(err));
    return err instanceof ConfigError ? 2 : 1;
  }
}
