import { createDecipheriv, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, rmdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { dirname, join } from 'node:path';
import { decryptRanges, insideOut } from './decrypt-ranges.js';
import { ShieldError } from './errors.js';
import { FORMAT, META_FILE, metadataKey, type FileEntry, type Metadata } from './format.js';

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
  const threads = threadsFor(metadata.files, opts.threads);
  try {
    // Every write is synchronous, in a range: once this settles, nothing more lands in `out`.
    await decryptRanges(shield, out, volumeKey, metadata.files, threads, opts.threads?.mainThread, opts.threads?.spawn);
  } catch (err) {
    removeOutput(out, metadata.files);
    throw err;
  }
  return { files: metadata.files.length, bytes: metadata.files.reduce((sum, f) => sum + f.size, 0), threads };
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
  /** Makes one decryption thread (tests: one that cannot be had, or dies). */
  spawn?: () => Worker;
}

/**
 * From what size the threads are used by default. A thread takes ≈ 40 ms to start (Node's worker bootstrap
 * and node:crypto), during which this thread decrypts alone (≈ 1.4 GB/s into the runtime's tmpfs); after it,
 * two cores decrypt ≈ 1.9–2.6 GB/s. That breaks even near 60 MiB; `npm run bench:fspf` measured the main
 * thread faster up to 64 MiB and the threads as fast or faster from 128 MiB on (README "Measured").
 */
export const THREADS_FROM = 128 * 1024 * 1024;

/**
 * Worker threads at most by default: each costs ≈ 9 MiB and its start, and `availableParallelism` counts a
 * container's host cores, not its CPU quota (README "Limits").
 */
export const MAX_THREADS = 3;

/** How many worker threads decrypt `files`: 0 means the main thread alone. */
export function threadsFor(files: FileEntry[], given: Threads = {}): number {
  const bytes = files.reduce((sum, f) => sum + f.size, 0);
  if (bytes < (given.from ?? THREADS_FROM)) return 0;
  const chunks = files.reduce((sum, f) => sum + f.chunks, 0);
  return Math.max(0, Math.min(given.max ?? Math.min(MAX_THREADS, availableParallelism() - 1), chunks));
}

/**
 * The partial output: the tree's files, then the directories they made, deepest first, where empty (their
 * names are the tree's too) — only where no link leads elsewhere, so nothing outside `out` is removed.
 */
function removeOutput(out: string, files: FileEntry[]): void {
  let real: string;
  try {
    real = realpathSync(out);
  } catch {
    return; // no output at all
  }
  const inside = (dir: string): boolean => {
    try {
      insideOut(out, dir, real);
      return true;
    } catch {
      return false; // a link, or gone: nothing of ours is there
    }
  };
  const dirs = new Set<string>();
  for (const file of files) {
    if (inside(dirname(file.path))) rmSync(join(out, file.path), { force: true });
    for (let dir = dirname(file.path); dir !== '.' && !dirs.has(dir); dir = dirname(dir)) dirs.add(dir);
  }
  for (const dir of [...dirs].sort((a, b) => b.split('/').length - a.split('/').length)) {
    try {
      if (inside(dirname(dir))) rmdirSync(join(out, dir)); // rmdir follows no link of its own name
    } catch {
      // not made by this tree (not empty), or never made
    }
  }
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
