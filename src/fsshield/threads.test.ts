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
import { Worker } from 'node:worker_threads';
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

  it('stops a thread only once it has started, even when closed at once', async () => {
    const marker = join(root, `started${n++}`);
    const slow = () =>
      new Worker(
        `setTimeout(() => {
           require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'started');
           require('node:worker_threads').parentPort.postMessage('ready');
         }, 200);`,
        { eval: true },
      );
    await new RangePool(1, slow).close();
    assert.equal(readFileSync(marker, 'utf8'), 'started', 'the thread finished its start before it was stopped');
  });

  it('stops waiting for a thread that never starts, and closes without it', { timeout: 10_000 }, async () => {
    const before = tasks();
    const stuck = () => new Worker('setInterval(() => {}, 1000)', { eval: true });
    const pool = new RangePool(1, stuck, 200);
    while (pool.alive()) await pool.changed();
    assert.equal(pool.hasRoom(), false);
    await pool.close();
    for (let i = 0; i < 50 && tasks() !== before; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(tasks(), before, 'the stuck thread was stopped');
  });

  it("keeps a thread's read or write error code (ENOSPC), and any other failure is SHIELD_WORKER", async () => {
    const replying = (code: string) => () =>
      new Worker(
        `const { parentPort } = require('node:worker_threads');
         parentPort.postMessage('ready');
         parentPort.on('message', (job) => parentPort.postMessage({
           id: job.id, done: [], error: { segment: 0, index: 0, code: ${JSON.stringify(code)}, message: 'boom' } }));`,
        { eval: true },
      );
    const segment = { file: { path: 'x', blob: 'ab', chunks: 1, size: 1 }, key: new Uint8Array(32) };
    const job = [{ ...segment, input: -1, output: -1, first: 0, count: 1, offset: 0 }];
    for (const [code, expected] of [
      ['ENOSPC', 'ENOSPC'],
      ['ERR_WORKER_OUT_OF_MEMORY', 'SHIELD_WORKER'],
      ['SHIELD_TAMPERED', 'SHIELD_TAMPERED'],
    ]) {
      const pool = new RangePool(1, replying(code!));
      while (!pool.hasRoom()) await pool.changed();
      await assert.rejects(pool.run(job), (e: RangeFailure) => (e.cause as { code?: string }).code === expected);
      await pool.close();
    }
  });

  it('starts no range once one has failed, though the thread had room again', async () => {
    const dir = join(root, `many${n++}`);
    mkdirSync(dir);
    for (let i = 0; i < 16; i++) writeFileSync(join(dir, `f${String(i).padStart(2, '0')}.txt`), `file ${i}\n`);
    const manyEnc = join(root, `many-enc${n++}`);
    const manyShield = encryptTree(dir, manyEnc); // 4 ranges of 4 small files
    let sent = 0;
    const failing = () => {
      const worker = new Worker(
        `const { parentPort } = require('node:worker_threads');
         parentPort.postMessage('ready');
         parentPort.on('message', (job) => setTimeout(() => parentPort.postMessage({
           id: job.id, done: [], error: { segment: 0, index: 0, code: 'SHIELD_TAMPERED', message: 'refused' } }), 50));`,
        { eval: true },
      );
      const post = worker.postMessage.bind(worker);
      worker.postMessage = (message: unknown) => {
        sent++;
        post(message);
      };
      return worker;
    };
    await assert.rejects(
      decryptTree(manyEnc, join(root, `out${n++}`), manyShield, {
        threads: { from: 0, max: 1, mainThread: false, spawn: failing },
      }),
      (e: ShieldError) => e.code === 'SHIELD_TAMPERED',
    );
    assert.equal(sent, 2, 'the two ranges the thread held, and none after the first failed');
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
