import { createHmac, hkdfSync } from 'node:crypto';

/**
 * On-disk format of a shielded tree (`veil fspf encrypt`):
 * - `fs.fspf`: the metadata (paths, sizes, modes, blob names, blob digests) as JSON, AES-256-GCM under a
 *   key derived from the volume key. Its 16-byte GCM tag is the tree's tag (`fspf_tag`): it covers every
 *   file, because each file's blob digest is inside. Layout: nonce (12) | tag (16) | ciphertext.
 * - `<blob>.enc` per file, named by 16 random bytes so names say nothing: the content in CHUNK-byte chunks,
 *   each AES-256-GCM under a per-file key (HKDF of the volume key and the blob name), the last chunk padded
 *   to a multiple of PAD bytes so sizes are hidden too. Chunk i is nonce (12) | tag (16) | ciphertext, the
 *   nonce is the chunk index and the AAD binds blob name, index and chunk count (no reorder, no truncation).
 */
export const CHUNK = 1024 * 1024;
export const PAD = 4096;
export const META_FILE = 'fs.fspf';
export const FORMAT = 'veil-fspf-1';

export interface FileEntry {
  path: string;
  blob: string;
  size: number;
  mode: number;
  chunks: number;
  /**
   * Hex SHA-256 over the blob's chunk tags: each tag is a MAC of its chunk under the file key, so this binds
   * the exact ciphertext at the cost of hashing 16 bytes a chunk instead of the whole file.
   */
  digest: string;
}

export interface Metadata {
  format: typeof FORMAT;
  files: FileEntry[];
}

export function fileKey(volumeKey: Buffer, blob: string): Buffer {
  return Buffer.from(hkdfSync('sha256', volumeKey, Buffer.from(blob, 'hex'), 'veil-fspf file', 32));
}

export function metadataKey(volumeKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', volumeKey, Buffer.alloc(0), 'veil-fspf metadata', 32));
}

export function chunkNonce(index: number): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUIntBE(index, 6, 6);
  return nonce;
}

export function chunkAad(blob: string, index: number, count: number): Buffer {
  return createHmac('sha256', 'veil-fspf aad').update(`${blob}:${index}:${count}`).digest();
}

/** Plaintext length of chunk `index` once padded: full chunks, then the rest rounded up to PAD. */
export function paddedLength(size: number, index: number, count: number): number {
  if (index < count - 1) return CHUNK;
  const rest = size - index * CHUNK;
  return Math.max(PAD, Math.ceil(rest / PAD) * PAD);
}

export function chunkCount(size: number): number {
  return Math.max(1, Math.ceil(size / CHUNK));
}
