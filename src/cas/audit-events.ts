import { AttestationError, type VerificationResult } from '../attestation/index.js';
import type { EVIDENCE_TYPES } from '../attestation/evidence.js';
import type { AuditEvent, AuditLog } from '../audit/types.js';
import { CasError, type CasErrorCode } from './errors.js';
import { StoreError } from './store/index.js';

/**
 * How the CAS records what it does: every answer comes after its entry is durable. When the log cannot take
 * the entry, the operation answers CAS_AUDIT_UNAVAILABLE instead (nothing released, nothing read): an operator
 * must never find a secret released that the log does not show.
 */
export async function recordOrFail(audit: AuditLog, event: AuditEvent): Promise<void> {
  try {
    await audit.record(event);
  } catch (err) {
    // A database that does not answer is told as such (503 CAS_STORE_UNAVAILABLE): retry, or another replica.
    if (err instanceof StoreError && err.code === 'STORE_UNAVAILABLE') throw err;
    // So is one locked past the store's wait, which the log's batch carries as its cause: retry (Retry-After).
    const busy = storeBusyIn(err);
    if (busy) throw busy;
    throw auditUnavailable(event.type, err);
  }
}

function storeBusyIn(err: unknown): StoreError | undefined {
  const cause = err instanceof Error ? err.cause : undefined;
  for (const e of [err, cause]) if (e instanceof StoreError && e.code === 'STORE_BUSY') return e;
  return undefined;
}

export function auditUnavailable(what: string, cause: unknown): CasError {
  return new CasError('CAS_AUDIT_UNAVAILABLE', `the CAS could not record '${what}' in its audit log`, {
    hint: 'nothing was released or read; retry shortly (the operator sees why in the CAS log)',
    cause,
  });
}

/**
 * The write refusals recorded as `session.refused`: those a session's rules decided (access policy, governance,
 * signatures, imports, the CAS's remote list). Malformed uploads (CAS_BAD_REQUEST, CAS_POLICY_INVALID), races
 * (CAS_STALE_PREDECESSOR, CAS_SESSION_EXISTS, CAS_BUSY) and limits of the request are not: they decide nothing
 * about who may do what, and anyone could fill the log with them.
 */
export const RECORDED_WRITE_REFUSALS: ReadonlySet<CasErrorCode> = new Set<CasErrorCode>([
  'CAS_FORBIDDEN',
  'CAS_SIGNATURES_MISSING',
  'CAS_SIGNATURE_INVALID',
  'CAS_IMPORT_DENIED',
  'CAS_REMOTE_NOT_ALLOWED',
]);

/**
 * Refusal entries (attestation.refused, session.refused, export.refused) one client key may add (README "Audit
 * log", Limits): a token bucket of `burst`, refilled at `perMinute`. Past it a refusal is not recorded but
 * counted, and the count goes into that key's next recorded refusal as `suppressed`. At most `clients` keys are
 * remembered (the oldest forgotten first), so throwaway keys cannot grow the CAS's memory either. Keys cost
 * nothing to make, so all keys together share one more bucket of `allPerMinute` (burst as large).
 */
export const REFUSAL_LIMITS = { perMinute: 10, burst: 10, clients: 10_000, allPerMinute: 600 };

interface Bucket {
  tokens: number;
  at: number;
  suppressed: number;
}

function refill(bucket: Bucket, now: number, perMinute: number, cap: number): void {
  const added = ((now - bucket.at) * perMinute) / 60_000;
  bucket.tokens = Math.min(cap, bucket.tokens + Math.max(0, added));
  bucket.at = Math.max(bucket.at, now);
}

class RefusalLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly all: Bucket = { tokens: REFUSAL_LIMITS.allPerMinute, at: 0, suppressed: 0 };

  /** undefined: not to be recorded; else the refusals suppressed before this one. */
  take(key: string, now: number): number | undefined {
    const bucket = this.bucketOf(key, now);
    refill(bucket, now, REFUSAL_LIMITS.perMinute, REFUSAL_LIMITS.burst);
    refill(this.all, now, REFUSAL_LIMITS.allPerMinute, REFUSAL_LIMITS.allPerMinute);
    if (bucket.tokens < 1 || this.all.tokens < 1) {
      bucket.suppressed++;
      return undefined;
    }
    bucket.tokens--;
    this.all.tokens--;
    const suppressed = bucket.suppressed;
    bucket.suppressed = 0;
    return suppressed;
  }

  /** An entry that could not be written gives its suppressed count back. */
  giveBack(key: string, suppressed: number): void {
    const bucket = this.buckets.get(key);
    if (bucket) bucket.suppressed += suppressed;
  }

  private bucketOf(key: string, now: number): Bucket {
    const known = this.buckets.get(key);
    if (known) {
      // Most recently used last: the first key is the one forgotten when the map is full.
      this.buckets.delete(key);
      this.buckets.set(key, known);
      return known;
    }
    if (this.buckets.size >= REFUSAL_LIMITS.clients) this.buckets.delete(this.buckets.keys().next().value!);
    const bucket = { tokens: REFUSAL_LIMITS.burst, at: now, suppressed: 0 };
    this.buckets.set(key, bucket);
    return bucket;
  }
}

/** One limiter per audit log: every CAS (and every test's CAS) has its own. */
const limiters = new WeakMap<AuditLog, RefusalLimiter>();

type RefusalEvent = Extract<AuditEvent, { type: 'attestation.refused' | 'session.refused' | 'export.refused' }>;

/** Records a refusal by client `key` within REFUSAL_LIMITS (fail closed as recordOrFail when it is recorded). */
export async function recordRefusal(
  ctx: { audit: AuditLog; now: () => Date },
  key: string,
  event: RefusalEvent,
): Promise<void> {
  let limiter = limiters.get(ctx.audit);
  if (!limiter) {
    limiter = new RefusalLimiter();
    limiters.set(ctx.audit, limiter);
  }
  const suppressed = limiter.take(key, ctx.now().getTime());
  if (suppressed === undefined) return;
  try {
    await recordOrFail(ctx.audit, suppressed > 0 ? { ...event, suppressed } : event);
  } catch (err) {
    limiter.giveBack(key, suppressed);
    throw err;
  }
}

/** The longest `check` text an entry keeps (the schema's bound). */
const MAX_CHECK = 2048;

/**
 * An attestation refusal as an entry: the attestation check's own code when one failed (ATTESTATION_…), else
 * the CAS's, and its message.
 */
export function refusalOf(
  err: CasError,
  configId: string,
  session?: string,
  evidence?: (typeof EVIDENCE_TYPES)[number],
): Extract<AuditEvent, { type: 'attestation.refused' }> {
  const cause = err.cause instanceof AttestationError ? err.cause : undefined;
  return {
    type: 'attestation.refused',
    config_id: configId.slice(0, 1024),
    ...(session === undefined ? {} : { session }),
    ...(evidence === undefined ? {} : { evidence }),
    code: cause?.code ?? err.code,
    check: (cause?.message ?? err.message).slice(0, MAX_CHECK),
  };
}

/** The measurement hardware evidence stated: MRENCLAVE, MRTD or SEV-SNP's MEASUREMENT. */
export function measurementOf(result: VerificationResult): string {
  switch (result.type) {
    case 'sgx':
      return result.claims.mrenclave;
    case 'tdx':
      return result.claims.mrtd;
    case 'snp':
      return result.claims.measurement;
    default: {
      const hardware = result.claims.hardware;
      return 'mrtd' in hardware ? hardware.mrtd : hardware.measurement;
    }
  }
}
