import { z } from 'zod';
import { hardwareEvidenceSchema, hex } from './evidence.js';

/**
 * The rest of the CAS's HTTP API as its clients (the CLI, curl users) see it: what each route accepts in its
 * path and query, and what it answers. Unknown query fields are refused like unknown body fields.
 */

/** Longest path part the CAS reads (session names, `session=…,secret=…`). */
export const MAX_PATH_PARAM = 4096;

/** A session name as a path: `/`-separated parts of SCONE's name characters (the policy schema's rule). */
export const sessionPathSchema = z
  .string()
  .max(MAX_PATH_PARAM)
  .regex(
    /^[A-Za-z0-9_\-.~]{1,128}(\/[A-Za-z0-9_\-.~]{1,128})*$/,
    'must be a session name: /-separated parts of A-Z a-z 0-9 _ - . ~',
  );

export const sessionParamsSchema = z.strictObject({ '*': sessionPathSchema });
/** `certificates=true` adds the session's certificates and their dates (`veil session read --expiring`). */
export const sessionQuerySchema = z.strictObject({
  hash: hex(64).optional(),
  certificates: z.literal('true').optional(),
});
export const valuesParamsSchema = z.strictObject({ '*': z.string().max(MAX_PATH_PARAM) });
export const attestationQuerySchema = z.strictObject({ nonce: hex(64) });
export const noQuerySchema = z.strictObject({});
/** Routes that take no body: nothing, or an empty one (curl -X POST sends none, `veil run` an empty one). */
export const emptyBodySchema = z.union([z.null(), z.undefined(), z.literal('')], { error: 'must be empty' });
/** A session (YAML) upload; its content is judged by the session language's parser. */
export const sessionBodySchema = z
  .string({ error: 'must be the session (YAML); the body is empty' })
  .refine((text) => text.trim() !== '', 'must be the session (YAML); the body is empty');

/** Signatures one upload may carry: each is verified in the thread pool, so their number is bounded. */
export const MAX_UPLOAD_SIGNATURES = 16;

/** Domain separation of upload signatures: no other message Veil signs or verifies starts with it. */
export const UPLOAD_SIGNATURE_LABEL = 'veil-session-upload-signature-v1';

/** Domain separation of signatures over a create: the message also names the uploader (who becomes CREATOR). */
export const CREATE_SIGNATURE_LABEL = 'veil-session-create-signature-v1';

/**
 * The exact bytes a signer signs for an upload: the label, a zero byte, the session's name, a zero byte and the
 * session text as uploaded (UTF-8). Session names hold no zero byte, so the parts cannot be shifted; the text
 * carries `predecessor`, so a signature authorizes one change of one version and cannot be replayed onto another.
 * A text without `predecessor` creates a session, and its uploader becomes CREATOR: that message is the create
 * label, the name, the uploader's key hash (hex SHA-256 of its TLS certificate's DER SPKI) and the text, so
 * whoever else holds the signatures cannot upload them first and own the session.
 */
export function uploadMessage(name: string, text: string, creator?: string): Buffer {
  if (creator === undefined) return Buffer.from(`${UPLOAD_SIGNATURE_LABEL}\0${name}\0${text}`, 'utf8');
  return Buffer.from(`${CREATE_SIGNATURE_LABEL}\0${name}\0${creator.toLowerCase()}\0${text}`, 'utf8');
}

const base64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** One signature of an upload: the signer's public key (SPKI PEM) and the signature (base64, DER for ECDSA). */
export const uploadSignatureSchema = z.strictObject({
  signer: z.string().min(1).max(4096),
  signature: z.string().min(1).max(2048).regex(base64, 'must be base64'),
});
export type UploadSignature = z.infer<typeof uploadSignatureSchema>;

/**
 * `POST /v1/sessions` with `content-type: application/json`: the session text and the signatures sent with it
 * (governance: `signer` entries of access_policy). Other content types carry the session text alone.
 */
export const sessionEnvelopeSchema = z.strictObject({
  session: z.string().refine((text) => text.trim() !== '', 'must be the session (YAML); it is empty'),
  signatures: z.array(uploadSignatureSchema).max(MAX_UPLOAD_SIGNATURES).default([]),
});
export type SessionEnvelope = z.input<typeof sessionEnvelopeSchema>;

const issue = z.object({
  path: z.string(),
  message: z.string(),
  line: z.number().optional(),
  column: z.number().optional(),
});

/** Every failed request: `{"error": {"code", "message", "hint"?, "issues"?}}` (CasError.toJSON). */
export const casErrorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    hint: z.string().optional(),
    issues: z.array(issue).optional(),
  }),
});
export type CasErrorBody = z.infer<typeof casErrorBodySchema>;

export const versionAnswerSchema = z.strictObject({
  version: z.string(),
  implementation: z.string(),
  api: z.string(),
});
export const sessionWrittenSchema = z.strictObject({ hash: hex(64) });
/** `GET /v1/health/ready`: the CAS and its store answer (a 503 CAS_STORE_UNAVAILABLE otherwise). */
export const readyAnswerSchema = z.strictObject({ ready: z.literal(true) });
/** A certificate of a session: when it expires, and when the CAS renews it (null: never, an explicit value). */
export const certificateDatesSchema = z.strictObject({
  name: z.string(),
  kind: z.enum(['x509', 'x509-ca']),
  expires: z.string(),
  renew: z.string().nullable(),
});
export type CertificateDates = z.infer<typeof certificateDatesSchema>;
export const sessionReadSchema = z.strictObject({
  session: z.string(),
  hash: hex(64),
  /** Only when asked for (`certificates=true`), so that clients that do not know the field never see it. */
  certificates: z.array(certificateDatesSchema).optional(),
});
export const sessionListSchema = z.strictObject({
  sessions: z.array(z.strictObject({ name: z.string(), hash: hex(64) })),
});

export const publicValueSchema = z.strictObject({
  kind: z.string(),
  value: z.string(),
  expires: z.string().nullable(),
  renew: z.string().nullable(),
});
export type PublicValue = z.infer<typeof publicValueSchema>;
export const publicValuesSchema = z.strictObject({ values: z.record(z.string(), publicValueSchema) });

/** `GET /v1/attestation?nonce=`: the CAS's own evidence, or null without a TEE. */
export const selfAttestationSchema = z.strictObject({
  ca_fingerprint: z.string(),
  evidence: hardwareEvidenceSchema.nullable(),
  binding: z.string(),
  note: z.string().optional(),
});
export type SelfAttestationAnswer = z.infer<typeof selfAttestationSchema>;
