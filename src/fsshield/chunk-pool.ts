import { Worker } from 'node:worker_threads';
import type { ChunkFile } from './chunk.js';
import { ShieldError } from './errors.js';

export interface ChunkRequest {
  id: number;
  key: Uint8Array;
  file: ChunkFile;
  index: number;
  sealed: ArrayBuffer;
  length: number;
}

export type ChunkReply = { id: number; spare: ArrayBuffer } & (
  | { plain: ArrayBuffer; length: number; error?: undefined }
  | { error: { code?: string; message: string; hint?: string }; plain?: undefined }
);

interface Pending {
  resolve: (plain: Buffer) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  ready: boolean;
  dead: boolean;
}

/** Chunks a thread holds at most: one deciphering, one waiting, so it never idles between two. */
const DEPTH = 2;

/**
 * Worker threads that verify and decrypt chunks (`chunk-worker.js`), made for one decryption and terminated
 * by `close` after it — a failed or finished decryption leaves no thread behind. A thread takes chunks once
 * it has started (its start costs tens of milliseconds, during which the caller goes on alone), each chunk
 * going to the ready thread with the fewest in hand; its read buffer comes back through `spare`.
 */
export class ChunkPool {
  private readonly slots: Slot[];
  private readonly backlog: Array<{ job: ChunkRequest; pending: Pending }> = [];
  private nextId = 0;
  private closed = false;

  constructor(
    size: number,
    private readonly spare: (buffer: ArrayBuffer) => void = () => undefined,
  ) {
    this.slots = Array.from({ length: size }, () => this.start());
  }

  get size(): number {
    return this.slots.length;
  }

  /**
   * Verifies and decrypts `sealed` in a thread that is ready and has room. Otherwise, unless `wait`, returns
   * undefined: the caller deciphers it itself (while the threads start, and whenever they are all busy);
   * with `wait` it is held until a thread has room. `sealed` must own its memory: it is transferred and no
   * longer usable here.
   */
  open(key: Buffer, file: ChunkFile, index: number, sealed: Buffer, wait = false): Promise<Buffer> | undefined {
    if (this.closed) return Promise.reject(stopped('the decryption threads were stopped'));
    const slot = this.free();
    if (!slot && !wait) return undefined;
    const id = this.nextId++;
    const job: ChunkRequest = { id, key, file, index, sealed: sealed.buffer as ArrayBuffer, length: sealed.length };
    return new Promise<Buffer>((resolve, reject) => {
      if (slot) this.send(slot, job, { resolve, reject });
      else this.backlog.push({ job, pending: { resolve, reject } });
      this.pump();
    });
  }

  /** Terminates every thread; chunks still in hand or held are refused. */
  async close(): Promise<void> {
    this.closed = true;
    for (const held of this.backlog.splice(0)) held.pending.reject(stopped('the decryption threads were stopped'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private free(): Slot | undefined {
    return this.slots
      .filter((s) => s.ready && !s.dead && s.pending.size < DEPTH)
      .sort((a, b) => a.pending.size - b.pending.size)[0];
  }

  private send(slot: Slot, job: ChunkRequest, pending: Pending): void {
    slot.pending.set(job.id, pending);
    slot.worker.postMessage(job, [job.sealed]);
  }

  /** Held chunks go out as threads get room; with every thread gone they are refused, not held forever. */
  private pump(): void {
    for (let slot = this.free(); slot && this.backlog.length > 0; slot = this.free()) {
      const { job, pending } = this.backlog.shift()!;
      this.send(slot, job, pending);
    }
    if (this.slots.every((s) => s.dead))
      for (const held of this.backlog.splice(0)) held.pending.reject(stopped('no decryption thread is left'));
  }

  private start(): Slot {
    const worker = new Worker(new URL('./chunk-worker.js', import.meta.url));
    const slot: Slot = { worker, pending: new Map(), ready: false, dead: false };
    worker.on('message', (reply: ChunkReply | 'ready') => {
      if (reply === 'ready') {
        slot.ready = true;
        this.pump();
        return;
      }
      const pending = slot.pending.get(reply.id);
      slot.pending.delete(reply.id);
      this.spare(reply.spare);
      if (!pending) return;
      if (reply.error) {
        const { code, message, hint } = reply.error;
        pending.reject(
          code === 'SHIELD_TAMPERED'
            ? new ShieldError(code, message, { hint })
            : stopped(`a decryption thread failed (${message})`),
        );
      } else pending.resolve(Buffer.from(reply.plain, 0, reply.length));
      this.pump();
    });
    const fail = (why: string) => {
      slot.dead = true;
      for (const pending of slot.pending.values()) pending.reject(stopped(why));
      slot.pending.clear();
      this.pump();
    };
    worker.on('error', (err) => fail(`a decryption thread failed (${err.message})`));
    worker.on('exit', (code) => fail(`a decryption thread stopped (exit code ${code})`));
    return slot;
  }
}

function stopped(why: string): ShieldError {
  return new ShieldError('SHIELD_WORKER', `the file-system shield could not decrypt: ${why}`, {
    hint: 'the process ran out of memory or threads, or a thread was killed; try again with more memory',
  });
}
