export { AttestationError, type AttestationErrorCode } from './errors.js';
export { EVIDENCE_TYPES, reportData, type Evidence } from './evidence.js';
export { codeTreeDigest, simulationMeasurement, RUNTIME_PARTS } from './measure.js';
export { allowsSimulation, checkMeasurement, verifyEvidence, type AttestationPolicy, type VerifiedEvidence } from './verify.js';
