import type { AuditLog } from '../audit/types.js';
import { AUDIT_API_LIMITS } from '../contract/index.js';
import { CasError } from './errors.js';
import type { ConnectionLimits } from './limits.js';
import { LocalLedger, type SlotLedger } from './ledger.js';

/** Followers of `GET /v1/audit?wait=…` (README "Audit log"): how many may wait, how often the store is asked. */
export interface FollowLimits {
  /** Requests waiting at once per client key; the next gets 429 CAS_BUSY. */
  waitersPerClient: number;
  /** Requests waiting at once in all, administrators not counted (they always find a slot of their own). */
  waiters: number;
  /**
   * Of those, requests of clients that may read no session (throwaway keys see nothing): they cannot hold more,
   * so the other slots stay for session owners.
   */
  strangers: number;
  /** How often the log's head is read from the store while someone waits (other replicas write there too). */
  pollMs: number;
}

export const DEFAULT_FOLLOW_LIMITS: FollowLimits = { waitersPerClient: 4, waiters: 64, strangers: 8, pollMs: 250 };

/** Who follows: an audit administrator, a client that may read some session, or one that may read none. */
export type FollowerKind = 'admin' | 'reader' | 'stranger';

/** A second below the request and idle timeouts: a waiting answer never outlives its connection's limits. */
export function followWindowMs(limits: Pick<ConnectionLimits, 'requestTimeoutMs' | 'idleTimeoutMs'>): number {
  const ceiling = Math.min(limits.requestTimeoutMs, limits.idleTimeoutMs) - 1_000;
  return Math.max(0, Math.min(AUDIT_API_LIMITS.maxWaitSeconds * 1_000, ceiling));
}

interface Waiter {
  after: number;
  wake(): void;
}

/**
 * Long polls on the audit log. One timer per CAS reads the head while anyone waits and wakes those behind it:
 * entries written by another replica of the same store are seen as soon as this CAS's own.
 */
export class AuditFollowers {
  private readonly waiting = new Set<Waiter>();
  private readonly held = { counted: 0, strangers: 0 };
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly audit: AuditLog,
    private readonly limits: FollowLimits = DEFAULT_FOLLOW_LIMITS,
    private readonly ledger: SlotLedger = new LocalLedger(),
  ) {}

  /**
   * Holds a waiting slot of `client` while `work` runs, or refuses at once past the caps. The totals are this
   * process's; the per-client count is the ledger's (cluster-wide with several workers).
   */
  async slot<T>(client: string, work: () => Promise<T>, kind: FollowerKind = 'reader'): Promise<T> {
    const counted = kind !== 'admin';
    const stranger = kind === 'stranger';
    if (
      (counted && this.held.counted >= this.limits.waiters) ||
      (stranger && this.held.strangers >= this.limits.strangers)
    ) {
      throw tooManyWaiters(this.limits);
    }
    // Counted before the ledger answers, so that requests meanwhile see this one's total slot.
    if (counted) this.held.counted++;
    if (stranger) this.held.strangers++;
    const release = () => {
      if (counted) this.held.counted--;
      if (stranger) this.held.strangers--;
    };
    const taken = this.ledger.take('follow', client, this.limits.waitersPerClient);
    if (!(taken === true || (taken !== false && (await taken.catch(() => false))))) {
      release();
      throw tooManyWaiters(this.limits);
    }
    try {
      return await work();
    } finally {
      this.ledger.give('follow', client);
      release();
    }
  }

  /** Resolves once the head is past `after`, at `deadline` (ms since the epoch), on abort or on close. */
  until(after: number, deadline: number, signal: AbortSignal): Promise<void> {
    if (this.closed || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter: Waiter = {
        after,
        wake: () => {
          clearTimeout(timeout);
          signal.removeEventListener('abort', waiter.wake);
          this.waiting.delete(waiter);
          resolve();
        },
      };
      const timeout = setTimeout(waiter.wake, Math.max(0, deadline - Date.now()));
      signal.addEventListener('abort', waiter.wake, { once: true });
      this.waiting.add(waiter);
      this.poll();
    });
  }

  close(): void {
    this.closed = true;
    for (const waiter of [...this.waiting]) waiter.wake();
  }

  private poll(): void {
    if (this.timer || this.waiting.size === 0) return;
    this.timer = setTimeout(() => void this.tick(), this.limits.pollMs);
  }

  private async tick(): Promise<void> {
    try {
      const head = await this.audit.head();
      for (const waiter of [...this.waiting]) if (head.seq > waiter.after) waiter.wake();
    } catch {
      // A store away for a moment: the waiters keep waiting until their deadline, the next tick asks again.
    } finally {
      this.timer = undefined;
      if (!this.closed) this.poll();
    }
  }
}

function tooManyWaiters(limits: FollowLimits): CasError {
  return new CasError(
    'CAS_BUSY',
    `too many requests are following the audit log (at most ${limits.waitersPerClient} per client, ` +
      `${limits.waiters} in all, ${limits.strangers} of clients that may read no session)`,
    { hint: 'follow with one request at a time (wait=SECONDS), or retry shortly' },
  );
}
