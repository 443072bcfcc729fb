import { createDecipheriv, createHash } from 'node:crypto';
import type { StoreItem } from '../store/index.js';
import { ByteReader } from './bytes.js';
import { BackupError } from './errors.js';
import {
  chunkAad,
  chunkKey,
  chunkNonce,
  FINAL_BIT,
  HEADER_BYTES,
  MAX_RECORD_BYTES,
  parseHeader,
  TAG_BYTES,
  type Header,
} from './format.js';
import { decodeRecord, invalid, type Trailer } from './records.js';
import type { BackupCounts } from './write.js';

export interface ReadOptions {
  /** Names the backup in messages (its file name). */
  where?: string;
  /** Filled in as items go by; complete when the iteration ends without an error. */
  counts?: BackupCounts;
  header?: (header: Header) => void;
}

/**
 * The items of a backup, each chunk authenticated before any of its records is parsed. The iteration throws
 * BackupError at the first fault — a modified, reordered, dropped or duplicated chunk, a missing final chunk,
 * bytes after it, or a trailer that disagrees with the records — so a consumer that commits only once the
 * iteration has ended (Store.load) commits only a whole, authentic backup.
 */
export async function* decryptBackup(
  source: AsyncIterable<Buffer>,
  masterKey: Buffer,
  opts: ReadOptions = {},
): AsyncGenerator<StoreItem> {
  const where = opts.where ?? 'the backup';
  const reader = new ByteReader(source);
  try {
    const header = parseHeader(await reader.read(HEADER_BYTES), masterKey, where);
    opts.header?.(header);
    const records = new RecordStream(where);
    const open = chunkOpener(header, chunkKey(masterKey, header.salt), where);
    for (let index = 0; ; index++) {
      const { plain, final } = await readChunk(reader, header, open, index, where);
      yield* records.push(plain);
      if (final) break;
    }
    if ((await reader.read(1)).length > 0) {
      throw new BackupError(
        'BACKUP_TRAILING_DATA',
        `${where} has bytes after its final chunk (at ${reader.offset - 1})`,
        { hint: 'the file was appended to after it was written; restore from another copy; nothing was written' },
      );
    }
    records.finish(opts.counts ?? { versions: 0, heads: 0, blobs: 0, audits: 0 });
  } finally {
    await reader.close();
  }
}

async function readChunk(
  reader: ByteReader,
  header: Header,
  open: (sealed: Buffer, index: number, final: boolean) => Buffer,
  index: number,
  where: string,
): Promise<{ plain: Buffer; final: boolean }> {
  const at = reader.offset;
  const frame = await reader.read(4);
  if (frame.length < 4) throw truncated(where, index, at);
  const word = frame.readUInt32BE(0);
  const final = (word & FINAL_BIT) !== 0;
  const length = word & ~FINAL_BIT;
  if (length < TAG_BYTES || length > header.chunkBytes + TAG_BYTES) {
    throw tampered(where, index, at, `declares ${length} bytes`);
  }
  const sealed = await reader.read(length);
  if (sealed.length < length) throw truncated(where, index, at);
  return { plain: open(sealed, index, final), final };
}

function chunkOpener(header: Header, key: Buffer, where: string) {
  return (sealed: Buffer, index: number, final: boolean): Buffer => {
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, chunkNonce(index));
      decipher.setAAD(chunkAad(header, index, final));
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw tampered(where, index, undefined, 'failed authentication');
    }
  };
}

/** Records cut across chunks are put back together; a record never holds more than MAX_RECORD_BYTES. */
class RecordStream {
  private parts: Buffer[] = [];
  private size = 0;
  /** The length of the record being read, once its prefix is in. */
  private need: { prefix: Buffer; length: number } | undefined;
  private readonly digest = createHash('sha256');
  private readonly seen: BackupCounts = { versions: 0, heads: 0, blobs: 0, audits: 0 };
  private trailer: Trailer | undefined;
  private index = 0;

  constructor(private readonly where: string) {}

  *push(plain: Buffer): Generator<StoreItem> {
    this.parts.push(plain);
    this.size += plain.length;
    for (;;) {
      if (!this.need) {
        if (this.size < 4) return;
        const prefix = this.take(4);
        const length = prefix.readUInt32BE(0);
        if (length > MAX_RECORD_BYTES)
          throw invalid(this.record(), `declares ${length} bytes, over ${MAX_RECORD_BYTES}`);
        this.need = { prefix, length };
      }
      if (this.size < this.need.length) return;
      const { prefix, length } = this.need;
      this.need = undefined;
      const body = this.take(length);
      if (this.trailer) throw invalid(this.record(), 'follows the trailer');
      const decoded = decodeRecord(body, this.record());
      this.index++;
      if ('end' in decoded) {
        this.trailer = decoded.end;
        continue;
      }
      this.digest.update(prefix).update(body);
      this.seen[`${decoded.item.type}s`]++;
      yield decoded.item;
    }
  }

  /** Parts pile up only while a record longer than a chunk comes in: each byte is copied once. */
  private take(n: number): Buffer {
    const all = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    const rest = all.subarray(n);
    this.parts = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    return all.subarray(0, n);
  }

  finish(counts: BackupCounts): void {
    if (!this.trailer || this.size > 0 || this.need) throw invalid(this.where, 'ends without its trailer record');
    const { versions, heads, blobs, audits, sha256 } = this.trailer;
    const same =
      versions === this.seen.versions &&
      heads === this.seen.heads &&
      blobs === this.seen.blobs &&
      (audits ?? 0) === this.seen.audits &&
      sha256 === this.digest.digest('hex');
    if (!same) throw invalid(this.where, 'holds other records than its trailer counts');
    Object.assign(counts, this.seen);
  }

  private record(): string {
    return `record ${this.index} of ${this.where}`;
  }
}

function truncated(where: string, index: number, at: number): BackupError {
  return new BackupError('BACKUP_TRUNCATED', `${where} ends at byte ${at}, in or before chunk ${index}`, {
    hint: 'the file was cut short (copy or disk full?); restore from a complete copy; nothing was written',
  });
}

function tampered(where: string, index: number, at: number | undefined, what: string): BackupError {
  const place = at === undefined ? `chunk ${index}` : `chunk ${index} (at byte ${at})`;
  return new BackupError('BACKUP_TAMPERED', `${place} of ${where} ${what}`, {
    hint: 'the file was modified, or chunks reordered, dropped or duplicated; restore from another copy',
  });
}
