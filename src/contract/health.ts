import { z } from 'zod';

/** `GET /healthz` (liveness): the process answers; nothing else is checked, so a slow store never restarts it. */
export const aliveAnswerSchema = z.strictObject({
  alive: z.literal(true),
  /** The worker (1-based) that answered, under `veil cas serve --workers N` with N > 1; absent otherwise. */
  worker: z.number().int().positive().optional(),
});
/**
 * `GET /readyz` and its alias `GET /v1/health/ready` (readiness): the store answered within the readiness
 * deadline and the CAS's keys are loaded; a 503 (CAS_STORE_UNAVAILABLE or CAS_NOT_READY) otherwise.
 */
export const readyzAnswerSchema = z.strictObject({ ready: z.literal(true) });
