import { z } from 'zod';
import { auditEntrySchema } from '../../contract/audit.js';
import type { StoreItem } from '../store/index.js';
import { BackupError } from './errors.js';
import { MAX_RECORD_BYTES } from './format.js';

/** What the last record says about all the others; a reader compares it with what it read. */
export interface Trailer {
  versions: number;
  heads: number;
  blobs: number;
  /** Absent in backups written before the audit log: none. */
  audits?: number | undefined;
  /** SHA-256 (hex) of every record before the trailer, length prefixes included. */
  sha256: string;
}

const versionRecord = z.strictObject({
  type: z.literal('version'),
  name: z.string().min(1),
  hash: z.string().min(1),
  predecessor: z.string().min(1).nullable(),
  text: z.string(),
  creator: z.string(),
  createdAt: z.number().int().nonnegative(),
  secrets: z.record(z.string(), z.unknown()),
});
const headRecord = z.strictObject({ type: z.literal('head'), name: z.string().min(1), hash: z.string().min(1) });
const blobRecord = z.strictObject({ type: z.literal('blob'), key: z.string().min(1), value: z.base64() });
const auditRecord = z.strictObject({ type: z.literal('audit'), entry: auditEntrySchema });
const count = z.number().int().nonnegative();
const endRecord = z.strictObject({
  type: z.literal('end'),
  versions: count,
  heads: count,
  blobs: count,
  audits: count.optional(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
const recordSchema = z.discriminatedUnion('type', [versionRecord, headRecord, blobRecord, auditRecord, endRecord]);

export type Record_ = { item: StoreItem } | { end: Trailer };

export function encodeItem(item: StoreItem): Buffer {
  const json =
    item.type === 'version'
      ? { type: 'version', ...item.record }
      : item.type === 'head'
        ? { type: 'head', name: item.name, hash: item.hash }
        : item.type === 'blob'
          ? { type: 'blob', key: item.key, value: item.value.toString('base64') }
          : { type: 'audit', entry: item.entry };
  return frame(JSON.stringify(json), describeItem(item));
}

export function encodeTrailer(trailer: Trailer): Buffer {
  return frame(JSON.stringify({ type: 'end', ...trailer }), 'the trailer');
}

function describeItem(item: StoreItem): string {
  if (item.type === 'version') return `session '${item.record.name}'`;
  if (item.type === 'head') return `session '${item.name}'`;
  return item.type === 'blob' ? `blob '${item.key}'` : `audit entry ${item.entry.seq}`;
}

function frame(json: string, what: string): Buffer {
  const body = Buffer.from(json, 'utf8');
  if (body.length > MAX_RECORD_BYTES) {
    throw new BackupError('BACKUP_INVALID', `${what} is ${body.length} bytes, over ${MAX_RECORD_BYTES} per record`, {
      hint: 'README "Backup and restore", Limits: such an item cannot be backed up',
    });
  }
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
}

/** One record's JSON, authenticated already: a failure here means a writer that is not this format's. */
export function decodeRecord(body: Buffer, where: string): Record_ {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalid(where, 'is not JSON');
  }
  const parsed = recordSchema.safeParse(json);
  if (!parsed.success) throw invalid(where, `does not fit the format (${parsed.error.issues[0]?.message ?? ''})`);
  const r = parsed.data;
  if (r.type === 'end') {
    const { type: _, ...end } = r;
    return { end };
  }
  if (r.type === 'head') return { item: { type: 'head', name: r.name, hash: r.hash } };
  if (r.type === 'blob') return { item: { type: 'blob', key: r.key, value: Buffer.from(r.value, 'base64') } };
  if (r.type === 'audit') return { item: { type: 'audit', entry: r.entry } };
  const { type: _, ...record } = r;
  return { item: { type: 'version', record } };
}

export function invalid(where: string, what: string): BackupError {
  return new BackupError('BACKUP_INVALID', `${where} ${what}`, {
    hint: 'the backup authenticates but was not written by a compatible veil cas backup; nothing was written',
  });
}
