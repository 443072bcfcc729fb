import { createCipheriv } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../store/sqlite.js';
import type { SessionRecord, Store, StoreItem } from '../store/index.js';
import { chunkAad, chunkKey, chunkNonce, FINAL_BIT, HEADER_BYTES, newHeader, TAG_BYTES } from './format.js';

/** Helpers of the backup tests: a store with content, a backup's bytes and where its chunks are. */
export function tempRoot(prefix: string): { path: string; dir(): string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  let n = 0;
  return { path, dir: () => join(path, `d${n++}`), cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export function record(name: string, hash: string, predecessor: string | null = null, i = 0): SessionRecord {
  return {
    name,
    hash,
    predecessor,
    text: `name: ${name}\n# SECRET-TEXT-${hash}\n${'x'.repeat(i * 37)}\n`,
    creator: '-----BEGIN CERTIFICATE-----\nPEM\n-----END CERTIFICATE-----\n',
    createdAt: 1_700_000_000_000 + i,
    secrets: { pw: { kind: 'ascii', value: `SECRET-VALUE-${hash}` }, n: i },
  };
}

/** `sessions` names, each with two versions, and two blobs (one of them binary). */
export async function filledStore(dataDir: string, masterKey: Buffer, sessions: number): Promise<Store> {
  const store = openSqliteStore({ dataDir, masterKey });
  for (let i = 0; i < sessions; i++) {
    await store.append(record(`ns/s${i}`, `h${i}a`, null, i), null);
    await store.append(record(`ns/s${i}`, `h${i}b`, `h${i}a`, i), `h${i}a`);
  }
  await store.putBlobIfAbsent('ca', Buffer.from('CA-KEY-BLOB'));
  await store.putBlobIfAbsent('bin', Buffer.from([0, 255, 1, 254, 10, 13]));
  return store;
}

export async function bytesOf(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

export async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

export interface Chunk {
  start: number;
  end: number;
  final: boolean;
}

/** Where each chunk of a backup lies (frame included). */
export function layout(bytes: Buffer): Chunk[] {
  const chunks: Chunk[] = [];
  for (let at = HEADER_BYTES; at < bytes.length; ) {
    const word = bytes.readUInt32BE(at);
    const end = at + 4 + (word & ~FINAL_BIT);
    chunks.push({ start: at, end, final: (word & FINAL_BIT) !== 0 });
    at = end;
  }
  return chunks;
}

export function withChunks(bytes: Buffer, chunks: Chunk[]): Buffer {
  return Buffer.concat([bytes.subarray(0, HEADER_BYTES), ...chunks.map((c) => bytes.subarray(c.start, c.end))]);
}

export function flipped(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
}

/** A backup sealed correctly around plaintext of the test's choosing (a writer that is not Veil's). */
export function sealedAround(masterKey: Buffer, plains: Buffer[]): Buffer {
  const header = newHeader(masterKey, 1024);
  const key = chunkKey(masterKey, header.salt);
  const chunks = plains.map((plain, index) => {
    const final = index === plains.length - 1;
    const cipher = createCipheriv('aes-256-gcm', key, chunkNonce(index));
    cipher.setAAD(chunkAad(header, index, final));
    const body = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    const frame = Buffer.alloc(4);
    frame.writeUInt32BE((body.length | (final ? FINAL_BIT : 0)) >>> 0);
    return Buffer.concat([frame, body]);
  });
  return Buffer.concat([header.bytes, ...chunks]);
}

export function recordBytes(json: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(json));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
}

export const TAG = TAG_BYTES;
export type { StoreItem };
