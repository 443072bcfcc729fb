import { parseEntry } from './audit-rows.js';
import type { StoreItem } from './index.js';
import { unsealVersion, type VersionRow } from './records.js';

/** Rows a dump reads per query inside its snapshot. */
const DUMP_BATCH = 256;

/** A query inside the dump's snapshot (its transaction's connection). */
export type Read = <T>(sql: string, params: unknown[]) => Promise<T[]>;

export async function* dumpAudit(read: Read): AsyncIterable<StoreItem> {
  for (let after = 0; ; ) {
    const sql = 'SELECT seq, entry FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2';
    const rows = await read<{ seq: string; entry: string }>(sql, [after, DUMP_BATCH]);
    for (const row of rows) yield { type: 'audit', entry: parseEntry(row.entry) };
    if (rows.length < DUMP_BATCH) return;
    after = Number(rows[rows.length - 1]!.seq);
  }
}

export async function* dumpVersions(read: Read, key: Buffer): AsyncIterable<StoreItem> {
  let after: [string, string] | undefined;
  for (;;) {
    const sql =
      'SELECT * FROM versions WHERE $1::text IS NULL OR (name, seq) > ($1, $2::bigint) ORDER BY name, seq LIMIT $3';
    const rows = await read<VersionRow & { seq: string }>(sql, [after?.[0] ?? null, after?.[1] ?? '0', DUMP_BATCH]);
    for (const row of rows) yield { type: 'version', record: unsealVersion(key, row) };
    if (rows.length < DUMP_BATCH) return;
    const last = rows[rows.length - 1]!;
    after = [last.name, last.seq];
  }
}

/** Keyset pagination over one table's primary key, inside the dump's snapshot. */
export async function* batches<T>(read: Read, table: string, key: string, columns: string): AsyncIterable<T> {
  let after: string | null = null;
  for (;;) {
    const sql = `SELECT ${columns} FROM ${table} WHERE $1::text IS NULL OR ${key} > $1 ORDER BY ${key} LIMIT $2`;
    const rows: T[] = await read<T>(sql, [after, DUMP_BATCH]);
    yield* rows;
    if (rows.length < DUMP_BATCH) return;
    after = (rows[rows.length - 1] as Record<string, string>)[key]!;
  }
}
