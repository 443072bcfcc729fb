import { VeilError, type ErrorCatalogue } from '../../errors.js';

export type StoreErrorCode =
  | 'STORE_OPEN'
  | 'STORE_MASTER_KEY'
  | 'STORE_CORRUPT'
  | 'STORE_IO'
  | 'STORE_NOT_EMPTY'
  | 'STORE_UNAVAILABLE'
  | 'STORE_BUSY';

export const STORE_CATALOGUE: ErrorCatalogue<StoreErrorCode> = {
  STORE_OPEN: {
    summary: "the CAS's database cannot be opened: its data directory, or PostgreSQL's URL, user, password or schema",
  },
  STORE_MASTER_KEY: {
    summary: "the master key cannot be read, is readable by others, is not 32 bytes, or is another store's",
  },
  STORE_CORRUPT: { summary: 'stored data failed authentication under the master key' },
  STORE_IO: { summary: 'a session or audit entry cannot be written to the database (or would not continue the chain)' },
  STORE_NOT_EMPTY: { summary: 'a restore or migration targets a store that already holds sessions or keys' },
  STORE_UNAVAILABLE: { summary: 'the database does not answer (down, unreachable, or failing over)' },
  STORE_BUSY: {
    summary: "SQLite: another process held the database's write lock past the store's wait (5 s); nothing was changed",
  },
};

/** Errors of the CAS store. Messages name sessions and files, never their contents or keys. */
export class StoreError extends VeilError<StoreErrorCode> {}
