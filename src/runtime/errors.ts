import { VeilError } from '../errors.js';

export type RuntimeErrorCode =
  | 'RUNTIME_CONFIG'
  | 'RUNTIME_CAS_UNTRUSTED'
  | 'RUNTIME_CAS_UNREACHABLE'
  | 'RUNTIME_ATTESTATION'
  | 'RUNTIME_NAMESPACE'
  | 'RUNTIME_PROGRAM';

/** Why a program was not started. Nothing of the configuration the CAS sent ever appears here. */
export class RuntimeError extends VeilError<RuntimeErrorCode> {}
