import type { AuditEntry, AuditHead } from '../../audit/types.js';
import { StoreError } from './errors.js';

/** How both stores keep the audit chain: one row per entry, its JSON as signed (not secret: names, never values). */
export const ZERO_HASH = '0'.repeat(64);
export const EMPTY: AuditHead = { seq: 0, hash: ZERO_HASH };

/** The most audit entries one readAudit answers (README "Audit log", Limits); callers page with `after`. */
export const AUDIT_READ_MAX = 1000;

export const readLimit = (limit: number): number =>
  Number.isFinite(limit) ? Math.max(0, Math.min(Math.floor(limit), AUDIT_READ_MAX)) : 0;

/**
 * The entries a caller made must continue the tail they were made from: a bug that breaks the chain is refused
 * here, before anything is written, rather than found by the next verification.
 */
export function checkContinues(
  head: AuditHead,
  entries: readonly AuditEntry[],
  hint = 'a bug in the caller of appendAudit; nothing was written',
): void {
  let at = head;
  for (const e of entries) {
    if (e.seq !== at.seq + 1 || e.prev !== at.hash) {
      throw new StoreError('STORE_IO', `audit entry ${e.seq} does not continue the chain at seq ${at.seq}`, {
        hint,
      });
    }
    at = { seq: e.seq, hash: e.hash };
  }
}

export const parseEntry = (json: string): AuditEntry => JSON.parse(json) as AuditEntry;

/** The hint of a dump whose entries do not chain (restore, migrate). */
export const BROKEN_DUMP = 'the dump does not hold one audit chain; take the backup again; nothing was loaded';
