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
 * - simulation: no TEE on this host; the runtime's claim of a measurement, signed by the host's key
 *   (`hostSpki`: DER SubjectPublicKeyInfo, base64; `signature` over `simulationMessage`, base64), accepted
 *   only where the policy says so and lists the host (`platforms`).
 * - tdx / sgx-dcap: an Intel DCAP quote (base64); tdx may carry the RTMR event log the runtime extended.
 * - sev-snp: the 1184-byte ATTESTATION_REPORT (base64) and, when the host provisioned it, the GHCB
 *   certificate table (configfs-tsm `auxblob`, base64) carrying the VCEK or VLEK.
 */
export type Evidence =
  | { type: 'simulation'; measurement: string; reportData: string; hostSpki: string; signature: string }
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
  const digest = createHash('sha256')
    .update(Buffer.from('veil-cas-attestation-v1', 'ascii'))
    .update(nonce)
    .update(caSpki)
    .digest();
  return Buffer.concat([digest, Buffer.alloc(32)]);
}

/**
 * What a host key signs for simulation evidence: "veil-simulation-evidence-v1" (27 bytes ASCII) ‖ 0x00 ‖
 * measurement (32 bytes) ‖ reportData (32 bytes). Both fields have a fixed length and the report data already
 * binds the CAS's nonce and the connection's key, so a signature cannot be replayed onto another connection,
 * and the label keeps it from being taken for anything else the key could sign.
 */
export function simulationMessage(measurement: Buffer, reportDataBytes: Buffer): Buffer {
  if (measurement.length !== 32 || reportDataBytes.length !== 32) {
    throw new RangeError('simulationMessage: measurement and report data are 32 bytes each');
  }
  return Buffer.concat([SIMULATION_LABEL, Buffer.of(0), measurement, reportDataBytes]);
}

const SIMULATION_LABEL = Buffer.from('veil-simulation-evidence-v1', 'ascii');

/**
 * A simulation host's platform ID, as sessions list it in `services[].platforms`: the lower-case hex SHA-256
 * of the DER SubjectPublicKeyInfo of its host key (64 hex digits, the shape of SCONE's platform IDs).
 */
export function hostId(spki: Buffer): string {
  return createHash('sha256').update(spki).digest('hex');
}
