import { z } from 'zod';
import { findingsOfZod, locateFindings } from '../issues.js';
import type { AttestRequest } from './attest.js';
import { CasError } from './errors.js';

/**
 * The runtime → CAS attestation request, checked before any work: sizes are bounded here so that no
 * verifier ever sees an oversized quote (configfs-tsm's outblob is at most 32 KiB; the limits leave room).
 */
export const MAX_QUOTE_BASE64 = 64 * 1024;
export const MAX_RTMR_EVENTS = 16;
/** An Ed25519 SPKI is 44 bytes (60 base64 characters) and its signature 64 (88): little room beyond. */
export const MAX_HOST_SPKI_BASE64 = 128;
export const MAX_HOST_SIGNATURE_BASE64 = 128;

const hex = (n: number) => z.string().regex(new RegExp(`^[0-9a-f]{${n}}$`), `must be ${n} lower-case hex digits`);
const base64 = (max: number) => z.string().max(max).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');

const evidence = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('simulation'), measurement: hex(64), reportData: hex(64),
    hostSpki: base64(MAX_HOST_SPKI_BASE64), signature: base64(MAX_HOST_SIGNATURE_BASE64),
  }),
  z.strictObject({
    type: z.literal('tdx'),
    quote: base64(MAX_QUOTE_BASE64),
    rtmrLog: z.array(z.strictObject({ index: z.number().int().min(0).max(3), digest: hex(96), description: z.string().max(200) })).max(MAX_RTMR_EVENTS).optional(),
  }),
  z.strictObject({ type: z.literal('sgx-dcap'), quote: base64(MAX_QUOTE_BASE64) }),
  z.strictObject({ type: z.literal('sev-snp'), quote: base64(MAX_QUOTE_BASE64), auxblob: base64(MAX_QUOTE_BASE64).optional() }),
]);

export const attestRequestSchema = z.strictObject({ config_id: z.string().min(1).max(1024), nonce: hex(64), evidence });

export function parseAttestRequest(body: unknown): AttestRequest {
  let json: unknown;
  try {
    json = JSON.parse(String(body));
  } catch {
    throw new CasError('CAS_BAD_REQUEST', 'an attestation request is JSON {config_id, nonce, evidence}', { hint: 'use veil run' });
  }
  const parsed = attestRequestSchema.safeParse(json);
  if (!parsed.success) {
    const found = locateFindings(findingsOfZod(parsed.error.issues, json));
    const issues = found.map((i) => ({ ...i, path: i.path || '(request)' }));
    throw new CasError('CAS_BAD_REQUEST', `the attestation request is malformed: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { hint: 'use veil run', issues });
  }
  return parsed.data as AttestRequest;
}
