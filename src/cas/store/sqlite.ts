import Database from 'better-sqlite3';
import { join } from 'node:path';
import { VeilError } from '../../errors.js';
import { StoreError } from './errors.js';
import { readersOf, type Readers } from '../readers.js';
import type { AuditEntry, AuditHead, EntryMaker } from '../../audit/types.js';
import { BROKEN_DUMP, checkContinues, EMPTY, parseEntry, readLimit } from './audit-rows.js';
import type { AppendOutcome, JudgedBy, SessionRecord, Store, StoreCounts, StoreItem } from './index.js';
import { ReadIndex, sealBlob, sealVersion, unsealBlob, unsealVersion, type VersionRow } from './records.js';
import { checkMasterKey, notEmpty, openDatabase, serveWithoutBlocking } from './sqlite-open.js';
import { BUSY_WAIT, whenUnlocked, type BusyWait } from './sqlite-busy.js';
import { KEPT_GENERATIONS, latestOf, renewalKey, secretPrefix, upperBound, versionPrefix } from './renewals.js';
import type { Renewal } from './renewals.js';

export { DATABASE_FILES } from './sqlite-open.js';

export interface SqliteStoreOptions {
  dataDir: string;
  masterKey: Buffer;
  /** Who may read a record (the read index); by default its policy's access_policy.read. */
  readers?: (record: SessionRecord) => Readers;
  /** SQLite's `synchronous` (README "Audit log", durability): NORMAL by default; FULL also survives power loss. */
  synchronous?: 'NORMAL' | 'FULL';
  /** How long and how an operation waits for a lock another process holds (tests shorten it). */
  busyWait?: Partial<BusyWait>;
}

export function openSqliteStore(opts: SqliteStoreOptions): Store {
  const db = openDatabase(opts.dataDir, opts.synchronous ?? 'NORMAL');
  checkMasterKey(db, opts.masterKey);
  const wait = { ...BUSY_WAIT, ...opts.busyWait };
  const store = new SqliteStore(db, opts.dataDir, opts.masterKey, opts.readers ?? readersOf, wait);
  store.indexStaleReaders();
  serveWithoutBlocking(db);
  return store;
}

class SqliteStore implements Store {
  private readonly stmts;
  private readonly index: ReadIndex;

  constructor(
    private readonly db: Database.Database,
    private readonly dataDir: string,
    private readonly key: Buffer,
    private readonly readers: (r: SessionRecord) => Readers,
    private readonly wait: BusyWait,
  ) {
    this.index = new ReadIndex(key);
    this.stmts = {
      head: db.prepare('SELECT hash FROM heads WHERE name = ?'),
      version: db.prepare('SELECT * FROM versions WHERE name = ? AND hash = ?'),
      insert: db.prepare(
        'INSERT INTO versions (name, hash, predecessor, created_at, creator, text, secrets) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      setHead: db.prepare(
        'INSERT INTO heads (name, hash) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET hash = excluded.hash',
      ),
      list: db.prepare(
        'SELECT h.name, h.hash, v.created_at FROM heads h JOIN versions v ON v.name = h.name AND v.hash = h.hash ORDER BY h.name',
      ),
      countHeads: db.prepare('SELECT count(*) AS n FROM heads'),
      listReadable: db.prepare(`SELECT h.name, h.hash, v.created_at
        FROM heads h JOIN versions v ON v.name = h.name AND v.hash = h.hash
        WHERE h.name IN (SELECT name FROM session_readers WHERE principal IN (?, ?)) ORDER BY h.name`),
      clearReaders: db.prepare('DELETE FROM session_readers WHERE name = ?'),
      addReader: db.prepare('INSERT OR IGNORE INTO session_readers (principal, name) VALUES (?, ?)'),
      readersOf: db.prepare(`INSERT INTO session_readers_of (name, hash) VALUES (?, ?)
        ON CONFLICT(name) DO UPDATE SET hash = excluded.hash`),
      staleHeads: db.prepare(`SELECT h.name, h.hash FROM heads h
        LEFT JOIN session_readers_of r ON r.name = h.name AND r.hash = h.hash WHERE r.name IS NULL`),
      getBlob: db.prepare('SELECT value FROM blobs WHERE key = ?'),
      putBlob: db.prepare('INSERT INTO blobs (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING'),
      blobRange: db.prepare('SELECT key, value FROM blobs WHERE key >= ? AND key < ? ORDER BY key'),
      dropRange: db.prepare('DELETE FROM blobs WHERE key >= ? AND key < ?'),
      anything: db.prepare(
        'SELECT 1 FROM versions UNION ALL SELECT 1 FROM heads UNION ALL SELECT 1 FROM blobs UNION ALL SELECT 1 FROM audit LIMIT 1',
      ),
      auditTail: db.prepare('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1'),
      auditInsert: db.prepare('INSERT INTO audit (seq, hash, entry) VALUES (?, ?, ?)'),
      auditRead: db.prepare('SELECT entry FROM audit WHERE seq > ? ORDER BY seq LIMIT ?'),
    };
  }

  /**
   * Every operation goes through read or write, the one place that waits for another process's lock
   * (sqlite-busy.ts). In WAL mode reads rarely meet one (recovery of the WAL index, a closing last connection);
   * writes meet each other's. Each unit is one statement or one transaction, so a retry repeats it whole.
   */
  private read<T>(unit: () => T): T | Promise<T> {
    return whenUnlocked(unit, this.wait, this.dataDir);
  }

  /**
   * Write transactions are BEGIN IMMEDIATE: the write lock is taken first, so SQLITE_BUSY can come only from
   * BEGIN, before anything was read or written. A deferred transaction would upgrade from read to write after its
   * reads, and get SQLITE_BUSY_SNAPSHOT there without any busy handler when another writer committed meanwhile;
   * IMMEDIATE also keeps the heads compared from moving before the write. What the unit throws as a VeilError
   * (an AuditError, a StoreError of its own) the caller sees as it is; anything else of SQLite is STORE_IO.
   */
  private async write<T>(what: string, unit: () => T): Promise<T> {
    try {
      return await whenUnlocked(unit, this.wait, this.dataDir);
    } catch (err) {
      if (err instanceof VeilError) throw err;
      throw new StoreError('STORE_IO', `cannot ${what}: ${(err as Error).message}`, {
        hint: 'check disk space and permissions of the data directory',
        cause: err,
      });
    }
  }

  async current(name: string): Promise<SessionRecord | undefined> {
    return this.read(() => this.currentNow(name));
  }

  async heads(names: readonly string[]): Promise<Map<string, string | null>> {
    return this.read(() => new Map(names.map((n) => [n, this.headNow(n)])));
  }

  async version(name: string, hash: string): Promise<SessionRecord | undefined> {
    return this.read(() => this.versionNow(name, hash));
  }

  private currentNow(name: string): SessionRecord | undefined {
    const head = this.stmts.head.get(name) as { hash: string } | undefined;
    return head ? this.versionNow(name, head.hash) : undefined;
  }

  private headNow(name: string): string | null {
    return (this.stmts.head.get(name) as { hash: string } | undefined)?.hash ?? null;
  }

  private versionNow(name: string, hash: string): SessionRecord | undefined {
    const row = this.stmts.version.get(name, hash) as VersionRow | undefined;
    return row ? unsealVersion(this.key, row) : undefined;
  }

  async append(
    record: SessionRecord,
    expectedCurrent: string | null,
    judgedBy?: JudgedBy,
    audit?: EntryMaker,
  ): Promise<AppendOutcome> {
    const readers = this.readers(record);
    // IMMEDIATE takes the write lock before reading the heads, so no writer moves one between the comparison
    // and the write. The read index changes in the same transaction as the head: it never names a reader of
    // another version. The lock is the audit tail's too, so the version and its entry commit as one.
    const run = this.db.transaction((): AppendOutcome => {
      const head = this.headNow(record.name);
      if (head !== expectedCurrent) return { ok: false, current: head };
      const moved = [...(judgedBy ?? [])].find(([name, hash]) => name !== record.name && this.headNow(name) !== hash);
      if (moved) return { ok: false, current: head, moved: moved[0] };
      if (audit) this.insertAudit(audit);
      this.insert(record);
      this.stmts.setHead.run(record.name, record.hash);
      this.setReaders(record.name, record.hash, readers);
      return { ok: true as const };
    });
    return this.write(`store session '${record.name}'`, () => run.immediate());
  }

  /** BEGIN IMMEDIATE: the write lock is held from reading the tail to the commit, across processes too. */
  async appendAudit(make: (head: AuditHead) => AuditEntry[]): Promise<AuditEntry[]> {
    const run = this.db.transaction((): AuditEntry[] => this.insertAudit(make));
    return this.write(`append to the audit log in ${this.dataDir}`, () => run.immediate());
  }

  /** Inside the caller's IMMEDIATE transaction, which holds the write lock: the tail cannot move meanwhile. */
  private insertAudit(make: EntryMaker): AuditEntry[] {
    const head = this.auditHeadNow();
    const entries = make(head);
    checkContinues(head, entries);
    for (const e of entries) this.stmts.auditInsert.run(e.seq, e.hash, JSON.stringify(e));
    return entries;
  }

  async readAudit(after: number, limit: number): Promise<AuditEntry[]> {
    const rows = (await this.read(() => this.stmts.auditRead.all(after, readLimit(limit)))) as Array<{
      entry: string;
    }>;
    return rows.map((r) => parseEntry(r.entry));
  }

  async auditHead(): Promise<AuditHead> {
    return this.read(() => this.auditHeadNow());
  }

  private auditHeadNow(): AuditHead {
    const row = this.stmts.auditTail.get() as { seq: number; hash: string } | undefined;
    return row ? { seq: row.seq, hash: row.hash } : EMPTY;
  }

  async list(): Promise<Array<{ name: string; hash: string; createdAt: number }>> {
    const rows = (await this.read(() => this.stmts.list.all())) as Array<{
      name: string;
      hash: string;
      created_at: number;
    }>;
    return rows.map((r) => ({ name: r.name, hash: r.hash, createdAt: r.created_at }));
  }

  async countSessions(): Promise<number> {
    return ((await this.read(() => this.stmts.countHeads.get())) as { n: number }).n;
  }

  async listReadable(keyHash: string | undefined): Promise<Array<{ name: string; hash: string; createdAt: number }>> {
    const [any, mine] = this.index.lookup(keyHash);
    const rows = (await this.read(() => this.stmts.listReadable.all(any, mine ?? any))) as Array<{
      name: string;
      hash: string;
      created_at: number;
    }>;
    return rows.map((r) => ({ name: r.name, hash: r.hash, createdAt: r.created_at }));
  }

  /**
   * Each head's readers are recorded with the hash they were computed for: a head without a matching record
   * (a database from before the index, or one an older CAS wrote to) is indexed again at open.
   */
  indexStaleReaders(): void {
    const build = this.db.transaction(() => {
      for (const { name, hash } of this.stmts.staleHeads.all() as Array<{ name: string; hash: string }>) {
        const record = this.versionNow(name, hash);
        if (record) this.setReaders(name, hash, this.readers(record));
      }
    });
    try {
      build.immediate();
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError('STORE_IO', `cannot build the read index of the CAS database: ${(err as Error).message}`, {
        hint: 'check disk space and permissions of the data directory',
        cause: err,
      });
    }
  }

  async getBlob(key: string): Promise<Buffer | undefined> {
    return this.read(() => this.blobNow(key));
  }

  private blobNow(key: string): Buffer | undefined {
    const row = this.stmts.getBlob.get(key) as { value: Buffer } | undefined;
    return row ? unsealBlob(this.key, key, row.value) : undefined;
  }

  /** One statement: taking the write lock and inserting are one step, retried whole (DO NOTHING if present). */
  async putBlobIfAbsent(key: string, value: Buffer): Promise<Buffer> {
    const sealed = sealBlob(this.key, key, value);
    await this.write(`store '${key}'`, () => this.stmts.putBlob.run(key, sealed));
    return this.read(() => this.blobNow(key)!);
  }

  async renewals(name: string, hash: string): Promise<Map<string, Renewal>> {
    return this.read(() => this.renewalsUnder(versionPrefix(name, hash)));
  }

  private renewalsUnder(prefix: string): Map<string, Renewal> {
    const rows = this.stmts.blobRange.all(prefix, upperBound(prefix)) as Array<{ key: string; value: Buffer }>;
    return latestOf(rows.map((r) => ({ key: r.key, value: unsealBlob(this.key, r.key, r.value) })));
  }

  /** IMMEDIATE: the latest generation is read and the next one written under the one write lock. */
  async putRenewal(name: string, hash: string, secret: string, renewal: Renewal): Promise<Renewal> {
    const prefix = secretPrefix(name, hash, secret);
    const run = this.db.transaction((): Renewal => {
      const latest = this.renewalsUnder(prefix).get(secret);
      if (latest && latest.generation >= renewal.generation) return latest;
      const key = renewalKey(name, hash, secret, renewal.generation);
      this.stmts.putBlob.run(key, sealBlob(this.key, key, renewal.value));
      const oldest = renewal.generation - KEPT_GENERATIONS + 1;
      if (oldest > 1) this.stmts.dropRange.run(prefix, renewalKey(name, hash, secret, oldest));
      return renewal;
    });
    return this.write(`store a renewal of '${secret}' in '${name}'`, () => run.immediate());
  }

  /**
   * A second, read-only connection holds one read transaction for the whole dump: in WAL mode it sees the
   * database as it was at its first read while this CAS goes on writing through the main connection.
   */
  async *dump(): AsyncIterable<StoreItem> {
    const snapshot = new Database(join(this.dataDir, 'cas.db'), { readonly: true, fileMustExist: true });
    try {
      snapshot.exec('BEGIN');
      const versions = snapshot.prepare('SELECT * FROM versions ORDER BY name, created_at, rowid');
      for (const row of versions.iterate() as IterableIterator<VersionRow>) {
        yield { type: 'version', record: unsealVersion(this.key, row) };
      }
      for (const row of snapshot.prepare('SELECT name, hash FROM heads ORDER BY name').iterate() as IterableIterator<{
        name: string;
        hash: string;
      }>) {
        yield { type: 'head', name: row.name, hash: row.hash };
      }
      const blobs = snapshot.prepare('SELECT key, value FROM blobs ORDER BY key');
      for (const row of blobs.iterate() as IterableIterator<{ key: string; value: Buffer }>) {
        yield { type: 'blob', key: row.key, value: unsealBlob(this.key, row.key, row.value) };
      }
      for (const row of snapshot.prepare('SELECT entry FROM audit ORDER BY seq').iterate() as IterableIterator<{
        entry: string;
      }>) {
        yield { type: 'audit', entry: parseEntry(row.entry) };
      }
      snapshot.exec('COMMIT');
    } finally {
      snapshot.close();
    }
  }

  /**
   * The transaction stays open across the awaits of the dump being read: load is for a store that no CAS
   * serves yet (restore, migrate), so nothing else writes through this connection meanwhile.
   */
  async load(items: AsyncIterable<StoreItem>): Promise<StoreCounts> {
    const counts: StoreCounts = { versions: 0, heads: 0, blobs: 0, audits: 0 };
    await this.write(`load into the CAS database in ${this.dataDir}`, () => this.db.exec('BEGIN IMMEDIATE'));
    try {
      if (this.stmts.anything.get() !== undefined) throw notEmpty(this.dataDir);
      for await (const item of items) this.loadItem(item, counts);
      this.indexHeads();
      this.db.exec('COMMIT');
      return counts;
    } catch (err) {
      this.db.exec('ROLLBACK');
      if (err instanceof StoreError) throw err;
      throw new StoreError(
        'STORE_IO',
        `cannot load into the CAS database in ${this.dataDir}: ${(err as Error).message}`,
        {
          hint: 'check disk space and permissions of the data directory',
          cause: err,
        },
      );
    }
  }

  async ping(): Promise<void> {
    try {
      await this.read(() => this.stmts.anything.get());
    } catch (err) {
      throw new StoreError('STORE_UNAVAILABLE', `the CAS database in ${this.dataDir} does not answer`, {
        hint: 'check the data directory (disk, permissions) and restart the CAS',
        cause: err,
      });
    }
  }

  async close(): Promise<void> {
    this.db.close();
  }

  private loadItem(item: StoreItem, counts: StoreCounts): void {
    if (item.type === 'version') {
      this.insert(item.record);
      counts.versions++;
    } else if (item.type === 'head') {
      this.stmts.setHead.run(item.name, item.hash);
      counts.heads++;
    } else if (item.type === 'audit') {
      checkContinues(this.auditHeadNow(), [item.entry], BROKEN_DUMP);
      this.stmts.auditInsert.run(item.entry.seq, item.entry.hash, JSON.stringify(item.entry));
      counts.audits++;
    } else {
      this.stmts.putBlob.run(item.key, sealBlob(this.key, item.key, item.value));
      counts.blobs++;
    }
  }

  /** Every head's read index, inside the caller's transaction. */
  private indexHeads(): void {
    for (const { name, hash } of this.stmts.staleHeads.all() as Array<{ name: string; hash: string }>) {
      const record = this.versionNow(name, hash);
      if (!record)
        throw new StoreError('STORE_CORRUPT', `session '${name}' has a head (${hash}) but no such version`, {
          hint: 'the dump is incomplete; take the backup again',
        });
      this.setReaders(name, hash, this.readers(record));
    }
  }

  private setReaders(name: string, hash: string, readers: Readers): void {
    this.stmts.clearReaders.run(name);
    this.stmts.readersOf.run(name, hash);
    for (const principal of this.index.entries(readers)) this.stmts.addReader.run(principal, name);
  }

  private insert(r: SessionRecord): void {
    const sealed = sealVersion(this.key, r);
    this.stmts.insert.run(r.name, r.hash, r.predecessor, r.createdAt, r.creator, sealed.text, sealed.secrets);
  }
}
