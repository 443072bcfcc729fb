export { AttestationError, type AttestationErrorCode } from './errors.js';
export { EVIDENCE_TYPES, hardwareReportData, reportData, type Evidence, type RtmrEvent } from './evidence.js';
export { codeTreeDigest, simulationMeasurement, simulationMeasurementOf, RUNTIME_PARTS } from './measure.js';
export { DEFAULT_TSM_BASE, nodeTsmFs, tsmProvider, tsmReport, type TsmFs, type TsmProvider, type TsmReport } from './configfs-tsm.js';
export { DEFAULT_TDX_MEASUREMENTS, expectedRtmr3, extendRtmr, replayRtmr, veilRtmr3Events, type RtmrFs } from './rtmr.js';
export { allowsSimulation, checkMeasurement, verifyEvidence, type AttestationPolicy, type VerifiedEvidence } from './verify.js';
