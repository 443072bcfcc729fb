import { VeilError } from '../errors.js';

export type AttestationErrorCode =
  | 'ATTESTATION_UNSUPPORTED'
  | 'ATTESTATION_BINDING'
  | 'ATTESTATION_SIMULATION_REFUSED'
  | 'ATTESTATION_MEASUREMENT'
  | 'ATTESTATION_MALFORMED';

/** Why evidence was refused; messages say SCONE-like what was expected, never a secret. */
export class AttestationError extends VeilError<AttestationErrorCode> {}
