import { VeilError, type ErrorCatalogue } from '../errors.js';

export type AuditErrorCode =
  | 'AUDIT_FORMAT'
  | 'AUDIT_CERTIFICATE'
  | 'AUDIT_EDITED'
  | 'AUDIT_REMOVED'
  | 'AUDIT_REORDERED'
  | 'AUDIT_LINK'
  | 'AUDIT_TRUNCATED'
  | 'AUDIT_ROLLBACK'
  | 'AUDIT_QUEUE_FULL'
  | 'AUDIT_CLOSED'
  | 'AUDIT_STORE';

export const AUDIT_CATALOGUE: ErrorCatalogue<AuditErrorCode> = {
  AUDIT_FORMAT: {
    summary:
      'a line of the audit export is not JSON, does not fit the format or is too long (or an event to record does not)',
    hint: 'verify the file exactly as `veil audit export` or GET /v1/audit wrote it',
  },
  AUDIT_CERTIFICATE: {
    summary: "an audit certificate is not issued by the given CA, lacks digitalSignature, or is not the export's",
    hint: 'pass the CA certificate of the CAS that wrote the log (--ca); a certificate the CA did not issue is forged',
  },
  AUDIT_EDITED: {
    summary: "an entry's hash or signature does not match its content: it was changed after the CAS signed it",
    hint: 'the entry named was edited; take the log from another copy and compare',
  },
  AUDIT_REMOVED: {
    summary: 'entries are missing: a sequence number was skipped',
    hint: 'entries were deleted from the log; take it from another copy',
  },
  AUDIT_REORDERED: {
    summary: 'an entry comes out of order (an earlier sequence number after a later one, or one repeated)',
    hint: 'entries were moved, swapped or duplicated; take the log from another copy',
  },
  AUDIT_LINK: {
    summary: "an entry's prev is not the hash of the entry before it: it belongs to another chain",
    hint: 'entries were spliced in from another log; take the log from another copy',
  },
  AUDIT_TRUNCATED: {
    summary: 'the export ends early: its signed trailer is missing, or states a head the entries do not reach',
    hint: 'the file was cut short (copy, disk full) or its last entries removed; export it again',
  },
  AUDIT_ROLLBACK: {
    summary: 'the log is older than the head seen before, or has another entry at that head (a fork)',
    hint: 'the CAS or its store was rolled back to an older state, or the log replaced: investigate before trusting it',
  },
  AUDIT_QUEUE_FULL: {
    summary: 'too many audit events wait to be written; the operation that needs one is refused',
    hint: 'the store is slow or unreachable; retry shortly and check the store',
  },
  AUDIT_CLOSED: { summary: 'the audit log is closed (the CAS is stopping)', hint: 'retry against a running CAS' },
  AUDIT_STORE: {
    summary: 'the audit entry could not be written to the store; the operation that needs it is refused',
    hint: 'check the store (disk, database); nothing was recorded for this operation',
  },
};

/**
 * Errors of the audit log. A verification error names the first bad line of the export (1-based, the header is
 * line 1) and, when it could be read, that entry's seq.
 */
export class AuditError extends VeilError<AuditErrorCode> {
  readonly line: number | undefined;
  readonly seq: number | undefined;

  constructor(
    code: AuditErrorCode,
    message: string,
    options: { hint?: string; cause?: unknown; line?: number; seq?: number } = {},
  ) {
    super(code, message, { hint: options.hint ?? AUDIT_CATALOGUE[code].hint, cause: options.cause });
    this.line = options.line;
    this.seq = options.seq;
  }
}
