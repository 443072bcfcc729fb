import { createHash } from 'node:crypto';

/**
 * Evidence is a tagged type: the protocol carries it without knowing its kind, and verifiers for hardware
 * evidence (SEV-SNP, TDX, SGX DCAP) plug in beside the simulation verifier.
 */
export type Evidence =
  | { type: 'simulation'; measurement: string; reportData: string }
  | { type: 'sev-snp' | 'tdx' | 'sgx-dcap'; quote: string /* base64 */ };

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
