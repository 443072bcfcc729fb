import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { StoreError } from './errors.js';

/**
 * AES-256-GCM with a fresh 12-byte nonce per value. The AAD names the row a ciphertext belongs to, so a
 * ciphertext moved to another row (another session, version or field) fails authentication.
 * Layout: nonce (12) | tag (16) | ciphertext.
 */
export function seal(key: Buffer, aad: string, plaintext: Buffer): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, cipher.getAuthTag(), body]);
}

export function unseal(key: Buffer, aad: string, sealed: Buffer, what: string): Buffer {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(sealed.subarray(12, 28));
    return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]);
  } catch (err) {
    throw new StoreError('STORE_CORRUPT', `stored data of ${what} failed authentication`, {
      hint: 'the database was modified outside the CAS; restore it from a backup',
      cause: err,
    });
  }
}
