/**
 * A decryption worker thread: verifies and decrypts the chunks the main thread hands it (their ciphertext
 * transferred, not copied) with `openChunk`, the main thread's own check, and hands back the plaintext and
 * the emptied read buffer, also transferred. It writes nothing and keeps nothing between chunks.
 */
import { parentPort } from 'node:worker_threads';
import { openChunk } from './chunk.js';
import type { ChunkReply, ChunkRequest } from './chunk-pool.js';

const port = parentPort!;
port.on('message', (job: ChunkRequest) => {
  const sealed = Buffer.from(job.sealed, 0, job.length);
  let reply: ChunkReply;
  try {
    const plain = ownBuffer(openChunk(Buffer.from(job.key), job.file, job.index, sealed));
    reply = { id: job.id, plain: plain.buffer as ArrayBuffer, length: plain.length, spare: job.sealed };
    port.postMessage(reply, [reply.plain, job.sealed]);
  } catch (err) {
    const e = err as { code?: string; message: string; hint?: string };
    reply = { id: job.id, error: { code: e.code, message: e.message, hint: e.hint }, spare: job.sealed };
    port.postMessage(reply, [job.sealed]);
  }
});
port.postMessage('ready');

/** A buffer that alone owns its memory: only such a one can be transferred without taking other data along. */
function ownBuffer(buffer: Buffer): Buffer {
  if (buffer.byteOffset === 0 && buffer.buffer.byteLength === buffer.length) return buffer;
  const copy = Buffer.allocUnsafeSlow(buffer.length);
  buffer.copy(copy);
  return copy;
}
