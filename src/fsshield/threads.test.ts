import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { RangeFailure } from './range.js';
import { RangePool } from './range-pool.js';
import { threadsFor } from './decrypt.js';
import { CHUNK, type FileEntry } from './format.js';
import { META_FILE, type ShieldError, decryptTree, encryptTree } from './index.js';

const root = mkdtempSync(join(tmpdir(), 'veil-fspf-threads-'));
after(() => rmSync(root, { recursive: true, force: true }));
const src = join(root, 'src');
mkdirSync(join(src, 'lib'), { recursive: true });
const files: Record<string, Buffer> = { 'big.bin': randomBytes(3 * CHUNK + 17), 'lib/empty': Buffer.alloc(0) };
for (let i = 0; i < 6; i++) files[`lib/small${i}.txt`] = randomBytes(100 + i);
for (const [path, data] of Object.entries(files)) writeFileSync(join(src, path), data);
const enc = join(root, 'enc');
const shield = encryptTree(src, enc);
const THREADS = { from: 0, max: 2, mainThread: false };
let n = 0;
/** The threads of this process: worker threads are among them while they live. */
const tasks = () => readdirSync('/proc/self/task').length;

describe('file-system shield, worker threads', () => {
  it('decrypts a tree of large and small files with the threads, and leaves none running', async () => {
    await decryptTree(enc, join(root, `warm${n++}`), shield); // libuv's pool threads start once, and stay
    const before = tasks();
    const out = join(root, `out${n++}`);
    const result = await decryptTree(enc, out, shield, { threads: THREADS });
    assert.equal(result.threads, 2);
    for (const [path, data] of Object.entries(files)) assert.deepEqual(readFileSync(join(out, path)), data, path);
    assert.equal(tasks(), before, 'the worker threads are gone once decryptTree returns');
  });

  it('stops at a chunk a thread refuses, removes the output and leaves no thread running', async () => {
    await decryptTree(enc, join(root, `warm${n++}`), shield);
    const before = tasks();
    const copy = join(root, `copy${n++}`);
    cpSync(enc, copy, { recursive: true });
    const big = readdirSync(copy).find((b) => b !== META_FILE && readFileSync(join(copy, b)).length > CHUNK)!;
    const bytes = readFileSync(join(copy, big));
    bytes[2 * (28 + CHUNK) + 40] = bytes[2 * (28 + CHUNK) + 40]! ^ 1;
    writeFileSync(join(copy, big), bytes);
    const out = join(root, `out${n++}`);
    await assert.rejects(
      decryptTree(copy, out, shield, { threads: THREADS }),
      (e: ShieldError) => e.code === 'SHIELD_TAMPERED' && /'big\.bin' failed authentication in chunk 2/.test(e.message),
    );
    assert.deepEqual(
      readdirSync(out, { recursive: true }).filter((f) => /\./.test(String(f))),
      [],
    );
    assert.equal(tasks(), before, 'the worker threads are gone after a failure too');
  });

  it('refuses two chunks swapped, in a thread', async () => {
    const copy = join(root, `copy${n++}`);
    cpSync(enc, copy, { recursive: true });
    const big = readdirSync(copy).find((b) => b !== META_FILE && readFileSync(join(copy, b)).length > CHUNK)!;
    const bytes = readFileSync(join(copy, big));
    const sealed = 28 + CHUNK;
    const one = Buffer.from(bytes.subarray(sealed, 2 * sealed));
    bytes.copy(bytes, sealed, 2 * sealed, 3 * sealed);
    one.copy(bytes, 2 * sealed);
    writeFileSync(join(copy, big), bytes);
    await assert.rejects(
      decryptTree(copy, join(root, `out${n++}`), shield, { threads: THREADS }),
      (e: ShieldError) => e.code === 'SHIELD_TAMPERED' && /'big\.bin' has chunk 1 out of place/.test(e.message),
    );
  });

  it('refuses the range a thread holds when the threads are stopped, and one asked of a closed pool', async () => {
    const pool = new RangePool(1);
    while (!pool.hasRoom()) await pool.changed();
    const dir = join(root, `held${n++}`);
    mkdirSync(dir);
    const input = openSync(join(dir, 'in'), 'w+');
    const output = openSync(join(dir, 'out'), 'w');
    try {
      writeFileSync(input, Buffer.alloc(28 + CHUNK));
      // A range of many chunks of zeros: the thread is still at it (or has refused it) when it is stopped.
      const file = { path: 'x.bin', blob: 'ab'.repeat(16), chunks: 1, size: CHUNK };
      const segment = { file, key: randomBytes(32), input, output, first: 0, count: 1, offset: 0 };
      const held = pool.run(Array.from({ length: 64 }, () => segment));
      const closing = pool.close();
      await assert.rejects(held, (e: Error) =>
        e instanceof RangeFailure
          ? (e.cause as ShieldError).code === 'SHIELD_TAMPERED'
          : (e as ShieldError).code === 'SHIELD_WORKER',
      );
      await closing;
      await assert.rejects(pool.run([segment]), (e: ShieldError) => e.code === 'SHIELD_WORKER');
    } finally {
      closeSync(input);
      closeSync(output);
    }
  });

  it('goes on alone when no thread can be had, or refuses when it may not, leaving no thread and no descriptor', async () => {
    const none = () => {
      throw Object.assign(new Error('EAGAIN'), { code: 'ERR_WORKER_INIT_FAILED' }); // as under a pids limit
    };
    const fds = () => readdirSync('/proc/self/fd').length;
    await decryptTree(enc, join(root, `warm${n++}`), shield);
    const [threadsBefore, fdsBefore] = [tasks(), fds()];
    const out = join(root, `out${n++}`);
    const result = await decryptTree(enc, out, shield, { threads: { from: 0, max: 2, spawn: none } });
    assert.equal(result.threads, 2, 'asked for, though none could be had');
    for (const [path, data] of Object.entries(files)) assert.deepEqual(readFileSync(join(out, path)), data, path);
    await assert.rejects(
      decryptTree(enc, join(root, `out${n++}`), shield, {
        threads: { from: 0, max: 2, mainThread: false, spawn: none },
      }),
      (e: ShieldError) => e.code === 'SHIELD_WORKER' && /no decryption thread is left/.test(e.message),
    );
    assert.deepEqual([tasks(), fds()], [threadsBefore, fdsBefore]);
  });

  it('lets a thread finish starting before it is stopped: no descriptor of its modules is left open', async () => {
    const modules = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).endsWith('.js');
        } catch {
          return false;
        }
      }).length;
    const before = modules();
    for (let i = 0; i < 20; i++) {
      const pool = new RangePool(3);
      while (!pool.hasRoom()) await pool.changed(); // one thread is ready, the others may still be loading
      await pool.close();
    }
    assert.equal(modules(), before);
  });

  it('decrypts a tree large enough to end in ranges of one chunk, on the threads alone', async () => {
    const big = join(root, `big-src${n++}`);
    mkdirSync(big);
    const data = randomBytes(70 * CHUNK + 5);
    writeFileSync(join(big, 'large.bin'), data);
    writeFileSync(join(big, 'z.txt'), 'last');
    const bigEnc = join(root, `big-enc${n++}`);
    const bigShield = encryptTree(big, bigEnc);
    const out = join(root, `out${n++}`);
    await decryptTree(bigEnc, out, bigShield, { threads: THREADS });
    assert.ok(readFileSync(join(out, 'large.bin')).equals(data));
    assert.equal(readFileSync(join(out, 'z.txt'), 'utf8'), 'last');
  });

  it('uses threads only from the threshold on, never more than the chunks', () => {
    const entry = (size: number, chunks: number): FileEntry => ({
      path: 'f',
      blob: '00',
      size,
      mode: 0o644,
      chunks,
      digest: '',
    });
    assert.equal(threadsFor([entry(CHUNK, 1)], { from: 2 * CHUNK, max: 4 }), 0);
    assert.equal(threadsFor([entry(3 * CHUNK, 3)], { from: 2 * CHUNK, max: 4 }), 3);
    assert.equal(threadsFor([entry(3 * CHUNK, 3)], { from: 0, max: 2 }), 2);
  });
});
