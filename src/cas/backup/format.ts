import { createHash, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { BackupError } from './errors.js';

/**
 * The backup file, format version 1 (README "Backup and restore"):
 *
 *   header (72 bytes, authenticated through every chunk's AAD, not encrypted)
 *     magic "VEILBKUP" | version u16 | reserved u16 (0) | chunk size u32 | created at u64 (ms) |
 *     salt (32, random per backup) | key id (16, from the master key)
 *   chunks, each: frame u32 (bit 31: final; bits 0-30: length) | AES-256-GCM ciphertext | tag (16)
 *
 * The chunk key is HKDF-SHA256(master key, salt, "veil-backup-v1 chunks"): fresh for every backup, so the
 * nonce is simply the chunk's index. Each chunk's AAD is SHA-256(header) | index u64 | final u8, so a chunk
 * moved, dropped, duplicated, taken from another backup or marked final early fails authentication, and a
 * file that ends without a final chunk is truncated. The plaintext of all chunks is one stream of records
 * (u32 length | JSON); the last record, in the final chunk, holds the counts and the SHA-256 of all others.
 */
export const MAGIC = Buffer.from('VEILBKUP', 'latin1');
export const FORMAT_VERSION = 1;
export const HEADER_BYTES = 72;
/** Plaintext bytes per chunk: what a reader holds at once besides one record (README "Limits"). */
export const CHUNK_BYTES = 64 * 1024;
export const MIN_CHUNK_BYTES = 1024;
export const MAX_CHUNK_BYTES = 1024 * 1024;
/** The largest record (one session version with its secrets, or one blob), serialized (README "Limits"). */
export const MAX_RECORD_BYTES = 32 * 1024 * 1024;
export const TAG_BYTES = 16;
export const FINAL_BIT = 0x80000000;

export interface Header {
  version: number;
  chunkBytes: number;
  createdAt: number;
  salt: Buffer;
  keyId: Buffer;
  /** The header as written, whose hash every chunk's AAD carries. */
  bytes: Buffer;
}

/** Names the master key without revealing anything of it: a wrong key is told apart from a modified file. */
export function keyIdOf(masterKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'veil-backup-v1 key-id', 16));
}

export function chunkKey(masterKey: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, salt, 'veil-backup-v1 chunks', 32));
}

export function newHeader(masterKey: Buffer, chunkBytes = CHUNK_BYTES, now = Date.now()): Header {
  const bytes = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(bytes, 0);
  bytes.writeUInt16BE(FORMAT_VERSION, 8);
  bytes.writeUInt32BE(chunkBytes, 12);
  bytes.writeBigUInt64BE(BigInt(now), 16);
  const salt = randomBytes(32);
  salt.copy(bytes, 24);
  const keyId = keyIdOf(masterKey);
  keyId.copy(bytes, 56);
  return { version: FORMAT_VERSION, chunkBytes, createdAt: now, salt, keyId, bytes };
}

export function parseHeader(bytes: Buffer, masterKey: Buffer, where: string): Header {
  const prefix = bytes.subarray(0, Math.min(bytes.length, MAGIC.length));
  if (bytes.length > 0 && bytes.length < HEADER_BYTES && prefix.equals(MAGIC.subarray(0, prefix.length))) {
    throw new BackupError('BACKUP_TRUNCATED', `${where} ends at byte ${bytes.length}, inside its header`, {
      hint: 'restore from a complete copy of the backup; nothing was written',
    });
  }
  if (bytes.length < HEADER_BYTES || !prefix.equals(MAGIC)) {
    throw new BackupError('BACKUP_FORMAT', `${where} is not a Veil CAS backup (no VEILBKUP header)`, {
      hint: "give a file written by 'veil cas backup'",
    });
  }
  const version = bytes.readUInt16BE(8);
  const chunkBytes = bytes.readUInt32BE(12);
  if (version !== FORMAT_VERSION || bytes.readUInt16BE(10) !== 0) {
    throw new BackupError('BACKUP_FORMAT', `${where} is a backup of format version ${version}; this Veil reads 1`, {
      hint: 'restore it with the Veil version that wrote it, or a newer one',
    });
  }
  if (chunkBytes < MIN_CHUNK_BYTES || chunkBytes > MAX_CHUNK_BYTES) {
    throw new BackupError('BACKUP_FORMAT', `${where} declares chunks of ${chunkBytes} bytes`, {
      hint: `chunks are ${MIN_CHUNK_BYTES} to ${MAX_CHUNK_BYTES} bytes; the header was modified`,
    });
  }
  const keyId = bytes.subarray(56, 72);
  if (!timingSafeEqual(keyId, keyIdOf(masterKey))) {
    throw new BackupError('BACKUP_MASTER_KEY', `${where} was made under another master key`, {
      hint:
        'pass the master key of the CAS it was taken from (--master-key-file or VEIL_MASTER_KEY); ' +
        'nothing was written',
    });
  }
  const createdAt = Number(bytes.readBigUInt64BE(16));
  return { version, chunkBytes, createdAt, salt: bytes.subarray(24, 56), keyId, bytes: bytes.subarray(0, 72) };
}

export function chunkAad(header: Header, index: number, final: boolean): Buffer {
  const aad = Buffer.alloc(41);
  createHash('sha256').update(header.bytes).digest().copy(aad, 0);
  aad.writeBigUInt64BE(BigInt(index), 32);
  aad[40] = final ? 1 : 0;
  return aad;
}

/** The chunk key is fresh per backup (random salt), so a counter never repeats a nonce under one key. */
export function chunkNonce(index: number): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64BE(BigInt(index), 4);
  return nonce;
}
