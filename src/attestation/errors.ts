import { VeilError, type ErrorCatalogue } from '../errors.js';

export type AttestationErrorCode =
  /** The evidence kind cannot be verified here (or is refused by name, e.g. PPID-encrypted quotes). */
  | 'ATTESTATION_UNSUPPORTED'
  /** The evidence does not bind this nonce and connection key (or the nonce itself was refused). */
  | 'ATTESTATION_BINDING'
  | 'ATTESTATION_SIMULATION_REFUSED'
  | 'ATTESTATION_MEASUREMENT'
  /** The evidence comes from a host (platform) the service does not list in `platforms`. */
  | 'ATTESTATION_PLATFORM'
  /** The bytes do not parse as the evidence kind claims (lengths, versions, key types). */
  | 'ATTESTATION_MALFORMED'
  /** A signature over the evidence, a report or collateral does not verify. */
  | 'ATTESTATION_SIGNATURE'
  /** A certificate chain does not lead to the pinned root, or a certificate is not what its place needs. */
  | 'ATTESTATION_CHAIN'
  /** A certificate, CRL or collateral is not valid at the verification time. */
  | 'ATTESTATION_EXPIRED'
  /** A certificate in the chain is on a CRL, or the TCB level is Revoked. */
  | 'ATTESTATION_REVOKED'
  /** Collateral is missing, malformed or does not belong to this evidence (FMSPC, PCE-ID, id, version). */
  | 'ATTESTATION_COLLATERAL'
  /** No TCB level matches, or the TCB status / advisories are not tolerated by the policy. */
  | 'ATTESTATION_TCB'
  /** The verified claims do not satisfy the policy (identity, debug, SMT, ...). */
  | 'ATTESTATION_POLICY'
  /** Evidence could not be obtained on this machine (configfs-tsm, RTMR interface). */
  | 'ATTESTATION_COLLECT';

export const ATTESTATION_CATALOGUE: ErrorCatalogue<AttestationErrorCode> = {
  ATTESTATION_UNSUPPORTED: { summary: 'the evidence kind cannot be verified here, or is refused by name' },
  ATTESTATION_BINDING: { summary: 'the evidence does not bind this nonce and connection key' },
  ATTESTATION_SIMULATION_REFUSED: { summary: 'simulation evidence was given, and the session does not accept it' },
  ATTESTATION_MEASUREMENT: { summary: 'the measured program is not one the session lists' },
  ATTESTATION_PLATFORM: { summary: 'simulation evidence comes from a host the service does not list in platforms' },
  ATTESTATION_MALFORMED: { summary: 'the bytes do not parse as the evidence kind claims (lengths, versions, keys)' },
  ATTESTATION_SIGNATURE: { summary: 'a signature over the evidence, a report or collateral does not verify' },
  ATTESTATION_CHAIN: { summary: 'a chain does not lead to the pinned root, or a certificate does not fit its place' },
  ATTESTATION_EXPIRED: { summary: 'a certificate, CRL or collateral is not valid at the verification time' },
  ATTESTATION_REVOKED: { summary: 'a certificate of the chain is on a CRL, or the TCB level is Revoked' },
  ATTESTATION_COLLATERAL: { summary: 'collateral is missing, malformed or belongs to other evidence' },
  ATTESTATION_TCB: { summary: 'no TCB level matches, or the TCB status or advisories are not tolerated' },
  ATTESTATION_POLICY: { summary: 'the verified claims do not satisfy the session (identity, debug mode, SMT, ...)' },
  ATTESTATION_COLLECT: { summary: 'evidence could not be obtained on this machine (configfs-tsm, RTMR interface)' },
};

/**
 * Why evidence was refused. `check` names the one check that failed (e.g. "PCK chain"), and the message starts
 * with it; the hint says which toleration, advisory or file would change the outcome. Never a secret.
 */
export class AttestationError extends VeilError<AttestationErrorCode> {
  readonly check: string | undefined;

  constructor(
    code: AttestationErrorCode,
    message: string,
    options: { hint?: string; cause?: unknown; check?: string } = {},
  ) {
    super(code, options.check ? `${options.check}: ${message}` : message, options);
    this.check = options.check;
  }
}
