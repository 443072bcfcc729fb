import { AttestationError, type VerificationResult } from '../attestation/index.js';
import type { EVIDENCE_TYPES } from '../attestation/evidence.js';
import type { AuditEvent, AuditLog } from '../audit/types.js';
import { CasError, type CasErrorCode } from './errors.js';
import { StoreError } from './store/index.js';

/**
 * How the CAS records what it does: every answer comes after its entry is durable. When the log cannot take
 * the entry, the operation answers CAS_AUDIT_UNAVAILABLE instead (nothing released, nothing read): an operator
 * must never find a secret released that the log does not show.
 */
export async function recordOrFail(audit: AuditLog, event: AuditEvent): Promise<void> {
  try {
    await audit.record(event);
  } catch (err) {
    // A database that does not answer is told as such (503 CAS_STORE_UNAVAILABLE): retry, or another replica.
    if (err instanceof StoreError && err.code === 'STORE_UNAVAILABLE') throw err;
    throw auditUnavailable(event.type, err);
  }
}

export function auditUnavailable(what: string, cause: unknown): CasError {
  return new CasError('CAS_AUDIT_UNAVAILABLE', `the CAS could not record '${what}' in its audit log`, {
    hint: 'nothing was released or read; retry shortly (the operator sees why in the CAS log)',
    cause,
  });
}

/**
 * The write refusals recorded as `session.refused`: those a session's rules decided (access policy, governance,
 * signatures, imports, the CAS's remote list). Malformed uploads (CAS_BAD_REQUEST, CAS_POLICY_INVALID), races
 * (CAS_STALE_PREDECESSOR, CAS_SESSION_EXISTS, CAS_BUSY) and limits of the request are not: they decide nothing
 * about who may do what, and anyone could fill the log with them.
 */
export const RECORDED_WRITE_REFUSALS: ReadonlySet<CasErrorCode> = new Set<CasErrorCode>([
  'CAS_FORBIDDEN',
  'CAS_SIGNATURES_MISSING',
  'CAS_SIGNATURE_INVALID',
  'CAS_IMPORT_DENIED',
  'CAS_REMOTE_NOT_ALLOWED',
]);

/** The longest `check` text an entry keeps (the schema's bound). */
const MAX_CHECK = 2048;

/**
 * An attestation refusal as an entry: the attestation check's own code when one failed (ATTESTATION_…), else
 * the CAS's, and its message.
 */
export function refusalOf(
  err: CasError,
  configId: string,
  session?: string,
  evidence?: (typeof EVIDENCE_TYPES)[number],
): AuditEvent {
  const cause = err.cause instanceof AttestationError ? err.cause : undefined;
  return {
    type: 'attestation.refused',
    config_id: configId.slice(0, 1024),
    ...(session === undefined ? {} : { session }),
    ...(evidence === undefined ? {} : { evidence }),
    code: cause?.code ?? err.code,
    check: (cause?.message ?? err.message).slice(0, MAX_CHECK),
  };
}

/** The measurement hardware evidence stated: MRENCLAVE, MRTD or SEV-SNP's MEASUREMENT. */
export function measurementOf(result: VerificationResult): string {
  switch (result.type) {
    case 'sgx':
      return result.claims.mrenclave;
    case 'tdx':
      return result.claims.mrtd;
    case 'snp':
      return result.claims.measurement;
    default: {
      const hardware = result.claims.hardware;
      return 'mrtd' in hardware ? hardware.mrtd : hardware.measurement;
    }
  }
}
