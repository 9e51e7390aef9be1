/**
 * gitleaks findings as SARIF 2.1.0, for `github/codeql-action/upload-sarif` (code scanning).
 * Built from deployguard's findings, so it holds what they hold: file, lines, rule, commit and
 * the gitleaks fingerprint. Never the secret, nor even the redacted excerpt.
 */
import { writePrivateFile } from '../io/private-dir.js';
import type { Finding } from './gitleaks.js';

export interface SarifOptions {
  /**
   * The path (relative to the repository root) that artifact findings are placed under, so they
   * stay apart from the repo's own files and keep stable URIs from run to run. Default: `artifact`.
   */
  readonly artifactRoot?: string;
}

const SCHEMA = 'https://json.schemastore.org/sarif-2.1.0.json';
const INFORMATION_URI = 'https://github.com/gitleaks/gitleaks';
/** GitHub ranks code-scanning alerts by this (0-10): a leaked secret is critical. */
const SECURITY_SEVERITY = '9.0';
const FINGERPRINT_KEY = 'gitleaksFingerprint/v1';

export function toSarif(
  findings: readonly Finding[],
  tool: { readonly version: string },
  opts: SarifOptions = {}
): object {
  const artifactRoot = cleanPath(opts.artifactRoot ?? 'artifact') || 'artifact';
  const ruleIds = [...new Set(findings.map(f => f.rule))].sort();
  const ruleIndex = new Map(ruleIds.map((id, i) => [id, i]));
  const rules = ruleIds.map(id => {
    const description = findings.find(f => f.rule === id && f.description)?.description ?? id;
    return {
      id,
      name: ruleName(id),
      shortDescription: { text: description },
      fullDescription: { text: description },
      helpUri: INFORMATION_URI,
      help: {
        text: `${description}\nRotate the secret first (it is in the history or the artifact), then remove it.`
      },
      defaultConfiguration: { level: 'error' },
      properties: {
        tags: ['security', 'secret', 'gitleaks'],
        precision: 'high',
        'security-severity': SECURITY_SEVERITY
      }
    };
  });

  const results = findings.map(f => {
    const uri = f.source === 'artifact' ? `${artifactRoot}/${cleanPath(f.file)}` : cleanPath(f.file);
    const startLine = Math.max(1, f.line);
    const endLine = Math.max(startLine, f.endLine);
    return {
      ruleId: f.rule,
      ruleIndex: ruleIndex.get(f.rule)!,
      level: 'error',
      message: { text: messageText(f) },
      locations: [
        {
          physicalLocation: {
            artifactLocation: { uri: encodeUri(uri), uriBaseId: '%SRCROOT%' },
            region: { startLine, endLine }
          }
        }
      ],
      partialFingerprints: { [FINGERPRINT_KEY]: f.fingerprint },
      properties: { source: f.source, ...(f.commit ? { commit: f.commit } : {}) }
    };
  });

  return {
    $schema: SCHEMA,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'gitleaks',
            informationUri: INFORMATION_URI,
            version: tool.version,
            semanticVersion: tool.version.replace(/^v/, ''),
            rules
          }
        },
        automationDetails: { id: 'deployguard/gitleaks/' },
        results
      }
    ]
  };
}

function messageText(f: Finding): string {
  const where =
    f.source === 'artifact' ? 'in the build artifact' : f.commit ? `in commit ${f.commit.slice(0, 12)}` : '';
  const by = f.author ? ` by ${f.author}` : '';
  return `${f.description || f.rule} (${f.rule})${where ? ` ${where}` : ''}${by}.`;
}

/** `aws-access-token` -> `AwsAccessToken` (SARIF's rule name is a PascalCase identifier). */
function ruleName(id: string): string {
  return id
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map(w => w[0]!.toUpperCase() + w.slice(1))
    .join('');
}

/** POSIX, no leading `./` or `/`, no trailing `/`. */
function cleanPath(p: string): string {
  return p
    .replace(/\\/g, '/')
    .replace(/^(\.\/)+/, '')
    .replace(/^\/+/, '')
    .replace(/\/+$/, '');
}

/** A relative URI reference: each segment percent-encoded, the slashes kept. */
function encodeUri(p: string): string {
  return p.split('/').map(encodeURIComponent).join('/');
}

/** The SARIF report's file name in the run's private directory. */
export const SARIF_FILE = 'deployguard-gitleaks.sarif';

/**
 * Writes the SARIF report as a new file (mode 0600, never through a symlink) in `dir`, the run's
 * private directory, and returns its path.
 */
export function writeSarif(
  dir: string,
  findings: readonly Finding[],
  tool: { readonly version: string },
  opts: SarifOptions = {}
): string {
  return writePrivateFile(dir, SARIF_FILE, JSON.stringify(toSarif(findings, tool, opts), null, 2));
}
