import type { AccessEntry } from '../policy/index.js';
import { certificateKeyHash, entriesFor } from './access.js';
import { identityFromPem } from './identity-of.js';
import { sessionOf } from './parsed.js';
import type { SessionRecord } from './store/index.js';

/** Who may read a session, resolved to key hashes: what the store indexes so that listing decrypts nothing. */
export interface Readers {
  any: boolean;
  keyHashes: string[];
}

const NOBODY: Readers = { any: false, keyHashes: [] };

/**
 * The read entries of the record's own policy as isAllowed judges them (readers.test holds the two together):
 * NONE wins, then ANY; CREATOR, key hashes, certificates and certificate secrets become key hashes. A record that
 * does not parse, or an entry that names nobody, gives no reader (default deny).
 */
export function readersOf(record: SessionRecord): Readers {
  let entries: AccessEntry[];
  try {
    entries = entriesFor(sessionOf(record).access_policy, 'read');
  } catch {
    return NOBODY;
  }
  if (entries.some((e) => e.kind === 'none')) return NOBODY;
  if (entries.some((e) => e.kind === 'any')) return { any: true, keyHashes: [] };
  const hashes = entries.map((entry) => keyHashOf(entry, record));
  return { any: false, keyHashes: [...new Set(hashes.filter((h): h is string => h !== undefined))] };
}

function keyHashOf(entry: AccessEntry, record: SessionRecord): string | undefined {
  switch (entry.kind) {
    case 'creator':
      return creatorKeyHash(record.creator);
    case 'key':
      return entry.keyHash;
    case 'secret':
      return certificateKeyHash(record.secrets, entry.name);
    default:
      return undefined; // signers and groups are not allowed in read; anything else names nobody
  }
}

function creatorKeyHash(pem: string): string | undefined {
  try {
    return identityFromPem(pem).keyHash;
  } catch {
    return undefined; // an unparsable certificate names nobody
  }
}
