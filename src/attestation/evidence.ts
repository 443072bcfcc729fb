import { createHash } from 'node:crypto';

/** One event a runtime extended into a TDX runtime measurement register, as the evidence reports it. */
export interface RtmrEvent {
  /** Which register (0–3; Veil extends 3). */
  index: number;
  /** The 48-byte SHA-384 digest that was extended, hex. */
  digest: string;
  /** What was measured, e.g. "veil-runtime" or "program". */
  description: string;
}

/**
 * Evidence is a tagged type: the protocol carries it without knowing its kind. The CAS picks the verifier by
 * `type` and by what the session allows, never by looking at the bytes.
 * - simulation: a claim only (no TEE on this host), accepted only where the policy says so.
 * - tdx / sgx-dcap: an Intel DCAP quote (base64); tdx may carry the RTMR event log the runtime extended.
 * - sev-snp: the 1184-byte ATTESTATION_REPORT (base64) and, when the host provisioned it, the GHCB
 *   certificate table (configfs-tsm `auxblob`, base64) carrying the VCEK or VLEK.
 */
export type Evidence =
  | { type: 'simulation'; measurement: string; reportData: string }
  | { type: 'tdx'; quote: string; rtmrLog?: RtmrEvent[] }
  | { type: 'sgx-dcap'; quote: string }
  | { type: 'sev-snp'; quote: string; auxblob?: string };

export const EVIDENCE_TYPES = ['simulation', 'sev-snp', 'tdx', 'sgx-dcap'] as const;

/**
 * The report data every kind of evidence binds: SHA-256 over a label, the CAS's fresh nonce (32 bytes) and
 * the DER SubjectPublicKeyInfo of the runtime's ephemeral TLS key. A verified quote over this value proves
 * that the holder of that key ran the measured code after the nonce was issued.
 * Layout: "veil-report-data-v1" (19 bytes ASCII) | nonce (32) | SPKI DER.
 */
export function reportData(nonce: Buffer, spki: Buffer): Buffer {
  return createHash('sha256').update(Buffer.from('veil-report-data-v1', 'ascii')).update(nonce).update(spki).digest();
}

/**
 * The 64-byte REPORTDATA / REPORT_DATA field of a hardware report: the 32-byte `reportData` above in bytes
 * 0–31, and 32 zero bytes in 32–63. The zeros are checked too, so no other use of the field (an SGX QE's
 * layout, a TPM's) can be mistaken for Veil's binding.
 */
export function hardwareReportData(nonce: Buffer, spki: Buffer): Buffer {
  return Buffer.concat([reportData(nonce, spki), Buffer.alloc(32)]);
}

/**
 * What a CAS running in a TEE binds into its own evidence (`GET /v1/attestation?nonce=`): SHA-256 over
 * "veil-cas-attestation-v1" (23 bytes ASCII) ‖ the client's nonce (32 bytes) ‖ the SPKI DER of the CAS's CA
 * key, then 32 zero bytes. A client that verified the evidence can then pin that CA: every CAS certificate
 * and secret it issues hangs off that key, which never leaves the TEE.
 */
export function casReportData(nonce: Buffer, caSpki: Buffer): Buffer {
  const digest = createHash('sha256').update(Buffer.from('veil-cas-attestation-v1', 'ascii')).update(nonce).update(caSpki).digest();
  return Buffer.concat([digest, Buffer.alloc(32)]);
}
