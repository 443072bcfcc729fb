import { VeilError, type ErrorCatalogue } from '../errors.js';

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

export const RUNTIME_CATALOGUE: ErrorCatalogue<RuntimeErrorCode> = {
  RUNTIME_CONFIG: { summary: "veil run's settings or the configuration from the CAS cannot be used" },
  RUNTIME_CAS_UNTRUSTED: { summary: 'the CAS did not prove the identity veil run was told to expect' },
  RUNTIME_CAS_UNREACHABLE: { summary: 'the CAS cannot be reached' },
  RUNTIME_ATTESTATION: { summary: 'the CAS refused the attestation, or did not answer as the CAS API does' },
  RUNTIME_NO_TEE: { summary: 'no TEE evidence source on this host, and simulation was not asked for' },
  RUNTIME_EVIDENCE: { summary: 'the TEE (configfs-tsm, the RTMR interface) did not give usable evidence' },
  RUNTIME_HOST_KEY: { summary: 'the host key that signs simulation evidence cannot be used (mode, owner, contents)' },
  RUNTIME_NAMESPACE: { summary: 'the private mount namespace for injected files and secrets cannot be made' },
  RUNTIME_PROGRAM: { summary: 'the program cannot be found or started' },
};

/** Why a program was not started. Nothing of the configuration the CAS sent ever appears here. */
export class RuntimeError extends VeilError<RuntimeErrorCode> {}
