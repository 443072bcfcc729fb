import { createHash } from 'node:crypto';
import type { AuditEntry, AuditEvent, AuditHead, AuditLog } from '../audit/types.js';
import type { Store } from './store/index.js';

/**
 * STAND-IN, replaced at the merge of branch `audit` (the chained, signed log with its own store tables): entries
 * are blobs `audit/entry/<seq>` put only if absent, so replicas of one store never share a seq and the log
 * survives restarts. `sig` is empty and `key` the zero hash: nothing here is signed.
 */
export type CasAuditLog = AuditLog & { close(): Promise<void> };

const ZERO = '0'.repeat(64);
const blobKey = (seq: number) => `audit/entry/${seq}`;

export async function openAuditLog(store: Store, now: () => Date): Promise<CasAuditLog> {
  let head: AuditHead = { seq: 0, hash: ZERO };
  const entryAt = async (seq: number): Promise<AuditEntry | undefined> => {
    const blob = await store.getBlob(blobKey(seq));
    return blob ? (JSON.parse(blob.toString('utf8')) as AuditEntry) : undefined;
  };
  const catchUp = async (): Promise<AuditHead> => {
    for (let next = await entryAt(head.seq + 1); next; next = await entryAt(head.seq + 1)) {
      head = { seq: next.seq, hash: next.hash };
    }
    return head;
  };
  const record = async (event: AuditEvent): Promise<AuditEntry> => {
    for (;;) {
      const { seq, hash: prev } = await catchUp();
      const body = { v: 1 as const, seq: seq + 1, time: now().toISOString(), prev, key: ZERO, event };
      const hash = createHash('sha256').update(JSON.stringify(body)).digest('hex');
      const entry: AuditEntry = { ...body, hash, sig: '' };
      const mine = Buffer.from(JSON.stringify(entry));
      if ((await store.putBlobIfAbsent(blobKey(entry.seq), mine)).equals(mine)) return entry;
    }
  };
  const read = async (after: number, limit: number): Promise<AuditEntry[]> => {
    const out: AuditEntry[] = [];
    for (let seq = after + 1; out.length < limit; seq++) {
      const entry = await entryAt(seq);
      if (!entry) break;
      out.push(entry);
    }
    return out;
  };
  return { record, read, head: catchUp, certificates: async () => [], close: async () => {} };
}
