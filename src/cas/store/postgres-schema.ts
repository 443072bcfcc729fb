import type pg from 'pg';
import { StoreError } from './errors.js';
import { KEY_CHECK, sealedKeyCheck, verifyKeyCheck } from './records.js';

/**
 * The schema, as migrations applied in order. Each CAS applies the missing ones at start, in one transaction
 * under an advisory lock, so replicas starting at once migrate once and none sees a half-migrated schema.
 * Names sort bytewise (COLLATE "C"), as SQLite sorts them: listings and dumps have one order in both stores.
 * A migration is never edited once released: a change is a new entry.
 */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE meta (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
   CREATE TABLE versions (
     name text COLLATE "C" NOT NULL, hash text NOT NULL, predecessor text, created_at bigint NOT NULL,
     creator text NOT NULL, text bytea NOT NULL, secrets bytea NOT NULL, seq bigserial NOT NULL,
     PRIMARY KEY (name, hash));
   CREATE UNIQUE INDEX versions_order ON versions (name, seq);
   CREATE TABLE heads (name text COLLATE "C" PRIMARY KEY, hash text NOT NULL);
   CREATE TABLE blobs (key text COLLATE "C" PRIMARY KEY, value bytea NOT NULL);
   CREATE TABLE session_readers (principal bytea NOT NULL, name text COLLATE "C" NOT NULL,
     PRIMARY KEY (principal, name));
   CREATE INDEX session_readers_name ON session_readers (name);`,
  // The audit chain (README "Audit log"): one row per entry, appended under AUDIT_LOCK (postgres.ts).
  'CREATE TABLE audit (seq bigint PRIMARY KEY, hash text NOT NULL, entry text NOT NULL);',
];

/** The advisory lock of schema changes ('veil' in ASCII): one per database, whatever the replica. */
const SCHEMA_LOCK = 0x7665696c;

export async function migrateSchema(client: pg.PoolClient, key: Buffer, where: string): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_version (
      version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    const found = await client.query<{ v: number }>('SELECT coalesce(max(version), 0)::int AS v FROM schema_version');
    const current = found.rows[0]!.v;
    if (current > MIGRATIONS.length) throw newerSchema(where, current);
    for (let version = current + 1; version <= MIGRATIONS.length; version++) {
      await client.query(MIGRATIONS[version - 1]!);
      await client.query('INSERT INTO schema_version (version) VALUES ($1)', [version]);
    }
    await checkKey(client, key, where);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** The first CAS seals the key check; every later one (every replica) must open it with its key. */
async function checkKey(client: pg.PoolClient, key: Buffer, where: string): Promise<void> {
  const row = await client.query<{ value: Buffer }>('SELECT value FROM meta WHERE key = $1', [KEY_CHECK]);
  if (row.rows[0]) return verifyKeyCheck(key, row.rows[0].value, `the CAS database ${where}`);
  await client.query('INSERT INTO meta (key, value) VALUES ($1, $2)', [KEY_CHECK, sealedKeyCheck(key)]);
}

function newerSchema(where: string, version: number): StoreError {
  return new StoreError(
    'STORE_OPEN',
    `the CAS database ${where} has schema version ${version}; this CAS knows up to ${MIGRATIONS.length}`,
    { hint: 'a newer CAS migrated it: run that version (or newer) on every replica' },
  );
}
