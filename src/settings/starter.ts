/** What `deployguard init` writes: a valid, commented deployguard.yml with one check of each kind. */
export const STARTER_CONFIG = `# deployguard.yml: the deploy checklist, as data. Schema: deployguard.schema.json
version: 1
environment: production

# What to ship, and where.
artifact: dist/
exclude: ['*.map']
target:
  path: /srv/myapp
  strategy: releases        # releases/<id> + an atomic "current" symlink; or in-place
  keep-releases: 5          # failed releases never count toward this
  shared: [.env]            # linked from /srv/myapp/shared into every release

# Pin every host key: get it out of band (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the host).
hosts:
  - name: web-1
    host: 203.0.113.10
    user: deploy
    host-key: SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s

service:
  manager: systemd
  name: myapp
  sudo: true                # the deploy user runs "sudo -n systemctl ..."

checks:
  # The service answers (from where deployguard runs). Header values may use \${ENV} and are masked.
  - name: API health
    type: http
    url: https://myapp.example.com/health
    headers: { Authorization: "Bearer \${HEALTH_TOKEN}" }
    expect: { status: [200], body-contains: ok, max-latency: 2s }
    timeout: 5s
    retries: 10
    interval: 2s

  # A dependency is reachable.
  - name: database port
    type: tcp
    host: 127.0.0.1
    port: 5432
    stages: [pre, schedule]

  # Your existing health script, on every host.
  - name: health script
    type: command
    run: ./bin/health_check
    on: host
    stages: [post, schedule]

  # Active is not running: same main PID, no restarts, for the whole window.
  - name: process stable
    type: process
    window: 20s
    stages: [post]

  # The first minute of logs after the (re)start is clean.
  - name: clean logs
    type: logs
    source: journal
    window: 60s
    patterns: [ERROR, FATAL, Traceback]
    stages: [post]

  # Data is flowing: this file is written every few minutes.
  - name: data flowing
    type: file-fresh
    path: /srv/myapp/shared/last-ingest
    max-age: 10m
    stages: [pre, schedule]

  # The new code answers, not a stale process: /version reports the deployed commit.
  - name: new version answers
    type: version
    url: https://myapp.example.com/version
    expect: commit
    stages: [post]

pre-deploy:
  require-healthy: true     # production must be healthy before a deploy

post-deploy:
  stability-window: 60s     # keep checking this long after the switch
  rollback: auto
`;
