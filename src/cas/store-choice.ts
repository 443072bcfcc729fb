import { CasError } from './errors.js';
import {
  loadMasterKey,
  openPostgresStore,
  openSqliteStore,
  StoreError,
  type PostgresLimits,
  type Store,
} from './store/index.js';

export interface StoreChoice {
  dataDir: string;
  /** postgres://…: the shared store; undefined: the embedded SQLite in dataDir. */
  store?: string | undefined;
  storePassword?: string | undefined;
  storeLimits?: Partial<PostgresLimits>;
  masterKeyFile?: string | undefined;
  masterKeyEnv?: string | undefined;
}

/**
 * The CAS's store: SQLite in its data directory (the master key found or made there), or PostgreSQL, where the
 * key must be given: every replica must hold the same one, so a key made by one replica would lock out the rest.
 */
export async function openStore(choice: StoreChoice): Promise<Store> {
  if (choice.store === undefined) {
    const masterKey = loadMasterKey({ dataDir: choice.dataDir, file: choice.masterKeyFile, env: choice.masterKeyEnv });
    return openSqliteStore({ dataDir: choice.dataDir, masterKey });
  }
  return openPostgresStore({
    url: choice.store,
    password: choice.storePassword,
    masterKey: givenMasterKey(choice),
    ...(choice.storeLimits ? { limits: choice.storeLimits } : {}),
  });
}

export function givenMasterKey(choice: Pick<StoreChoice, 'masterKeyFile' | 'masterKeyEnv' | 'dataDir'>): Buffer {
  if (!choice.masterKeyFile && !choice.masterKeyEnv) {
    throw new StoreError('STORE_MASTER_KEY', 'a CAS on PostgreSQL needs its master key given; none was', {
      hint:
        'every replica must hold the same key: make one (openssl rand -hex 32), keep it in a Secret and pass it ' +
        'with --master-key-file or VEIL_MASTER_KEY; none is generated',
    });
  }
  return loadMasterKey({ dataDir: choice.dataDir, file: choice.masterKeyFile, env: choice.masterKeyEnv });
}

/** When a client may retry a request the store could not serve (Retry-After). */
export const STORE_RETRY_AFTER_S = 1;

/** What a client is told when the store does not answer: to retry; the details are in the CAS's log. */
export function storeUnavailable(cause: unknown): CasError {
  return new CasError('CAS_STORE_UNAVAILABLE', "the CAS's database does not answer now", {
    hint: 'retry shortly, or on another replica of this CAS',
    cause,
    retryAfterS: STORE_RETRY_AFTER_S,
  });
}

/**
 * SQLite locked by another process past the store's wait (STORE_BUSY): a 503 like a database that does not
 * answer, since the client did nothing wrong and the same request may succeed in a moment; not 429 CAS_BUSY,
 * which tells a client that it is over one of its own caps. Where the lock is stays in the CAS's log.
 */
export function storeBusy(cause: unknown): CasError {
  return new CasError(
    'CAS_STORE_UNAVAILABLE',
    "the CAS's database is locked by another of its writers and stayed so past the CAS's wait; nothing was changed",
    {
      hint:
        `retry after ${STORE_RETRY_AFTER_S} s (Retry-After) — an attestation with a new nonce, since the one sent was spent —; ` +
        "the CAS's log names the database",
      cause,
      retryAfterS: STORE_RETRY_AFTER_S,
    },
  );
}

/** How long readiness waits for the store's answer. */
export const READY_DEADLINE_MS = 2_000;

/** Readiness (GET /v1/health/ready): the store answers within READY_DEADLINE_MS, or CAS_STORE_UNAVAILABLE. */
export async function checkReady(store: Store): Promise<{ ready: true }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${READY_DEADLINE_MS} ms`)), READY_DEADLINE_MS);
  });
  try {
    await Promise.race([store.ping(), late]);
    return { ready: true };
  } catch (err) {
    throw storeUnavailable(err);
  } finally {
    clearTimeout(timer);
  }
}
