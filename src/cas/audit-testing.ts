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
  return {
    entries,
    events: <T extends AuditEvent['type']>(type?: T) =>
      entries.map((e) => e.event).filter((e) => type === undefined || e.type === type) as Array<
        Extract<AuditEvent, { type: T }>
      >,
    record: async (event) => {
      const { seq, hash: prev } = head();
      const body = { v: 1 as const, seq: seq + 1, time: new Date().toISOString(), prev, key: ZERO, event };
      const entry = { ...body, hash: createHash('sha256').update(JSON.stringify(body)).digest('hex'), sig: '' };
      entries.push(entry);
      return entry;
    },
    read: async (after, limit) => entries.filter((e) => e.seq > after).slice(0, limit),
    head: async () => head(),
    certificates: async () => [],
  };
}

/** A log whose store refuses every write (a full disk, a database away): reads still answer. */
export function failingAuditLog(): AuditLog {
  const log = memoryAuditLog();
  return { ...log, record: async () => Promise.reject(new Error('the audit store refuses writes')) };
}
