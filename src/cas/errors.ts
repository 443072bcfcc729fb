import { VeilError } from '../errors.js';

/**
 * The CAS's error catalogue: every code the HTTP API can answer with, and its status.
 * Clients switch on `code`; the status follows HTTP semantics so curl users see the right class of failure.
 */
export const CAS_ERRORS = {
  CAS_BAD_REQUEST: 400,
  CAS_POLICY_INVALID: 400,
  CAS_UNAUTHENTICATED: 401,
  CAS_FORBIDDEN: 403,
  CAS_NOT_FOUND: 404,
  CAS_NOT_PUBLIC: 404,
  CAS_METHOD_NOT_ALLOWED: 405,
  CAS_REQUEST_TIMEOUT: 408,
  CAS_SESSION_EXISTS: 409,
  CAS_STALE_PREDECESSOR: 409,
  CAS_PAYLOAD_TOO_LARGE: 413,
  CAS_SECRET_GENERATION: 422,
  CAS_IMPORT_DENIED: 403,
  CAS_ATTESTATION_FAILED: 403,
  CAS_BUSY: 429,
  CAS_TEE_UNAVAILABLE: 503,
  CAS_INTERNAL: 500,
} as const;

export type CasErrorCode = keyof typeof CAS_ERRORS;

export interface CasIssue {
  path: string;
  message: string;
  line?: number;
  column?: number;
}

export class CasError extends VeilError<CasErrorCode> {
  readonly status: number;
  readonly issues: CasIssue[] | undefined;

  constructor(
    code: CasErrorCode,
    message: string,
    options: { hint?: string; cause?: unknown; issues?: CasIssue[] } = {},
  ) {
    super(code, message, options);
    this.status = CAS_ERRORS[code];
    this.issues = options.issues;
  }

  /** The JSON body every failed request gets: `{"error": {"code", "message", "hint"?, "issues"?}}`. */
  toJSON(): { error: Record<string, unknown> } {
    const error: Record<string, unknown> = { code: this.code, message: this.message };
    if (this.hint) error['hint'] = this.hint;
    if (this.issues) error['issues'] = this.issues;
    return { error };
  }
}
