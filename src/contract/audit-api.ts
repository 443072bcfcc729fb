import { z } from 'zod';
import { auditEntrySchema } from './audit.js';

/** `GET /v1/audit`: README "Audit log: events and GET /v1/audit". */
export const AUDIT_API_LIMITS = {
  /** Entries one answer holds at most (`limit`). */
  maxLimit: 1000,
  /** The longest a follower may ask to wait for new entries (`wait`, seconds). */
  maxWaitSeconds: 25,
} as const;

const count = (max: number, what: string) =>
  z
    .string()
    .regex(/^\d{1,15}$/, `must be a whole number (${what})`)
    .transform(Number)
    .refine((n) => n <= max, `must be at most ${max} (${what})`);

export const auditQuerySchema = z.strictObject({
  after: count(Number.MAX_SAFE_INTEGER, 'the last seq already seen; 0 for the start').default(0),
  limit: count(AUDIT_API_LIMITS.maxLimit, 'entries per answer')
    .refine((n) => n > 0, 'must be at least 1')
    .default(100),
  wait: count(AUDIT_API_LIMITS.maxWaitSeconds, 'seconds to wait for new entries').default(0),
  /** `export`: the whole chain as an export file (administrators only). */
  format: z.enum(['export']).optional(),
});
export type AuditQuery = z.output<typeof auditQuerySchema>;

/**
 * One page: the entries this client may see, oldest first. `next` is the seq to ask after next time: it moves
 * past entries the client may not see too, so a follower never scans them again.
 */
export const auditPageSchema = z.strictObject({
  entries: z.array(auditEntrySchema),
  next: z.number().int().nonnegative(),
});
export type AuditPage = z.infer<typeof auditPageSchema>;

/** What a webhook receives from `veil audit follow --webhook`: one POST per batch, in order. */
export const auditBatchSchema = z.strictObject({ entries: z.array(auditEntrySchema).min(1) });
