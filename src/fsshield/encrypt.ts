import { createCipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import {
  closeSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join, relative, sep } from 'node:path';
import { ShieldError } from './errors.js';
import {
  CHUNK,
  FORMAT,
  META_FILE,
  chunkAad,
  chunkCount,
  chunkNonce,
  fileKey,
  metadataKey,
  paddedLength,
  type FileEntry,
} from './format.js';

/**
 * Encrypts the tree `src` into `out`; returns what the policy needs (fspf_key and fspf_tag, hex).
 * `deterministic`: blob names and the metadata nonce are derived from the key and the content (a synthetic
 * IV, as in SIV modes) instead of drawn at random, so the same key and the same tree give the same bytes —
 * reproducible image layers. A file key and its chunk nonces then repeat only for the same path and content,
 * which encrypt to the same ciphertext; equality of whole trees is all that is revealed.
 */
export function encryptTree(
  src: string,
  out: string,
  volumeKey: Buffer = randomBytes(32),
  opts: { deterministic?: boolean } = {},
): { key: string; tag: string; files: number } {
  mkdirSync(out, { recursive: true, mode: 0o755 });
  const name = opts.deterministic ? derivedBlobName(src, volumeKey) : () => randomBytes(16).toString('hex');
  const files = listFiles(src).map((path) => encryptFile(src, path, out, volumeKey, name(path)));
  const tag = writeMetadata(out, volumeKey, files, opts.deterministic === true);
  return { key: volumeKey.toString('hex'), tag, files: files.length };
}

function listFiles(root: string, dir = root): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .flatMap((entry) => {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) return listFiles(root, full);
      if (entry.isFile()) return [full];
      throw new ShieldError('SHIELD_IO', `${full} is neither a file nor a directory`, {
        hint: 'the shield encrypts regular files; resolve links first',
      });
    });
}

/** A blob's name from the key, the file's path, mode and content: no two different files share one. */
function derivedBlobName(root: string, volumeKey: Buffer): (full: string) => string {
  return (full) => {
    const path = relative(root, full).split(sep).join('/');
    const content = createHash('sha256').update(readFileSync(full)).digest('hex');
    const mode = lstatSync(full).mode & 0o7777;
    return createHmac('sha256', syntheticKey(volumeKey))
      .update(`veil-fspf blob\0${path}\0${mode}\0${content}`)
      .digest('hex')
      .slice(0, 32);
  };
}

/** The key of the synthetic names and nonces: apart from the file and metadata keys. */
function syntheticKey(volumeKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', volumeKey, Buffer.alloc(0), 'veil-fspf synthetic names', 32));
}

function encryptFile(root: string, full: string, out: string, volumeKey: Buffer, blob: string): FileEntry {
  const stat = lstatSync(full);
  const key = fileKey(volumeKey, blob);
  const count = chunkCount(stat.size);
  const digest = createHash('sha256');
  const input = openSync(full, 'r');
  const output = openSync(join(out, `${blob}.enc`), 'w', 0o644);
  try {
    const buffer = Buffer.alloc(CHUNK);
    for (let i = 0; i < count; i++) {
      const length = paddedLength(stat.size, i, count);
      buffer.fill(0, 0, length);
      readSync(input, buffer, 0, Math.min(CHUNK, stat.size - i * CHUNK), i * CHUNK);
      const sealed = sealChunk(key, blob, i, count, buffer.subarray(0, length));
      digest.update(sealed.subarray(12, 28));
      writeSync(output, sealed);
    }
  } finally {
    closeSync(input);
    closeSync(output);
  }
  const path = relative(root, full).split(sep).join('/');
  return { path, blob, size: stat.size, mode: stat.mode & 0o7777, chunks: count, digest: digest.digest('hex') };
}

function sealChunk(key: Buffer, blob: string, index: number, count: number, plain: Buffer): Buffer {
  const nonce = chunkNonce(index);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(chunkAad(blob, index, count));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([nonce, cipher.getAuthTag(), body]);
}

function writeMetadata(out: string, volumeKey: Buffer, files: FileEntry[], deterministic: boolean): string {
  const plain = JSON.stringify({ format: FORMAT, files });
  const nonce = deterministic
    ? createHmac('sha256', syntheticKey(volumeKey))
        .update(`veil-fspf metadata nonce\0${plain}`)
        .digest()
        .subarray(0, 12)
    : randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', metadataKey(volumeKey), nonce);
  cipher.setAAD(Buffer.from(FORMAT));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  const tag = cipher.getAuthTag();
  writeFileSync(join(out, META_FILE), Buffer.concat([nonce, tag, body]), { mode: 0o644 });
  return tag.toString('hex');
}
