import { createHash } from 'node:crypto';
import type { AuditEntry, AuditEvent, AuditLog } from '../audit/types.js';

/** For unit tests: an audit log in memory (entries chained, nothing signed), and one whose writes all fail. */
export interface MemoryAuditLog extends AuditLog {
  readonly entries: AuditEntry[];
  /** The events recorded, of one type or all. */
  events<T extends AuditEvent['type']>(type?: T): Array<Extract<AuditEvent, { type: T }>>;
}

const ZERO = '0'.repeat(64);

export function memoryAuditLog(): MemoryAuditLog {
  const entries: AuditEntry[] = [];
  const head = () => {
    const last = entries.at(-1);
    return last ? { seq: last.seq, hash: last.hash } : { seq: 0, hash: ZERO };
  };
  const record = async (event: AuditEvent): Promise<AuditEntry> => {
    const { seq, hash: prev } = head();
    const body = { v: 1 as const, seq: seq + 1, time: new Date().toISOString(), prev, key: ZERO, event };
    const entry = { ...body, hash: createHash('sha256').update(JSON.stringify(body)).digest('hex'), sig: '' };
    entries.push(entry);
    return entry;
  };
  return {
    entries,
    events: <T extends AuditEvent['type']>(type?: T) =>
      entries.map((e) => e.event).filter((e) => type === undefined || e.type === type) as Array<
        Extract<AuditEvent, { type: T }>
      >,
    record,
    // The store writes no entry (its chain is not this one); the event is kept here once the write committed.
    withEntry: async (event, write) => {
      let made = false;
      const result = await write(() => {
        made = true;
        return [];
      });
      if (made) await record(event);
      return result;
    },
    read: async (after, limit) => entries.filter((e) => e.seq > after).slice(0, limit),
    head: async () => head(),
    certificates: async () => [],
  };
}

/** A log whose store refuses every write (a full disk, a database away): reads still answer. */
export function failingAuditLog(): AuditLog {
  const log = memoryAuditLog();
  const refused = () => new Error('the audit store refuses writes');
  return {
    ...log,
    record: async () => Promise.reject(refused()),
    // As a real log's transaction fails: inside the store's write, after its comparisons passed.
    withEntry: (_event, write) =>
      write(() => {
        throw refused();
      }),
  };
}
