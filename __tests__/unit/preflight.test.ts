import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dryRun } from '../../src/deploy.js';
import {
  diskNeeded,
  hostPreflight,
  judgePreflight,
  parsePreflight,
  preflightProbe,
  renderPreflight,
  sudoersLine
} from '../../src/preflight.js';
import { preflightScript } from '../../src/remote/commands.js';
import { layoutFor } from '../../src/remote/layout.js';
import { BASE_INPUTS, settingsFrom } from '../helpers/settings.js';

const systemd = (extra = '') =>
  settingsFrom(
    BASE_INPUTS,
    ['version: 1', 'service: { manager: systemd, name: myapp, sudo: true }', extra].join('\n')
  );
const host = systemd().hosts[0]!;

/** What the script prints on a host where everything is in order. */
const GOOD = [
  'path-systemctl=/usr/bin/systemctl',
  'path-journalctl=/usr/bin/journalctl',
  'disk-dir=/srv',
  'disk-free-kb=1048576',
  'unit-LoadState=loaded',
  'unit-ActiveState=active',
  'unit-SubState=running',
  'unit-FragmentPath=/etc/systemd/system/myapp.service',
  'unit-WorkingDirectory=/srv/app/current',
  'unit-ExecStart={ path=/usr/bin/node ; argv[]=/usr/bin/node /srv/app/current/server.js ; ignore_errors=no }',
  'sudo-0=yes',
  'sudo-1=yes',
  'sudo-2=yes',
  'sudo-3=yes'
].join('\n');

const judge = (out: string, need = { bytes: 10 * 1024 * 1024, files: 10 }, s = systemd()) =>
  judgePreflight(s, host, parsePreflight(out), need);
const level = (out: string, check: string) => judge(out).find(f => f.check === check);

describe('the preflight script', () => {
  test('asks sudo about exactly the deploy’s systemd commands', () => {
    const s = systemd();
    const text = preflightScript(layoutFor(s.target), preflightProbe(s)).text;
    const asked = text.split('\n').filter(l => l.includes('sudo -n -l'));
    expect(asked).toEqual([
      'if sudo -n -l systemctl stop -- myapp >/dev/null 2>&1; then echo sudo-0=yes; else echo sudo-0=no; fi',
      'if sudo -n -l systemctl start -- myapp >/dev/null 2>&1; then echo sudo-1=yes; else echo sudo-1=no; fi',
      'if sudo -n -l systemctl show -p ActiveState -p SubState -p MainPID -p NRestarts -- myapp >/dev/null 2>&1; then echo sudo-2=yes; else echo sudo-2=no; fi',
      'if sudo -n -l journalctl -u myapp -n 30 --no-pager -o short-iso >/dev/null 2>&1; then echo sudo-3=yes; else echo sudo-3=no; fi'
    ]);
    expect(text.split('\n')[0]).toBe(
      'for tool in cat cp cut date df head ln ls mkdir mv nproc readlink rm rmdir sha256sum sleep split stat tail touch ' +
        'find xargs grep sed awk tar systemctl journalctl sudo; do command -v "$tool" >/dev/null 2>&1 || echo "missing-tool=$tool"; done'
    );
  });

  test('without sudo, nothing is asked of sudo and sudo is not a needed tool', () => {
    const s = settingsFrom(BASE_INPUTS, 'version: 1\nservice: { manager: systemd, name: myapp }');
    const text = preflightScript(layoutFor(s.target), preflightProbe(s)).text;
    expect(text).not.toContain('sudo');
  });
});

describe('judging the facts', () => {
  test('a host in order: every check ok', () => {
    expect(judge(GOOD).map(f => `${f.check}:${f.level}`)).toEqual([
      'tools:ok',
      'write:ok',
      'disk:ok',
      'unit:ok',
      'sudo:ok'
    ]);
  });

  test('sudo refused: the exact sudoers line, with the host’s real paths', () => {
    const f = level(
      GOOD.replace('sudo-1=yes', 'sudo-1=no').replace('/usr/bin/journalctl', '/bin/journalctl'),
      'sudo'
    );
    expect(f).toEqual({
      check: 'sudo',
      level: 'fail',
      message: 'deploy may not run without a password: sudo -n systemctl start -- myapp',
      fix:
        'add this line with: visudo -f /etc/sudoers.d/deployguard\n' +
        'deploy ALL=(root) NOPASSWD: /usr/bin/systemctl stop -- myapp, /usr/bin/systemctl start -- myapp, ' +
        '/usr/bin/systemctl show -p ActiveState -p SubState -p MainPID -p NRestarts -- myapp, ' +
        '/bin/journalctl -u myapp -n 30 --no-pager -o short-iso'
    });
  });

  test('a journal logs check adds its commands to the sudoers line, escaped for sudoers', () => {
    const s = systemd('checks: [{ name: logs, type: logs, source: journal, window: 5s }]');
    expect(sudoersLine(s, 'deploy', new Map())).toBe(
      'deploy ALL=(root) NOPASSWD: /usr/bin/systemctl stop -- myapp, /usr/bin/systemctl start -- myapp, ' +
        '/usr/bin/systemctl show -p ActiveState -p SubState -p MainPID -p NRestarts -- myapp, ' +
        '/usr/bin/journalctl -u myapp -n 30 --no-pager -o short-iso, ' +
        '/usr/bin/systemctl show --timestamp\\=us+utc -p LoadState -p ActiveState -p InvocationID -p ActiveEnterTimestamp -p ExecMainStartTimestamp -- myapp, ' +
        '/usr/bin/systemctl show -p LoadState -p ActiveState -p InvocationID -p ActiveEnterTimestamp -p ExecMainStartTimestamp -- myapp, ' +
        '/usr/bin/journalctl --no-pager -o cat --show-cursor _SYSTEMD_INVOCATION_ID\\=*'
    );
  });

  test('an unknown unit: the unit file to create', () => {
    expect(level(GOOD.replace('LoadState=loaded', 'LoadState=not-found'), 'unit')).toEqual({
      check: 'unit',
      level: 'fail',
      message: 'the systemd unit myapp does not exist on the host (service.name in the config)',
      fix: 'create /etc/systemd/system/myapp.service with WorkingDirectory=/srv/app/current and an ExecStart= that runs the app from /srv/app/current, then run: systemctl daemon-reload (or correct service.name)'
    });
  });

  test('a unit running from elsewhere: a warning, the line to change', () => {
    const out = GOOD.replace(/\/srv\/app\/current/g, '/opt/app');
    expect(level(out, 'unit')).toEqual({
      check: 'unit',
      level: 'warn',
      message:
        'the unit myapp does not run from /srv/app/current (WorkingDirectory=/opt/app, ExecStart=/usr/bin/node /opt/app/server.js): deploying would not change what runs',
      fix: 'in /etc/systemd/system/myapp.service, change WorkingDirectory=/opt/app to WorkingDirectory=/srv/app/current and make ExecStart= run the app from /srv/app/current, then: systemctl daemon-reload'
    });
    // ExecStart alone under current is enough (a unit with no WorkingDirectory).
    const exec = GOOD.replace('unit-WorkingDirectory=/srv/app/current', 'unit-WorkingDirectory=');
    expect(level(exec, 'unit')!.level).toBe('ok');
  });

  test('missing tools: named, with the packages to install', () => {
    const f = level(`missing-tool=sha256sum\nmissing-tool=tar\nmissing-tool=split\n${GOOD}`, 'tools');
    expect(f).toEqual({
      check: 'tools',
      level: 'fail',
      message: 'missing on the host: sha256sum, tar, split',
      fix: 'apt-get install coreutils tar (the packages that ship them)'
    });
  });

  test('sudo not installed: one finding that says to install it first, not "may not run without a password"', () => {
    const f = level(`missing-tool=sudo\n${GOOD}`, 'sudo');
    expect(f).toMatchObject({
      check: 'sudo',
      level: 'fail',
      message: 'sudo is not installed, and service.sudo is on',
      fix: expect.stringMatching(/^install sudo \(apt-get install -y sudo\), then add this line/)
    });
  });

  test('a unit systemctl cannot describe: the command to try, and what it means', () => {
    const f = level(GOOD.replace('unit-LoadState=loaded', 'unit-LoadState=unreadable'), 'unit');
    expect(f).toMatchObject({
      level: 'fail',
      fix: expect.stringContaining('systemctl show -p LoadState -- myapp')
    });
  });

  test('disk: the artifact, a block per file and a margin must fit', () => {
    expect(diskNeeded({ bytes: 10 * 1024 * 1024, files: 256 }, 'releases')).toBe(
      10 * 1024 * 1024 + 256 * 4096 + 1024 * 1024
    );
    expect(diskNeeded({ bytes: 0, files: 0 }, 'in-place')).toBe(1024 * 1024);
    const short = GOOD.replace('disk-free-kb=1048576', 'disk-free-kb=4096');
    expect(level(short, 'disk')).toEqual({
      check: 'disk',
      level: 'fail',
      message:
        'not enough free disk on /srv: 4.0 MiB free, the upload needs about 11.0 MiB (10.0 MiB in 10 files, plus margin)',
      fix: 'free at least 7.0 MiB on that filesystem (old releases: lower target.keep-releases), or set target.path on a larger one'
    });
    // No upload (a reused release, a rollback): no disk check at all.
    expect(judgePreflight(systemd(), host, parsePreflight(short)).some(f => f.check === 'disk')).toBe(false);
  });

  test('a directory the deploy user cannot write: the command that fixes it', () => {
    expect(level(`unwritable=/srv\n${GOOD}`, 'write')).toEqual({
      check: 'write',
      level: 'fail',
      message: 'deploy cannot write /srv, where the deploy creates its releases, state and lock',
      fix: 'as root: install -d -o deploy -g deploy /srv/app (or chown -R deploy: the existing directories)'
    });
  });
});

describe('renderPreflight', () => {
  test('one block per host, each finding with its fix, and how it ended', () => {
    const report = {
      ok: false,
      hosts: [
        hostPreflight('web-1', [
          { check: 'login', level: 'ok', message: 'logged in as deploy' },
          {
            check: 'sudo',
            level: 'fail',
            message: 'deploy may not run …',
            fix: 'add this line:\ndeploy ALL=…'
          }
        ]),
        hostPreflight('web-2', [
          { check: 'unit', level: 'warn', message: 'runs from elsewhere', fix: 'change it' }
        ])
      ]
    } as const;
    expect(renderPreflight(report)).toBe(
      [
        'web-1: NOT ready',
        '  ✓ login: logged in as deploy',
        '  ✗ sudo: deploy may not run …',
        '    fix: add this line:',
        '      deploy ALL=…',
        '',
        'web-2: ready',
        '  ! unit: runs from elsewhere',
        '    fix: change it',
        '',
        'preflight FAILED on 1 of 2 hosts; nothing was changed'
      ].join('\n')
    );
    expect(renderPreflight({ ok: true, hosts: [report.hosts[1]] })).toMatch(
      /preflight passed on 1 host \(1 with warnings\); nothing was changed$/
    );
  });
});

describe('the dry run', () => {
  test('prints the preflight with the host-state read, sudo questions included', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dg-dry-'));
    await writeFile(join(dir, 'app.js'), 'x');
    const s = settingsFrom(
      { ...BASE_INPUTS, artifact: dir },
      'version: 1\nservice: { manager: systemd, name: myapp, sudo: true }'
    );
    const text = await dryRun(s);
    expect(text).toContain('0b. Read the host state, with the preflight');
    expect(text).toContain('sudo -n -l systemctl stop -- myapp');
  });
});

describe('in place', () => {
  const s = settingsFrom(
    { ...BASE_INPUTS, 'target-path': '/srv/app' },
    'version: 1\ntarget: { path: /srv/app, strategy: in-place }\nservice: { manager: systemd, name: myapp }'
  );

  test('the deploy creates beside the target: its parent must be writable, and the live tree is the target', () => {
    const probe = preflightProbe(s);
    expect(probe.creates).toEqual(['/srv/.app.deployguard/lock', '/srv/app']);
    const f = judgePreflight(s, host, parsePreflight(`unwritable=/srv\n${GOOD}`.replace(/\/current/g, '')));
    expect(f.find(x => x.check === 'write')!.fix).toBe(
      'as root: install -d -o deploy -g deploy /srv/.app.deployguard && chown deploy: /srv (or chown -R deploy: the existing directories)'
    );
    expect(f.find(x => x.check === 'unit')).toMatchObject({
      level: 'ok',
      message: 'unit myapp runs from /srv/app (active)'
    });
  });

  test('the old tree is copied aside first: about twice the room', () => {
    expect(diskNeeded({ bytes: 10 * 1024 * 1024, files: 0 }, 'in-place')).toBe(21 * 1024 * 1024);
  });
});
