import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { openSqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/index.js';
import { type BackupError, type BackupErrorCode, decryptBackup, encryptBackup } from './index.js';
import { HEADER_BYTES } from './format.js';
import {
  bytesOf,
  type Chunk,
  collect,
  filledStore,
  flipped,
  layout,
  once,
  recordBytes,
  sealedAround,
  TAG,
  tempRoot,
  withChunks,
} from './test-backup.js';

const root = tempRoot('veil-backup-tamper-');
const key = randomBytes(32);
let store: Store;
let good: Buffer;
let chunks: Chunk[];

before(async () => {
  store = await filledStore(root.dir(), key, 12);
  good = await bytesOf(encryptBackup(store.dump(), key, { chunkBytes: 1024 }));
  chunks = layout(good);
  assert.ok(chunks.length >= 5, `${chunks.length} chunks`);
});
after(async () => {
  await store.close();
  root.cleanup();
});

/** Read to the end, as restore's verification does: refused with one of `codes`, a message and a hint. */
async function refused(bytes: Buffer, codes: BackupErrorCode[], what: string, withKey = key): Promise<string> {
  let code = '';
  await assert.rejects(
    () => collect(decryptBackup(once(bytes), withKey)),
    (e: BackupError) => {
      code = e.code;
      return codes.includes(e.code) && e.message.length > 0 && (e.hint ?? '').length > 0;
    },
    what,
  );
  return code;
}

async function refusal(bytes: Buffer): Promise<string> {
  try {
    await collect(decryptBackup(once(bytes), key));
  } catch (err) {
    return (err as Error).message;
  }
  return 'accepted';
}

describe('a backup is refused when', () => {
  it('any byte of its header is flipped (magic and version: FORMAT; key id: MASTER_KEY; else TAMPERED)', async () => {
    const seen = new Map<number, string>();
    for (let at = 0; at < HEADER_BYTES; at++) {
      seen.set(
        at,
        await refused(flipped(good, at), ['BACKUP_FORMAT', 'BACKUP_MASTER_KEY', 'BACKUP_TAMPERED'], `${at}`),
      );
    }
    assert.equal(seen.get(0), 'BACKUP_FORMAT');
    assert.equal(seen.get(9), 'BACKUP_FORMAT');
    assert.equal(seen.get(20), 'BACKUP_TAMPERED', 'created at: in every AAD through the header hash');
    assert.equal(seen.get(30), 'BACKUP_TAMPERED', 'salt: another chunk key');
    assert.equal(seen.get(60), 'BACKUP_MASTER_KEY');
  });

  it('a byte of a chunk is flipped: frame, body or tag, of the first, a middle or the last chunk', async () => {
    for (const chunk of [chunks[0]!, chunks[2]!, chunks.at(-1)!]) {
      const places = { frame: chunk.start + 3, body: chunk.start + 50, tag: chunk.end - 1 };
      const finalBit = Buffer.from(good);
      finalBit[chunk.start] = finalBit[chunk.start]! ^ 0x80;
      await refused(finalBit, ['BACKUP_TAMPERED'], `final bit of ${chunk.start}`);
      for (const [what, at] of Object.entries(places)) {
        await refused(flipped(good, at), ['BACKUP_TAMPERED', 'BACKUP_TRUNCATED'], `${what} of ${chunk.start}`);
      }
      await refused(flipped(good, chunk.start + 20), ['BACKUP_TAMPERED'], 'body');
      const longer = Buffer.from(good);
      longer[chunk.start + 1] = 0xff;
      assert.match(await refusal(longer), /declares \d+ bytes/, 'a frame longer than a chunk is refused unread');
      await refused(flipped(good, chunk.end - TAG), ['BACKUP_TAMPERED'], 'tag');
    }
  });

  it('it is truncated: in the header, a frame, a chunk, at a chunk boundary, one byte short', async () => {
    const cuts = [1, 8, 40, HEADER_BYTES, HEADER_BYTES + 2, chunks[1]!.start + 100, chunks[3]!.start];
    cuts.push(chunks.at(-1)!.start, chunks.at(-1)!.start + 7, good.length - 1);
    for (const cut of cuts) await refused(good.subarray(0, cut), ['BACKUP_TRUNCATED'], `cut at ${cut}`);
    await refused(Buffer.alloc(0), ['BACKUP_FORMAT'], 'empty');
    const cutAndMarked = Buffer.from(good.subarray(0, chunks[3]!.start));
    cutAndMarked[chunks[2]!.start] = cutAndMarked[chunks[2]!.start]! | 0x80;
    await refused(cutAndMarked, ['BACKUP_TAMPERED'], 'cut after a chunk marked final');
  });

  it('a chunk is dropped, duplicated, or two are swapped', async () => {
    const without = (i: number) => chunks.filter((_, j) => j !== i);
    await refused(withChunks(good, without(0)), ['BACKUP_TAMPERED'], 'first dropped');
    await refused(withChunks(good, without(2)), ['BACKUP_TAMPERED'], 'middle dropped');
    await refused(withChunks(good, without(chunks.length - 1)), ['BACKUP_TRUNCATED'], 'final dropped');
    const dup = [...chunks.slice(0, 3), chunks[2]!, ...chunks.slice(3)];
    await refused(withChunks(good, dup), ['BACKUP_TAMPERED'], 'duplicated');
    const swapped = [chunks[0]!, chunks[2]!, chunks[1]!, ...chunks.slice(3)];
    await refused(withChunks(good, swapped), ['BACKUP_TAMPERED'], 'swapped');
    const finalEarly = [chunks[0]!, chunks.at(-1)!];
    await refused(withChunks(good, finalEarly), ['BACKUP_TAMPERED'], 'the final chunk moved up');
  });

  it('bytes, or a whole chunk, follow its final chunk', async () => {
    await refused(Buffer.concat([good, Buffer.from([0])]), ['BACKUP_TRAILING_DATA'], 'one byte');
    const again = good.subarray(chunks.at(-1)!.start);
    await refused(Buffer.concat([good, again]), ['BACKUP_TRAILING_DATA'], 'the final chunk twice');
  });

  it('it was made under another master key, or a chunk comes from another backup under the same key', async () => {
    await refused(good, ['BACKUP_MASTER_KEY'], 'other key', randomBytes(32));
    const other = await bytesOf(encryptBackup(store.dump(), key, { chunkBytes: 1024 }));
    const spliced = Buffer.concat([good.subarray(0, chunks[1]!.start), other.subarray(layout(other)[1]!.start)]);
    await refused(spliced, ['BACKUP_TAMPERED'], 'spliced');
  });

  it('it authenticates but its trailer disagrees with its records, or records are malformed', async () => {
    const head = recordBytes({ type: 'head', name: 'a', hash: 'h' });
    const end = (over: object) =>
      recordBytes({ type: 'end', versions: 0, heads: 1, blobs: 0, sha256: '0'.repeat(64), ...over });
    const cases: Array<[string, Buffer[]]> = [
      ['wrong digest', [Buffer.concat([head, end({})])]],
      ['no trailer', [head]],
      ['record after trailer', [Buffer.concat([end({ heads: 0 }), head])]],
      ['unknown field', [recordBytes({ type: 'head', name: 'a', hash: 'h', extra: 1 })]],
      ['not JSON', [Buffer.from([0, 0, 0, 2, 123, 123])]],
      ['over-long record', [Buffer.from([0x7f, 0xff, 0xff, 0xff])]],
    ];
    for (const [what, plains] of cases) await refused(sealedAround(key, plains), ['BACKUP_INVALID'], what);
    const overLong = await refusal(sealedAround(key, [Buffer.from([0x7f, 0xff, 0xff, 0xff])]));
    assert.match(overLong, /declares \d+ bytes, over/, 'a record over the limit is refused before it is read');
  });
});

describe('a refused backup loads nothing', () => {
  it('into an empty store, wherever the fault is (the load rolls back on the first one)', async () => {
    const dataDir = root.dir();
    const faults = [
      flipped(good, chunks.at(-1)!.start + 30),
      good.subarray(0, chunks[3]!.start),
      Buffer.concat([good, Buffer.from('x')]),
      withChunks(good, [chunks[0]!, chunks[2]!, chunks[1]!, ...chunks.slice(3)]),
    ];
    for (const bytes of faults) {
      const target = openSqliteStore({ dataDir, masterKey: key });
      await assert.rejects(() => target.load(decryptBackup(once(bytes), key)), /CAS database/);
      assert.deepEqual(await collect(target.dump()), []);
      await target.close();
    }
    const target = openSqliteStore({ dataDir, masterKey: key });
    assert.deepEqual(await target.load(decryptBackup(once(good), key)), {
      versions: 24,
      heads: 12,
      blobs: 2,
      audits: 0,
    });
    await target.close();
  });
});
