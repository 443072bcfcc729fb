import {
  PolicyError,
  parseWrittenSession,
  resolveSession,
  type Session,
  type WrittenSession,
} from '../policy/index.js';
import type { StoredSecret } from '../secrets/index.js';
import { Lru } from '../lru.js';
import { CasError } from './errors.js';
import type { SessionRecord } from './store/index.js';

/**
 * Imported config-fragments are fetched when a session is uploaded and kept (sealed) with its secrets under
 * this prefix: `::` cannot occur in a secret name, and a qualified lookup (`session::secret`) never yields
 * an empty session name, so the copies are neither re-exported nor reachable by name.
 */
export const IMPORTED_FRAGMENT = '::fragment::';

/** The value of an imported config-fragment, from the copy kept with the record (undefined: none kept). */
export function importedFragmentOf(secrets: Record<string, unknown>, name: string): unknown {
  const stored = secrets[`${IMPORTED_FRAGMENT}${name}`] as StoredSecret | undefined;
  return stored?.kind === 'config-fragment' ? JSON.parse(stored.value) : undefined;
}

/**
 * Stored sessions were validated when they were created; parsing them again is only for access, so cache it,
 * keyed by name and version hash (a version is immutable). Bounded by bytes too, counted as the text's length:
 * a session may be as large as the upload limit, so the count alone would let 4,096 of them hold gigabytes.
 */
export const PARSED_CACHE_ENTRIES = 4096;
export const PARSED_CACHE_BYTES = 64 * 1024 * 1024;
const cache = new Lru<{ written: WrittenSession; session: Session }>(PARSED_CACHE_ENTRIES, {
  bytes: PARSED_CACHE_BYTES,
  maxEntryBytes: PARSED_CACHE_BYTES / 16,
});

/** How much the parse cache holds now (for tests). */
export function parsedCacheUse(): { entries: number; bytes: number } {
  return { entries: cache.size, bytes: cache.bytes };
}

function parsed(record: SessionRecord): { written: WrittenSession; session: Session } {
  const key = `${record.name}\0${record.hash}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const { written, session } = reparsed(record);
  const entry = { written, session };
  cache.set(key, entry, record.text.length);
  return entry;
}

/**
 * A stored session passed the session language of the Veil that stored it; a later one may refuse a field it
 * took (one now refused by name). That is no fault of the request, and nothing of the session is told.
 */
function reparsed(record: SessionRecord): { written: WrittenSession; session: Session } {
  try {
    const written = parseWrittenSession(record.text);
    const imported = (name: string) => importedFragmentOf(record.secrets, name);
    return { written, session: resolveSession(written, { unknownImports: 'refuse', imported }) };
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    throw new CasError(
      'CAS_POLICY_INVALID',
      `session '${record.name}' (hash ${record.hash}) was stored by an earlier Veil and does not pass this version's ` +
        'session language',
      { hint: 'the CAS operator runs the earlier Veil to read and correct it, or keeps that version until then' },
    );
  }
}

/** The session with its config-fragments filled in: what access control, attestation and rendering judge by. */
export function sessionOf(record: SessionRecord): Session {
  return parsed(record).session;
}

/** The session as written (fragments as placeholders): what is read back and what an update's REDACTED keeps. */
export function writtenOf(record: SessionRecord): WrittenSession {
  return parsed(record).written;
}
