import { VeilError } from '../errors.js';

export type ManifestErrorCode =
  | 'MANIFEST_YAML'
  | 'MANIFEST_SHAPE'
  | 'MANIFEST_REFERENCE'
  | 'MANIFEST_VARIABLE'
  | 'MANIFEST_FILE'
  | 'MANIFEST_UNSUPPORTED'
  | 'MANIFEST_BUNDLE';

/** One finding in a manifest, located by field path and (when known) line and column. */
export interface ManifestIssue {
  path: string;
  message: string;
  line?: number;
  column?: number;
}

const HINTS: Record<ManifestErrorCode, string> = {
  MANIFEST_YAML: 'fix the YAML at the position shown',
  MANIFEST_SHAPE: 'fix the fields listed (SCONE manifest format, apiVersion scone/5.8); unknown fields are refused so typos do not pass silently',
  MANIFEST_REFERENCE: 'define what the manifest refers to, or correct the names',
  MANIFEST_VARIABLE: "give each variable a value in the mesh's env (service, helm or global), or a default in the service manifest",
  MANIFEST_FILE: 'check the path: files are read relative to the manifest',
  MANIFEST_UNSUPPORTED: 'remove the field, or use a supported alternative (see docs/manifests.md)',
  MANIFEST_BUNDLE: "run 'veil apply -f service.yaml' for the service first (with the same -t target directory)",
};

/** Every problem of a manifest at once, one per line as file:line:col: path: message. */
export class ManifestError extends VeilError<ManifestErrorCode> {
  readonly issues: ManifestIssue[];

  constructor(code: ManifestErrorCode, issues: ManifestIssue[], file: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(code, formatIssues(issues, file), { hint: opts.hint ?? HINTS[code], cause: opts.cause });
    this.issues = issues;
  }
}

function formatIssues(issues: ManifestIssue[], file: string): string {
  if (issues.length === 1 && issues[0]!.path === '' && issues[0]!.line === undefined) return `${file}: ${issues[0]!.message}`;
  const head = `${file}: ${issues.length} ${issues.length === 1 ? 'error' : 'errors'}`;
  const lines = issues.map((i) => `  ${i.line !== undefined ? `${file}:${i.line}:${i.column ?? 1}` : file}: ${i.path ? `${i.path}: ` : ''}${i.message}`);
  return [head, ...lines].join('\n');
}
