import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Storage } from './contract-cases.js';
import type { StoreItem } from './index.js';

/** The renewal part of the Store contract (store.test.ts for SQLite, postgres.test.ts for PostgreSQL). */
export function renewalContract(label: string, storage: () => Promise<Storage>): void {
  describe(`${label} store contract: certificate renewals`, () => {
    const value = (text: string) => Buffer.from(text);

    it('agrees on one renewal when two replicas renew at once: the loser gets the winner', async () => {
      const key = randomBytes(32);
      const shared = await storage();
      const [a, b] = [await shared.open(key), await shared.open(key)];
      const [x, y] = await Promise.all([
        a.putRenewal('s', 'h1', 'cert', { generation: 1, value: value('from a') }),
        b.putRenewal('s', 'h1', 'cert', { generation: 1, value: value('from b') }),
      ]);
      assert.deepEqual(x, y);
      const agreed = (await a.renewals('s', 'h1')).get('cert');
      assert.deepEqual(agreed, x);
      assert.deepEqual((await b.renewals('s', 'h1')).get('cert'), x);
      // A replica that read an old state asks for a generation that exists: it is given the latest.
      await a.putRenewal('s', 'h1', 'cert', { generation: 2, value: value('second') });
      const stale = await b.putRenewal('s', 'h1', 'cert', { generation: 2, value: value('late') });
      assert.deepEqual(stale, { generation: 2, value: value('second') });
      const older = await b.putRenewal('s', 'h1', 'cert', { generation: 1, value: value('older') });
      assert.deepEqual(older, { generation: 2, value: value('second') });
      await Promise.all([a.close(), b.close()]);
    });

    it('keeps renewals per version and per secret, whatever their names hold', async () => {
      const store = await (await storage()).open(randomBytes(32));
      const odd = 'a","h1';
      await store.putRenewal('a', 'h1', 'c', { generation: 1, value: value('a h1 c') });
      await store.putRenewal('a', 'h1', 'c,d', { generation: 1, value: value('a h1 c,d') });
      await store.putRenewal(odd, 'h1', 'c', { generation: 1, value: value('odd') });
      await store.putRenewal('a', 'h10', 'c', { generation: 1, value: value('a h10') });
      const seen = (name: string, hash: string) =>
        store.renewals(name, hash).then((m) => Object.fromEntries([...m].map(([k, r]) => [k, r.value.toString()])));
      assert.deepEqual(await seen('a', 'h1'), { c: 'a h1 c', 'c,d': 'a h1 c,d' });
      assert.deepEqual(await seen('a', 'h10'), { c: 'a h10' });
      assert.deepEqual(await seen(odd, 'h1'), { c: 'odd' });
      assert.deepEqual(await seen('a', 'h2'), {});
      await store.close();
    });

    it('prunes generations older than the one before, and a dump and load keep the latest', async () => {
      const key = randomBytes(32);
      const source = await (await storage()).open(key);
      for (let generation = 1; generation <= 4; generation++) {
        await source.putRenewal('s', 'h', 'cert', { generation, value: value(`gen ${generation}`) });
      }
      const items: StoreItem[] = [];
      for await (const item of source.dump()) items.push(item);
      assert.equal(items.filter((i) => i.type === 'blob').length, 2);
      const target = await (await storage()).open(key);
      await target.load(
        (async function* () {
          yield* items;
        })(),
      );
      assert.deepEqual((await target.renewals('s', 'h')).get('cert'), { generation: 4, value: value('gen 4') });
      await Promise.all([source.close(), target.close()]);
    });
  });
}
