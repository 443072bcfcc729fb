import { z } from 'zod';
import { KEY_TYPES } from '../key-types.js';
import { base64, hex } from './evidence.js';

/**
 * CAS ↔ CAS: `POST /v1/exports`, how one CAS fetches a secret another exports to one of its sessions. The
 * caller is a CAS, identified by the client certificate chain of the mutually authenticated TLS connection
 * (its CA's fingerprint), never by anything in the body; the body says which session it serves.
 */

const NAME_MAX = 1024;
const name = z.string().min(1).max(NAME_MAX);

export const exportRequestSchema = z.strictObject({
  /** The exporting session (on the CAS asked) and its secret. */
  session: name,
  secret: name,
  /** The session on the calling CAS that imports it, and that session's current hash (for session_hash pins). */
  importer: z.strictObject({ session: name, session_hash: hex(64) }),
});
export type ExportRequest = z.infer<typeof exportRequestSchema>;

/** A DER certificate or PKCS#8 key, base64: certificates and keys of the session language are far smaller. */
const der = base64(64 * 1024);

const privateKey = z.strictObject({ key_type: z.enum(KEY_TYPES), value: der });

/** The secret as released: its value, for a certificate the chain above it and its key when that is exported too. */
export const exportedSecretSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('ascii'), value: z.string().max(64 * 1024) }),
  z.strictObject({
    kind: z.literal('binary'),
    value: z
      .string()
      .regex(/^[0-9a-f]*$/)
      .max(128 * 1024),
  }),
  z.strictObject({ kind: z.literal('private-key'), ...privateKey.shape }),
  z.strictObject({
    kind: z.enum(['x509', 'x509-ca']),
    value: der,
    /** Issuers, nearest first, as far as the exporter knows them (what `:chain` renders). */
    chain: z.array(der).max(8),
    private_key: privateKey.optional(),
  }),
]);
export type ExportedSecret = z.infer<typeof exportedSecretSchema>;

export const exportAnswerSchema = z.strictObject({ secret: exportedSecretSchema });
export type ExportAnswer = z.infer<typeof exportAnswerSchema>;
