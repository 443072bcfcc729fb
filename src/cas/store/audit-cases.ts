import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { chainEntries, EMPTY_HEAD } from '../../audit/chain.js';
import { sampleEvent, testAuthority } from '../../audit/testkit.js';
import type { AuditEntry, AuditHead } from '../../audit/types.js';
import type { Storage } from './contract-cases.js';
import type { Store, StoreError, StoreItem } from './index.js';

/** The audit chain's part of the Store contract, run over both backends (called from storeContract). */
const signer = testAuthority().signer;
const maker =
  (n: number, from = 0) =>
  (head: AuditHead) =>
    chainEntries(
      head,
      Array.from({ length: n }, (_, i) => sampleEvent(from + i)),
      new Date(),
      signer,
    );

async function all(store: Store): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  for (let page = await store.readAudit(0, 7); page.length > 0; page = await store.readAudit(out.at(-1)!.seq, 7)) {
    out.push(...page);
  }
  return out;
}

/** seq 1..n without a gap, each prev the hash before it. */
function assertOneChain(entries: AuditEntry[], n: number): void {
  assert.equal(entries.length, n);
  entries.forEach((e, i) => {
    assert.equal(e.seq, i + 1);
    assert.equal(e.prev, i === 0 ? EMPTY_HEAD.hash : entries[i - 1]!.hash, `seq ${e.seq}`);
  });
}

export function auditContract(label: string, storage: () => Promise<Storage>): void {
  describe(`${label} store contract: the audit chain`, () => {
    it('appends after the tail it shows `make`, reads in pages, and tells the head', async () => {
      const store = await (await storage()).open(randomBytes(32));
      assert.deepEqual(await store.auditHead(), EMPTY_HEAD);
      assert.deepEqual(await store.readAudit(0, 10), []);
      const first = await store.appendAudit(maker(3));
      const seen: AuditHead[] = [];
      await store.appendAudit((head) => {
        seen.push(head);
        return maker(20, 3)(head);
      });
      assert.deepEqual(seen, [{ seq: 3, hash: first[2]!.hash }]);
      const entries = await all(store);
      assertOneChain(entries, 23);
      assert.deepEqual(entries.slice(0, 3), first);
      assert.deepEqual(await store.auditHead(), { seq: 23, hash: entries[22]!.hash });
      assert.equal((await store.readAudit(20, 100)).length, 3);
      assert.equal((await store.readAudit(0, 0)).length, 0);
      await store.close();
    });

    it('writes nothing when `make` throws or returns entries that do not continue the tail', async () => {
      const store = await (await storage()).open(randomBytes(32));
      await store.appendAudit(maker(2));
      await assert.rejects(
        store.appendAudit(() => {
          throw new Error('no signature');
        }),
        /no signature/,
      );
      const stale = (_: AuditHead) => maker(2)(EMPTY_HEAD);
      await assert.rejects(store.appendAudit(stale), (e: StoreError) => /does not continue/.test(e.message));
      assert.equal((await store.auditHead()).seq, 2);
      await store.close();
    });

    it('keeps ONE chain when two handles (two replicas) append at once', async (t) => {
      const s = await storage();
      const key = randomBytes(32);
      const [one, two] = [await s.open(key), await s.open(key)];
      const rounds = 25;
      await Promise.all(
        [one, two].flatMap((store, k) =>
          Array.from({ length: rounds }, (_, i) => store.appendAudit(maker(2, 100 * k + i))),
        ),
      );
      const entries = await all(one);
      assertOneChain(entries, 4 * rounds);
      t.diagnostic(`appends ${2 * rounds}, entries ${entries.length}, forks 0`);
      await Promise.all([one.close(), two.close()]);
    });

    it('dumps the chain after the blobs and loads it elsewhere unchanged; audit rows alone make a store non-empty', async () => {
      const key = randomBytes(32);
      const source = await (await storage()).open(key);
      await source.putBlobIfAbsent('ca', Buffer.from('the CA'));
      await source.appendAudit(maker(5));
      const items: StoreItem[] = [];
      for await (const item of source.dump()) items.push(item);
      assert.deepEqual(
        items.map((i) => i.type),
        ['blob', 'audit', 'audit', 'audit', 'audit', 'audit'],
      );
      const target = await (await storage()).open(key);
      const replay = async function* () {
        yield* items;
      };
      assert.deepEqual(await target.load(replay()), { versions: 0, heads: 0, blobs: 1, audits: 5 });
      assert.deepEqual(await all(target), await all(source));
      assert.deepEqual(await target.auditHead(), await source.auditHead());
      const onlyAudit = await (await storage()).open(key);
      await onlyAudit.appendAudit(maker(1));
      await assert.rejects(onlyAudit.load(replay()), (e: StoreError) => e.code === 'STORE_NOT_EMPTY');
      await Promise.all([source.close(), target.close(), onlyAudit.close()]);
    });

    it('refuses a dump whose audit entries do not form one chain, loading nothing', async () => {
      const store = await (await storage()).open(randomBytes(32));
      const entries = maker(3)(EMPTY_HEAD);
      const broken = async function* (): AsyncIterable<StoreItem> {
        yield { type: 'audit', entry: entries[0]! };
        yield { type: 'audit', entry: entries[2]! };
      };
      await assert.rejects(store.load(broken()), (e: StoreError) => /does not continue/.test(e.message));
      assert.deepEqual(await store.auditHead(), EMPTY_HEAD);
      await store.close();
    });
  });
}
