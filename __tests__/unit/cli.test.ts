import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { COMMANDS, main } from '../../src/cli.js';
import { INPUTS } from '../../src/settings/inputs.js';
import { configJsonSchema } from '../../src/settings/config.js';
import { inCliWords } from '../../src/settings/wording.js';
import { FAKE_PIN } from '../helpers/settings.js';

/** The real CLI entry, its output and its error stream captured. */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const sink = (add: (s: string) => void) =>
    new Writable({
      write(chunk: Buffer, _enc, done) {
        add(chunk.toString());
        done();
      }
    });
  const code = await main(
    argv,
    sink(s => (out += s)),
    sink(s => (err += s))
  );
  return { code, out, err };
}

test('`schema` prints exactly the schema deployguard.schema.json holds, never reworded for the CLI', async () => {
  const r = await cli('schema');
  expect(r.code).toBe(0);
  expect(JSON.parse(r.out)).toEqual(JSON.parse(JSON.stringify(configJsonSchema())));
  expect(JSON.parse(r.out)).toEqual(JSON.parse(readFileSync('deployguard.schema.json', 'utf8')));
});

const pkg = JSON.parse(await import('node:fs').then(fs => fs.readFileSync('package.json', 'utf8'))) as {
  version: string;
};

describe('the CLI parses strictly (issue 13)', () => {
  test('an unknown flag exits 2, naming it, with a did-you-mean; nothing runs', async () => {
    const r = await cli('deploy', '--dryrun=true');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown flag "--dryrun" for `deployguard deploy`; did you mean --dry-run\?/);
    expect(r.out).toBe('');
  });

  test('the start of exactly one flag suggests it', async () => {
    expect((await cli('deploy', '--target', '/srv/app')).err).toMatch(/did you mean --target-path\?/);
    expect((await cli('history', '--lim', '3')).err).toMatch(/did you mean --limit\?/);
  });

  test('a flag of another command says which command takes it', async () => {
    const r = await cli('deploy', '--to', 'previous');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/"--to".*it is a flag of `deployguard rollback`/);
  });

  test('rollback takes no --dry-run (it would really roll back)', async () => {
    const r = await cli('rollback', '--dry-run');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown flag "--dry-run" for `deployguard rollback`/);
  });

  test.each([
    [['deploy', '--reason'], /--reason needs a value/],
    [['deploy', '--reason', '--dry-run'], /--reason needs a value/],
    [['deploy', '--dry-run=false'], /--dry-run takes no value/],
    [['deploy', '--host', 'a', '--host', 'b'], /--host is given twice/],
    [['deploy', 'now'], /unexpected argument "now"/],
    [['deplyo'], /unknown command "deplyo"; did you mean `deploy`\?/],
    [['--config', 'x.yml', 'deploy'], /expected a command first/],
    [['deploy', '--ssh-key', 'k'], /--ssh-key would put a secret in the process list/]
  ])('%j is a usage error (exit 2)', async (argv, pattern) => {
    const r = await cli(...argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(pattern);
  });

  test('--version prints the package version', async () => {
    expect(await cli('--version')).toEqual({ code: 0, out: `${pkg.version}\n`, err: '' });
  });

  test.each(Object.keys(COMMANDS))('`%s --help` lists its own flags and exits 0', async name => {
    const r = await cli(name, '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^Usage: deployguard ${name}\\b`));
    expect(r.out).toContain('--help');
    expect(await cli('help', name)).toEqual(r);
  });

  test('each command offers exactly its flags', async () => {
    const deploy = (await cli('deploy', '-h')).out;
    for (const name of Object.keys(INPUTS)) expect(deploy).toContain(`--${name}`);
    expect(deploy).toContain('--ssh-key-file PATH');
    expect(deploy).not.toContain('--to ');
    const rollback = (await cli('rollback', '--help')).out;
    expect(rollback).toContain('--to previous|RELEASE');
    expect(rollback).not.toContain('--dry-run');
    expect((await cli('schema', '--help')).out).not.toContain('--config');
  });

  test('pin takes exactly one HOST: none, or two, is exit 2 naming the mistake; a bad host contacts nothing', async () => {
    const none = await cli('pin');
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/`pin` needs HOST\. Example: deployguard pin 203\.0\.113\.10/);
    const two = await cli('pin', 'a.example', 'b.example');
    expect(two.code).toBe(2);
    expect(two.err).toMatch(/unexpected argument "b\.example": `pin` takes one HOST and flags/);
    const bad = await cli('pin', 'bad host;id');
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/is not a host name or IP address/);
    expect((await cli('pin', '--help')).out).toMatch(/^Usage: deployguard pin HOST \[flags\]/);
    expect((await cli('deploy', 'extra')).err).toMatch(/`deploy` takes flags only/);
  });

  test('pin --help lists --port and --user as its own flags, with no settings or secrets section', async () => {
    const help = (await cli('pin', '--help')).out;
    expect(help).toMatch(/Flags:\n {2}--port N +the SSH port/);
    expect(help).not.toMatch(/Settings|ssh-key-file/);
  });

  test('init refuses to write through a symbolic link: exit 2, the target untouched', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dg-init-link-'));
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'keep\n');
    symlinkSync(victim, join(dir, 'deployguard.yml'));
    const r = await cli('init', '--config', join(dir, 'deployguard.yml'), '--force');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/is a symbolic link; nothing was written/);
    expect(readFileSync(victim, 'utf8')).toBe('keep\n');
  });

  test('the usage lists every command; no command at all is exit 2', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    for (const name of Object.keys(COMMANDS)) expect(r.out).toMatch(new RegExp(`deployguard ${name}\\b`));
    expect((await cli()).code).toBe(2);
  });
});

describe('the CLI refuses hostile values before any host is touched (issue 13)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dg-cli-'));
  const config = join(dir, 'deployguard.yml');
  writeFileSync(config, 'version: 1\n');
  const oneHost = ['deploy', '--config', config, '--host', '192.0.2.10', '--user', 'deploy'];
  const base = [
    ...oneHost,
    '--host-key',
    FAKE_PIN,
    '--artifact',
    dir,
    '--target-path',
    '/srv/app',
    '--dry-run'
  ];

  test.each(['--host-name', '--environment', '--reason'])(
    '%s with a newline and a workflow command exits 2, escaped, nothing printed raw',
    async flag => {
      const r = await cli(...base, flag, 'x\n::error::pwned\n::add-mask::secret');
      expect(r.code).toBe(2);
      expect(r.err).toMatch(new RegExp(`\`${flag}\`: contains the control character U\\+000A`));
      expect(`${r.out}\n${r.err}`).not.toMatch(/^\s*(error: )?::/m);
      expect(r.out).toBe('');
    }
  );

  test.each([
    ['--lock-wait', '99999h', /`--lock-wait`: expected a duration of at most 1h.*Example: --lock-wait 2m/],
    ['--connect-timeout', '0s', /`--connect-timeout`: expected a duration from 1s to 5m/],
    ['--lock-wait', '-1s', /`--lock-wait`: expected a duration of at most 1h like `2m`, got "-1s"/],
    ['--port', '-1', /`--port`: expected an integer from 1 to 65535, got the number -1/]
  ])('%s %s is refused as the file refuses it', async (flag, value, pattern) => {
    const r = await cli(...base, flag, value);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(pattern);
  });

  test('a truncated known_hosts pin is malformed at config time, not a man-in-the-middle at connect', async () => {
    const key = 'AAAAC3NzaC1lZDI1NTE5AAAAIGZsF4i8XZrPkLxGz7yQYm1eBgJ+vAQyJmHh1Y7bqXjA';
    const r = await cli(...oneHost, '--known-hosts', `192.0.2.10 ssh-ed25519 ${key.slice(0, 44)}`);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/`--known-hosts`: line 1 ".*" is malformed: the ssh-ed25519 key is cut short/);
    expect(r.err).not.toMatch(/man-in-the-middle/i);
  });

  test('one config mistake is one error, with its line and column', async () => {
    const file = join(dir, 'one-mistake.yml');
    writeFileSync(file, 'version: 1\nservice:\n  manager: systemdd\n');
    const r = await cli(...base.map(a => (a === config ? file : a)));
    expect(r.code).toBe(2);
    expect(r.err.split('\n').filter(l => l.startsWith('error:   - '))).toEqual([
      expect.stringMatching(/one-mistake\.yml:3:12: `service\.manager`: .*did you mean `systemd`\?/)
    ]);
  });

  test('a config path with a newline is refused, escaped', async () => {
    const r = await cli('check', '--config', 'x.yml\n::error::pwned');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/`--config`: contains the control character U\+000A/);
    expect(r.err).not.toMatch(/^(error: )?::/m);
  });

  test('a value that looks like an ssh option is a value, and refused as one', async () => {
    const r = await cli('deploy', '--config', config, '--host', '-oProxyCommand=id');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/`--host`: expected a hostname or IP address, got "-oProxyCommand=id"/);
  });

  test('messages from any module are shown in flag words', async () => {
    const file = join(dir, 'host-check.yml');
    writeFileSync(file, 'version: 1\nchecks: [{ name: p, type: process }]\n');
    const r = await cli('check', '--config', file);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/checks that run on hosts need `hosts:` \(or the `--host` flag\)/);
    expect(
      inCliWords('Check that the `ssh-key` input holds the key and the `ssh-passphrase` input matches')
    ).toBe(
      'Check that `--ssh-key-file` (or DEPLOYGUARD_SSH_KEY) holds the key and DEPLOYGUARD_SSH_PASSPHRASE matches'
    );
    expect(inCliWords('input `port`: bad; check the gitleaks-path input; the `weird` input')).toBe(
      '`--port`: bad; check the `--gitleaks-path` flag; the `weird` input'
    );
    expect(
      inCliWords(
        'Example: env: { DB_URL: ${{ secrets.DB_URL }} } in the workflow step; or leave the input empty'
      )
    ).toBe('Example: export DB_URL=… in the shell that runs deployguard; or leave the flag out');
    // A variable the config needs, missing: said in shell words.
    const envFile = join(dir, 'env-missing.yml');
    writeFileSync(envFile, 'version: 1\nenv: { DB_URL: "${DB_URL}" }\n');
    const missing = await cli(
      'deploy',
      ...['--config', envFile, '--host', '192.0.2.10', '--user', 'deploy', '--host-key', FAKE_PIN],
      ...['--artifact', dir, '--target-path', '/srv/app']
    );
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('export DB_URL=… in the shell that runs deployguard');
    expect(missing.err).not.toContain('workflow step');
  });

  test('errors speak of flags, not action inputs', async () => {
    const r = await cli(...oneHost, '--target-path', 'srv');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/`--target-path`: expected an absolute path/);
    expect(r.err).toMatch(/`--ssh-key-file` \(or DEPLOYGUARD_SSH_KEY\)/);
    expect(r.err).not.toMatch(/\binput\b/);
  });

  test('deploy --dry-run works without any SSH secret and touches nothing', async () => {
    const saved = process.env.DEPLOYGUARD_SSH_KEY;
    delete process.env.DEPLOYGUARD_SSH_KEY;
    try {
      const r = await cli(...base);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/Dry run: release \S+ to 192\.0\.2\.10 \(deploy@192\.0\.2\.10:22\)/);
      expect(r.out).toMatch(/no host was contacted/);
    } finally {
      if (saved !== undefined) process.env.DEPLOYGUARD_SSH_KEY = saved;
    }
  });
});

test("the entry point's code cache knows every command, and nothing else", () => {
  // src/entries/cli.cjs names one cache file per command; any other first word shares 'default'.
  const entry = readFileSync(join(process.cwd(), 'src', 'entries', 'cli.cjs'), 'utf8');
  const list = /const COMMANDS = \[([^\]]*)\]/.exec(entry)?.[1];
  expect(list).toBeDefined();
  const named = [...list!.matchAll(/'([a-z-]+)'/g)].map(m => m[1]);
  expect(named.sort()).toEqual(Object.keys(COMMANDS).sort());
});
