/**
 * The CAS's persistent store. Callers see only the `Store` interface; SQLite is the embedded backend, and a
 * PostgreSQL one (for several CAS replicas) can implement the same interface.
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

export interface Store {
  current(name: string): SessionRecord | undefined;
  version(name: string, hash: string): SessionRecord | undefined;
  /** Adds a version iff the current hash is `expectedCurrent` (null: the name must not exist). Never overwrites. */
  append(record: SessionRecord, expectedCurrent: string | null): { ok: true } | { ok: false; current: string | null };
  list(): Array<{ name: string; hash: string; createdAt: number }>;
  /** The current sessions whose current policy lets this key (or anyone: undefined) read them, from an index. */
  listReadable(keyHash: string | undefined): Array<{ name: string; hash: string; createdAt: number }>;
  getBlob(key: string): Buffer | undefined;
  putBlob(key: string, value: Buffer): void;
  close(): void;
}

export { StoreError, type StoreErrorCode } from './errors.js';
export { loadMasterKey } from './master-key.js';
export { openSqliteStore } from './sqlite.js';
