import { execFileSync } from 'node:child_process';
import { lines, quote, remoteCommandLine, sh, userScript } from '../../src/remote/shell.js';
import { HOSTILE } from '../helpers/hostile.js';

/** Runs a command line the way sshd does: the login shell parses it with `-c`. */
function viaLoginShell(commandLine: string, shell = 'bash'): string {
  return execFileSync(shell, ['-c', commandLine], { encoding: 'utf8' });
}

describe('quote', () => {
  test.each(HOSTILE)('%j reaches the remote shell as literal data', value => {
    const out = viaLoginShell(remoteCommandLine(sh`printf '%s' ${value}`));
    expect(out).toBe(value);
  });

  test.each(HOSTILE)('%j survives dash as the login shell too', value => {
    expect(viaLoginShell(remoteCommandLine(sh`printf '%s' ${value}`), 'dash')).toBe(value);
  });

  test('leaves plain words readable and quotes the rest', () => {
    expect(quote('/srv/my-app/releases/20261126-abc')).toBe('/srv/my-app/releases/20261126-abc');
    expect(quote('a b')).toBe("'a b'");
    expect(quote("it's")).toBe("'it'\\''s'");
    expect(quote('')).toBe("''");
  });

  test('refuses NUL, which no shell word can carry', () => {
    expect(() => quote('a\0b')).toThrow(/NUL/);
  });

  test('arrays become several words, each quoted', () => {
    expect(sh`rm -rf -- ${['/a b', '/c']}`.text).toBe("rm -rf -- '/a b' /c");
  });
});

describe('remoteCommandLine', () => {
  test('runs with errexit: a failing line fails the script', () => {
    const cmd = remoteCommandLine(lines(sh`false`, sh`echo not reached`));
    expect(() => viaLoginShell(cmd)).toThrow();
  });

  test('runs with nounset: an unset variable fails the script', () => {
    expect(() => viaLoginShell(remoteCommandLine(sh`echo "$DEPLOYGUARD_SURELY_UNSET"`))).toThrow();
  });

  test('runs where the login shell is restricted (rbash refuses `exec` and commands with a slash)', () => {
    const cmd = remoteCommandLine(lines(sh`echo one`, sh`echo two`));
    expect(execFileSync('bash', ['-r', '-c', cmd], { encoding: 'utf8' })).toBe('one\ntwo\n');
  });

  test('a user script runs in its own shell and its failure is the script failure', () => {
    expect(viaLoginShell(remoteCommandLine(userScript('echo one; echo two')))).toBe('one\ntwo\n');
    expect(() => viaLoginShell(remoteCommandLine(userScript('false; echo after')))).toThrow();
  });
});
