import { VeilError, type ErrorCatalogue } from '../errors.js';
import { issueLines, reportedIssues, type Issue } from '../issues.js';

export type ManifestErrorCode =
  | 'MANIFEST_YAML'
  | 'MANIFEST_SHAPE'
  | 'MANIFEST_REFERENCE'
  | 'MANIFEST_VARIABLE'
  | 'MANIFEST_UNSUPPORTED'
  | 'MANIFEST_BUNDLE';

/** One finding in a manifest, located by field path and (when known) line and column; the file is the error's. */
export type ManifestIssue = Omit<Issue, 'file'>;

export const MANIFEST_CATALOGUE: ErrorCatalogue<ManifestErrorCode> = {
  MANIFEST_YAML: {
    summary: 'the manifest is not valid YAML, or is too complex',
    hint: 'fix the YAML at the position shown',
  },
  MANIFEST_SHAPE: {
    summary: 'fields of the manifest are missing, unknown or of the wrong type',
    hint:
      'fix the fields listed (SCONE manifest format, apiVersion scone/5.8); ' +
      'unknown fields are refused so typos do not pass silently',
  },
  MANIFEST_REFERENCE: {
    summary: 'the manifest names something that is not defined (a secret, a service, a program)',
    hint: 'define what the manifest refers to, or correct the names',
  },
  MANIFEST_VARIABLE: {
    summary: 'a template variable has no value',
    hint:
      "give each variable a value in the mesh's env (service, helm or global), " +
      'or a default in the service manifest',
  },
  MANIFEST_UNSUPPORTED: {
    summary: "the manifest uses fields or images of SCONE's that Veil does not support (and nothing else is wrong)",
    hint:
      'remove the fields named, or replace them as their message says; the README section ' +
      '"SCONE\'s session language in Veil" lists what Veil refuses in manifests',
  },
  MANIFEST_BUNDLE: {
    summary: 'the mesh names a service whose bundle has not been built',
    hint: "run 'veil apply -f service.yaml' for the service first (with the same -t target directory)",
  },
};

/** Every problem of a manifest at once, one per line as file:line:col: path: message. */
export class ManifestError extends VeilError<ManifestErrorCode> {
  readonly issues: ManifestIssue[];

  constructor(
    code: ManifestErrorCode,
    issues: ManifestIssue[],
    file: string,
    opts: { hint?: string; cause?: unknown } = {},
  ) {
    super(code, formatIssues(issues, file), { hint: opts.hint ?? MANIFEST_CATALOGUE[code].hint, cause: opts.cause });
    this.issues = reportedIssues(issues);
  }
}

function formatIssues(issues: ManifestIssue[], file: string): string {
  const only = issues.length === 1 ? issues[0]! : undefined;
  if (only && only.path === '' && only.line === undefined) return `${file}: ${only.message}`;
  const head = `${file}: ${issues.length} ${issues.length === 1 ? 'error' : 'errors'}`;
  return [head, ...issueLines(issues, file)].join('\n');
}
