/**
 * The README's user quickstart, held to the code: its deployguard.yml (and every full config
 * example) parses with the real parser, and its sudoers line allows every command deployguard
 * runs with `sudo -n` for that config, so a new user who copies both does not meet a sudo refusal
 * on the first deploy.
 */
import { readFileSync } from 'node:fs';
import { sudoersLine } from '../../src/preflight.js';
import { serviceCommands } from '../../src/remote/commands.js';
import { layoutFor } from '../../src/remote/layout.js';
import { FAKE_KEY, settingsFrom } from '../helpers/settings.js';

const README = readFileSync('README.md', 'utf8');
const QUICKSTART = README.slice(
  README.indexOf('## Quickstart'),
  README.indexOf('\n## ', README.indexOf('## Quickstart') + 1)
);

/** The fenced blocks of `text` in language `lang`. */
const blocks = (text: string, lang: string) =>
  [...text.matchAll(new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```', 'gm'))].map(m => m[1]!);

/** The quickstart's sudoers rule as [program, args...] patterns; a trailing `*` matches any rest. */
function sudoersRule(): string[][] {
  const line = QUICKSTART.split('\n').find(l => /^deploy ALL=\(root\) NOPASSWD: /.test(l));
  if (!line) throw new Error('the quickstart has no "deploy ALL=(root) NOPASSWD: ..." line');
  return line
    .replace(/^deploy ALL=\(root\) NOPASSWD: /, '')
    .split(',')
    .map(c => c.trim().split(/\s+/));
}

/** Whether `argv` (as sudo sees it, program resolved in /usr/bin) is allowed by one of `rule`. */
function allowed(rule: string[][], argv: string[]): boolean {
  const resolved = [argv[0]!.includes('/') ? argv[0]! : `/usr/bin/${argv[0]}`, ...argv.slice(1)];
  return rule.some(pattern =>
    pattern.at(-1) === '*'
      ? pattern.slice(0, -1).every((p, i) => p === resolved[i])
      : pattern.length === resolved.length && pattern.every((p, i) => p === resolved[i])
  );
}

/** Every `sudo -n ...` command in a script, split into words (the quoting helper's quotes removed). */
function sudoCommands(script: string): string[][] {
  return [...script.matchAll(/sudo -n ([^\n;|&)]+?)\s*(?=$|\n|;|\||&|\)|2>)/g)].map(m =>
    m[1]!
      .trim()
      .split(/\s+/)
      .map(w => w.replace(/^'(.*)'$/, '$1'))
  );
}

describe('the README quickstart', () => {
  const configText = blocks(QUICKSTART, 'yaml').find(b => b.startsWith('version: 1'));

  it('has a deployguard.yml that the real parser accepts, as the quickstart describes it', () => {
    expect(configText).toBeDefined();
    const settings = settingsFrom({ 'ssh-key': FAKE_KEY }, configText);
    expect(settings.hosts.map(h => [h.name, h.user, h.host])).toEqual([['web-1', 'deploy', '203.0.113.10']]);
    expect(settings.target.path).toBe('/srv/myapp');
    expect(settings.service).toMatchObject({ manager: 'systemd', name: 'myapp', sudo: true });
  });

  it('has a sudoers line that allows every sudo command of that service, and only for that unit', () => {
    const rule = sudoersRule();
    const settings = settingsFrom({ 'ssh-key': FAKE_KEY }, configText);
    const commands = serviceCommands(settings.service, layoutFor(settings.target))!;
    const used = Object.values(commands).flatMap(s => sudoCommands(s.text));
    expect(used.length).toBeGreaterThanOrEqual(4);
    for (const argv of used) expect({ argv, allowed: allowed(rule, argv) }).toEqual({ argv, allowed: true });
    // Changing state is allowed for this unit only.
    expect(allowed(rule, ['systemctl', 'stop', '--', 'sshd'])).toBe(false);
    expect(allowed(rule, ['systemctl', 'start', '--', 'myapp'])).toBe(true);
  });

  it('has exactly the sudoers line `deployguard preflight` prints for that config, and it grants nothing more', () => {
    const settings = settingsFrom({ 'ssh-key': FAKE_KEY }, configText);
    const line = QUICKSTART.split('\n').find(l => /^deploy ALL=\(root\) NOPASSWD: /.test(l));
    const paths = new Map([
      ['systemctl', '/usr/bin/systemctl'],
      ['journalctl', '/usr/bin/journalctl']
    ]);
    expect(line).toBe(sudoersLine(settings, 'deploy', paths));
    // No wildcard: journalctl's --vacuum or another unit's logs are not the deploy user's to run.
    expect(line).not.toContain('*');
    expect(allowed(sudoersRule(), ['journalctl', '--vacuum-size=1'])).toBe(false);
  });

  it('shows no secret name the reusable workflow does not declare', () => {
    const workflow = readFileSync('.github/workflows/deploy.yml', 'utf8');
    const named = new Set([...README.matchAll(/\bDEPLOYGUARD_[A-Z_]+\b/g)].map(m => m[0]));
    const cliOnly = ['DEPLOYGUARD_SSH_PASSWORD', 'DEPLOYGUARD_TEST_CACHE', 'DEPLOYGUARD_NO_HASH_CACHE'];
    for (const name of named)
      if (!cliOnly.includes(name))
        expect({ name, declared: workflow.includes(`      ${name}:\n`) }).toEqual({ name, declared: true });
  });
});

describe('every full deployguard.yml example in the README', () => {
  it.each(
    blocks(README, 'yaml')
      .filter(b => b.startsWith('version: 1'))
      .map((b, i) => [i, b])
  )('example %i parses', (_i, text) => {
    expect(() => settingsFrom({ 'ssh-key': FAKE_KEY }, text as string)).not.toThrow();
  });
});
