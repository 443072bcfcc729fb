export {
  verifySnpReport,
  SNP_NO_CRL_WARNING,
  SNP_WARNING,
  type AmdCollateralSource,
  type SnpVerifyOptions,
} from './verify.js';
export {
  amdCollateralFromFiles,
  amdCollateralFromKds,
  FILES_MAX_BYTES,
  FILES_MAX_DEPTH,
  KDS_MAX_BYTES,
  KDS_TIMEOUT_MS,
} from './collateral.js';
