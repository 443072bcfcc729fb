import { createHash } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { type Stats, closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tampered } from './chunk.js';
import { ShieldError } from './errors.js';
import { CHUNK, fileKey, paddedLength, type FileEntry } from './format.js';
import { RangeFailure, openRange, type Segment } from './range.js';
import { RangePool, threadsGone } from './range-pool.js';

/** Chunks in one range: large enough that a message per range costs nothing, small enough to share a file. */
export const RANGE_CHUNKS = 4;

/** The chunks at the end of a tree handed out one per range (see `ranges`). */
const TAIL_CHUNKS = 16;

interface OpenFile {
  input: number;
  output?: number;
  key: Buffer;
  /** Each chunk's tag, in order, filled as ranges finish: the blob digest is checked once all are in. */
  tags: Buffer;
  left: number;
}

/** A failure, and where in tree order it stands: file, then chunk (the digest after the last chunk). */
interface Failure {
  file: number;
  index: number;
  err: unknown;
}

/**
 * Decrypts `files` in ranges of chunks (read, verify, decrypt, write), on this thread and on `threads`
 * worker threads, each on its own core; this thread opens the files, hands out the ranges in tree order, and
 * — unless `mainThread` is false — runs a range itself whenever no thread has room (always, with no
 * threads; while they start, too), yielding to the event loop between ranges. A file's blob digest is
 * checked once all its ranges are done. On failure no further range starts, every range in flight settles,
 * and the failure first in tree order is thrown, however the work was shared. No thread and no descriptor
 * is left behind, whatever happens.
 */
export async function decryptRanges(
  shield: string,
  out: string,
  volumeKey: Buffer,
  files: FileEntry[],
  threads: number,
  mainThread = true,
  spawn?: () => Worker,
): Promise<void> {
  const pool = threads > 0 ? new RangePool(threads, spawn) : undefined; // never throws: a thread it cannot have is dead
  const here = mainThread || !pool ? Buffer.allocUnsafeSlow(28 + CHUNK) : undefined;
  const open = new Map<number, OpenFile>();
  const failures: Failure[] = [];
  const inFlight = new Set<Promise<void>>();
  const made = new Set<string>(); // the tree's directories checked or made under `out`

  const finish = (index: number, file: OpenFile): void => {
    open.delete(index);
    closeSync(file.input);
    if (file.output !== undefined) closeSync(file.output);
    const digest = createHash('sha256').update(file.tags).digest('hex');
    if (digest !== files[index]!.digest)
      failures.push({
        file: index,
        index: Infinity,
        err: tampered(files[index]!, 'is not the version the metadata names'),
      });
  };
  /** The tags of a range's first segments: a file they complete has its digest checked now. */
  const apply = (range: Range, tags: Buffer[]): void => {
    tags.forEach((t, s) => {
      const segment = range.segments[s]!;
      const file = open.get(segment.fileIndex)!;
      t.copy(file.tags, 16 * segment.first);
      file.left -= segment.count;
      if (file.left === 0) finish(segment.fileIndex, file);
    });
  };
  /**
   * Records what a range did: its tags, or where it failed — after the segments done before the failure,
   * whose files may fail first in tree order (a thread's loss counts at the range's first chunk).
   */
  const settle = (range: Range, result: { tags: Buffer[] } | { err: unknown }): void => {
    if (!('err' in result)) {
      apply(range, result.tags);
      return;
    }
    const at = result.err instanceof RangeFailure ? result.err : undefined;
    if (at) apply(range, at.done);
    const segment = range.segments[at?.segment ?? 0]!;
    failures.push({ file: segment.fileIndex, index: at?.index ?? segment.first, err: at?.cause ?? result.err });
  };

  try {
    for (const whole of ranges(files, RANGE_CHUNKS)) {
      if (failures.length > 0) break;
      // A file that cannot be opened ends the work there; the files before it in this range are still done,
      // so that a failure of theirs, which comes first in tree order, is the one reported.
      let refused: Failure | undefined;
      const range: Range = { segments: [] };
      for (const segment of whole.segments) {
        try {
          openFor(shield, out, volumeKey, files, open, segment, made);
        } catch (err) {
          refused = { file: segment.fileIndex, index: -1, err };
          break;
        }
        range.segments.push(segment);
      }
      if (range.segments.length > 0) {
        while (pool?.alive() && here === undefined && !pool.hasRoom()) await pool.changed();
        if (failures.length > 0) break; // one arrived while waiting: nothing starts after it
        if (pool?.hasRoom()) {
          const done: Promise<void> = pool
            .run(range.segments)
            .then(
              (tags) => settle(range, { tags }),
              (err) => settle(range, { err }),
            )
            .finally(() => inFlight.delete(done));
          inFlight.add(done);
        } else if (here) {
          try {
            settle(range, { tags: openRange(range.segments, here) });
          } catch (err) {
            settle(range, { err });
          }
          await new Promise((resolve) => setImmediate(resolve)); // the threads' messages: ready, ranges done
        } else {
          // mainThread: false, and every thread is gone: nobody is left to do the work
          const first = range.segments[0]!;
          failures.push({ file: first.fileIndex, index: first.first, err: threadsGone() });
          break;
        }
      }
      if (refused) failures.push(refused);
    }
    await Promise.all(inFlight);
  } finally {
    await Promise.allSettled(inFlight); // no descriptor closes under a thread still using it
    await pool?.close();
    for (const file of open.values()) {
      closeSync(file.input);
      if (file.output !== undefined) closeSync(file.output);
    }
  }
  if (failures.length > 0) {
    const first = failures.reduce((a, b) => (b.file < a.file || (b.file === a.file && b.index < a.index) ? b : a));
    throw first.err;
  }
}

interface Range {
  segments: Array<Segment & { fileIndex: number }>;
}

/**
 * The ranges of `files` in tree order: up to `size` chunks each, a large file split, consecutive small
 * files taken together (so a tree of many small files costs a message per few files, not per file).
 * Descriptors are filled in when a range is handed out.
 */
function* ranges(files: FileEntry[], largest: number): Generator<Range> {
  let segments: Range['segments'] = [];
  let chunks = 0;
  let left = files.reduce((sum, f) => sum + f.chunks, 0);
  const tail = left >= 4 * TAIL_CHUNKS ? TAIL_CHUNKS : 0; // a small tree has no long wait at its end
  let size = largest;
  for (let fileIndex = 0; fileIndex < files.length; fileIndex++) {
    const entry = files[fileIndex]!;
    let offset = 0;
    for (let first = 0; first < entry.chunks; ) {
      // The last chunks go one by one: no thread is still at a long range when the others have nothing left.
      if (chunks === 0) size = left <= tail ? 1 : largest;
      const count = Math.min(size - chunks, entry.chunks - first);
      left -= count;
      const file = { path: entry.path, blob: entry.blob, chunks: entry.chunks, size: entry.size };
      segments.push({ file, key: new Uint8Array(0), input: -1, output: -1, first, count, offset, fileIndex });
      for (let i = first; i < first + count; i++) offset += 28 + paddedLength(entry.size, i, entry.chunks);
      first += count;
      chunks += count;
      if (chunks === size) {
        yield { segments };
        segments = [];
        chunks = 0;
      }
    }
  }
  if (segments.length > 0) yield { segments };
}

/** Opens a segment's file the first time one of its ranges is handed out: input checked, output created. */
function openFor(
  shield: string,
  out: string,
  volumeKey: Buffer,
  files: FileEntry[],
  open: Map<number, OpenFile>,
  segment: Segment & { fileIndex: number },
  made: Set<string>,
): void {
  let file = open.get(segment.fileIndex);
  if (!file) {
    const entry = files[segment.fileIndex]!;
    const input = openSync(join(shield, `${entry.blob}.enc`), 'r');
    let size = 0;
    for (let i = 0; i < entry.chunks; i++) size += 28 + paddedLength(entry.size, i, entry.chunks);
    if (fstatSync(input).size !== size) {
      closeSync(input);
      throw tampered(entry, 'has the wrong length');
    }
    file = { input, key: fileKey(volumeKey, entry.blob), tags: Buffer.alloc(16 * entry.chunks), left: entry.chunks };
    open.set(segment.fileIndex, file);
    const target = join(out, entry.path);
    makeInside(out, dirname(entry.path), made);
    // Not through a link planted where a file goes (a memory volume shared with the host, in a container),
    // and not blocked by a FIFO planted there (O_NONBLOCK: ENXIO without a reader; no effect on files).
    file.output = openSync(
      target,
      constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW | constants.O_NONBLOCK,
      entry.mode & 0o777,
    );
  }
  segment.input = file.input;
  segment.output = file.output!;
  segment.key = file.key;
}

/**
 * Makes `dir` (a directory of the tree, relative) under `out` one component at a time, refusing any that is
 * already there as a link or a file: mkdir -p would follow a link planted there and make the tree's
 * directories, then write its files, wherever it leads. `made` holds the ones checked so far.
 */
function makeInside(out: string, dir: string, made: Set<string>): void {
  let at = '.';
  for (const part of dir === '.' ? [] : dir.split('/')) {
    at = at === '.' ? part : `${at}/${part}`;
    if (made.has(at)) continue;
    const path = join(out, at);
    let st: Stats | undefined;
    try {
      st = lstatSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (!st) mkdirSync(path, { mode: 0o700 });
    else if (!st.isDirectory()) throw outputRefused(out, at);
    made.add(at);
  }
}

/**
 * `dir` (a directory of the tree, relative) is where it seems under `out`: no component is a link planted
 * there (in a container the output is a memory volume that outlives the container and may be shared), so
 * nothing decrypted lands, and nothing is removed, outside `out`.
 */
export function insideOut(out: string, dir: string, real = realpathSync(out)): void {
  if (dir === '.' || realpathSync(join(out, dir)) === join(real, dir)) return;
  throw outputRefused(out, dir);
}

function outputRefused(out: string, dir: string): ShieldError {
  return new ShieldError(
    'SHIELD_OUTPUT',
    `'${dir}' in ${out} is a link (or under one) or not a directory: nothing is decrypted through it`,
    {
      hint: 'decrypt into a fresh memory file system (veil run mounts one); remove what was planted there',
    },
  );
}
