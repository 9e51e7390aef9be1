/**
 * Hostile and wrong input, one case per test, through the bundled CLI as a user runs it, against a
 * real sshd. Every case must end in a clear error naming what is wrong, and leave the host as it
 * was: for everything that can be checked before connecting, not even a login happens (sshd's own
 * log is read); for what needs the host, the live release stays and no lock is left. A few inputs
 * are legal but hostile (shell syntax in a deploy reason): they must arrive as plain text.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeRelease, runBundle } from '../helpers/deploy.js';
import { startTestHost, type TestHost } from '../helpers/test-host.js';

let t: TestHost;
let other: TestHost;
let artifact: string;
let scratch: string;

beforeAll(async () => {
  t = await startTestHost({ prefix: 'hostile' });
  // A second host whose key is not the one pinned for the first.
  other = await startTestHost({ prefix: 'hostile-other' });
  artifact = await makeRelease('v1');
  scratch = mkdtempSync(join(tmpdir(), 'dg-hostile-art-'));
  // One good deploy, so "untouched" has something live to keep.
  const r = await cli(['--release-id', 'v1']);
  expect({ code: r.code, out: r.out.slice(-400) }).toMatchObject({ code: 0 });
}, 60_000);

afterAll(async () => {
  await other?.stop();
  await t?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

const logins = () =>
  (readFileSync(join(t.host.dir, 'sshd.log'), 'utf8').match(/Accepted publickey/g) ?? []).length;

/** The CLI with a base config; `args` add or override flags, `yaml` is appended to the config. */
async function cli(
  args: readonly string[],
  yaml = '',
  env: Record<string, string> = {}
): Promise<{ code: number | null; out: string }> {
  const config = join(t.work, 'hostile.yml');
  // The case's top-level keys replace the base's (a second `service:` would be a YAML error).
  const base: Record<string, string> = {
    version: '1',
    service: '{ manager: none }',
    'pre-deploy': '{ gitleaks: false }',
    'post-deploy': '{ stability-window: 0s }'
  };
  for (const key of yaml.match(/^[a-z-]+(?=:)/gm) ?? []) delete base[key];
  writeFileSync(config, [...Object.entries(base).map(([k, v]) => `${k}: ${v}`), yaml].join('\n'));
  const flags = new Map<string, string>([
    ['--artifact', artifact],
    ['--target-path', t.target],
    ['--host', t.host.host],
    ['--port', String(t.host.port)],
    ['--user', t.host.user],
    ['--known-hosts', t.host.knownHostsLine],
    ['--lock-wait', '0s'],
    ['--connect-timeout', '3s']
  ]);
  for (let i = 0; i < args.length; i += 2) flags.set(args[i]!, args[i + 1]!);
  const argv = ['deploy', '--config', config, ...[...flags].flat()];
  const r = await runBundle('cli', argv, {
    cwd: t.work,
    env: { PATH: process.env.PATH ?? '', DEPLOYGUARD_SSH_KEY: t.host.privateKey, ...env }
  });
  return { code: r.code, out: r.stdout + r.stderr };
}

const live = () => readlinkSync(join(t.target, 'current')).split('/').pop();
const unlocked = () => !existsSync(join(t.target, '.deployguard', 'lock'));

/** Refused before any host is contacted: exit 2, the message, and no login on the host. */
async function refusedOffline(args: readonly string[], yaml: string, message: RegExp): Promise<void> {
  const before = logins();
  const served = live();
  const r = await cli(args, yaml);
  expect({ code: r.code, message: message.test(r.out) ? 'matches' : r.out.slice(-600) }).toEqual({
    code: 2,
    message: 'matches'
  });
  expect(logins()).toBe(before);
  expect(live()).toBe(served);
}

/** An artifact directory holding what `build` puts there (plus one good file). */
function hostileArtifact(name: string, build: (dir: string) => void): string {
  const dir = join(scratch, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'ok.txt'), 'ok\n');
  build(dir);
  return dir;
}

const HOST_STRINGS: readonly (readonly [string, readonly string[], string, RegExp])[] = [
  [
    'a service name with `;`',
    [],
    'service: { manager: systemd, name: "app; rm -rf /" }',
    /service\.name`: expected a systemd unit name/
  ],
  [
    'a service name with $( )',
    [],
    'service: { manager: systemd, name: "$(id)" }',
    /service\.name`: expected a systemd unit name/
  ],
  [
    'a service-name input with backticks',
    ['--service-name', 'a`id`'],
    'service: { manager: systemd }',
    /`--service-name`: expected a systemd unit name, got "a`id`"/
  ],
  [
    'a relative target path',
    ['--target-path', 'srv/app'],
    '',
    /`--target-path`: expected an absolute path .*got "srv\/app"/
  ],
  [
    'a target path with ..',
    ['--target-path', '/srv/../etc'],
    '',
    /`--target-path`: expected an absolute path .*without `\.\.`, got "\/srv\/\.\.\/etc"/
  ],
  ['the target path /', ['--target-path', '/'], '', /target path "\/": expected an absolute path .*not \//],
  [
    'a target path with ;',
    ['--target-path', '/srv/app;reboot'],
    '',
    /`--target-path`: expected an absolute path .*got "\/srv\/app;reboot"/
  ],
  [
    'a target path with a newline',
    ['--target-path', '/srv/a\nb'],
    '',
    /`--target-path`: contains the control character U\+000A/
  ],
  [
    'a target path with $( )',
    ['--target-path', '/srv/$(reboot)'],
    '',
    /`--target-path`: expected an absolute path .*got "\/srv\/\$\(reboot\)"/
  ],
  [
    'a release id with ;',
    ['--release-id', 'v1;reboot'],
    '',
    /`--release-id`: expected a release id .*got "v1;reboot"/
  ],
  [
    'a release id with ../',
    ['--release-id', '../x'],
    '',
    /`--release-id`: expected a release id .*got "\.\.\/x"/
  ],
  ['a release id with /', ['--release-id', 'a/b'], '', /`--release-id`: expected a release id .*got "a\/b"/],
  [
    'a release id with a space and quote',
    ['--release-id', "v1 ' x"],
    '',
    /`--release-id`: expected a release id/
  ],
  [
    'a shared entry with ../',
    [],
    `target: { path: /srv/x, shared: ["../../etc"] }`,
    /target\.shared\[0\]`: expected a path relative/
  ],
  [
    'an absolute shared entry',
    [],
    `target: { path: /srv/x, shared: ["/etc/passwd"] }`,
    /target\.shared\[0\]`: expected a path relative/
  ],
  ['a user name with ;', ['--user', 'root;id'], '', /`--user`: expected a user name, got "root;id"/],
  ['a host name with ;', ['--host', 'a;b'], '', /`--host`: expected a hostname or IP address, got "a;b"/],
  [
    'a host name starting with -',
    ['--host', '-oProxyCommand=id'],
    '',
    /`--host`: expected a hostname or IP address, got "-oProxyCommand=id"/
  ],
  [
    'a check name with ;',
    [],
    'checks:\n  - { name: "a;b", type: http, url: "http://127.0.0.1/" }',
    /checks\[0\]\.name`: expected a short name/
  ]
];

const WRONG_CONFIG: readonly (readonly [string, readonly string[], string, RegExp])[] = [
  [
    'a YAML alias bomb',
    [],
    [
      'a: &a [x,x,x,x,x,x,x,x,x]',
      ...'bcdefg'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefg'[i]}`).join(',')}]`),
      'h: [*g,*g,*g,*g,*g,*g,*g,*g,*g]'
    ].join('\n'),
    /Excessive alias count|resource exhaustion/
  ],
  [
    'a duplicate key',
    [],
    'service: { manager: none }\nservice: { manager: none }',
    /Map keys must be unique/
  ],
  [
    'a string where a number goes',
    [],
    'target: { path: /srv/x, keep-releases: "many" }',
    /target\.keep-releases`: expected an integer/
  ],
  ['a string where a list goes', [], 'hosts: "web1"', /`hosts`: expected a list/],
  [
    'an unknown key, with a suggestion',
    [],
    'servce: { manager: none }',
    /unknown key `servce`; did you mean `service`\?/
  ],
  ['an unknown version', [], 'version: 2', /`version`: expected an integer from 1 to 1/],
  [
    'a port that is not a number',
    ['--port', 'twenty'],
    '',
    /`--port`: expected an integer from 1 to 65535, got "twenty"/
  ],
  [
    'a port out of range',
    ['--port', '70000'],
    '',
    /`--port`: expected an integer from 1 to 65535, got the number 70000/
  ],
  [
    'a negative duration',
    ['--lock-wait', '-1s'],
    '',
    /`--lock-wait`: expected a duration of at most 1h like `2m`, got "-1s"/
  ],
  [
    'max-parallel 0',
    [],
    'deploy: { max-parallel: 0 }',
    /deploy\.max-parallel`: expected an integer from 1 to 500/
  ],
  [
    'a canary that is not a number',
    [],
    'deploy: { canary: lots }',
    /deploy\.canary`: expected an integer from 0 to 500/
  ],
  [
    'a known-hosts line that is not one',
    ['--known-hosts', 'garbage'],
    '',
    /`--known-hosts`: line 1 "garbage" is malformed/
  ],
  ['a missing artifact', ['--artifact', '/nonexistent/build'], '', /artifact.*\/nonexistent\/build/]
];

const HOSTILE_ARTIFACTS: readonly (readonly [string, (dir: string) => void, RegExp])[] = [
  [
    'a symlink to an absolute path',
    d => symlinkSync('/etc/passwd', join(d, 'passwd')),
    /symlink "passwd" points to the absolute path "\/etc\/passwd"/
  ],
  [
    'a symlink climbing out with ../',
    d => symlinkSync('../../../etc/shadow', join(d, 'shadow')),
    /symlink "shadow" -> "\.\.\/\.\.\/\.\.\/etc\/shadow" points outside the artifact/
  ],
  [
    'a symlink chain that leaves the artifact',
    d => {
      mkdirSync(join(d, 'a'));
      symlinkSync('..', join(d, 'a', 'up'));
      symlinkSync('a/up/..', join(d, 'out'));
    },
    /symlink "out" -> "a\/up\/\.\." points outside the artifact/
  ],
  [
    'a symlink loop',
    d => {
      symlinkSync('loop-b', join(d, 'loop-a'));
      symlinkSync('loop-a', join(d, 'loop-b'));
    },
    /loops \(too many levels of symbolic links\)/
  ],
  [
    'a named pipe',
    d => execFileSync('mkfifo', [join(d, 'pipe')]),
    /contains a FIFO \(named pipe\) at "pipe"/
  ],
  [
    'a file name that is not UTF-8',
    d => writeFileSync(Buffer.from(`${d}/bad-\xff-name`, 'latin1'), 'x'),
    /file name is not valid UTF-8: "bad-\\xff-name"/
  ],
  [
    'a file name with a newline',
    d => writeFileSync(join(d, 'two\nlines'), 'x'),
    /file name contains a newline: "two\\nlines"/
  ],
  [
    'a file name with a backslash',
    d => writeFileSync(join(d, 'back\\slash'), 'x'),
    /file name contains a backslash: "back\\\\slash"/
  ]
];

describe('strings that would reach a host: refused before any login', () => {
  test.each(HOST_STRINGS)(
    '%s',
    async (_name, args, yaml, message) => refusedOffline(args, yaml, message),
    30_000
  );
});

describe('wrong configuration: refused before any login', () => {
  test.each(WRONG_CONFIG)(
    '%s',
    async (_name, args, yaml, message) => refusedOffline(args, yaml, message),
    30_000
  );
});

describe('hostile artifacts: refused before any login', () => {
  test.each(HOSTILE_ARTIFACTS)(
    '%s',
    async (name, build, message) =>
      refusedOffline(['--artifact', hostileArtifact(name.replace(/\W+/g, '-'), build)], '', message),
    30_000
  );

  test('a device file (only as root: mknod)', async () => {
    if (process.getuid?.() !== 0) return; // mknod needs root; CI runs as root
    const dir = hostileArtifact('device', d => execFileSync('mknod', [join(d, 'null'), 'c', '1', '3']));
    await refusedOffline(['--artifact', dir], '', /contains a character device at "null"/);
  }, 30_000);

  test('a setuid file deploys with the setuid bit stripped', async () => {
    const dir = hostileArtifact('setuid', d => {
      writeFileSync(join(d, 'tool'), '#!/bin/sh\n');
      chmodSync(join(d, 'tool'), 0o4755);
    });
    const r = await cli(['--artifact', dir, '--release-id', 'setuid-1']);
    expect(r.code).toBe(0);
    const mode = Number(
      execFileSync('stat', ['-c', '%a', join(t.target, 'current', 'tool')], { encoding: 'utf8' }).trim()
    );
    expect(mode).toBe(755);
  }, 30_000);
});

describe('what only the host can tell: a clear error, the live release untouched, no lock', () => {
  test('a host key that does not match the pin: nothing is sent', async () => {
    const before = live();
    const r = await cli([
      '--known-hosts',
      other.host.knownHostsLine.replace(`]:${other.host.port} `, `]:${t.host.port} `)
    ]);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/HOST KEY DOES NOT MATCH THE PIN/);
    expect(r.out).toMatch(/nothing was sent to the host/);
    expect([live(), unlocked()]).toEqual([before, true]);
  }, 30_000);

  test('a user key the host does not accept', async () => {
    const before = live();
    const r = await cli([], '', { DEPLOYGUARD_SSH_KEY: other.host.privateKey });
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/The server refused the key for deployguard-sandbox@127\.0\.0\.1/);
    expect([live(), unlocked()]).toEqual([before, true]);
  }, 30_000);

  test('an unreachable host (nothing listens on the port)', async () => {
    const before = live();
    const r = await cli(['--port', '1']);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/Nothing accepts connections on 127\.0\.0\.1:1/);
    expect(live()).toBe(before);
  }, 30_000);

  test('a deploy reason full of shell syntax lands in the host record as plain text', async () => {
    const marker = join(t.work, 'pwned');
    const reason = `fix $(touch ${marker}) \`touch ${marker}\` '; touch ${marker}; echo ' second part "quoted" \\ end`;
    const r = await cli(['--release-id', 'reason-1', '--reason', reason]);
    expect({ code: r.code, out: r.out.slice(-300) }).toMatchObject({ code: 0 });
    expect(existsSync(marker)).toBe(false);
    const last = JSON.parse(
      readFileSync(join(t.target, '.deployguard', 'deployments.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .at(-1)!
    ) as { reason?: string; why?: string };
    expect(last.why ?? last.reason).toBe(reason);
  }, 30_000);

  test('a full disk on the host (a 4 MiB tmpfs): the deploy is refused, the live release stays, no lock', async () => {
    if (process.getuid?.() !== 0) return; // mounting a tmpfs needs root; CI runs as root
    const mnt = join(t.work, 'small-disk');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0755', 'tmpfs', mnt]);
    try {
      execFileSync('chown', [`${t.host.user}:`, mnt]);
      const target = join(mnt, 'app');
      const small = await cli(['--target-path', target, '--release-id', 'small-1']);
      expect({ code: small.code, out: small.out.slice(-300) }).toMatchObject({ code: 0 });
      const big = hostileArtifact('big', d =>
        writeFileSync(join(d, 'blob.bin'), randomBytes(6 * 1024 * 1024))
      );
      const r = await cli(['--target-path', target, '--artifact', big, '--release-id', 'big-1']);
      expect(r.code).not.toBe(0);
      // The preflight finds the room short before the upload starts.
      expect(r.out).toMatch(/not enough free disk on .*small-disk/);
      expect(readlinkSync(join(target, 'current')).split('/').pop()).toBe('small-1');
      expect(readFileSync(join(target, 'current', 'VERSION'), 'utf8')).toBe('v1\n');
      expect(existsSync(join(target, '.deployguard', 'lock'))).toBe(false);
      // The half-written upload was removed: the disk has room again.
      expect(existsSync(join(target, '.deployguard', 'staging', 'big-1'))).toBe(false);
    } finally {
      execFileSync('umount', ['-l', mnt]);
    }
  }, 60_000);

  test('file names full of shell syntax deploy exactly as named, full and incremental, and nothing runs', async () => {
    const names = [
      '$(touch pwned-1)',
      '`touch pwned-2`',
      '; touch pwned-3',
      'quote\'in"side',
      '-rf',
      '*',
      '--help',
      'a b  c',
      '$HOME',
      'x && touch pwned-4 || y',
      // A byte order mark first: a UTF-8 decoder that drops it would look for another file.
      '\uFEFFbom first'
    ];
    const dir = hostileArtifact('shell-names', d => {
      mkdirSync(join(d, '$(dir)'));
      for (const n of names) writeFileSync(join(d, '$(dir)', n), `content of ${n}\n`);
      for (const n of names) writeFileSync(join(d, n), `top ${n}\n`);
    });
    const first = await cli(['--artifact', dir, '--release-id', 'names-1']);
    expect({ code: first.code, out: first.out.slice(-300) }).toMatchObject({ code: 0 });
    // Again with one file changed: the others are hard-linked by name, through the NUL-separated list.
    writeFileSync(join(dir, '$(dir)', '-rf'), 'changed\n');
    const second = await cli(['--artifact', dir, '--release-id', 'names-2']);
    expect({ code: second.code, out: second.out.slice(-300) }).toMatchObject({ code: 0 });
    expect(second.out).toMatch(/linked from names-1/);
    for (const n of names) {
      expect(readFileSync(join(t.target, 'current', n), 'utf8')).toBe(`top ${n}\n`);
      expect(readFileSync(join(t.target, 'current', '$(dir)', n), 'utf8')).toBe(
        n === '-rf' ? 'changed\n' : `content of ${n}\n`
      );
    }
    // Nothing ran: no pwned-* file anywhere the remote commands could have been.
    const home = execFileSync('sh', ['-c', `getent passwd ${t.host.user} | cut -d: -f6`], {
      encoding: 'utf8'
    }).trim();
    const found = execFileSync(
      'sh',
      ['-c', `find ${t.target} ${home} /tmp -maxdepth 4 -name 'pwned-*' 2>/dev/null || true`],
      {
        encoding: 'utf8'
      }
    );
    expect(found.trim()).toBe('');
  }, 60_000);

  test('20,000 files deploy and verify (a huge file count is not an error)', async () => {
    const dir = hostileArtifact('many', d => {
      for (let i = 0; i < 200; i++) {
        mkdirSync(join(d, `d${i}`));
        for (let j = 0; j < 100; j++) writeFileSync(join(d, `d${i}`, `f${j}`), `${i}.${j}\n`);
      }
    });
    const r = await cli(['--artifact', dir, '--release-id', 'many-1']);
    expect({ code: r.code, out: r.out.slice(-300) }).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/20001 files/);
    expect(readFileSync(join(t.target, 'current', 'd199', 'f99'), 'utf8')).toBe('199.99\n');
  }, 120_000);
});
