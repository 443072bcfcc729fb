export { verifyIntelQuote, PINNED_QE, type IntelCollateralSource, type IntelVerifyOptions } from './verify.js';
export { intelCollateralFromBlobs, intelCollateralFromFiles } from './sources.js';
export {
  intelCollateralFromPcs,
  INTEL_PCS_URL,
  INTEL_ROOT_CA_CRL_URL,
  PCS_MAX_RESPONSE_BYTES,
  PCS_TIMEOUT_MS,
} from './pcs.js';
