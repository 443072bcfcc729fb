export { AttestationError, type AttestationErrorCode } from './errors.js';
export { EVIDENCE_TYPES, casReportData, hardwareReportData, reportData, type Evidence, type RtmrEvent } from './evidence.js';
export { codeTreeDigest, simulationMeasurement, RUNTIME_PARTS } from './measure.js';
export { allowsSimulation, checkMeasurement, verifySimulation, type VerifiedEvidence } from './verify.js';
export { checkIdentity, checkMode, checkPlatform, STATUS_TOLERATIONS, variantsOf, type AttestationPolicy, type AttestationVariant, type ServiceIdentity } from './policy.js';
export type { EvidenceVerifier, HardwareEvidence, HardwareType, VerificationResult } from './types.js';
