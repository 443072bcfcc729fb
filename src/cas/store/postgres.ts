import type pg from 'pg';
import { StoreError } from './errors.js';
import { VeilError } from '../../errors.js';
import type { AuditEntry, AuditHead, EntryMaker } from '../../audit/types.js';
import { BROKEN_DUMP, checkContinues, EMPTY, parseEntry, readLimit } from './audit-rows.js';
import type { AppendOutcome, JudgedBy, SessionRecord, Store, StoreCounts, StoreItem } from './index.js';
import { readersOf, type Readers } from '../readers.js';
import { migrateSchema } from './postgres-schema.js';
import { PgFailures } from './postgres-errors.js';
import { batches, dumpAudit, dumpVersions, type Read } from './postgres-dump.js';
import { lockHeads, lockKey, lockTail, movedHead, RENEWAL_LOCK } from './postgres-locks.js';
import { newPool, POSTGRES_LIMITS, withPassword, type PostgresLimits } from './postgres-pool.js';
import { ReadIndex, sealBlob, sealVersion, unsealBlob, unsealVersion, type VersionRow } from './records.js';
import { KEPT_GENERATIONS, latestOf, renewalKey, secretPrefix, upperBound, versionPrefix } from './renewals.js';
import type { Renewal } from './renewals.js';

export { POSTGRES_LIMITS, type PostgresLimits } from './postgres-pool.js';

/**
 * PostgreSQL's text cannot hold NUL, so no session or blob with one in its name can exist there: reads of such a
 * name (from any request: /v1/values/session=a%00b, an import, a config ID) answer "absent", as SQLite does,
 * instead of an encoding error becoming a 5xx.
 */
const storable = (name: string): boolean => !name.includes('\0');

export interface PostgresStoreOptions {
  /** postgres://USER[:PASSWORD]@HOST:PORT/DB; the password may instead be in `password` (PGPASSWORD). */
  url: string;
  password?: string | undefined;
  masterKey: Buffer;
  limits?: Partial<PostgresLimits>;
  /** Who may read a record (the read index); by default its policy's access_policy.read. */
  readers?: (record: SessionRecord) => Readers;
}

type Queryable = pg.Pool | pg.PoolClient;
type Counts = StoreCounts;

/**
 * Opens the store on a PostgreSQL database shared by every CAS replica: creates or migrates its schema, then
 * checks that the master key is the one the database was sealed with.
 */
export async function openPostgresStore(opts: PostgresStoreOptions): Promise<Store> {
  const failures = new PgFailures(opts.url, opts.password);
  const limits = { ...POSTGRES_LIMITS, ...opts.limits };
  const pool = await newPool(withPassword(opts.url, opts.password), limits);
  try {
    const client = await pool.connect();
    try {
      await migrateSchema(client, opts.masterKey, failures.where);
    } finally {
      client.release(true);
    }
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw failures.of(err, 'open the CAS database');
  }
  return new PostgresStore(pool, opts.masterKey, opts.readers ?? readersOf, failures);
}

class PostgresStore implements Store {
  private readonly index: ReadIndex;

  constructor(
    private readonly pool: pg.Pool,
    private readonly key: Buffer,
    private readonly readers: (r: SessionRecord) => Readers,
    private readonly failures: PgFailures,
  ) {
    this.index = new ReadIndex(key);
  }

  async current(name: string): Promise<SessionRecord | undefined> {
    if (!storable(name)) return undefined;
    const sql = 'SELECT v.* FROM heads h JOIN versions v ON v.name = h.name AND v.hash = h.hash WHERE h.name = $1';
    const rows = await this.rows<VersionRow>(this.pool, sql, [name], `read session '${name}'`);
    return rows[0] && unsealVersion(this.key, rows[0]);
  }

  async heads(names: readonly string[]): Promise<Map<string, string | null>> {
    const asked = names.filter(storable);
    const sql = 'SELECT name, hash FROM heads WHERE name = ANY($1::text[])';
    const rows =
      asked.length === 0 ? [] : await this.rows<{ name: string; hash: string }>(this.pool, sql, [asked], 'read heads');
    const found = new Map(rows.map((r) => [r.name, r.hash]));
    return new Map(names.map((n) => [n, found.get(n) ?? null]));
  }

  async version(name: string, hash: string): Promise<SessionRecord | undefined> {
    if (!storable(name) || !storable(hash)) return undefined;
    const sql = 'SELECT * FROM versions WHERE name = $1 AND hash = $2';
    const rows = await this.rows<VersionRow>(this.pool, sql, [name, hash], `read session '${name}'`);
    return rows[0] && unsealVersion(this.key, rows[0]);
  }

  /**
   * Every append locks the names it writes (exclusive) and the names it was judged by (shared), by advisory
   * locks held to the end of its transaction: a write judged by session X and a write of X are serialized, even
   * when X does not exist yet (no row to lock). The heads are compared only once the locks are held, and the
   * head then still moves by compare-and-set.
   */
  async append(
    record: SessionRecord,
    expectedCurrent: string | null,
    judgedBy?: JudgedBy,
    audit?: EntryMaker,
  ): Promise<AppendOutcome> {
    const readers = this.index.entries(this.readers(record));
    // A name PostgreSQL cannot hold was read as absent, and stays absent: nothing to compare.
    const others = [...(judgedBy ?? [])].filter(([name]) => name !== record.name && storable(name));
    const judgedNames = others.map(([name]) => name);
    return this.transaction(`store session '${record.name}'`, async (c) => {
      // Under these locks no other append moves the heads read here until this transaction ends, so each is
      // compared once, below (one place per rule, so that a test fails when one is weakened).
      await lockHeads(c, record.name, judgedNames);
      const head = await this.head(c, record.name);
      if (head !== expectedCurrent) return { ok: false, current: head };
      const moved = await movedHead(c, others);
      if (moved !== undefined) return { ok: false, current: head, moved };
      // The tail's lock after the names' (lock order, AUDIT_LOCK), and only for a write that commits.
      if (audit) {
        await lockTail(c);
        await this.insertAudit(c, audit);
      }
      await this.setHead(c, record);
      await this.insertVersion(c, record);
      await this.setReaders(c, record.name, readers);
      return { ok: true };
    });
  }

  /** The head's compare happened under the name's lock (append): here it only moves. */
  private async setHead(c: pg.PoolClient, record: SessionRecord): Promise<void> {
    const sql = 'INSERT INTO heads (name, hash) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET hash = excluded.hash';
    await c.query(sql, [record.name, record.hash]);
  }

  async list(): Promise<Array<{ name: string; hash: string; createdAt: number }>> {
    return this.listWhere('', []);
  }

  async countSessions(): Promise<number> {
    const sql = 'SELECT count(*)::int AS n FROM heads';
    const rows = await this.rows<{ n: number }>(this.pool, sql, [], 'count sessions');
    return rows[0]!.n;
  }

  /**
   * The tail is read only once the chain's advisory lock is held (to the end of the transaction): every replica
   * appends after the last committed entry, so the database keeps one chain; the primary key refuses a duplicate
   * seq should anything bypass the lock.
   */
  async appendAudit(make: (head: AuditHead) => AuditEntry[]): Promise<AuditEntry[]> {
    return this.transaction('append to the audit log', async (c) => {
      await lockTail(c);
      return this.insertAudit(c, make);
    });
  }

  /** Only under the tail's lock (lockTail), so that no other replica reads the same tail meanwhile. */
  private async insertAudit(c: pg.PoolClient, make: EntryMaker): Promise<AuditEntry[]> {
    const head = await this.auditTail(c);
    const entries = make(head);
    checkContinues(head, entries);
    if (entries.length === 0) return entries;
    await c.query('INSERT INTO audit (seq, hash, entry) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[])', [
      entries.map((e) => e.seq),
      entries.map((e) => e.hash),
      entries.map((e) => JSON.stringify(e)),
    ]);
    return entries;
  }

  async readAudit(after: number, limit: number): Promise<AuditEntry[]> {
    const sql = 'SELECT entry FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2';
    const rows = await this.rows<{ entry: string }>(this.pool, sql, [after, readLimit(limit)], 'read the audit log');
    return rows.map((r) => parseEntry(r.entry));
  }

  async auditHead(): Promise<AuditHead> {
    return this.auditTail(this.pool);
  }

  private async auditTail(on: Queryable): Promise<AuditHead> {
    const sql = 'SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1';
    const rows = await this.rows<{ seq: string; hash: string }>(on, sql, [], 'read the audit head');
    return rows[0] ? { seq: Number(rows[0].seq), hash: rows[0].hash } : EMPTY;
  }

  async listReadable(keyHash: string | undefined): Promise<Array<{ name: string; hash: string; createdAt: number }>> {
    const where = 'WHERE h.name IN (SELECT name FROM session_readers WHERE principal = ANY($1::bytea[]))';
    return this.listWhere(where, [this.index.lookup(keyHash)]);
  }

  async getBlob(key: string): Promise<Buffer | undefined> {
    if (!storable(key)) return undefined;
    const rows = await this.rows<{ value: Buffer }>(this.pool, 'SELECT value FROM blobs WHERE key = $1', [key], 'read');
    return rows[0] && unsealBlob(this.key, key, rows[0].value);
  }

  async putBlobIfAbsent(key: string, value: Buffer): Promise<Buffer> {
    const sql = 'INSERT INTO blobs (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING';
    await this.rows(this.pool, sql, [key, sealBlob(this.key, key, value)], `store blob '${key}'`);
    return (await this.getBlob(key))!;
  }

  async renewals(name: string, hash: string): Promise<Map<string, Renewal>> {
    if (!storable(name) || !storable(hash)) return new Map();
    return this.renewalsUnder(this.pool, versionPrefix(name, hash));
  }

  private async renewalsUnder(on: Queryable, prefix: string): Promise<Map<string, Renewal>> {
    const sql = 'SELECT key, value FROM blobs WHERE key >= $1 AND key < $2 ORDER BY key';
    const rows = await this.rows<{ key: string; value: Buffer }>(
      on,
      sql,
      [prefix, upperBound(prefix)],
      'read renewals',
    );
    return latestOf(rows.map((r) => ({ key: r.key, value: unsealBlob(this.key, r.key, r.value) })));
  }

  /** Under the certificate's advisory lock the latest generation is read, compared and the next one written. */
  async putRenewal(name: string, hash: string, secret: string, renewal: Renewal): Promise<Renewal> {
    const prefix = secretPrefix(name, hash, secret);
    return this.transaction(`store a renewal of '${secret}' in '${name}'`, async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1, $2)', [RENEWAL_LOCK, lockKey(prefix)]);
      const latest = (await this.renewalsUnder(c, prefix)).get(secret);
      if (latest && latest.generation >= renewal.generation) return latest;
      const key = renewalKey(name, hash, secret, renewal.generation);
      await c.query('INSERT INTO blobs (key, value) VALUES ($1, $2)', [key, sealBlob(this.key, key, renewal.value)]);
      const oldest = renewal.generation - KEPT_GENERATIONS + 1;
      if (oldest > 1) {
        const drop = 'DELETE FROM blobs WHERE key >= $1 AND key < $2';
        await c.query(drop, [prefix, renewalKey(name, hash, secret, oldest)]);
      }
      return renewal;
    });
  }

  /** One REPEATABLE READ READ ONLY transaction: one snapshot however long the reading takes, writers unblocked. */
  async *dump(): AsyncIterable<StoreItem> {
    const client = await this.connect('read a dump');
    let done = false;
    const read: Read = (sql, params) => this.rows(client, sql, params, 'read a dump');
    try {
      await this.rows(client, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', [], 'begin a dump');
      yield* dumpVersions(read, this.key);
      for await (const row of batches<{ name: string; hash: string }>(read, 'heads', 'name', 'name, hash')) {
        yield { type: 'head', name: row.name, hash: row.hash };
      }
      for await (const row of batches<{ key: string; value: Buffer }>(read, 'blobs', 'key', 'key, value')) {
        yield { type: 'blob', key: row.key, value: unsealBlob(this.key, row.key, row.value) };
      }
      yield* dumpAudit(read);
      await this.rows(client, 'COMMIT', [], 'end a dump');
      done = true;
    } finally {
      if (!done) await client.query('ROLLBACK').catch(() => undefined);
      client.release(!done);
    }
  }

  /**
   * One transaction, the tables locked against writers: all or nothing, and no CAS can write between the
   * emptiness check and the last item.
   */
  async load(items: AsyncIterable<StoreItem>): Promise<Counts> {
    return this.transaction('load a dump', async (c) => {
      await c.query('LOCK TABLE versions, heads, blobs, audit IN EXCLUSIVE MODE');
      const any = await c.query(
        'SELECT 1 FROM versions UNION ALL SELECT 1 FROM heads UNION ALL SELECT 1 FROM blobs UNION ALL SELECT 1 FROM audit LIMIT 1',
      );
      if (any.rowCount) throw this.notEmpty();
      const counts: Counts = { versions: 0, heads: 0, blobs: 0, audits: 0 };
      const tail = { head: EMPTY };
      for await (const item of items) await this.loadItem(c, item, counts, tail);
      await this.indexHeads(c);
      return counts;
    });
  }

  async ping(): Promise<void> {
    await this.rows(this.pool, 'SELECT 1', [], 'reach the database');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async loadItem(c: pg.PoolClient, item: StoreItem, counts: Counts, tail: { head: AuditHead }): Promise<void> {
    if (item.type === 'version') {
      await this.insertVersion(c, item.record);
      counts.versions++;
    } else if (item.type === 'head') {
      await c.query('INSERT INTO heads (name, hash) VALUES ($1, $2)', [item.name, item.hash]);
      counts.heads++;
    } else if (item.type === 'audit') {
      const e = item.entry;
      checkContinues(tail.head, [e], BROKEN_DUMP);
      await c.query('INSERT INTO audit (seq, hash, entry) VALUES ($1, $2, $3)', [e.seq, e.hash, JSON.stringify(e)]);
      tail.head = { seq: e.seq, hash: e.hash };
      counts.audits++;
    } else {
      await c.query('INSERT INTO blobs (key, value) VALUES ($1, $2)', [
        item.key,
        sealBlob(this.key, item.key, item.value),
      ]);
      counts.blobs++;
    }
  }

  /** Every head's read index, inside the caller's transaction. */
  private async indexHeads(c: pg.PoolClient): Promise<void> {
    const heads = await c.query<{ name: string; hash: string }>('SELECT name, hash FROM heads ORDER BY name');
    for (const { name, hash } of heads.rows) {
      const rows = await c.query<VersionRow>('SELECT * FROM versions WHERE name = $1 AND hash = $2', [name, hash]);
      if (!rows.rows[0])
        throw new StoreError('STORE_CORRUPT', `session '${name}' has a head (${hash}) but no such version`, {
          hint: 'the dump is incomplete; take the backup again',
        });
      const record = unsealVersion(this.key, rows.rows[0]);
      await this.setReaders(c, name, this.index.entries(this.readers(record)));
    }
  }

  private async insertVersion(c: pg.PoolClient, r: SessionRecord): Promise<void> {
    const sealed = sealVersion(this.key, r);
    await c.query(
      `INSERT INTO versions (name, hash, predecessor, created_at, creator, text, secrets)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [r.name, r.hash, r.predecessor, r.createdAt, r.creator, sealed.text, sealed.secrets],
    );
  }

  /** The read index changes in the same transaction as the head: it never names a reader of another version. */
  private async setReaders(c: pg.PoolClient, name: string, principals: Buffer[]): Promise<void> {
    await c.query('DELETE FROM session_readers WHERE name = $1', [name]);
    if (principals.length === 0) return;
    await c.query(
      'INSERT INTO session_readers (principal, name) SELECT unnest($1::bytea[]), $2 ON CONFLICT DO NOTHING',
      [principals, name],
    );
  }

  private async head(c: pg.PoolClient, name: string): Promise<string | null> {
    const rows = await c.query<{ hash: string }>('SELECT hash FROM heads WHERE name = $1', [name]);
    return rows.rows[0]?.hash ?? null;
  }

  private async listWhere(where: string, params: unknown[]) {
    const sql = `SELECT h.name, h.hash, v.created_at FROM heads h
      JOIN versions v ON v.name = h.name AND v.hash = h.hash ${where} ORDER BY h.name`;
    const rows = await this.rows<{ name: string; hash: string; created_at: string }>(this.pool, sql, params, 'list');
    return rows.map((r) => ({ name: r.name, hash: r.hash, createdAt: Number(r.created_at) }));
  }

  private async rows<T>(on: Queryable, sql: string, params: unknown[], what: string): Promise<T[]> {
    try {
      return (await on.query(sql, params)).rows as T[];
    } catch (err) {
      throw this.failures.of(err, what);
    }
  }

  private async connect(what: string): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err) {
      throw this.failures.of(err, what);
    }
  }

  /** Runs `fn` in a transaction; a failed one is rolled back and its connection dropped (it may be broken). */
  private async transaction<T>(what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.connect(what);
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(true);
      // What the caller's code threw (an audit maker's AuditError) is theirs to see as it is.
      throw err instanceof VeilError ? err : this.failures.of(err, what);
    }
  }

  private notEmpty(): StoreError {
    return new StoreError('STORE_NOT_EMPTY', `the CAS database ${this.failures.where} already holds sessions or keys`, {
      hint: 'restore or migrate into a new, empty database; nothing was changed',
    });
  }
}
