import { Worker } from 'node:worker_threads';
import { ShieldError } from './errors.js';
import { RangeFailure, type Segment } from './range.js';

export interface RangeRequest {
  id: number;
  segments: Segment[];
}

/** A range's tags; or where and why it failed, with the tags of the segments done before. */
export type RangeReply =
  | { id: number; tags: Uint8Array[]; error?: undefined }
  | {
      id: number;
      error: { segment: number; index: number; code?: string; message: string; hint?: string };
      done: Uint8Array[];
      tags?: undefined;
    };

interface Pending {
  resolve: (tags: Buffer[]) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker | undefined;
  pending: Map<number, Pending>;
  ready: boolean;
  dead: boolean;
  /** Settles once the thread is ready or dead: one is never terminated while it loads its modules. */
  started: Promise<void>;
}

/** Ranges a thread holds at most: one being worked on, one waiting, so it never idles between two. */
const DEPTH = 2;

/** How long a thread may take to start (they take ≈ 40 ms; hundreds on a crowded machine). */
export const START_MS = 10_000;

/**
 * Worker threads that decrypt ranges of chunks (`range-worker.js`), made for one decryption and terminated by
 * `close` after it — a failed or finished decryption leaves no thread behind. A thread takes ranges once it
 * has started (its start costs tens of milliseconds, during which the caller may work alone); `hasRoom`
 * says whether one can take a range now, and `changed` resolves at the next event that may change that.
 */
export class RangePool {
  private readonly slots: Slot[];
  private nextId = 0;
  private closed = false;
  private waiters: Array<() => void> = [];

  /**
   * `spawn` makes one thread running range-worker.js (tests give one that fails, as a pids limit does); a
   * thread not ready within `startMs` is stopped and counted dead, so that neither the decryption nor
   * `close` waits on it forever.
   */
  constructor(
    size: number,
    private readonly spawn: () => Worker = () => new Worker(new URL('./range-worker.js', import.meta.url)),
    private readonly startMs = START_MS,
  ) {
    this.slots = Array.from({ length: size }, () => this.start());
  }

  /** A thread is ready and has room. */
  hasRoom(): boolean {
    return this.free() !== undefined;
  }

  /** Some thread is alive (started or starting): waiting for room can end. */
  alive(): boolean {
    return this.slots.some((s) => !s.dead);
  }

  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Runs `segments` in the ready thread with the fewest in hand; call only when `hasRoom`. */
  run(segments: Segment[]): Promise<Buffer[]> {
    if (this.closed) return Promise.reject(stopped('the decryption threads were stopped'));
    const slot = this.free();
    if (!slot) return Promise.reject(threadsGone());
    const id = this.nextId++;
    return new Promise<Buffer[]>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker!.postMessage({ id, segments } satisfies RangeRequest);
    });
  }

  /**
   * Terminates every thread; ranges still in hand are refused. A thread still starting is first let finish
   * its start: Node leaks the descriptors of the module files a thread terminated while loading was reading.
   */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.started));
    await Promise.all(this.slots.map((s) => s.worker?.terminate()));
  }

  private free(): Slot | undefined {
    return this.slots
      .filter((s) => s.ready && !s.dead && s.pending.size < DEPTH)
      .sort((a, b) => a.pending.size - b.pending.size)[0];
  }

  private wake(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  private start(): Slot {
    let started = (): void => undefined;
    const slot: Slot = {
      worker: undefined,
      pending: new Map(),
      ready: false,
      dead: false,
      started: new Promise((resolve) => (started = resolve)),
    };
    let worker: Worker;
    try {
      worker = this.spawn();
    } catch {
      // No thread to be had (a pids limit: ERR_WORKER_INIT_FAILED): the decryption goes on without this one.
      slot.dead = true;
      started();
      return slot;
    }
    slot.worker = worker;
    const late = setTimeout(() => {
      fail(`a decryption thread did not start within ${this.startMs} ms`);
      void worker.terminate();
    }, this.startMs);
    late.unref();
    worker.on('message', (reply: RangeReply | 'ready') => {
      if (reply === 'ready') {
        clearTimeout(late);
        slot.ready = true;
        started();
        this.wake();
        return;
      }
      const pending = slot.pending.get(reply.id);
      slot.pending.delete(reply.id);
      if (pending) {
        if (reply.error) {
          const { segment, index, code, message, hint } = reply.error;
          const done = reply.done.map((t) => Buffer.from(t.buffer, t.byteOffset, t.byteLength));
          pending.reject(new RangeFailure(segment, index, rebuilt(code, message, hint), done));
        } else pending.resolve(reply.tags.map((t) => Buffer.from(t.buffer, t.byteOffset, t.byteLength)));
      }
      this.wake();
    });
    const fail = (why: string) => {
      clearTimeout(late);
      slot.dead = true;
      slot.ready = false;
      started();
      for (const pending of slot.pending.values()) pending.reject(stopped(why));
      slot.pending.clear();
      this.wake();
    };
    worker.on('error', (err) => fail(`a decryption thread failed (${err.message})`));
    worker.on('exit', (code) => fail(`a decryption thread stopped (exit code ${code})`));
    return slot;
  }
}

/**
 * The error the main thread would have thrown: the shield's own (a refused chunk) keeps its code and hint; a
 * read or write error (ENOSPC on a full tmpfs) keeps its errno code, as on the main thread's path.
 */
function rebuilt(code: string | undefined, message: string, hint: string | undefined): Error {
  if (code === 'SHIELD_TAMPERED') return new ShieldError(code, message, { hint });
  if (code !== undefined && /^E[A-Z0-9]+$/.test(code)) return Object.assign(new Error(message), { code });
  return stopped(`a decryption thread failed (${message})`);
}

export function threadsGone(): ShieldError {
  return stopped('no decryption thread is left');
}

function stopped(why: string): ShieldError {
  return new ShieldError('SHIELD_WORKER', `the file-system shield could not decrypt: ${why}`, {
    hint: 'the process ran out of memory or threads, or a thread was killed; try again with more memory',
  });
}
