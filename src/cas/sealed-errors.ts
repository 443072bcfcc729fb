import { CasError, type CasErrorCode, type CasIssue } from './errors.js';

/**
 * Refusals that say nothing of an upload's text: who may do what, which version is current, sizes. Every other
 * refusal of an upload that arrived encrypted is withheld to its code, field paths and positions (default deny:
 * a code added later is withheld until it is listed here), since parse errors quote the line and values.
 */
const TEXT_FREE: ReadonlySet<CasErrorCode> = new Set<CasErrorCode>([
  'CAS_FORBIDDEN',
  'CAS_SIGNATURES_MISSING',
  'CAS_SIGNATURE_INVALID',
  'CAS_SESSION_EXISTS',
  'CAS_STALE_PREDECESSOR',
  'CAS_PAYLOAD_TOO_LARGE',
  'CAS_REQUEST_TIMEOUT',
  'CAS_UNAUTHENTICATED',
]);

const WITHHELD = 'withheld: the upload was encrypted';

/** The refusal of an encrypted upload as its carrier may see it. */
export function sealedRefusal(err: unknown): unknown {
  if (!(err instanceof CasError) || TEXT_FREE.has(err.code)) return err;
  const issues: CasIssue[] = (err.issues ?? []).map((i) => ({
    path: i.path,
    message: WITHHELD,
    ...(i.line === undefined ? {} : { line: i.line }),
    ...(i.column === undefined ? {} : { column: i.column }),
  }));
  const where = issues.map((i) => (i.line === undefined ? at(i) : `${at(i)} (line ${i.line}, column ${i.column})`));
  const message =
    `the session inside the encrypted upload is refused (${err.code}); its text and values are withheld, ` +
    `since the upload was encrypted${where.length > 0 ? `: ${where.join('; ')}` : ''}`;
  return new CasError(err.code, message, {
    hint: "check the plaintext session where it was written: 'veil session check FILE' shows the full message",
    ...(issues.length > 0 ? { issues } : {}),
  });
}

const at = (issue: CasIssue) => (issue.path === '' ? 'the document' : issue.path);
