#!/usr/bin/env node
// Runs before `npm test`: on a fresh clone, installs the npm packages and (as root) the system
// packages the integration tests need, so `npm test` is the whole quickstart for the tests.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const run = (cmd, args, env = {}) =>
  execFileSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } });

if (!existsSync('node_modules/.bin/jest')) {
  console.log('deployguard: installing npm packages (npm ci)…');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}

const system = { '/usr/sbin/sshd': 'openssh-server', '/usr/sbin/debootstrap': 'debootstrap' };
const missing = Object.entries(system)
  .filter(([path]) => !existsSync(path))
  .map(([, pkg]) => pkg);
if (missing.length) {
  if (process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    console.log(`deployguard: installing ${missing.join(', ')} for the integration tests…`);
    run('apt-get', ['update', '-q']);
    run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], {
      DEBIAN_FRONTEND: 'noninteractive'
    });
  } else {
    console.error(
      `deployguard: the integration tests need: ${missing.join(', ')}. Install them with:\n  sudo apt-get install -y ${missing.join(' ')}`
    );
    process.exit(1);
  }
}
