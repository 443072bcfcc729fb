/**
 * A decryption worker thread: runs `openRange` — the main thread's own code — on the ranges the main thread
 * hands it, with one buffer of its own, reading and writing through the process's descriptors, and answers
 * with the chunk tags (copied: 16 bytes a chunk) or with where and why the range failed. It keeps nothing between ranges.
 */
import { parentPort } from 'node:worker_threads';
import { CHUNK } from './format.js';
import { RangeFailure, openRange } from './range.js';
import type { RangeReply, RangeRequest } from './range-pool.js';

const port = parentPort!;
const buffer = Buffer.allocUnsafeSlow(28 + CHUNK);
port.on('message', (job: RangeRequest) => {
  let reply: RangeReply;
  try {
    const tags = openRange(job.segments, buffer);
    reply = { id: job.id, tags };
  } catch (err) {
    const failure = err instanceof RangeFailure ? err : new RangeFailure(0, job.segments[0]?.first ?? 0, err);
    const e = failure.cause as { code?: unknown; message?: unknown; hint?: unknown };
    reply = {
      id: job.id,
      done: failure.done,
      error: {
        segment: failure.segment,
        index: failure.index,
        code: typeof e?.code === 'string' ? e.code : undefined,
        message: String(e?.message ?? e),
        hint: typeof e?.hint === 'string' ? e.hint : undefined,
      },
    };
  }
  port.postMessage(reply);
});
port.postMessage('ready');
