/**
 * Where editors find the schema of deployguard.yml: the `deployguard.schema.json` this repository
 * ships at its root, at the major-version tag users pin the action to (`uses: org/deployguard@v1`),
 * so completion matches the keys their version accepts and needs nothing installed next to the
 * file (the CLI may be installed globally; an action user has no copy at all).
 */
export const SCHEMA_URL = 'https://raw.githubusercontent.com/org/deployguard/v1/deployguard.schema.json';

/**
 * What `deployguard init` writes: the common case and nothing more. One host, a systemd service,
 * one HTTP check; everything else keeps its default. Parses without errors as it stands, given
 * only the SSH key (which never goes in the file).
 */
export const STARTER_CONFIG = `# yaml-language-server: $schema=${SCHEMA_URL}
# deployguard.yml: what to ship, where, and how to tell it works.
# The SSH private key never goes here: it comes from DEPLOYGUARD_SSH_KEY (or the ssh-key input).
version: 1
environment: production

artifact: dist/                 # the file or directory to ship
target:
  path: /srv/myapp              # releases/<id> and a "current" symlink to the live one

hosts:
  - name: web-1
    host: 203.0.113.10
    user: deploy
    # Pin the host key: run \`deployguard pin 203.0.113.10\`, check the fingerprint it prints
    # on the host itself, then uncomment this line with the line it printed:
    # known-hosts: "203.0.113.10 ssh-ed25519 AAAA..."

service:
  manager: systemd
  name: myapp                   # the unit, myapp.service, running /srv/myapp/current
  sudo: true                    # runs "sudo -n systemctl ..." as the deploy user

checks:
  - name: health
    type: http
    url: https://myapp.example.com/health
    expect: { status: [200] }
`;
