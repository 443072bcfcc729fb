import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { StoreError } from './errors.js';
import type { SessionRecord } from './index.js';
import type { Readers } from '../readers.js';
import { seal, unseal } from './seal.js';

/**
 * How a session version, a blob and the read index are kept at rest, whatever the database: the same AADs and
 * the same HMAC principals as the SQLite store, so a dump of one loads into the other unchanged.
 */

/** A check value sealed with the master key at creation: a wrong key is detected at open, not at first read. */
export const KEY_CHECK = 'key-check';
const KEY_CHECK_VALUE = createHash('sha256').update('veil-store-key-check').digest();

export function sealedKeyCheck(key: Buffer): Buffer {
  return seal(key, KEY_CHECK, KEY_CHECK_VALUE);
}

/** Throws STORE_MASTER_KEY unless `sealed` is the key check sealed with `key`. */
export function verifyKeyCheck(key: Buffer, sealed: Buffer, where: string): void {
  let plain: Buffer;
  try {
    plain = unseal(key, KEY_CHECK, sealed, 'the key check');
  } catch {
    throw wrongKey(where);
  }
  if (plain.length !== KEY_CHECK_VALUE.length || !timingSafeEqual(plain, KEY_CHECK_VALUE)) throw wrongKey(where);
}

function wrongKey(where: string): StoreError {
  return new StoreError('STORE_MASTER_KEY', `the master key does not match ${where}`, {
    hint: 'pass the key it was created with via --master-key-file or VEIL_MASTER_KEY',
  });
}

export interface SealedVersion {
  text: Buffer;
  secrets: Buffer;
}

export function sealVersion(key: Buffer, r: SessionRecord): SealedVersion {
  const aad = `session:${r.name}:${r.hash}`;
  return {
    text: seal(key, `${aad}:text`, Buffer.from(r.text, 'utf8')),
    secrets: seal(key, `${aad}:secrets`, Buffer.from(JSON.stringify(r.secrets), 'utf8')),
  };
}

export interface VersionRow {
  name: string;
  hash: string;
  predecessor: string | null;
  created_at: number | string;
  creator: string;
  text: Buffer;
  secrets: Buffer;
}

export function unsealVersion(key: Buffer, row: VersionRow): SessionRecord {
  const aad = `session:${row.name}:${row.hash}`;
  const what = `session '${row.name}'`;
  const secrets = unseal(key, `${aad}:secrets`, row.secrets, what).toString('utf8');
  return {
    name: row.name,
    hash: row.hash,
    predecessor: row.predecessor,
    createdAt: Number(row.created_at),
    creator: row.creator,
    text: unseal(key, `${aad}:text`, row.text, what).toString('utf8'),
    secrets: JSON.parse(secrets) as Record<string, unknown>,
  };
}

export const sealBlob = (key: Buffer, name: string, value: Buffer): Buffer => seal(key, `blob:${name}`, value);
export const unsealBlob = (key: Buffer, name: string, value: Buffer): Buffer =>
  unseal(key, `blob:${name}`, value, `blob '${name}'`);

/**
 * Readers are indexed as HMACs under a key derived from the master key: listing needs no decryption, yet the
 * database alone does not tell whose keys may read what.
 */
export class ReadIndex {
  private readonly indexKey: Buffer;

  constructor(masterKey: Buffer) {
    this.indexKey = createHmac('sha256', masterKey).update('veil-store-readers-index-v1').digest();
  }

  /** The principals a listing by this key hash (or by anyone: undefined) matches. */
  lookup(keyHash: string | undefined): Buffer[] {
    const any = this.principal('any');
    return keyHash === undefined ? [any] : [any, this.principal(`key:${keyHash.toLowerCase()}`)];
  }

  /** The principals to record for a version's readers. */
  entries(readers: Readers): Buffer[] {
    const keys = readers.keyHashes.map((hash) => this.principal(`key:${hash.toLowerCase()}`));
    return readers.any ? [this.principal('any'), ...keys] : keys;
  }

  private principal(what: string): Buffer {
    return createHmac('sha256', this.indexKey).update(what).digest();
  }
}
