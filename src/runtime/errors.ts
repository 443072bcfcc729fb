import { VeilError } from '../errors.js';

export type RuntimeErrorCode =
  | 'RUNTIME_CONFIG'
  | 'RUNTIME_CAS_UNTRUSTED'
  | 'RUNTIME_CAS_UNREACHABLE'
  | 'RUNTIME_ATTESTATION'
  /** No TEE evidence source on this host, and simulation was not asked for. */
  | 'RUNTIME_NO_TEE'
  /** The TEE (configfs-tsm, the RTMR interface) did not give evidence. */
  | 'RUNTIME_EVIDENCE'
  /** The host key that signs simulation evidence cannot be used (permissions, owner, contents). */
  | 'RUNTIME_HOST_KEY'
  | 'RUNTIME_NAMESPACE'
  | 'RUNTIME_PROGRAM';

/** Why a program was not started. Nothing of the configuration the CAS sent ever appears here. */
export class RuntimeError extends VeilError<RuntimeErrorCode> {}
