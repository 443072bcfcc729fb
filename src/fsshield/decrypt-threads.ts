import { createHash, type Hash } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, read } from 'node:fs';
import { dirname, join } from 'node:path';
import { openChunk, tampered } from './chunk.js';
import { ChunkPool } from './chunk-pool.js';
import { CHUNK, fileKey, paddedLength, type FileEntry } from './format.js';
import type { QueuedFile, WriteQueue } from './write-queue.js';

interface OpenFile {
  entry: FileEntry;
  key: Buffer;
  input: number;
  output?: QueuedFile;
  digest: Hash;
}

interface InFlight {
  file: OpenFile | undefined;
  entry: FileEntry;
  index: number;
  tag?: Buffer;
  /** Deciphered by this thread when its turn comes, not by a worker: `plain` is then still the ciphertext. */
  here: boolean;
  /** The verified plaintext, or why the chunk (or its file) was refused. */
  plain: Promise<Buffer>;
}

/**
 * Decrypts every chunk of `files` with worker threads: this thread reads ahead (libuv's pool), hands each
 * chunk's ciphertext to a worker, and takes the results in tree order — file by file, chunk by chunk — so a
 * chunk is queued for writing only after it and every chunk before it verified, the first failure in that
 * order is the one reported, and a file's digest is checked before its last chunk counts as done. Chunks of
 * the next files are already in flight while the last ones of a file are written: small files keep the
 * threads busy too. On failure every read in flight settles before the descriptors close.
 */
export async function decryptThreaded(
  shield: string,
  out: string,
  volumeKey: Buffer,
  files: FileEntry[],
  queue: WriteQueue,
  threads: number,
  mainThread = true,
): Promise<void> {
  const buffers: Buffer[] = [];
  const pool = new ChunkPool(threads, (spare) => buffers.push(Buffer.from(spare)));
  const window = 2 * threads + 2;
  const flight: InFlight[] = [];
  const inputs = new Set<OpenFile>();
  let nextFile = 0;
  let nextChunk = 0;
  let offset = 0;
  let current: OpenFile | undefined;
  let stop = false;

  const refuse = (entry: FileEntry, err: unknown): void => {
    stop = true; // nothing after a refused file is read: the consumer stops there anyway
    const plain = Promise.reject(err);
    plain.catch(() => undefined);
    flight.push({ file: undefined, entry, index: 0, here: false, plain });
  };
  const fill = (): void => {
    while (!stop && flight.length < window && nextFile < files.length) {
      const entry = files[nextFile]!;
      if (nextChunk === 0) {
        try {
          current = openInput(shield, volumeKey, entry);
        } catch (err) {
          refuse(entry, err);
          return;
        }
        inputs.add(current);
        offset = 0;
      }
      const file = current!;
      const index = nextChunk;
      const length = 28 + paddedLength(entry.size, index, entry.chunks);
      const slot: InFlight = { file, entry, index, here: false, plain: Promise.resolve(Buffer.alloc(0)) };
      slot.plain = readAt(file.input, buffers.pop() ?? Buffer.allocUnsafeSlow(28 + CHUNK), length, offset).then(
        (sealed) => {
          slot.tag = Buffer.from(sealed.subarray(12, 28)); // copied: the ciphertext leaves with the transfer
          const plain = pool.open(file.key, entry, index, sealed, !mainThread);
          slot.here = plain === undefined;
          return plain ?? sealed;
        },
      );
      slot.plain.catch(() => undefined); // awaited in order below; a failure after the first is not reported
      flight.push(slot);
      offset += length;
      if (++nextChunk === entry.chunks) {
        nextChunk = 0;
        nextFile++;
      }
    }
  };

  try {
    fill();
    for (let slot = flight.shift(); slot; slot = flight.shift()) {
      const file = slot.file!;
      const { entry, index } = slot;
      let plain = await slot.plain;
      if (slot.here) {
        const sealed = plain;
        plain = openChunk(file.key, entry, index, sealed);
        buffers.push(Buffer.from(sealed.buffer as ArrayBuffer));
      }
      if (index === 0) {
        const target = join(out, entry.path);
        mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
        file.output = queue.open(openSync(target, 'w', entry.mode & 0o777));
      }
      file.digest.update(slot.tag!);
      await queue.write(
        file.output!,
        plain.subarray(0, Math.min(plain.length, entry.size - index * CHUNK)),
        index * CHUNK,
      );
      if (index === entry.chunks - 1) {
        if (file.digest.digest('hex') !== entry.digest) throw tampered(entry, 'is not the version the metadata names');
        inputs.delete(file);
        closeSync(file.input);
        queue.finish(file.output!);
      }
      fill();
    }
  } finally {
    stop = true;
    // Every read must settle before its descriptor closes; then no thread is left.
    await Promise.allSettled(flight.map((slot) => slot.plain));
    await pool.close();
    for (const file of inputs) {
      closeSync(file.input);
      if (file.output) queue.finish(file.output);
    }
  }
}

function openInput(shield: string, volumeKey: Buffer, entry: FileEntry): OpenFile {
  const input = openSync(join(shield, `${entry.blob}.enc`), 'r');
  let size = 0;
  for (let i = 0; i < entry.chunks; i++) size += 28 + paddedLength(entry.size, i, entry.chunks);
  if (fstatSync(input).size !== size) {
    closeSync(input);
    throw tampered(entry, 'has the wrong length');
  }
  return { entry, key: fileKey(volumeKey, entry.blob), input, digest: createHash('sha256') };
}

function readAt(fd: number, buffer: Buffer, length: number, position: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    read(fd, buffer, 0, length, position, (err, got) => (err ? reject(err) : resolve(buffer.subarray(0, got))));
  });
}
