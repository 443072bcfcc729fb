import type { AuditEntry, AuditEvent } from '../contract/audit.js';
import type { AuditSigner } from './chain.js';

export type { AuditEntry, AuditEvent };

/** The head of the chain: its last entry's sequence number and hash (seq 0 and the zero hash when empty). */
export interface AuditHead {
  seq: number;
  hash: string;
}

/** Makes the entries of one store transaction from the chain's tail, read under the store's lock. */
export type EntryMaker = (head: AuditHead) => AuditEntry[];

/**
 * The CAS's audit log as the CAS uses it. `record` resolves only once the entry is durable in the store, so an
 * operation answered after it has its entry even if the process is killed the next instant; when it rejects,
 * the caller fails closed (no secret is released unrecorded).
 */
export interface AuditLog {
  record(event: AuditEvent): Promise<AuditEntry>;
  /**
   * For a change the store makes together with its entry (a session version): `write` runs one store
   * transaction and calls `make` inside it once the change is sure to commit, so the entry commits with the
   * change or not at all. Resolves with what `write` resolves; an entry is recorded only if `make` was called.
   */
  withEntry<T>(event: AuditEvent, write: (make: EntryMaker) => Promise<T>): Promise<T>;
  /** Entries with seq > after, oldest first, at most `limit`. */
  read(after: number, limit: number): Promise<AuditEntry[]>;
  head(): Promise<AuditHead>;
  /** The PEM certificates of the audit keys (each issued by the CAS's CA), for exports. */
  certificates(): Promise<string[]>;
  /** The audit key, which signs an export's trailer; absent in logs that sign nothing (unit tests' doubles). */
  readonly signer?: AuditSigner;
}

/** The log as the CAS holds it (cas/audit-log.ts): close() waits for what is in flight, then refuses. */
export type CasAuditLog = AuditLog & { close(): Promise<void> };
