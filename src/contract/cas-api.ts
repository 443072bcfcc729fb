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
export const sessionQuerySchema = z.strictObject({ hash: hex(64).optional() });
export const valuesParamsSchema = z.strictObject({ '*': z.string().max(MAX_PATH_PARAM) });
export const attestationQuerySchema = z.strictObject({ nonce: hex(64) });
export const noQuerySchema = z.strictObject({});
/** Routes that take no body: nothing, or an empty one (curl -X POST sends none, `veil run` an empty one). */
export const emptyBodySchema = z.union([z.null(), z.undefined(), z.literal('')], { error: 'must be empty' });
/** A session (YAML) upload; its content is judged by the session language's parser. */
export const sessionBodySchema = z
  .string({ error: 'must be the session (YAML); the body is empty' })
  .refine((text) => text.trim() !== '', 'must be the session (YAML); the body is empty');

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
export const sessionReadSchema = z.strictObject({ session: z.string(), hash: hex(64) });
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
