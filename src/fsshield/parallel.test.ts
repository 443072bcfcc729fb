import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CHUNK } from './format.js';
import { META_FILE, type ShieldError, type Threads, decryptTree, encryptTree } from './index.js';

// Reads run ahead of verification (a prefetch in libuv's pool) and writes behind it (the write queue): these
// tamper with chunks while others are in flight, and check that nothing is left and nothing rejects unhandled.

const root = mkdtempSync(join(tmpdir(), 'veil-fspf-par-'));
after(() => rmSync(root, { recursive: true, force: true }));
const src = join(root, 'src');
mkdirSync(src);
const CHUNKS = 7;
writeFileSync(join(src, 'a-big.bin'), randomBytes(CHUNKS * CHUNK - 1000));
writeFileSync(join(src, 'z-after.txt'), 'written after the big file\n');
const enc = join(root, 'enc');
const shield = encryptTree(src, enc);
const SEALED = 28 + CHUNK;
let n = 0;
// Every test runs twice: on the main thread alone, and with every chunk left to worker threads (from: 0 takes
// them on any tree; mainThread: false keeps this thread from deciphering while they start).
const MODES: Array<{ name: string; threads: Threads }> = [
  { name: 'main thread', threads: { from: Number.POSITIVE_INFINITY } },
  { name: 'worker threads', threads: { from: 0, max: 2, mainThread: false } },
];

function tamper(edit: (bytes: Buffer) => void): string {
  const copy = join(root, `copy${n++}`);
  cpSync(enc, copy, { recursive: true });
  const big = readdirSync(copy).find((b) => b !== META_FILE && readFileSync(join(copy, b)).length > CHUNK)!;
  const bytes = readFileSync(join(copy, big));
  edit(bytes);
  writeFileSync(join(copy, big), bytes);
  return copy;
}

async function refusedClean(dir: string, pattern: RegExp, threads: Threads): Promise<void> {
  const unhandled: unknown[] = [];
  const record = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', record);
  try {
    const out = join(root, `out${n++}`);
    await assert.rejects(
      decryptTree(dir, out, shield, { threads }),
      (e: ShieldError) => e.code === 'SHIELD_TAMPERED' && pattern.test(e.message),
    );
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(unhandled, [], 'reads still in flight when a chunk failed reject nowhere');
    if (existsSync(out)) assert.deepEqual(readdirSync(out), [], 'the partial output is removed');
  } finally {
    process.off('unhandledRejection', record);
  }
}

for (const { name, threads } of MODES)
  describe(`file-system shield, chunks verified in parallel (${name})`, () => {
    it('round-trips a file of several chunks followed by another file', async () => {
      const out = join(root, `plain${n++}`);
      await decryptTree(enc, out, shield, { threads });
      assert.deepEqual(readFileSync(join(out, 'a-big.bin')), readFileSync(join(src, 'a-big.bin')));
      assert.equal(readFileSync(join(out, 'z-after.txt'), 'utf8'), 'written after the big file\n');
    });

    it('refuses a flipped byte in the first chunk while later ones are in flight, and writes nothing after it', async () => {
      await refusedClean(
        tamper((b) => {
          b[100] = b[100]! ^ 1;
        }),
        /'a-big\.bin' failed authentication in chunk 0/,
        threads,
      );
    });

    it('refuses a chunk verified late, naming it', async () => {
      const late = 5;
      await refusedClean(
        tamper((b) => {
          b[late * SEALED + 500] = b[late * SEALED + 500]! ^ 1;
        }),
        new RegExp(`failed authentication in chunk ${late}`),
        threads,
      );
    });

    it('reports the earliest failing chunk when several fail, without unhandled rejections', async () => {
      await refusedClean(
        tamper((b) => {
          // chunk 1 is out of place, chunk 2 fails its tag: the first failure is the one reported
          b[SEALED + 3] = b[SEALED + 3]! ^ 1;
          b[2 * SEALED + 900] = b[2 * SEALED + 900]! ^ 1;
        }),
        /'a-big\.bin' has chunk 1 out of place/,
        threads,
      );
    });

    it('reports a tampered small file before a shortened one after it, though both share a range', async () => {
      const dir = join(root, `small${n++}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'a.txt'), 'first\n');
      writeFileSync(join(dir, 'b.txt'), 'second\n');
      const smallEnc = join(root, `small-enc${n++}`);
      const smallShield = encryptTree(dir, smallEnc);
      const blobs = readdirSync(smallEnc).filter((f) => f !== META_FILE);
      // Which blob is which: the one that decrypts as a.txt once b.txt's is cut short is found by trying.
      for (const [flip, cut] of [blobs, [...blobs].reverse()] as Array<[string, string]>) {
        const copy = join(root, `small-copy${n++}`);
        cpSync(smallEnc, copy, { recursive: true });
        const a = readFileSync(join(copy, flip));
        a[40] = a[40]! ^ 1;
        writeFileSync(join(copy, flip), a);
        writeFileSync(join(copy, cut), readFileSync(join(copy, cut)).subarray(0, 100));
        const out = join(root, `out${n++}`);
        const err = await decryptTree(copy, out, smallShield, { threads }).then(
          () => assert.fail('a tampered tree decrypted'),
          (e: ShieldError) => e,
        );
        assert.equal(err.code, 'SHIELD_TAMPERED');
        // a.txt comes first: whichever of its faults it has is the one reported
        assert.match(err.message, /^'a\.txt' /, err.message);
      }
    });

    it('refuses two neighbouring chunks swapped', async () => {
      await refusedClean(
        tamper((b) => {
          const one = Buffer.from(b.subarray(SEALED, 2 * SEALED));
          b.copy(b, SEALED, 2 * SEALED, 3 * SEALED);
          one.copy(b, 2 * SEALED);
        }),
        /'a-big\.bin' has chunk 1 out of place/,
        threads,
      );
    });
  });
