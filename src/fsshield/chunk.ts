import { createDecipheriv } from 'node:crypto';
import { ShieldError } from './errors.js';
import { chunkAad, chunkNonce, type FileEntry } from './format.js';

/** What verifying one chunk needs to know of its file: a worker thread gets only this, never the metadata. */
export type ChunkFile = Pick<FileEntry, 'path' | 'blob' | 'chunks'>;

/**
 * How much ciphertext one `update` call takes. Node returns each call's output in a fresh buffer: for a whole
 * 1 MiB chunk that is fresh pages (faults) that fall out of the cache, and from 128 KiB on malloc maps fresh
 * pages too, while a small piece's output is reused memory still in the cache when it is copied back.
 * Measured on the development machine (read + decipher + write per MiB, deciphering alone): 8 KiB 0.77–0.81
 * ms, 16 KiB 0.42–0.47, 32 KiB 0.54–0.74, 64 KiB 0.52–0.64, 128 KiB and more 0.92–1.3.
 */
const PIECE = 16 * 1024;

/**
 * Verifies and decrypts chunk `index` of `file` (nonce | tag | ciphertext) under the file key, in place: the
 * plaintext is returned in `sealed`'s own memory (after the 28-byte header), so a read buffer is reused for
 * every chunk and no chunk-sized buffer is allocated. On failure the buffer holds unverified plaintext and
 * must not be used. The one implementation for the main thread and the worker threads, so both refuse
 * exactly the same chunks.
 */
export function openChunk(key: Buffer, file: ChunkFile, index: number, sealed: Buffer): Buffer {
  if (!sealed.subarray(0, 12).equals(chunkNonce(index))) throw tampered(file, `has chunk ${index} out of place`);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
    decipher.setAAD(chunkAad(file.blob, index, file.chunks));
    decipher.setAuthTag(sealed.subarray(12, 28));
    for (let at = 28; at < sealed.length; at += PIECE) {
      const piece = decipher.update(sealed.subarray(at, Math.min(at + PIECE, sealed.length)));
      piece.copy(sealed, at); // GCM's output is exactly as long as its input: nothing is overwritten early
    }
    decipher.final(); // GCM yields no bytes here; it checks the tag
    return sealed.subarray(28);
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
