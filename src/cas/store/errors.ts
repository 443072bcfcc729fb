import { VeilError } from '../../errors.js';

export type StoreErrorCode = 'STORE_OPEN' | 'STORE_MASTER_KEY' | 'STORE_CORRUPT' | 'STORE_CONFLICT' | 'STORE_IO';

/** Errors of the CAS store. Messages name sessions and files, never their contents or keys. */
export class StoreError extends VeilError<StoreErrorCode> {}
