import type { AuditEntry, AuditHead, EntryMaker } from '../../audit/types.js';
import type { Renewal } from './renewals.js';

/**
 * The CAS's persistent store. Callers see only the `Store` interface: SQLite is the embedded backend, PostgreSQL
 * the shared one (several CAS replicas on one database). Every method is asynchronous so that a store across
 * the network never blocks the event loop; rendering code that needs synchronous reads gets a `SessionReader`
 * loaded beforehand (cas/session-reader.ts).
 */
export interface SessionRecord {
  name: string;
  hash: string;
  predecessor: string | null;
  /** The session YAML as uploaded (it may hold explicit secret values, so it is sealed at rest). */
  text: string;
  /** PEM certificate of the creator of the first version, kept on updates. */
  creator: string;
  createdAt: number;
  secrets: Record<string, unknown>;
}

/**
 * A refused append: `current` is the session's own head; `moved` names another session the write was judged by
 * whose head is no longer the one it was judged by (absent when the session's own head moved).
 */
export type AppendOutcome = { ok: true } | { ok: false; current: string | null; moved?: string };

/** Heads a write was judged by: session name → the hash read then (null: the session did not exist). */
export type JudgedBy = ReadonlyMap<string, string | null>;

/**
 * One item of a store's dump: every version (oldest first within a name), then heads, then blobs, then the audit
 * log's entries (by seq), so a backup carries the chain and a restore keeps it verifiable.
 */
export type StoreItem =
  | { type: 'version'; record: SessionRecord }
  | { type: 'head'; name: string; hash: string }
  | { type: 'blob'; key: string; value: Buffer }
  | { type: 'audit'; entry: AuditEntry };

/** What a load wrote (the backup's counts use the same keys: `${item.type}s`). */
export interface StoreCounts {
  versions: number;
  heads: number;
  blobs: number;
  audits: number;
}

export interface Store {
  current(name: string): Promise<SessionRecord | undefined>;
  /** The current hash of each name (null: no such session), without reading or decrypting the versions. */
  heads(names: readonly string[]): Promise<Map<string, string | null>>;
  version(name: string, hash: string): Promise<SessionRecord | undefined>;
  /**
   * Adds a version iff the current hash is `expectedCurrent` (null: the name must not exist) and every head of
   * `judgedBy` is still the one given, all compared in the transaction that writes. Never overwrites. With
   * `audit`, the version's audit entries are appended in that same transaction (as appendAudit's, the chain's
   * tail locked): `audit` is called only once the comparisons passed, and if it throws nothing is written.
   */
  append(
    record: SessionRecord,
    expectedCurrent: string | null,
    judgedBy?: JudgedBy,
    audit?: EntryMaker,
  ): Promise<AppendOutcome>;
  list(): Promise<Array<{ name: string; hash: string; createdAt: number }>>;
  /** How many sessions there are (heads), counted by the database: no row is read out or decrypted. */
  countSessions(): Promise<number>;
  /** The current sessions whose current policy lets this key (or anyone: undefined) read them, from an index. */
  listReadable(keyHash: string | undefined): Promise<Array<{ name: string; hash: string; createdAt: number }>>;
  getBlob(key: string): Promise<Buffer | undefined>;
  /**
   * Stores `value` under `key` unless a value is there already, and returns the one that is stored: replicas
   * starting at once on one database agree on one CA and one session key.
   */
  putBlobIfAbsent(key: string, value: Buffer): Promise<Buffer>;
  /** The latest renewal of each renewed certificate of version `hash` of session `name` (secret → renewal). */
  renewals(name: string, hash: string): Promise<Map<string, Renewal>>;
  /**
   * Compare-and-set: stores `renewal` iff no renewal of that secret of that version has its generation or a
   * later one (the caller asks for the generation after the latest it read), and returns the latest after the
   * attempt — this one, or the one another replica stored first, which the caller then uses instead. Older
   * generations than the one before are pruned.
   */
  putRenewal(name: string, hash: string, secret: string, renewal: Renewal): Promise<Renewal>;
  /** Everything in the store, read in one consistent snapshot while writers go on (backups, migration). */
  dump(): AsyncIterable<StoreItem>;
  /** Loads a dump into this store, which must be empty (STORE_NOT_EMPTY otherwise); all or nothing. */
  load(items: AsyncIterable<StoreItem>): Promise<StoreCounts>;
  /**
   * Appends to the audit chain: `make` runs inside the write transaction with the chain's tail locked (every
   * replica on one database, and the CLI's backup, append to ONE chain) and returns the entries that follow
   * `head`; they are committed together or not at all. Resolves once they are durable (README "Audit log").
   */
  appendAudit(make: (head: AuditHead) => AuditEntry[]): Promise<AuditEntry[]>;
  /** Audit entries with seq > after, oldest first, at most min(limit, AUDIT_READ_MAX). */
  readAudit(after: number, limit: number): Promise<AuditEntry[]>;
  /** The chain's last seq and hash (seq 0 and 64 zeros when empty). */
  auditHead(): Promise<AuditHead>;
  /** Answers when the store can serve requests (readiness); throws StoreError STORE_UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export { StoreError, type StoreErrorCode } from './errors.js';
export { AUDIT_READ_MAX } from './audit-rows.js';
export type { Renewal } from './renewals.js';
export { loadMasterKey } from './master-key.js';
export { openSqliteStore } from './sqlite.js';
export { openPostgresStore, POSTGRES_LIMITS, type PostgresLimits } from './postgres.js';
