import { createDecipheriv } from 'node:crypto';
import { ShieldError } from './errors.js';
import { chunkAad, chunkNonce, type FileEntry } from './format.js';

/** What verifying one chunk needs to know of its file: a worker thread gets only this, never the metadata. */
export type ChunkFile = Pick<FileEntry, 'path' | 'blob' | 'chunks'>;

/**
 * Verifies and decrypts chunk `index` of `file` (nonce | tag | ciphertext) under the file key. The one
 * implementation for the main thread and the worker threads, so both refuse exactly the same chunks.
 */
export function openChunk(key: Buffer, file: ChunkFile, index: number, sealed: Buffer): Buffer {
  if (!sealed.subarray(0, 12).equals(chunkNonce(index))) throw tampered(file, `has chunk ${index} out of place`);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
    decipher.setAAD(chunkAad(file.blob, index, file.chunks));
    decipher.setAuthTag(sealed.subarray(12, 28));
    const plain = decipher.update(sealed.subarray(28));
    decipher.final(); // GCM yields no bytes here; it checks the tag
    return plain;
  } catch (err) {
    throw new ShieldError('SHIELD_TAMPERED', `'${file.path}' failed authentication in chunk ${index}`, {
      hint: 'the encrypted file was modified; re-create the tree with veil fspf encrypt',
      cause: err,
    });
  }
}

export function tampered(file: Pick<FileEntry, 'path'>, why: string): ShieldError {
  return new ShieldError('SHIELD_TAMPERED', `'${file.path}' ${why}`, {
    hint: 'the encrypted file was modified or replaced; re-create the tree with veil fspf encrypt',
  });
}
