/**
 * The CAS's audit log, independent of the CAS: the hash chain and its signatures (chain.ts), the export file
 * (export.ts) and its offline verification (verify.ts). It imports contract/ (the one wire format), policy/'s
 * canonical JSON and nothing of cas/, so `veil audit verify` runs without a store.
 */
export { AuditError, AUDIT_CATALOGUE, type AuditErrorCode } from './errors.js';
export {
  chainEntries,
  EMPTY_HEAD,
  EntryDigest,
  entryHash,
  headerHash,
  nextEntry,
  signatureValid,
  ZERO_HASH,
  type AuditSigner,
  type EntryBody,
  type ExportCover,
} from './chain.js';
export { auditKeys, parseCa, sha256Hex } from './certificates.js';
export { EXPORT_PAGE, exportLines, signedTrailer, type ExportOptions } from './export.js';
export { MAX_LINE_BYTES } from './lines.js';
export { verifyAuditExport, type VerifiedExport, type VerifyOptions } from './verify.js';
export type { AuditEntry, AuditEvent, AuditHead, AuditLog, CasAuditLog, EntryMaker } from './types.js';
