import { createCipheriv, createHash } from 'node:crypto';
import type { StoreItem } from '../store/index.js';
import { chunkAad, chunkKey, chunkNonce, CHUNK_BYTES, FINAL_BIT, newHeader, type Header } from './format.js';
import { encodeItem, encodeTrailer, type Trailer } from './records.js';

export interface BackupCounts {
  versions: number;
  heads: number;
  blobs: number;
  /** Audit log entries (a backup of an older Veil has none). */
  audits: number;
}

/**
 * The backup of `items` as a stream of bytes: the header, then one encrypted chunk each time a chunk's worth
 * of records has accumulated, so memory holds one chunk and one record whatever the store's size. `counts`
 * is filled in as the items go by and is complete once the stream has ended.
 */
export function encryptBackup(
  items: AsyncIterable<StoreItem>,
  masterKey: Buffer,
  opts: { chunkBytes?: number; counts?: BackupCounts } = {},
): AsyncGenerator<Buffer> {
  return chunks(
    items,
    masterKey,
    opts.chunkBytes ?? CHUNK_BYTES,
    opts.counts ?? { versions: 0, heads: 0, blobs: 0, audits: 0 },
  );
}

async function* chunks(
  items: AsyncIterable<StoreItem>,
  masterKey: Buffer,
  chunkBytes: number,
  counts: BackupCounts,
): AsyncGenerator<Buffer> {
  const header = newHeader(masterKey, chunkBytes);
  const sealer = chunkSealer(header, chunkKey(masterKey, header.salt));
  const digest = createHash('sha256');
  yield header.bytes;
  let pending: Buffer[] = [];
  let size = 0;
  for await (const item of items) {
    const record = encodeItem(item);
    digest.update(record);
    counts[`${item.type}s`]++;
    pending.push(record);
    size += record.length;
    // Strictly more than a chunk: what is left always goes into the final chunk, with the trailer.
    if (size > chunkBytes) {
      let all = Buffer.concat(pending);
      while (all.length > chunkBytes) {
        yield sealer(all.subarray(0, chunkBytes), false);
        all = all.subarray(chunkBytes);
      }
      pending = [all];
      size = all.length;
    }
  }
  const trailer: Trailer = { ...counts, sha256: digest.digest('hex') };
  let rest = Buffer.concat([...pending, encodeTrailer(trailer)]);
  while (rest.length > chunkBytes) {
    yield sealer(rest.subarray(0, chunkBytes), false);
    rest = rest.subarray(chunkBytes);
  }
  yield sealer(rest, true);
}

function chunkSealer(header: Header, key: Buffer): (plain: Buffer, final: boolean) => Buffer {
  let index = 0;
  return (plain, final) => {
    const cipher = createCipheriv('aes-256-gcm', key, chunkNonce(index));
    cipher.setAAD(chunkAad(header, index, final));
    index++;
    const body = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    const frame = Buffer.alloc(4);
    frame.writeUInt32BE((body.length | (final ? FINAL_BIT : 0)) >>> 0);
    return Buffer.concat([frame, body]);
  };
}
