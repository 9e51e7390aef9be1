import {
  arr,
  bool,
  duration,
  enumOf,
  int,
  obj,
  optional,
  record,
  str,
  tagged,
  toJsonSchema,
  union,
  type Infer
} from './schema.js';

/**
 * The schema of deployguard.yml. The validator, the TypeScript type of a validated file and the
 * JSON Schema shipped for editors all come from this one definition.
 */

/**
 * Nodes shared with the action inputs and CLI flags (settings/inputs.ts): an input that overrides a
 * key is validated by that key's very node, so a flag can never accept what the file refuses.
 */
export const name = str({
  pattern: /^[A-Za-z0-9][A-Za-z0-9 ._@:-]{0,63}$/,
  expected: 'a short name (letters, digits, space, . _ @ : -)',
  example: 'web-1'
});
export const hostname = str({
  pattern: /^[A-Za-z0-9._:-]{1,253}$/,
  expected: 'a hostname or IP address',
  example: '203.0.113.10'
});
/**
 * Absolute, normalised (the lookahead refuses every `.` and `..` segment) and no characters that
 * make a path unsafe to read in logs.
 */
export const absPath = str({
  pattern: /^(?!.*\/\.\.?(?:\/|$))\/(?:[A-Za-z0-9._@+-]+\/?)*$/,
  expected: 'an absolute path of letters, digits and . _ @ + -, without `..`',
  example: '/srv/myapp'
});
const REL_ENTRY = /^(?!\/)(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9._@+/-]{1,255}$/;
const relEntry = str({
  pattern: REL_ENTRY,
  expected: 'a path relative to the release, without `..`',
  example: '.env'
});
/** Any path with no `..` segment (`/` or `\\` separated); control characters are refused by str(). */
const NO_DOTDOT = /^(?!.*(?:^|[\\/])\.\.(?:[\\/]|$)).{1,1024}$/;
/**
 * A path on the machine running deployguard, relative to the workspace or absolute; never `..`,
 * so a file named here cannot be one outside the tree the path seems to name.
 */
export const localPath = str({
  pattern: NO_DOTDOT,
  expected: 'a file path without `..` segments',
  example: 'certs/internal-ca.pem'
});
export const fingerprint = str({
  // 32 bytes are 43 base64 characters; the last carries 2 bits, so only 16 can end one.
  pattern: /^SHA256:[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=?$/,
  expected: 'a host key fingerprint like `SHA256:` followed by 43 base64 characters',
  example: 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s'
});
export const stages = arr(enumOf(['pre', 'post', 'schedule']), { minItems: 1, example: ['post'] });
export const command = str({ multiline: true, minLength: 1, example: 'npm ci --omit=dev' });

const retrying = {
  timeout: optional(duration({ min: '10ms', max: '10m', example: '5s' }), '5s'),
  retries: optional(int({ min: 0, max: 1000, example: 5 }), 0),
  interval: optional(duration({ min: '0s', max: '10m', example: '2s' }), '2s'),
  backoff: optional(
    int({ min: 1, max: 10, example: 2, description: 'Multiplies the interval after each failed attempt.' }),
    1
  ),
  deadline: optional(
    duration({
      min: '0s',
      max: '1h',
      example: '2m',
      description: 'No attempt starts after this long (0s: none).'
    }),
    '0s'
  ),
  stages: optional(stages)
} as const;

/** `${NAME}` in a value is replaced by the environment variable NAME; `$$` is a literal `$`. */
export const httpUrl = str({
  pattern: /^https?:\/\/\S+$/,
  expected: 'an http(s) URL',
  example: 'https://example.com/health'
});
export const port = int({ min: 1, max: 65535, example: 22 });
export const userName = str({
  pattern: /^[a-z_][a-z0-9_.-]{0,31}$/,
  expected: 'a user name',
  example: 'deploy'
});
export const hostKey = union([fingerprint, arr(fingerprint, { minItems: 1 })]);
/** A whole fleet's known_hosts (RSA lines are ~400 characters each) fits; a runaway value does not. */
export const knownHosts = str({
  multiline: true,
  minLength: 1,
  maxLength: 256 * 1024,
  example: '203.0.113.10 ssh-ed25519 AAAA…'
});
export const strategy = enumOf(['releases', 'in-place']);
export const artifact = str({ minLength: 1, example: 'dist/', description: 'File or directory to ship.' });
export const unitName = str({
  pattern: /^[A-Za-z0-9:_.@\\-]{1,255}$/,
  expected: 'a systemd unit name',
  example: 'myapp'
});
export const lockWait = duration({ max: '1h', example: '2m' });
export const maxParallel = union(
  [
    int({ min: 1, max: 500, example: 5 }),
    str({ pattern: /^(100|[1-9][0-9]?)%$/, expected: 'a percentage like 25%', example: '25%' })
  ],
  {
    description:
      'How many hosts deploy at once after the canaries: a number, or a percentage of the hosts (rounded up).'
  }
);
export const canary = int({
  min: 0,
  max: 500,
  example: 1,
  description:
    'Hosts deployed first, on their own, through their whole post-deploy window, before any other host starts.'
});
export const gitleaks = union([bool(), enumOf(['both', 'commits', 'artifact'])], {
  description: 'Secret scan before deploying: true (commits and artifact), commits, artifact, or false.'
});
export const stabilityWindow = duration({ min: '0s', max: '1h', example: '60s' });
export const comment = enumOf(['auto', 'pr', 'commit', 'both', 'none'], {
  description:
    'Where the deployment record is posted: auto (the pull request when there is one, else the commit), pr, commit, both or none.'
});
export const environmentUrl = str({
  pattern: /^https?:\/\/\S+$/,
  expected: 'an http(s) URL',
  example: 'https://app.example.com',
  description: "The deployed service's URL, shown in the record and in GitHub's deployment view."
});
export const githubDeployment = bool({
  description:
    'Create a GitHub deployment with statuses. Leave off when the job runs in an `environment:`: GitHub records that deployment itself.'
});
export const gitleaksConfig = str({
  pattern: NO_DOTDOT,
  expected: 'a file path without `..` segments',
  example: '.github/gitleaks.toml'
});
export const connectTimeout = duration({ min: '1s', max: '5m', example: '20s' });

const envTemplated = str({ maxLength: 4096, example: 'Bearer ${API_TOKEN}' });
const envMap = record(envTemplated, { keyPattern: /^[A-Za-z_][A-Za-z0-9_]{0,63}$/, maxKeys: 50 });
const headerMap = record(envTemplated, { keyPattern: /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/, maxKeys: 50 });
const where = optional(
  enumOf(['local', 'host'], { description: 'Where the command runs: here, or on every host over SSH.' }),
  'local'
);
const windowDuration = (dflt: string) => optional(duration({ min: '0s', max: '1h', example: dflt }), dflt);

/** How one SSH server is reached and trusted: a host, or the jump host in front of it. */
const reach = {
  host: hostname,
  port: optional(port, 22),
  user: optional(userName),
  'host-key': optional(hostKey),
  'known-hosts': optional(knownHosts),
  'ssh-key-env': optional(
    str({
      pattern: /^[A-Za-z_][A-Za-z0-9_]{0,63}$/,
      expected: 'an environment variable name',
      example: 'WEB2_SSH_KEY',
      description:
        "This host's own private key, read from this environment variable (secrets never go in this file); other hosts use the `ssh-key` input."
    })
  )
} as const;

export const configSchema = obj(
  {
    version: int({ min: 1, max: 1, description: 'The config format version.', example: 1 }),
    environment: optional(name),
    artifact: optional(artifact),
    exclude: optional(
      arr(str({ minLength: 1, example: '*.map' }), {
        description:
          'Files and directories left out of the upload, as .gitignore patterns: `*.map` matches at any depth, `/build` only at the root, `logs/` only directories, `**` spans directories, `!keep.map` re-includes (never inside an excluded directory), and `{a,b}` gives alternatives (`*.{map,ts}`). Limits: one `**` before the last segment, 16 segments, 1024 characters, 256 patterns after expansion.'
      }),
      []
    ),
    target: optional(
      obj({
        path: absPath,
        strategy: optional(strategy, 'releases'),
        'keep-releases': optional(int({ min: 1, max: 100, example: 5 }), 5),
        shared: optional(arr(relEntry, { example: ['.env', 'data/'] }), [])
      })
    ),
    hosts: optional(
      arr(
        obj({
          name: optional(name),
          ...reach,
          'proxy-jump': optional(
            obj(reach, {
              description:
                "Reach this host through a jump host (bastion) over SSH, as `ssh -J` does. The jump host has its own pin; its user and key default to this host's.",
              example: {
                host: 'bastion.example.com',
                user: 'jump',
                'host-key': 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s'
              }
            })
          )
        }),
        { minItems: 1, maxItems: 500 }
      )
    ),
    service: optional(
      tagged('manager', {
        none: {},
        systemd: {
          name: unitName,
          sudo: optional(bool(), false),
          settle: optional(duration({ max: '5m', example: '2s' }), '2s'),
          'start-timeout': optional(duration({ min: '1s', max: '30m', example: '60s' }), '60s'),
          switch: optional(
            enumOf(['restart', 'reload', 'blue-green'], {
              description:
                'How the new release takes over. `restart`: stop, switch, start (requests fail meanwhile). `reload`: switch, then `systemctl reload` (the unit must reload gracefully). `blue-green`: start the release on the idle one of two instances of the template unit `NAME@blue`/`NAME@green`, check it, flip the proxy, stop the old one after the drain.'
            }),
            'restart'
          ),
          'blue-green': optional(
            obj(
              {
                ports: obj({ blue: port, green: port }),
                // Default: <target>/upstream.conf. The proxy's config includes it.
                'upstream-file': optional(absPath),
                proxy: optional(enumOf(['nginx']), 'nginx'),
                drain: optional(
                  duration({
                    max: '1h',
                    example: '10s',
                    description:
                      'How long the old instance keeps running after the flip, for requests in flight.'
                  }),
                  '10s'
                )
              },
              { description: 'The two instances and the proxy of `switch: blue-green`.' }
            )
          )
        },
        command: {
          start: command,
          stop: optional(command),
          // Run by `switch: reload` after the switch: the service picks up the new release itself.
          reload: optional(command),
          switch: optional(enumOf(['restart', 'reload']), 'restart'),
          status: optional(command),
          pidfile: optional(absPath),
          'stop-grace': optional(duration({ max: '10m', example: '10s' }), '10s'),
          settle: optional(duration({ max: '5m', example: '2s' }), '2s'),
          'start-timeout': optional(duration({ min: '1s', max: '30m', example: '60s' }), '60s')
        }
      })
    ),
    checks: optional(
      arr(
        tagged('type', {
          http: {
            name,
            url: httpUrl,
            method: optional(enumOf(['GET', 'HEAD', 'POST', 'PUT', 'OPTIONS']), 'GET'),
            headers: optional(headerMap, {}),
            expect: optional(
              obj({
                status: optional(arr(int({ min: 100, max: 599, example: 200 }), { minItems: 1 }), [200]),
                'body-contains': optional(str({ minLength: 1, example: 'ok' })),
                'body-matches': optional(str({ minLength: 1, example: '"status":\\s*"up"' })),
                json: optional(
                  obj({
                    path: str({
                      pattern: /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/,
                      expected: 'a dot path like `checks.db`',
                      example: 'status'
                    }),
                    equals: union([str({ example: 'up' }), int({ example: 1 }), bool()])
                  })
                ),
                'max-latency': optional(duration({ min: '1ms', max: '10m', example: '800ms' }))
              }),
              {}
            ),
            'follow-redirects': optional(int({ min: 0, max: 10, example: 0 }), 0),
            'insecure-tls': optional(bool(), false),
            'ca-file': optional(localPath),
            ...retrying
          },
          tcp: {
            name,
            host: hostname,
            port: int({ min: 1, max: 65535, example: 5432 }),
            ...retrying
          },
          command: {
            name,
            run: command,
            on: where,
            env: optional(envMap, {}),
            ...retrying
          },
          process: {
            name,
            window: windowDuration('10s'),
            ...retrying
          },
          logs: {
            name,
            source: optional(enumOf(['journal', 'file']), 'journal'),
            path: optional(absPath),
            window: windowDuration('60s'),
            patterns: optional(arr(str({ minLength: 1, example: 'ERROR' }), { maxItems: 100 }), [
              'ERROR',
              'FATAL',
              'CRITICAL',
              'panic:',
              'Traceback (most recent call last)',
              'Unhandled'
            ]),
            ignore: optional(arr(str({ minLength: 1, example: 'ERROR_COUNT=0' }), { maxItems: 100 }), []),
            ...retrying
          },
          'file-fresh': {
            name,
            path: absPath,
            'max-age': duration({ min: '1s', max: '720h', example: '5m' }),
            ...retrying
          },
          version: {
            name,
            url: optional(
              str({
                pattern: /^https?:\/\/\S+$/,
                expected: 'an http(s) URL',
                example: 'https://example.com/version'
              })
            ),
            run: optional(command),
            on: where,
            expect: optional(enumOf(['commit', 'release']), 'commit'),
            ...retrying
          }
        }),
        { maxItems: 200 }
      ),
      []
    ),
    env: optional(
      record(str({ maxLength: 8192, example: '${DATABASE_URL}' }), {
        keyPattern: /^[A-Za-z_][A-Za-z0-9_]{0,127}$/,
        maxKeys: 200,
        description:
          "Environment variables written into each release as `env-file` (mode 0600, one `NAME='value'` line each), for the service to read (systemd `EnvironmentFile=`, `node --env-file`, `set -a; . ./.env`). `${NAME}` takes the value of the runner's environment variable NAME (a secret passed to the step); such values are masked and only the names are logged or recorded.",
        example: { NODE_ENV: 'production', DATABASE_URL: '${DATABASE_URL}' }
      }),
      {}
    ),
    'env-file': optional(
      str({
        pattern: REL_ENTRY,
        expected: 'a path relative to the release, without `..`',
        example: '.env',
        description:
          'Where in the release the `env:` variables are written. Each release has its own, so a rollback brings back the environment it ran with; it cannot be a `target.shared` entry.'
      }),
      '.env'
    ),
    deploy: optional(
      obj({
        'before-switch': optional(command),
        'run-once': optional(
          str({
            multiline: true,
            minLength: 1,
            example: 'npm run migrate',
            description:
              'Runs once per deploy, inside the new release on the first host (after its env file is written), before any host switches: database migrations. A failure stops the deploy with nothing switched. It is not undone by a rollback, so write migrations the previous release can still run with.'
          })
        ),
        'lock-wait': optional(lockWait, '2m'),
        'lock-ttl': optional(duration({ min: '10s', max: '24h', example: '2m' }), '2m'),
        'max-parallel': optional(maxParallel, 1),
        incremental: optional(
          bool({
            description:
              'Send only the files that differ from the previous release on each host, hard-linking the others (off when a before-switch command runs).'
          }),
          true
        ),
        canary: optional(canary, 0)
      }),
      {}
    ),
    'pre-deploy': optional(
      obj({
        'require-healthy': optional(bool(), true),
        gitleaks: optional(gitleaks, true),
        'gitleaks-config': optional(gitleaksConfig),
        'test-command': optional(command)
      }),
      {}
    ),
    'post-deploy': optional(
      obj({
        rollback: optional(enumOf(['auto', 'off']), 'auto'),
        'stability-window': optional(stabilityWindow, '30s')
      }),
      {}
    ),
    report: optional(
      obj({
        comment: optional(comment, 'auto'),
        'environment-url': optional(environmentUrl),
        'github-deployment': optional(githubDeployment, false)
      }),
      {}
    ),
    ssh: optional(
      obj({
        'connect-timeout': optional(connectTimeout, '20s'),
        'connect-retries': optional(int({ min: 0, max: 10, example: 3 }), 3),
        compress: optional(
          union([bool(), enumOf(['auto'])], {
            description:
              'zlib compression of the SSH stream, artifact included: auto (public hosts only; loopback and private networks are faster plain), true or false.'
          }),
          'auto'
        )
      }),
      {}
    )
  },
  { description: 'deployguard configuration (deployguard.yml).' }
);

export type ConfigFile = Infer<typeof configSchema>;

/** The JSON Schema of deployguard.yml, generated from the validator itself (deployguard.schema.json). */
export function configJsonSchema(): object {
  return toJsonSchema(configSchema, {
    title: 'deployguard.yml',
    id: 'https://deployguard.dev/deployguard.schema.json'
  });
}
