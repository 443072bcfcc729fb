import { z } from 'zod';
import type { Evidence } from '../attestation/evidence.js';

/**
 * Evidence as it crosses the wire (runtime → CAS, CAS → `veil cas attest`). Sizes are bounded here so that
 * no verifier ever sees an oversized quote (configfs-tsm's outblob is at most 32 KiB; the limits leave room).
 */
export const MAX_QUOTE_BASE64 = 64 * 1024;
export const MAX_RTMR_EVENTS = 16;
/** An Ed25519 SPKI is 44 bytes (60 base64 characters) and its signature 64 (88): little room beyond. */
export const MAX_HOST_SPKI_BASE64 = 128;
export const MAX_HOST_SIGNATURE_BASE64 = 128;

export const hex = (n: number) =>
  z.string().regex(new RegExp(`^[0-9a-f]{${n}}$`), `must be ${n} lower-case hex digits`);
export const base64 = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');

const rtmrEvent = z.strictObject({
  index: z.number().int().min(0).max(3),
  digest: hex(96),
  description: z.string().max(200),
});
const quote = base64(MAX_QUOTE_BASE64);

export const hardwareEvidenceSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('tdx'), quote, rtmrLog: z.array(rtmrEvent).max(MAX_RTMR_EVENTS).optional() }),
  z.strictObject({ type: z.literal('sgx-dcap'), quote }),
  z.strictObject({ type: z.literal('sev-snp'), quote, auxblob: base64(MAX_QUOTE_BASE64).optional() }),
]);

export const evidenceSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('simulation'),
    measurement: hex(64),
    reportData: hex(64),
    hostSpki: base64(MAX_HOST_SPKI_BASE64),
    signature: base64(MAX_HOST_SIGNATURE_BASE64),
  }),
  ...hardwareEvidenceSchema.options,
]);

// attestation/ owns the Evidence type; these fail to compile when the schema and the type drift apart.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameEvidence: Same<z.infer<typeof evidenceSchema>, Evidence> = true;
void sameEvidence;
