/**
 * Slots held per client address or per client key (README "Limits"): open connections, uploads in progress,
 * audit followers. With one process the counts are local; with `veil cas serve --workers N` the primary keeps
 * them for every worker, so a cap stated per address or per key holds in all and is not multiplied by N.
 */
import { z } from 'zod';

export type SlotKind = 'connection' | 'write' | 'follow';

/**
 * Takes a slot of `kind` for `key` when fewer than `cap` are held (yes) or refuses (no); a taken slot is given
 * back exactly once. Local ledgers answer synchronously, so one process decides as it always did.
 */
export interface SlotLedger {
  take(kind: SlotKind, key: string, cap: number): boolean | Promise<boolean>;
  give(kind: SlotKind, key: string): void;
}

/** Counts per (kind, key); a key at zero is forgotten, so memory follows what is held. */
export class Counts {
  private held = new Map<string, number>();

  get size(): number {
    return this.held.size;
  }

  count(slot: string): number {
    return this.held.get(slot) ?? 0;
  }

  add(slot: string): void {
    this.held.set(slot, this.count(slot) + 1);
  }

  /** False when nothing was held there: a give without a take frees nobody else's slot. */
  remove(slot: string): boolean {
    const n = this.held.get(slot);
    if (n === undefined) return false;
    if (n <= 1) this.held.delete(slot);
    else this.held.set(slot, n - 1);
    return true;
  }

  entries(): IterableIterator<[string, number]> {
    return this.held.entries();
  }

  clear(): void {
    this.held = new Map();
  }
}

const slotOf = (kind: SlotKind, key: string) => `${kind}\0${key}`;

/** The ledger of a single CAS process. */
export class LocalLedger implements SlotLedger {
  private readonly counts = new Counts();

  take(kind: SlotKind, key: string, cap: number): boolean {
    const slot = slotOf(kind, key);
    if (this.counts.count(slot) >= cap) return false;
    this.counts.add(slot);
    return true;
  }

  give(kind: SlotKind, key: string): void {
    this.counts.remove(slotOf(kind, key));
  }

  /** Slots held, for tests. */
  held(kind: SlotKind, key: string): number {
    return this.counts.count(slotOf(kind, key));
  }
}

/** Addresses are at most an IPv6 /64 key, client keys a 64-digit hash: anything longer is not ours. */
const MAX_KEY = 256;

const slotKind = z.enum(['connection', 'write', 'follow'] satisfies SlotKind[]);
const slotKey = z.string().max(MAX_KEY);
const id = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** The ledger's wire format, both ends (worker → primary: take, answered by id, or give, not answered). */
const ledgerTake = z.strictObject({
  veil: z.literal('ledger-take'),
  id,
  kind: slotKind,
  key: slotKey,
  cap: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
});
const ledgerGive = z.strictObject({ veil: z.literal('ledger-give'), kind: slotKind, key: slotKey });
const takeId = z.object({ veil: z.literal('ledger-take'), id });
/** Primary → worker. */
const ledgerAnswer = z.strictObject({ veil: z.literal('ledger-answer'), id, ok: z.boolean() });

export type LedgerTake = z.infer<typeof ledgerTake>;
export type LedgerGive = z.infer<typeof ledgerGive>;
export type LedgerAnswer = z.infer<typeof ledgerAnswer>;

export const isLedgerTake = (message: unknown): message is LedgerTake => ledgerTake.safeParse(message).success;
export const isLedgerGive = (message: unknown): message is LedgerGive => ledgerGive.safeParse(message).success;
export const isLedgerAnswer = (message: unknown): message is LedgerAnswer => ledgerAnswer.safeParse(message).success;

/** One worker as the primary's ledger knows it: what it holds, and whether it is gone. */
export interface LedgerHolder {
  readonly held: Counts;
  gone: boolean;
}

/**
 * The primary's side: the counts of every worker together, and each worker's own holdings so that a worker
 * that exits (crashed, killed) frees all it held. Each message costs a few map operations on the primary.
 */
export class PrimaryLedger {
  private readonly counts = new Counts();

  holder(): LedgerHolder {
    return { held: new Counts(), gone: false };
  }

  /** Handles a worker's message; false when it is no ledger message. `reply` sends the answer to that worker. */
  handle(holder: LedgerHolder, message: unknown, reply: (answer: LedgerAnswer) => void): boolean {
    if (isLedgerTake(message)) {
      // A message still in the pipe when its worker exited must not take a slot that nobody would give back.
      const ok = !holder.gone && this.take(holder, slotOf(message.kind, message.key), message.cap);
      reply({ veil: 'ledger-answer', id: message.id, ok });
      return true;
    }
    if (isLedgerGive(message)) {
      const slot = slotOf(message.kind, message.key);
      if (holder.held.remove(slot)) this.counts.remove(slot);
      return true;
    }
    // A take this ledger cannot read (a key too long, a bad cap) is still answered no when its id can be: the
    // worker would otherwise keep waiting for it, and an unanswered take holds its place among the pending.
    const unreadable = takeId.safeParse(message);
    if (unreadable.success) reply({ veil: 'ledger-answer', id: unreadable.data.id, ok: false });
    return unreadable.success;
  }

  /** Frees everything a worker held; called once it exited. */
  release(holder: LedgerHolder): void {
    holder.gone = true;
    for (const [slot, n] of holder.held.entries()) for (let i = 0; i < n; i++) this.counts.remove(slot);
    holder.held.clear();
  }

  /** Slots held in all, for tests and logs. */
  held(kind: SlotKind, key: string): number {
    return this.counts.count(slotOf(kind, key));
  }

  private take(holder: LedgerHolder, slot: string, cap: number): boolean {
    if (this.counts.count(slot) >= cap) return false;
    this.counts.add(slot);
    holder.held.add(slot);
    return true;
  }
}

/** The worker's end of its IPC channel to the primary (the process in a cluster worker; a fake in tests). */
export interface LedgerChannel {
  /** Sends a message; false (or throwing) when the channel is closed. */
  send(message: LedgerTake | LedgerGive): boolean;
  onMessage(listener: (message: unknown) => void): void;
}

/** How long a worker waits for the primary's answer before it refuses (default deny). */
export const LEDGER_ANSWER_MS = 1_000;
const WARN_EVERY_MS = 10_000;
/**
 * Takes asked and not yet answered (those given up on included, whose late yes must be given back): past it a
 * primary is not answering, and more would only grow this map, so the next takes are refused at once.
 */
export const LEDGER_MAX_PENDING = 65_536;

/**
 * The worker's side: each take asks the primary and settles with its answer, or with no after `answerMs`
 * (logged through `warn`: a primary that does not answer must not make the worker wait, nor let a client past
 * its cap). A yes that comes after the worker gave up is given back at once, so the primary's count stays true.
 */
export class IpcLedger implements SlotLedger {
  private nextId = 1;
  /** Refusals for want of an answer since the last warning: a primary away would otherwise flood the log. */
  private unanswered = { since: Number.NEGATIVE_INFINITY, count: 0 };
  private readonly pending = new Map<number, { settle?: (ok: boolean) => void; kind: SlotKind; key: string }>();

  constructor(
    private readonly channel: LedgerChannel,
    private readonly warn: (message: string) => void,
    private readonly answerMs = LEDGER_ANSWER_MS,
    private readonly maxPending = LEDGER_MAX_PENDING,
  ) {
    channel.onMessage((message) => {
      if (!isLedgerAnswer(message)) return;
      const entry = this.pending.get(message.id);
      if (!entry) return;
      this.pending.delete(message.id);
      if (entry.settle) entry.settle(message.ok);
      else if (message.ok) this.send({ veil: 'ledger-give', kind: entry.kind, key: entry.key });
    });
  }

  take(kind: SlotKind, key: string, cap: number): Promise<boolean> {
    if (this.pending.size >= this.maxPending) {
      this.refused(`the CAS primary has not answered ${this.pending.size} slot requests`);
      return Promise.resolve(false);
    }
    const id = this.nextId++;
    return new Promise<boolean>((resolve) => {
      const entry: { settle?: (ok: boolean) => void; kind: SlotKind; key: string } = { kind, key };
      const timer = setTimeout(() => {
        delete entry.settle;
        this.refused(`the CAS primary did not answer a ${kind} slot request within ${this.answerMs} ms`);
        resolve(false);
      }, this.answerMs);
      timer.unref();
      entry.settle = (ok) => {
        clearTimeout(timer);
        resolve(ok);
      };
      this.pending.set(id, entry);
      if (!this.send({ veil: 'ledger-take', id, kind, key, cap })) {
        this.pending.delete(id);
        clearTimeout(timer);
        this.refused(`the CAS primary cannot be reached for a ${kind} slot request`);
        resolve(false);
      }
    });
  }

  give(kind: SlotKind, key: string): void {
    this.send({ veil: 'ledger-give', kind, key });
  }

  /** Logs the first refusal, then at most one line per WARN_EVERY_MS with the number refused meanwhile. */
  private refused(why: string): void {
    this.unanswered.count++;
    const now = performance.now();
    if (now - this.unanswered.since < WARN_EVERY_MS) return;
    const n = this.unanswered.count;
    this.warn(`${why}: refused (default deny)${n > 1 ? `; ${n} requests refused so since the last warning` : ''}`);
    this.unanswered = { since: now, count: 0 };
  }

  private send(message: LedgerTake | LedgerGive): boolean {
    try {
      return this.channel.send(message);
    } catch {
      return false;
    }
  }
}

/** The channel of a node:cluster worker process. */
export function processChannel(proc: NodeJS.Process = process): LedgerChannel {
  return {
    send: (message) => {
      if (!proc.connected || !proc.send) return false;
      proc.send(message, undefined, {}, () => {});
      return true;
    },
    onMessage: (listener) => void proc.on('message', listener),
  };
}

/** A cluster worker's ledger: the primary's, over the IPC channel; a refusal for want of an answer is logged. */
export function workerLedger(slot: number, out: (line: string) => void): IpcLedger {
  const warn = (msg: string) => out(`${JSON.stringify({ level: 'warn', msg, worker: slot })}\n`);
  return new IpcLedger(processChannel(), warn);
}
