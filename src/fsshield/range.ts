import { readSync, writeSync } from 'node:fs';
import { openChunk, tampered, type ChunkFile } from './chunk.js';
import { CHUNK, paddedLength } from './format.js';

/** Chunks `first` … `first + count - 1` of one file, read from `input` and written to `output` (descriptors). */
export interface Segment {
  file: ChunkFile & { size: number };
  key: Uint8Array;
  input: number;
  output: number;
  first: number;
  count: number;
  /** Where chunk `first` starts in the sealed file. */
  offset: number;
}

/**
 * Where a range stopped: the segment and chunk, so the caller can report the first failure in tree order,
 * and the tags of the segments done before it, so the files they finish still get their digests checked
 * (one of them may fail first in tree order).
 */
export class RangeFailure extends Error {
  constructor(
    readonly segment: number,
    readonly index: number,
    override readonly cause: unknown,
    readonly done: Buffer[] = [],
  ) {
    super('a chunk of the range failed');
  }
}

/**
 * Reads, verifies, decrypts and writes the chunks of `segments` in order, synchronously, through one
 * chunk-sized `buffer`: a chunk's ciphertext, its plaintext and its write stay in one core's cache, which is
 * what makes a worker thread per core pay (a pipeline that reads on one thread, deciphers on another and
 * writes on a third moved each chunk between caches three times). A chunk is written only once it verified.
 * Returns each segment's chunk tags (16 bytes a chunk) for the blob digests, which the caller checks.
 */
export function openRange(segments: Segment[], buffer: Buffer): Buffer[] {
  const done: Buffer[] = [];
  for (const [s, segment] of segments.entries()) {
    const { file, input, output, first, count } = segment;
    const key = Buffer.from(segment.key.buffer, segment.key.byteOffset, segment.key.byteLength);
    const tags = Buffer.alloc(16 * count); // its own memory, not the shared pool's: it is posted to another thread
    let offset = segment.offset;
    for (let k = 0; k < count; k++) {
      const index = first + k;
      try {
        const length = 28 + paddedLength(file.size, index, file.chunks);
        const sealed = readFully(input, buffer.subarray(0, length), offset, file);
        sealed.copy(tags, 16 * k, 12, 28);
        const plain = openChunk(key, file, index, sealed);
        writeFully(output, plain.subarray(0, Math.min(plain.length, file.size - index * CHUNK)), index * CHUNK);
        offset += length;
      } catch (err) {
        throw new RangeFailure(s, index, err, done);
      }
    }
    done.push(tags);
  }
  return done;
}

function readFully(fd: number, into: Buffer, position: number, file: ChunkFile): Buffer {
  for (let got = 0; got < into.length; ) {
    const n = readSync(fd, into, got, into.length - got, position + got);
    if (n === 0) throw tampered(file, 'has the wrong length'); // shortened since its length was checked
    got += n;
  }
  return into;
}

function writeFully(fd: number, data: Buffer, position: number): void {
  for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done, position + done);
}
