import { createDecipheriv, createHash, timingSafeEqual } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, read, readFileSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { openChunk, tampered } from './chunk.js';
import { decryptThreaded } from './decrypt-threads.js';
import { ShieldError } from './errors.js';
import { WriteQueue } from './write-queue.js';
import {
  CHUNK,
  FORMAT,
  META_FILE,
  fileKey,
  metadataKey,
  paddedLength,
  type FileEntry,
  type Metadata,
} from './format.js';

/**
 * Decrypts a shielded tree into `out` (the runtime's tmpfs). Nothing is trusted before it is checked: the
 * metadata must carry the policy's tag, the blobs must be exactly the ones it lists, and each blob must match
 * its digest and authenticate chunk by chunk. On any failure the partial output is removed and the error
 * names the file, so the program never starts on a tree that is not the one the policy names.
 */
export async function decryptTree(
  shield: string,
  out: string,
  expect: { key: string; tag: string },
  opts: { beforeWrite?: (paths: string[]) => void; threads?: Threads } = {},
): Promise<{ files: number; bytes: number; threads: number }> {
  const volumeKey = hexKey(expect.key, 32, 'fspf_key');
  const metadata = readMetadata(shield, volumeKey, hexKey(expect.tag, 16, 'fspf_tag'));
  checkBlobSet(shield, metadata.files);
  // The caller sees where every file will go (authenticated by now) before a byte is written.
  opts.beforeWrite?.(metadata.files.map((f) => f.path));
  mkdirSync(out, { recursive: true, mode: 0o700 });
  const queue = new WriteQueue();
  const threads = threadsFor(metadata.files, opts.threads);
  let bytes = 0;
  try {
    if (threads > 0) {
      await decryptThreaded(shield, out, volumeKey, metadata.files, queue, threads, opts.threads?.mainThread);
      for (const file of metadata.files) bytes += file.size;
    } else for (const file of metadata.files) bytes += await decryptFile(shield, out, volumeKey, file, queue);
    await queue.drain();
  } catch (err) {
    await queue.drain().catch(() => undefined); // nothing may land after the partial output is removed
    for (const file of metadata.files) rmSync(join(out, file.path), { force: true });
    throw err;
  }
  return { files: metadata.files.length, bytes, threads };
}

/**
 * When decryption uses worker threads: `from` plaintext bytes of the tree on (below it a pool's start costs
 * more than it saves), at most `max` of them (default: one fewer than the cores this process may use, since
 * the main thread deciphers too). `mainThread: false` leaves every chunk to the threads (tests use it to
 * take the threads' path on any tree).
 */
export interface Threads {
  from?: number;
  max?: number;
  mainThread?: boolean;
}

/**
 * From what size the threads are used by default: never, for now. `npm run bench:fspf` measures both paths in
 * each run (README "Measured"); on the shared 2-core development machine the threads cost 0.3–0.5 ms more CPU
 * per MiB (their start, messages, fresh plaintext pages) and were slower up to 128 MiB in every run and not
 * reliably faster at 256 MiB (0.64–1.45×), so the main thread stays the default until a run on idle cores
 * shows where the threads win; callers can opt in with `threads.from`.
 */
export const THREADS_FROM = Number.POSITIVE_INFINITY;

/** How many worker threads decrypt `files`: 0 means the main thread alone. */
export function threadsFor(files: FileEntry[], given: Threads = {}): number {
  const bytes = files.reduce((sum, f) => sum + f.size, 0);
  if (bytes < (given.from ?? THREADS_FROM)) return 0;
  const chunks = files.reduce((sum, f) => sum + f.chunks, 0);
  return Math.max(0, Math.min(given.max ?? availableParallelism() - 1, chunks));
}

function hexKey(text: string, bytes: number, what: string): Buffer {
  if (!new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`).test(text)) {
    throw new ShieldError('SHIELD_KEY', `${what} must be ${bytes * 2} hex digits`, {
      hint: "use the values printed by 'veil fspf encrypt'",
    });
  }
  return Buffer.from(text, 'hex');
}

function readMetadata(shield: string, volumeKey: Buffer, tag: Buffer): Metadata {
  let sealed: Buffer;
  try {
    sealed = readFileSync(join(shield, META_FILE));
  } catch (err) {
    throw new ShieldError('SHIELD_MISSING', `the shielded tree ${shield} has no ${META_FILE}`, {
      hint: 'point fspf_path at the output of veil fspf encrypt',
      cause: err,
    });
  }
  const storedTag = sealed.subarray(12, 28);
  if (storedTag.length !== 16 || !timingSafeEqual(storedTag, tag)) {
    throw new ShieldError('SHIELD_TAMPERED', `${META_FILE} does not carry the tag the policy expects`, {
      hint: 'the tree changed since it was encrypted (or the policy names another one): encrypt it again and update fspf_tag',
    });
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', metadataKey(volumeKey), sealed.subarray(0, 12));
    decipher.setAAD(Buffer.from(FORMAT));
    decipher.setAuthTag(storedTag);
    const metadata = JSON.parse(
      Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]).toString('utf8'),
    ) as Metadata;
    for (const file of metadata.files) checkRelative(file.path);
    return metadata;
  } catch (err) {
    if (err instanceof ShieldError) throw err;
    throw new ShieldError('SHIELD_TAMPERED', `${META_FILE} failed authentication`, {
      hint: 'the metadata was modified, or fspf_key is wrong',
      cause: err,
    });
  }
}

/** Paths stay inside the output even if whoever held the key wrote '..' or an absolute path. */
function checkRelative(path: string): void {
  if (
    typeof path !== 'string' ||
    path === '' ||
    path.startsWith('/') ||
    path.split('/').some((part) => part === '..' || part === '.' || part === '')
  ) {
    throw new ShieldError('SHIELD_TAMPERED', `${META_FILE} names a path outside the tree (${JSON.stringify(path)})`, {
      hint: 'this tree was not made by veil fspf encrypt; do not use it',
    });
  }
}

function checkBlobSet(shield: string, files: FileEntry[]): void {
  const expected = new Map(files.map((f) => [`${f.blob}.enc`, f.path]));
  const present = new Set(readdirSync(shield).filter((name) => name !== META_FILE));
  for (const name of present) {
    if (!expected.has(name))
      throw new ShieldError(
        'SHIELD_UNEXPECTED',
        `the shielded tree contains ${name}, which its metadata does not list`,
        { hint: 'files were added to the encrypted tree; re-create it with veil fspf encrypt' },
      );
  }
  for (const [name, path] of expected) {
    if (!present.has(name))
      throw new ShieldError('SHIELD_MISSING', `'${path}' is missing from the shielded tree (${name})`, {
        hint: 'files were removed or renamed; re-create the tree with veil fspf encrypt',
      });
  }
}

async function decryptFile(
  shield: string,
  out: string,
  volumeKey: Buffer,
  file: FileEntry,
  queue: WriteQueue,
): Promise<number> {
  const key = fileKey(volumeKey, file.blob);
  const input = openSync(join(shield, `${file.blob}.enc`), 'r');
  const target = join(out, file.path);
  mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
  const output = queue.open(openSync(target, 'w', file.mode & 0o777));
  const digest = createHash('sha256');
  let next: Promise<Buffer> | undefined;
  try {
    if (fstatSync(input).size !== sealedSize(file)) throw tampered(file, 'has the wrong length');
    // Two buffers: the pool reads chunk i + 1 while this thread decrypts chunk i.
    const buffers = [Buffer.allocUnsafe(28 + CHUNK), Buffer.allocUnsafe(28 + CHUNK)] as const;
    const lengths = Array.from({ length: file.chunks }, (_, i) => 28 + paddedLength(file.size, i, file.chunks));
    next = readAt(input, buffers[0], lengths[0]!, 0);
    for (let i = 0, offset = 0; i < file.chunks; offset += lengths[i]!, i++) {
      const sealed = await next;
      if (i + 1 < file.chunks) next = readAt(input, buffers[(i + 1) % 2]!, lengths[i + 1]!, offset + lengths[i]!);
      digest.update(sealed.subarray(12, 28));
      const plain = openChunk(key, file, i, sealed);
      await queue.write(output, plain.subarray(0, Math.min(plain.length, file.size - i * CHUNK)), i * CHUNK);
    }
    if (digest.digest('hex') !== file.digest) throw tampered(file, 'is not the version the metadata names');
  } finally {
    await next?.catch(() => undefined); // the descriptor must outlive a prefetch still in the pool
    closeSync(input);
    queue.finish(output);
  }
  return file.size;
}

function readAt(fd: number, buffer: Buffer, length: number, position: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    read(fd, buffer, 0, length, position, (err, got) => (err ? reject(err) : resolve(buffer.subarray(0, got))));
  });
}

function sealedSize(file: FileEntry): number {
  let size = 0;
  for (let i = 0; i < file.chunks; i++) size += 28 + paddedLength(file.size, i, file.chunks);
  return size;
}
