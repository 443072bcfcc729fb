import { ATTESTATION_CATALOGUE } from './attestation/errors.js';
import { AUDIT_CATALOGUE } from './audit/errors.js';
import { BACKUP_CATALOGUE } from './cas/backup/errors.js';
import { CAS_CATALOGUE } from './cas/errors.js';
import { STORE_CATALOGUE } from './cas/store/errors.js';
import { CLI_CATALOGUE } from './cli/errors.js';
import { ENCRYPTION_CATALOGUE } from './encryption/errors.js';
import type { ErrorEntry } from './errors.js';
import { SHIELD_CATALOGUE } from './fsshield/errors.js';
import { HELM_CATALOGUE } from './helm/errors.js';
import { IMAGE_CATALOGUE } from './images/errors.js';
import { MANIFEST_CATALOGUE } from './manifests/errors.js';
import { MESH_CATALOGUE } from './mesh/errors.js';
import { POLICY_CATALOGUE } from './policy/errors.js';
import { RUNTIME_CATALOGUE } from './runtime/errors.js';
import { SECRETS_CATALOGUE } from './secrets/errors.js';

/** A module's catalogue, as docs/errors.md and the catalogue tests read it. */
export interface ModuleCatalogue {
  module: string;
  errorClass: string;
  entries: Readonly<Record<string, ErrorEntry & { status?: number }>>;
}

/** Every module's error catalogue, in the order of docs/errors.md (the dependency order, lowest first). */
export const CATALOGUES: readonly ModuleCatalogue[] = [
  { module: 'policy', errorClass: 'PolicyError', entries: POLICY_CATALOGUE },
  { module: 'secrets', errorClass: 'SecretsError', entries: SECRETS_CATALOGUE },
  { module: 'attestation', errorClass: 'AttestationError', entries: ATTESTATION_CATALOGUE },
  { module: 'fsshield', errorClass: 'ShieldError', entries: SHIELD_CATALOGUE },
  { module: 'encryption', errorClass: 'EncryptionError', entries: ENCRYPTION_CATALOGUE },
  { module: 'audit', errorClass: 'AuditError', entries: AUDIT_CATALOGUE },
  { module: 'cas/store', errorClass: 'StoreError', entries: STORE_CATALOGUE },
  { module: 'cas', errorClass: 'CasError', entries: CAS_CATALOGUE },
  { module: 'cas/backup', errorClass: 'BackupError', entries: BACKUP_CATALOGUE },
  { module: 'runtime', errorClass: 'RuntimeError', entries: RUNTIME_CATALOGUE },
  { module: 'manifests', errorClass: 'ManifestError', entries: MANIFEST_CATALOGUE },
  { module: 'images', errorClass: 'ImageError', entries: IMAGE_CATALOGUE },
  { module: 'helm', errorClass: 'HelmError', entries: HELM_CATALOGUE },
  { module: 'mesh', errorClass: 'MeshError', entries: MESH_CATALOGUE },
  { module: 'cli', errorClass: 'CliError', entries: CLI_CATALOGUE },
];

const cell = (text: string) => text.replace(/\|/g, '\\|');

/** docs/errors.md: one table a module, made from the catalogues (`npm run docs:errors` writes it). */
export function errorsMarkdown(): string {
  const out = [
    '# Error codes',
    '',
    '<!-- Generated from the error catalogues (src/*/errors.ts) by `npm run docs:errors`; do not edit. -->',
    '',
    'Every error Veil reports carries one of these codes (`err.code`; the CLI prints it, the CAS API answers',
    '`{"error": {"code", "message", "hint"?, "issues"?}}`). Codes are stable: clients may switch on them.',
    'Messages say what failed and where; hints say what to do. A hint in the table is the default, used where the',
    'error is raised without a more specific one.',
  ];
  for (const { module, errorClass, entries } of CATALOGUES) {
    out.push('', `## ${module} (\`${errorClass}\`)`, '', ...table(Object.entries(entries)));
  }
  return `${out.join('\n')}\n`;
}

/** A module's table: the status column only for the CAS, the hint column only where there are default hints. */
function table(rows: Array<[string, ErrorEntry & { status?: number }]>): string[] {
  const withStatus = rows.some(([, e]) => e.status !== undefined);
  const withHint = rows.some(([, e]) => e.hint !== undefined);
  const head = ['code', ...(withStatus ? ['HTTP status'] : []), 'meaning', ...(withHint ? ['default hint'] : [])];
  const body = rows.map(([code, e]) => {
    const status = withStatus ? [String(e.status ?? '')] : [];
    return [`\`${code}\``, ...status, cell(e.summary), ...(withHint ? [cell(e.hint ?? '')] : [])];
  });
  return [head, head.map(() => '---'), ...body].map((cells) => `| ${cells.join(' | ')} |`);
}
