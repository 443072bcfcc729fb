import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError } from './errors.js';
import type { Store } from './index.js';
import { openPostgresStore } from './postgres.js';
import { displayStoreUrl, parseStoreUrl } from './postgres-errors.js';
import { openSqliteStore } from './sqlite.js';

/** Where a store is: an embedded SQLite data directory (`--data DIR`) or a database URL (`--store URL`). */
export type StoreLocation = { data: string } | { store: string };

export interface OpenStoreOptions {
  location: StoreLocation;
  masterKey: Buffer;
  /** Refuse a store that does not exist yet instead of creating it (a backup reads an existing CAS). */
  existing?: boolean;
  /** The database password when the URL has none (PGPASSWORD). */
  password?: string | undefined;
}

/** The one place the CLI's store-using commands open a store; each backend adds its scheme here. */
export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  const { location } = opts;
  if ('data' in location) {
    if (opts.existing) requireExisting(location);
    return openSqliteStore({ dataDir: location.data, masterKey: opts.masterKey });
  }
  return openPostgresStore({ url: location.store, password: opts.password, masterKey: opts.masterKey });
}

/** Before the master key is looked for: a mistyped directory is named as such, not as a missing key. */
export function requireExisting(location: StoreLocation): void {
  if ('data' in location && !existsSync(join(location.data, 'cas.db'))) {
    throw new StoreError('STORE_OPEN', `${location.data} holds no CAS database (cas.db)`, {
      hint: "give the --data directory 'veil cas serve' runs with",
    });
  }
}

/** A store URL for messages: scheme, user, host and database, never a password (one that does not parse: said so). */
export function describeStore(url: string): string {
  try {
    return displayStoreUrl(parseStoreUrl(url));
  } catch {
    return 'a store URL that does not parse';
  }
}
