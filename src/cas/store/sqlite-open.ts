import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError } from './errors.js';
import { KEY_CHECK, sealedKeyCheck, verifyKeyCheck } from './records.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
  name TEXT NOT NULL, hash TEXT NOT NULL, predecessor TEXT, created_at INTEGER NOT NULL,
  creator TEXT NOT NULL, text BLOB NOT NULL, secrets BLOB NOT NULL, PRIMARY KEY (name, hash));
CREATE TABLE IF NOT EXISTS heads (name TEXT PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS session_readers (principal BLOB NOT NULL, name TEXT NOT NULL, PRIMARY KEY (principal, name));
CREATE INDEX IF NOT EXISTS session_readers_name ON session_readers (name);
CREATE TABLE IF NOT EXISTS session_readers_of (name TEXT PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, entry TEXT NOT NULL);
`;

/** The database and the files SQLite keeps beside it in WAL mode. */
export const DATABASE_FILES = ['cas.db', 'cas.db-wal', 'cas.db-shm'] as const;

/**
 * Everything in the data directory is sealed, but its files still say how many sessions there are and when
 * they changed: owner only. SQLite gives -wal and -shm the mode of the database file, so creating that
 * 0600 before SQLite opens it covers all three; files left wider by an older version are narrowed.
 */
function privateFiles(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if ((statSync(dataDir).mode & 0o077) !== 0) chmodSync(dataDir, 0o700);
  closeSync(openSync(join(dataDir, 'cas.db'), 'a', 0o600));
  for (const file of DATABASE_FILES) {
    const path = join(dataDir, file);
    if (existsSync(path) && (statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  }
}

/** How long opening waits for another process's write lock (README "Limits"). */
export const OPEN_BUSY_MS = 60_000;

export function openDatabase(dataDir: string, synchronous: 'NORMAL' | 'FULL'): Database.Database {
  try {
    privateFiles(dataDir);
    const db = new Database(join(dataDir, 'cas.db'));
    db.pragma('journal_mode = WAL');
    // NORMAL syncs the WAL at checkpoints only: a committed transaction is in the WAL file (the kernel's page
    // cache) when the commit returns, so it survives the death of the process (kill -9), which is the durability
    // we promise; surviving power loss would need FULL (an fsync per commit; README "Audit log", durability).
    db.pragma(`synchronous = ${synchronous}`);
    // Opening (WAL, the schema, the key check, the read index) may block: nothing is served by this process yet.
    // serveWithoutBlocking ends that before the store is handed out. Longer than a served write's wait: workers
    // forked together open at once, and one of them may be rebuilding the read index of a large store.
    db.pragma(`busy_timeout = ${OPEN_BUSY_MS}`);
    db.exec(SCHEMA);
    return db;
  } catch (err) {
    throw new StoreError('STORE_OPEN', `cannot open the CAS database in ${dataDir}: ${(err as Error).message}`, {
      hint: 'check that the data directory is writable and not used by another CAS version',
      cause: err,
    });
  }
}

/**
 * From here on SQLite never waits for a lock inside a call (which would hold this process's event loop):
 * SQLITE_BUSY comes back at once and the store waits asynchronously (sqlite-busy.ts).
 */
export function serveWithoutBlocking(db: Database.Database): void {
  db.pragma('busy_timeout = 0');
}

/**
 * Put only if absent, then checked: two CAS workers opening a new database at once (`--workers N` with the key
 * given) agree on the one check that was stored, and a key that is not its own is refused either way.
 */
export function checkMasterKey(db: Database.Database, key: Buffer): void {
  const read = () => db.prepare('SELECT value FROM meta WHERE key = ?').get(KEY_CHECK) as { value: Buffer } | undefined;
  // A store that has its check (every restart) is only read: no write lock for workers opening together.
  let row = read();
  if (!row) {
    db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run(KEY_CHECK, sealedKeyCheck(key));
    row = read()!;
  }
  verifyKeyCheck(key, row.value, 'this data directory');
}

export function notEmpty(where: string): StoreError {
  return new StoreError('STORE_NOT_EMPTY', `the CAS database in ${where} already holds sessions or keys`, {
    hint: 'restore or migrate into a new, empty data directory or database; nothing was changed',
  });
}
