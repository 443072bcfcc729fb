import { z } from 'zod';
import { EVIDENCE_TYPES } from '../attestation/evidence.js';
import { base64, evidenceSchema, hex } from './evidence.js';

/**
 * The CAS ↔ runtime attestation contract: the CAS builds and serializes its answers with these schemas,
 * `veil run` parses them with the same ones, so the two cannot drift apart unnoticed.
 */

/** `POST /v1/attest/nonce` → a 32-byte nonce bound to the connection's key. */
export const nonceAnswerSchema = z.strictObject({ nonce: hex(64) });
export type NonceAnswer = z.infer<typeof nonceAnswerSchema>;

export const MAX_CONFIG_ID = 1024;

/** `POST /v1/attest` body: the service ID (`<session>/<service>`), the nonce and evidence binding it. */
export const attestRequestSchema = z.strictObject({
  config_id: z.string().min(1).max(MAX_CONFIG_ID),
  nonce: hex(64),
  evidence: evidenceSchema,
});
export type AttestRequest = z.infer<typeof attestRequestSchema>;

// exec(2) and the launch plan's fields cannot carry a NUL; `=` would split an environment entry elsewhere.
const noNul = z.string().regex(/^[^\0]*$/, 'must not contain a NUL character');
const envName = z.string().regex(/^[^=\0]+$/, 'must be a non-empty name without = or NUL');
const anyHex = (n: number) => z.string().regex(new RegExp(`^[0-9a-fA-F]{${n}}$`), `must be ${n} hex digits`);

export const injectionFileSchema = z.strictObject({
  path: noNul,
  mode: z.number().int().min(0).max(0o7777),
  /** The file's bytes, base64: rendered secrets may be binary (`:der`, `:bin`). */
  content: base64(Number.MAX_SAFE_INTEGER),
});

export const fspfSchema = z.strictObject({
  path: noNul.optional(),
  key: anyHex(64).optional(),
  tag: anyHex(32).optional(),
});

/** What a verified service receives: its policy's command, environment, pwd, injected files and shield key. */
export const releasedConfigSchema = z.strictObject({
  command: z.array(noNul),
  environment: z.record(envName, noNul),
  pwd: noNul,
  injectionFiles: z.array(injectionFileSchema),
  fspf: fspfSchema.optional(),
  /** Veil's policy field: how veil run applies renewed files (absent: rewrite them in place). */
  renewal: z.enum(['rewrite', 'restart']).optional(),
});
export type ReleasedConfig = z.infer<typeof releasedConfigSchema>;

/** What the CAS accepted, so the runtime can say it: simulation is never mistaken for hardware. */
export const attestationOutcomeSchema = z.strictObject({
  evidence: z.enum(EVIDENCE_TYPES),
  simulated: z.boolean(),
  /** Simulation: the platform ID of the host whose key signed the evidence. */
  platform: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  tcb_status: z.string().optional(),
  /** The tolerations the acceptance relied on (debug-mode, outdated-tcb, ...). */
  tolerated: z.array(z.string()).optional(),
});
export type AttestationOutcome = z.infer<typeof attestationOutcomeSchema>;

/** `POST /v1/attest` → the released configuration, whose service it is, and what was accepted. */
export const attestAnswerSchema = releasedConfigSchema.extend({
  session: z.string(),
  service: z.string(),
  attestation: attestationOutcomeSchema,
  /**
   * When (ms since the epoch) the first certificate released here reaches two thirds of its lifetime: `veil run`
   * attests again then and receives a renewed one. Absent when nothing released expires.
   */
  renew_at: z.number().int().nonnegative().optional(),
});
export type AttestAnswer = z.infer<typeof attestAnswerSchema>;

/** The CAS's rendered form: the same configuration with the injected files as bytes. */
export type ServiceConfig = Omit<ReleasedConfig, 'injectionFiles'> & {
  session: string;
  service: string;
  injectionFiles: Array<Omit<ReleasedConfig['injectionFiles'][number], 'content'> & { content: Buffer }>;
};

export function attestAnswerOf(config: ServiceConfig, attestation: AttestationOutcome): AttestAnswer {
  const injectionFiles = config.injectionFiles.map((f) => ({
    path: f.path,
    mode: f.mode,
    content: f.content.toString('base64'),
  }));
  return { ...config, injectionFiles, attestation };
}
