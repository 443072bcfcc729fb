import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type ReadStream } from 'node:fs';
import { chmod, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Store } from '../store/index.js';
import { BackupError } from './errors.js';
import { decryptBackup } from './read.js';
import { encryptBackup, type BackupCounts } from './write.js';

export interface Written extends BackupCounts {
  bytes: number;
  /** SHA-256 (hex) of the file's header, unique per backup: what the audit log's backup events name. */
  header: string;
}

/** A restore's counts and the SHA-256 of the backup's header. */
export interface Restored extends BackupCounts {
  header: string;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The stream's first buffer is the header (encryptBackup yields it alone): its hash is kept as it goes by. */
async function* headerTap(chunks: AsyncIterable<Buffer>, seen: { header?: string }): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    seen.header ??= sha256(chunk);
    yield chunk;
  }
}

/**
 * Writes the store's dump to `path`: created 0600 under a temporary name beside it, synced, then renamed, so
 * `path` is either the previous file or a whole new backup — never a partial one, never readable by others.
 */
export async function writeBackupFile(
  store: Store,
  masterKey: Buffer,
  path: string,
  opts: { chunkBytes?: number } = {},
): Promise<Written> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const counts: BackupCounts = { versions: 0, heads: 0, blobs: 0, audits: 0 };
  const seen: { header?: string } = {};
  try {
    const out = createWriteStream(tmp, { flags: 'wx', mode: 0o600 });
    const chunks = encryptBackup(store.dump(), masterKey, { ...opts, counts });
    await pipeline(Readable.from(headerTap(chunks, seen)), out);
    await chmod(tmp, 0o600);
    await syncFile(tmp);
    await rename(tmp, path);
    await syncFile(dirname(path));
    return { ...counts, bytes: (await stat(path)).size, header: seen.header! };
  } catch (err) {
    await rm(tmp, { force: true });
    if (err instanceof BackupError || !isFsError(err)) throw err;
    throw new BackupError('BACKUP_IO', `cannot write the backup ${path}: ${(err as NodeJS.ErrnoException).code}`, {
      hint: 'check that its directory exists, is writable and has space; nothing was written',
      cause: err,
    });
  }
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function isFsError(err: unknown): boolean {
  return typeof (err as NodeJS.ErrnoException).syscall === 'string';
}

/** Every chunk and the trailer of a backup file checked, nothing kept: the counts it holds. */
export async function verifyBackupFile(path: string, masterKey: Buffer): Promise<BackupCounts> {
  const counts: BackupCounts = { versions: 0, heads: 0, blobs: 0, audits: 0 };
  for await (const _ of readBackupFile(path, masterKey, counts)) {
    // Only the checks matter here; the items go by.
  }
  return counts;
}

export function readBackupFile(path: string, masterKey: Buffer, counts?: BackupCounts, seen?: { header?: string }) {
  return decryptBackup(fileChunks(path), masterKey, {
    where: path,
    ...(counts ? { counts } : {}),
    ...(seen ? { header: (h: { bytes: Buffer }) => (seen.header = sha256(h.bytes)) } : {}),
  });
}

/**
 * The file is verified whole before the store is touched, then read again into `store.load` (which checks
 * each chunk again and commits only at the end): a refused backup leaves the target as it was — for a new
 * SQLite directory, not even created — and a file changed between the two reads is refused by the load.
 */
export async function restoreBackupFile(
  path: string,
  masterKey: Buffer,
  openTarget: () => Promise<Store>,
): Promise<Restored> {
  const verified = await verifyBackupFile(path, masterKey);
  const seen: { header?: string } = {};
  const store = await openTarget();
  try {
    const fault: { error?: BackupError } = {};
    const items = readBackupFile(path, masterKey, undefined, seen);
    const loaded = await store.load(keepingFault(items, fault)).catch((err: unknown) => {
      throw fault.error ?? err;
    });
    const same = (['versions', 'heads', 'blobs', 'audits'] as const).every((k) => loaded[k] === verified[k]);
    if (!same) {
      throw new BackupError('BACKUP_INVALID', `${path} changed while it was restored`, {
        hint: 'restore from a copy that nothing writes to',
      });
    }
    return { ...loaded, header: seen.header! };
  } finally {
    await store.close();
  }
}

async function* fileChunks(path: string): AsyncGenerator<Buffer> {
  let stream: ReadStream;
  try {
    stream = createReadStream(path);
    for await (const chunk of stream) yield chunk as Buffer;
  } catch (err) {
    if (!isFsError(err)) throw err;
    throw new BackupError('BACKUP_IO', `cannot read the backup ${path}: ${(err as NodeJS.ErrnoException).code}`, {
      hint: 'check the path and its permissions',
      cause: err,
    });
  }
}

/** A store may wrap what its items' iterator threw (SQLite: STORE_IO); the backup's own error is the clearer. */
async function* keepingFault<T>(items: AsyncIterable<T>, fault: { error?: BackupError }): AsyncGenerator<T> {
  try {
    yield* items;
  } catch (err) {
    if (err instanceof BackupError) fault.error = err;
    throw err;
  }
}
