export { AttestationError, type AttestationErrorCode } from './errors.js';
export {
  EVIDENCE_TYPES,
  casReportData,
  hardwareReportData,
  hostId,
  reportData,
  simulationMessage,
  type Evidence,
  type RtmrEvent,
} from './evidence.js';
export { codeTreeDigest, simulationMeasurement, simulationMeasurementOf, RUNTIME_PARTS } from './measure.js';
export {
  DEFAULT_TSM_BASE,
  nodeTsmFs,
  tsmProvider,
  tsmReport,
  type TsmFs,
  type TsmProvider,
  type TsmReport,
} from './configfs-tsm.js';
export {
  DEFAULT_TDX_MEASUREMENTS,
  expectedRtmr3,
  extendRtmr,
  replayRtmr,
  veilRtmr3Events,
  type RtmrFs,
} from './rtmr.js';
export {
  allowsSimulation,
  checkMeasurement,
  checkSimulationPlatform,
  verifySimulation,
  type SimulationService,
  type VerifiedEvidence,
} from './verify.js';
export {
  checkIdentity,
  checkMode,
  checkPlatform,
  STATUS_TOLERATIONS,
  variantsOf,
  type AttestationPolicy,
  type AttestationVariant,
  type ServiceIdentity,
} from './policy.js';
export type { EvidenceVerifier, HardwareEvidence, HardwareType, VerificationResult } from './types.js';
