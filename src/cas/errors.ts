import { VeilError, type ErrorEntry } from '../errors.js';
import { reportedIssues, type Issue } from '../issues.js';

/** A CAS code's entry: its HTTP status beside its meaning. */
export interface CasErrorEntry extends ErrorEntry {
  status: number;
}

/**
 * The CAS's error catalogue: every code the HTTP API can answer with, its status and its meaning.
 * Clients switch on `code`; the status follows HTTP semantics so curl users see the right class of failure.
 * Only what the CAS itself fails at is a 5xx: no input may give one.
 */
export const CAS_CATALOGUE = {
  CAS_BAD_REQUEST: { status: 400, summary: 'the request is malformed (body, path, query or headers)' },
  CAS_POLICY_INVALID: { status: 400, summary: 'the session is not valid, or breaks a rule the CAS adds' },
  CAS_UNAUTHENTICATED: { status: 401, summary: 'the request needs a TLS client certificate, and none was presented' },
  CAS_FORBIDDEN: { status: 403, summary: "the session's access policy does not allow the client's identity this" },
  CAS_SIGNATURES_MISSING: {
    status: 403,
    summary: "the session's governance (signer entries, require-all, require-at-least-N) needs more signatures",
  },
  CAS_SIGNATURE_INVALID: {
    status: 403,
    summary: 'a signature sent with the upload does not verify over it, or its signer is not a public key',
  },
  CAS_NOT_FOUND: { status: 404, summary: 'no such session, version or route' },
  CAS_NOT_PUBLIC: { status: 404, summary: 'the value does not exist or is not visible without authentication' },
  CAS_METHOD_NOT_ALLOWED: { status: 405, summary: 'the path exists, but not for this method (see the Allow header)' },
  CAS_REQUEST_TIMEOUT: {
    status: 408,
    summary: "the request did not arrive within the CAS's header or request timeout",
  },
  CAS_SESSION_EXISTS: { status: 409, summary: 'a session of this name exists, and the request names no predecessor' },
  CAS_STALE_PREDECESSOR: { status: 409, summary: 'the predecessor named is not the current version of the session' },
  CAS_WRONG_RECIPIENT: {
    status: 422,
    summary: 'the encrypted session was encrypted for another CAS or another session-encryption key',
  },
  CAS_WRONG_UPLOADER: {
    status: 403,
    summary: 'the encrypted session names another uploader than the TLS client that sent it (it would be CREATOR)',
  },
  CAS_DECRYPTION_FAILED: {
    status: 400,
    summary: 'the encrypted session does not decrypt (changed or truncated), or its envelope is malformed',
  },
  CAS_ENCRYPTION_UNSUPPORTED: {
    status: 400,
    summary: 'the encrypted session names an envelope version or suite that Veil does not support',
  },
  CAS_PAYLOAD_TOO_LARGE: { status: 413, summary: 'the request body is larger than the CAS accepts' },
  CAS_HEADERS_TOO_LARGE: { status: 431, summary: 'the request headers are larger than the CAS accepts' },
  CAS_SECRET_GENERATION: { status: 422, summary: "the session's secrets cannot be generated as it asks" },
  CAS_RENDER_FAILED: {
    status: 422,
    summary: "a placeholder of the service's configuration cannot be rendered from its secret (suffix and kind)",
  },
  CAS_CONFIG_TOO_LARGE: {
    status: 422,
    summary: "the service's rendered configuration would pass the CAS's limits (per injection file, in all)",
  },
  CAS_IMPORT_DENIED: { status: 403, summary: 'an imported secret does not exist or is not exported to this session' },
  CAS_REMOTE_UNTRUSTED: {
    status: 424,
    summary: 'the CAS an import names does not present the CA its cas_key pins (or no valid certificate at all)',
  },
  CAS_REMOTE_UNREACHABLE: {
    status: 424,
    summary: 'the CAS an import names cannot be reached, or did not answer in time (or with too much)',
  },
  CAS_REMOTE_REFUSED: {
    status: 424,
    summary: 'the CAS an import names refused to release the secret (not exported to this CAS and session)',
  },
  CAS_REMOTE_NOT_ALLOWED: {
    status: 422,
    summary: 'the session imports from a CAS this CAS was not started to fetch from (--remote-cas)',
  },
  CAS_ATTESTATION_FAILED: { status: 403, summary: 'the evidence, or what it proves, does not satisfy the session' },
  CAS_BUSY: { status: 429, summary: 'the CAS is busy with the same kind of work; retry shortly' },
  CAS_TEE_UNAVAILABLE: { status: 503, summary: 'the CAS could not obtain evidence from its own TEE' },
  CAS_NOT_READY: { status: 503, summary: "readiness: the CAS's keys are not loaded (yet); retry, or see its log" },
  CAS_STORE_UNAVAILABLE: {
    status: 503,
    summary:
      "the CAS's database does not answer (down, unreachable, failing over), or another process held its lock past " +
      "the CAS's wait (SQLite); retry after Retry-After, or use another replica",
  },
  CAS_AUDIT_UNAVAILABLE: {
    status: 503,
    summary: 'the CAS could not make the audit entry of the operation durable, so it answers nothing (fails closed)',
  },
  CAS_INTERNAL: { status: 500, summary: 'the CAS failed on its side (a bug or its store); nothing was changed' },
} as const satisfies Record<string, CasErrorEntry>;

export type CasErrorCode = keyof typeof CAS_CATALOGUE;

/** Each code's HTTP status, from the catalogue. */
export const CAS_ERRORS = Object.fromEntries(
  Object.entries(CAS_CATALOGUE).map(([code, entry]) => [code, entry.status]),
) as { readonly [K in CasErrorCode]: (typeof CAS_CATALOGUE)[K]['status'] };

/** One finding of a request or session the CAS refused. */
export type CasIssue = Omit<Issue, 'file'>;

export class CasError extends VeilError<CasErrorCode> {
  readonly status: number;
  readonly issues: CasIssue[] | undefined;
  /** Seconds, sent as Retry-After: when a retry of the same request may succeed. */
  readonly retryAfterS: number | undefined;

  constructor(
    code: CasErrorCode,
    message: string,
    options: { hint?: string; cause?: unknown; issues?: CasIssue[]; retryAfterS?: number } = {},
  ) {
    super(code, message, options);
    this.status = CAS_ERRORS[code];
    this.retryAfterS = options.retryAfterS;
    // At most MAX_REPORTED_ISSUES: the message built from them says how many more (moreIssues).
    this.issues = options.issues && reportedIssues(options.issues);
  }

  /** The JSON body every failed request gets: `{"error": {"code", "message", "hint"?, "issues"?}}`. */
  toJSON(): { error: Record<string, unknown> } {
    const error: Record<string, unknown> = { code: this.code, message: this.message };
    if (this.hint) error['hint'] = this.hint;
    if (this.issues) error['issues'] = this.issues;
    return { error };
  }
}
