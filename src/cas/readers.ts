import { entriesFor } from './access.js';
import { identityFromPem } from './identity-of.js';
import { sessionOf } from './parsed.js';
import type { SessionRecord } from './store/index.js';

/** Who may read a session, resolved to key hashes: what the store indexes so that listing decrypts nothing. */
export interface Readers {
  any: boolean;
  keyHashes: string[];
}

const KEY_HASH = /^[0-9a-fA-F]{64}$/;
const NOBODY: Readers = { any: false, keyHashes: [] };

/**
 * The read entries of the record's own policy as isAllowed judges them (readers.test holds the two together):
 * NONE wins, then ANY; CREATOR, key hashes and certificates become key hashes. A record that
 * does not parse, or an entry that names nobody, gives no reader (default deny).
 */
export function readersOf(record: SessionRecord): Readers {
  let entries: string[];
  try {
    entries = entriesFor(sessionOf(record).access_policy, 'read');
  } catch {
    return NOBODY;
  }
  if (entries.includes('NONE')) return NOBODY;
  if (entries.includes('ANY')) return { any: true, keyHashes: [] };
  const hashes = entries.map((entry) => keyHashOf(entry === 'CREATOR' ? record.creator : entry));
  return { any: false, keyHashes: [...new Set(hashes.filter((h): h is string => h !== undefined))] };
}

function keyHashOf(entry: string): string | undefined {
  if (KEY_HASH.test(entry)) return entry.toLowerCase();
  if (!entry.includes('-----BEGIN CERTIFICATE-----')) return undefined;
  try {
    return identityFromPem(entry).keyHash;
  } catch {
    return undefined; // an unparsable certificate names nobody
  }
}
