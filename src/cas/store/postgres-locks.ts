import { createHash } from 'node:crypto';
import type pg from 'pg';

/** The class (first key) of the advisory locks on session names ('head' in ASCII); schema changes use another. */
export const HEAD_LOCK = 0x68656164;

/**
 * The advisory lock of the audit chain's tail ('audt' in ASCII): one chain per database, whatever the replica.
 * Lock order: a transaction takes its name locks (HEAD_LOCK, by key) first and the tail's last, and one that
 * holds the tail's takes no other, so appends of versions with entries and group commits never wait in a cycle.
 */
export const AUDIT_LOCK = 0x61756474;
/** The class of the advisory locks on one certificate's renewals ('renw' in ASCII). */
export const RENEWAL_LOCK = 0x72656e77;

/** A name's lock key: the same on every replica, whatever the server's hash functions. */
export const lockKey = (name: string): number => createHash('sha256').update(name, 'utf8').digest().readInt32BE(0);

/**
 * Takes the locks in one order (by key) on every replica, so two appends never wait for each other in a cycle;
 * two names with one key share a lock, exclusive if either is written.
 */
export async function lockHeads(c: pg.PoolClient, written: string, read: readonly string[]): Promise<void> {
  const locks = new Map<number, boolean>(read.map((name) => [lockKey(name), false]));
  locks.set(lockKey(written), true);
  for (const [key, exclusive] of [...locks].sort(([a], [b]) => a - b)) {
    const fn = exclusive ? 'pg_advisory_xact_lock' : 'pg_advisory_xact_lock_shared';
    await c.query(`SELECT ${fn}($1, $2)`, [HEAD_LOCK, key]);
  }
}

/** Held to the end of the transaction; the last lock it takes (AUDIT_LOCK's lock order). */
export async function lockTail(c: pg.PoolClient): Promise<void> {
  await c.query('SELECT pg_advisory_xact_lock($1)', [AUDIT_LOCK]);
}

/** The first of `judged` whose head is no longer the hash given (null: it must still not exist). */
export async function movedHead(
  c: pg.PoolClient,
  judged: ReadonlyArray<[string, string | null]>,
): Promise<string | undefined> {
  if (judged.length === 0) return undefined;
  const rows = await c.query<{ name: string; hash: string }>('SELECT name, hash FROM heads WHERE name = ANY($1)', [
    judged.map(([name]) => name),
  ]);
  const now = new Map(rows.rows.map((r) => [r.name, r.hash]));
  return judged.find(([name, hash]) => (now.get(name) ?? null) !== hash)?.[0];
}
