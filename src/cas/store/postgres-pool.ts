import type pg from 'pg';
import { parseStoreUrl } from './postgres-errors.js';

/** README "Limits" (CAS on PostgreSQL): what one CAS process asks of the database. */
export interface PostgresLimits {
  /** Connections this CAS keeps open at most; requests beyond wait for one (up to connectTimeoutMs). */
  poolSize: number;
  /** How long to wait for a connection (a new one, or a free one of the pool) before STORE_UNAVAILABLE. */
  connectTimeoutMs: number;
  /** Longest statement, enforced by PostgreSQL; the client gives up 2 s later (a server that never answers). */
  statementTimeoutMs: number;
  /** An idle connection is closed after this. */
  idleTimeoutMs: number;
}

export const POSTGRES_LIMITS: PostgresLimits = {
  poolSize: 10,
  connectTimeoutMs: 5_000,
  statementTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
};

/** pg lets a URL's (absent) password override a separate one, so PGPASSWORD's goes into the URL given to it. */
export function withPassword(url: string, password: string | undefined): string {
  const parsed = parseStoreUrl(url);
  if (parsed.password || !password) return url;
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}

/**
 * The pool of one CAS process, its connections' failures handled so that none ends the process. pg is loaded
 * here, when a store on PostgreSQL is opened: a CAS on SQLite never loads it (README "Measured", restart).
 */
export async function newPool(connectionString: string, limits: PostgresLimits): Promise<pg.Pool> {
  const { default: pgModule } = await import('pg');
  const pool = new pgModule.Pool({
    connectionString,
    max: limits.poolSize,
    connectionTimeoutMillis: limits.connectTimeoutMs,
    idleTimeoutMillis: limits.idleTimeoutMs,
    statement_timeout: limits.statementTimeoutMs,
    query_timeout: limits.statementTimeoutMs + 2_000,
    keepAlive: true,
    application_name: 'veil-cas',
  });
  // An idle connection that breaks (PostgreSQL restarted, failed over) is reported here; unhandled, it would
  // end the process. The next query gets a fresh connection, or STORE_UNAVAILABLE.
  pool.on('error', () => undefined);
  // A connection that breaks while checked out (between two statements of a transaction) emits 'error' too;
  // the statement in flight or the next one fails, and the connection is then dropped, not reused.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}
