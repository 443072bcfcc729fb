import { StoreError } from './errors.js';

/** Network errors that mean the database cannot be reached now (down, restarting, failing over). */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

/**
 * SQLSTATEs of a database that does not serve now: connection exceptions (08), shutdown and start-up (57P01–03),
 * too many connections (53300), a standby that refuses writes (25006: the primary is gone, or not promoted
 * yet), a statement cancelled by statement_timeout (57014).
 */
const UNAVAILABLE_STATE = /^(08...|57P0[123]|53300|25006|57014)$/;

/** The client's own words for a connection that broke or never came. */
const UNAVAILABLE_MESSAGE =
  /Connection terminated|timeout exceeded|Query read timeout|not queryable|Cannot use a pool after calling end/i;

/** What the server refuses at connection: a wrong user or password (28…), no such database (3D000). */
const REFUSED_STATE = /^(28...|3D000)$/;

/**
 * Turns whatever `pg` throws into StoreErrors that name the database by its URL without the password, and
 * never carry it: the password (from the URL or PGPASSWORD) is cut out of every message.
 */
export class PgFailures {
  /** The database as messages name it: postgres://USER@HOST:PORT/DB. */
  readonly where: string;
  private readonly secrets: string[];

  constructor(url: string, password: string | undefined) {
    const parsed = parseStoreUrl(url);
    const inQuery = parsed.searchParams.get('password') ?? '';
    this.secrets = [parsed.password, decodeURIComponentSafe(parsed.password), inQuery, password ?? '']
      .filter((s) => s.length > 0)
      .sort((a, b) => b.length - a.length);
    this.where = displayStoreUrl(parsed);
  }

  of(err: unknown, what: string): StoreError {
    if (err instanceof StoreError) return err;
    const e = err as { code?: string; message?: string };
    const detail = this.redact(e.message ?? String(err));
    const message = `cannot ${what} in PostgreSQL at ${this.where}: ${detail}`;
    if (isUnavailable(e))
      return new StoreError('STORE_UNAVAILABLE', message, {
        hint: 'check that PostgreSQL runs and is reachable from this CAS (a failover takes a while); retry',
      });
    if (e.code && REFUSED_STATE.test(e.code))
      return new StoreError('STORE_OPEN', message, {
        hint: 'check the user, database and password (in the URL or PGPASSWORD) of --store / VEIL_CAS_STORE',
      });
    return new StoreError('STORE_IO', message, { hint: 'see the PostgreSQL server log for this statement' });
  }

  redact(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join('***');
    return out;
  }
}

function isUnavailable(e: { code?: string; message?: string }): boolean {
  if (e.code && (UNREACHABLE.has(e.code) || UNAVAILABLE_STATE.test(e.code))) return true;
  return UNAVAILABLE_MESSAGE.test(e.message ?? '');
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** A postgres:// or postgresql:// URL, or STORE_OPEN: its message never repeats the URL (it may hold a password). */
export function parseStoreUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw badUrl('it is not a URL');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:')
    throw badUrl(`its scheme is '${parsed.protocol.slice(0, 16)}', not postgres: or postgresql:`);
  if (!parsed.hostname) throw badUrl('it names no host');
  if (parsed.pathname.length <= 1) throw badUrl('it names no database (postgres://USER@HOST:PORT/DB)');
  return parsed;
}

function badUrl(why: string): StoreError {
  return new StoreError('STORE_OPEN', `the store URL is not a PostgreSQL URL: ${why}`, {
    hint: 'give --store postgres://USER@HOST:PORT/DB (the password in PGPASSWORD, or in the URL)',
  });
}

/** The URL without its password (and without query parameters, which may carry one as well). */
export function displayStoreUrl(parsed: URL): string {
  const user = parsed.username ? `${parsed.username}@` : '';
  return `${parsed.protocol}//${user}${parsed.host}${parsed.pathname}`;
}
