import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { atomicContract } from './atomic-cases.js';
import { auditContract } from './audit-cases.js';
import type { SessionRecord, Store, StoreError, StoreItem } from './index.js';

/**
 * The `Store` contract, one set of cases run over every backend (store.test.ts for SQLite, postgres.test.ts
 * for PostgreSQL). A storage is one empty database; open() may be called several times on it, as several CAS
 * replicas (or restarts) open one database.
 */
export interface Storage {
  open(masterKey: Buffer): Promise<Store>;
}

export function record(name: string, hash: string, predecessor: string | null = null): SessionRecord {
  return {
    name,
    hash,
    predecessor,
    text: `name: ${name}\n# SECRET-TEXT-${hash}\n`,
    creator: 'PEM',
    createdAt: 1,
    secrets: { pw: { kind: 'ascii', value: `SECRET-VALUE-${hash}` } },
  };
}

/** A record whose read index lets `readers` (key hashes, or 'any') read it: the policy's text names them. */
const readable = (name: string, hash: string, readers: string[]): SessionRecord => ({
  ...record(name, hash),
  text: `name: ${name}\nreaders: ${readers.join(',')}\n`,
});

/** The readers function the contract stores are opened with: from the record's `readers:` line. */
export function testReaders(r: SessionRecord): { any: boolean; keyHashes: string[] } {
  const line = /^readers: (.*)$/m.exec(r.text)?.[1] ?? '';
  const names = line.split(',').filter(Boolean);
  return { any: names.includes('any'), keyHashes: names.filter((n) => n !== 'any') };
}

const code = (c: string) => (e: StoreError) => e.code === c;

async function collect(items: AsyncIterable<StoreItem>): Promise<StoreItem[]> {
  const out: StoreItem[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function* replay(items: StoreItem[]): AsyncIterable<StoreItem> {
  yield* items;
}

export function storeContract(label: string, storage: () => Promise<Storage>): void {
  auditContract(label, storage);
  atomicContract(label, storage);
  describe(`${label} store contract`, () => {
    it('keeps every version and moves the head only from the expected hash', async () => {
      const store = await (await storage()).open(randomBytes(32));
      assert.deepEqual(await store.append(record('ns/a', 'h1'), null), { ok: true });
      assert.deepEqual(await store.append(record('ns/a', 'h2'), null), { ok: false, current: 'h1' });
      assert.deepEqual(await store.append(record('ns/a', 'h2', 'h1'), 'h0'), { ok: false, current: 'h1' });
      assert.deepEqual(await store.append(record('nobody', 'h2', 'h1'), 'h1'), { ok: false, current: null });
      assert.deepEqual(await store.append(record('ns/a', 'h2', 'h1'), 'h1'), { ok: true });
      assert.equal((await store.current('ns/a'))?.hash, 'h2');
      assert.deepEqual(await store.version('ns/a', 'h1'), record('ns/a', 'h1'));
      assert.deepEqual((await store.current('ns/a'))?.secrets, record('ns/a', 'h2').secrets);
      assert.deepEqual(
        (await store.list()).map((e) => [e.name, e.hash, e.createdAt]),
        [['ns/a', 'h2', 1]],
      );
      // Sessions, not versions: ns/a has two versions and counts once.
      assert.equal(await store.countSessions(), 1);
      assert.equal(await store.current('missing'), undefined);
      assert.equal(await store.version('ns/a', 'h9'), undefined);
      await store.ping();
      await store.close();
    });

    it('lets exactly one of two concurrent writers with the same predecessor win, through two handles', async () => {
      const s = await storage();
      const key = randomBytes(32);
      const [one, two] = [await s.open(key), await s.open(key)];
      await one.append(record('race', 'h0'), null);
      for (let round = 1; round <= 5; round++) {
        const prev = round === 1 ? 'h0' : (await one.current('race'))!.hash;
        const outcomes = await Promise.all([
          one.append(record('race', `a${round}`, prev), prev),
          two.append(record('race', `b${round}`, prev), prev),
        ]);
        const winners = outcomes.filter((o) => o.ok);
        assert.equal(winners.length, 1, JSON.stringify(outcomes));
        const head = (await two.current('race'))!.hash;
        assert.deepEqual(
          outcomes.find((o) => !o.ok),
          { ok: false, current: head },
        );
      }
      const creates = await Promise.all([one.append(record('new', 'x'), null), two.append(record('new', 'y'), null)]);
      assert.equal(creates.filter((o) => o.ok).length, 1);
      await Promise.all([one.close(), two.close()]);
    });

    it('refuses a write whose judged-by heads moved, naming the session, and writes nothing', async () => {
      const store = await (await storage()).open(randomBytes(32));
      await store.append(record('ns', 'p1'), null);
      const judged = new Map([
        ['ns', 'p1'],
        ['lib', null],
        ['ns/a', null],
      ]);
      await store.append(record('ns', 'p2', 'p1'), 'p1');
      assert.deepEqual(await store.append(record('ns/a', 'a1'), null, judged), {
        ok: false,
        current: null,
        moved: 'ns',
      });
      judged.set('ns', 'p2');
      await store.append(record('lib', 'l1'), null);
      assert.deepEqual(await store.append(record('ns/a', 'a1'), null, judged), {
        ok: false,
        current: null,
        moved: 'lib',
      });
      assert.equal(await store.current('ns/a'), undefined);
      assert.deepEqual(await store.append(record('ns/a', 'a1'), 'a0', judged), { ok: false, current: null });
      judged.set('lib', 'l1');
      assert.deepEqual(await store.append(record('ns/a', 'a1'), null, judged), { ok: true });
      await store.close();
    });

    it('lets only one of two writes, each judged by the other session, win through two handles', async (t) => {
      const s = await storage();
      const key = randomBytes(32);
      const [one, two] = [await s.open(key), await s.open(key)];
      let wins = 0;
      for (let round = 1; round <= 8; round++) {
        const [a, b] = [`a${round}`, `b${round}`];
        // Each write judged by the other's absence (a create meanwhile must conflict too): write skew otherwise.
        const outcomes = await Promise.all([
          one.append(record(a, 'x'), null, new Map([[b, null]])),
          two.append(record(b, 'y'), null, new Map([[a, null]])),
        ]);
        assert.equal(outcomes.filter((o) => o.ok).length, 1, JSON.stringify(outcomes));
        wins += outcomes.filter((o) => o.ok).length;
      }
      t.diagnostic(`rounds 8, writes kept ${wins}, write skews 0`);
      await Promise.all([one.close(), two.close()]);
    });

    it('lists what a key may read from the read index, which follows the head', async () => {
      const store = await (await storage()).open(randomBytes(32));
      await store.append(readable('pub', 'p1', ['any']), null);
      await store.append(readable('mine', 'm1', ['k1']), null);
      await store.append(readable('none', 'n1', []), null);
      const names = async (k: string | undefined) => (await store.listReadable(k)).map((e) => e.name);
      assert.deepEqual(await names(undefined), ['pub']);
      assert.deepEqual(await names('K1'), ['mine', 'pub']);
      assert.deepEqual(await names('k2'), ['pub']);
      await store.append({ ...readable('mine', 'm2', ['k2']), predecessor: 'm1' }, 'm1');
      assert.deepEqual(await names('k1'), ['pub']);
      assert.deepEqual(await names('k2'), ['mine', 'pub']);
      await store.close();
    });

    it('keeps the first blob put under a key, whoever puts the second', async () => {
      const s = await storage();
      const key = randomBytes(32);
      const [one, two] = [await s.open(key), await s.open(key)];
      const [a, b] = await Promise.all([
        one.putBlobIfAbsent('ca', Buffer.from('first')),
        two.putBlobIfAbsent('ca', Buffer.from('second')),
      ]);
      assert.deepEqual(a, b);
      assert.deepEqual(await one.putBlobIfAbsent('ca', Buffer.from('third')), a);
      assert.deepEqual(await two.getBlob('ca'), a);
      assert.equal(await one.getBlob('absent'), undefined);
      await Promise.all([one.close(), two.close()]);
    });

    it('answers a name with a NUL in it (which no database text holds) as absent, for every read', async () => {
      const store = await (await storage()).open(randomBytes(32));
      await store.append(record('a', 'a1'), null);
      assert.equal(await store.current('a\0b'), undefined);
      assert.equal(await store.version('a\0b', 'a1'), undefined);
      assert.equal(await store.version('a', 'a1\0'), undefined);
      assert.equal(await store.getBlob('k\0'), undefined);
      const judgedBy = new Map<string, string | null>([['x\0y', null]]);
      assert.deepEqual(await store.append(record('b', 'b1'), null, judgedBy), { ok: true });
      await store.close();
    });

    it('tells the heads of names, null for a missing one (and for a name no database text holds)', async () => {
      const store = await (await storage()).open(randomBytes(32));
      await store.append(record('a', 'a1'), null);
      await store.append(record('a', 'a2', 'a1'), 'a1');
      const heads = await store.heads(['a', 'missing', 'a\0b']);
      assert.deepEqual(
        [...heads],
        [
          ['a', 'a2'],
          ['missing', null],
          ['a\0b', null],
        ],
      );
      assert.deepEqual([...(await store.heads([]))], []);
      await store.close();
    });

    it('refuses a wrong master key at open', async () => {
      const s = await storage();
      const key = randomBytes(32);
      await (await s.open(key)).close();
      await assert.rejects(s.open(randomBytes(32)), code('STORE_MASTER_KEY'));
      await (await s.open(key)).close();
    });

    it('dumps a consistent snapshot while writers go on, and loads it elsewhere with hashes unchanged', async () => {
      const key = randomBytes(32);
      const source = await (await storage()).open(key);
      await source.append(record('a', 'a1'), null);
      await source.append(record('a', 'a2', 'a1'), 'a1');
      await source.append(readable('b', 'b1', ['any']), null);
      await source.putBlobIfAbsent('ca', Buffer.from('the CA'));
      const items: StoreItem[] = [];
      for await (const item of source.dump()) {
        if (items.length === 0) await source.append(record('late', 'l1'), null);
        items.push(item);
      }
      assert.deepEqual(
        items.map((i) =>
          i.type === 'version' ? `v ${i.record.hash}` : i.type === 'head' ? `h ${i.hash}` : `b ${'key' in i && i.key}`,
        ),
        ['v a1', 'v a2', 'v b1', 'h a2', 'h b1', 'b ca'],
      );
      const target = await (await storage()).open(key);
      assert.deepEqual(await target.load(replay(items)), { versions: 3, heads: 2, blobs: 1, audits: 0 });
      assert.deepEqual(await target.current('a'), record('a', 'a2', 'a1'));
      assert.deepEqual(await target.version('a', 'a1'), record('a', 'a1'));
      assert.deepEqual(
        (await target.listReadable(undefined)).map((e) => e.name),
        ['b'],
      );
      assert.deepEqual(await target.getBlob('ca'), Buffer.from('the CA'));
      await assert.rejects(target.load(replay(items)), code('STORE_NOT_EMPTY'));
      assert.equal((await collect(target.dump())).length, items.length);
      await Promise.all([source.close(), target.close()]);
    });

    it('loads all or nothing: a dump with a head but no version leaves the store empty', async () => {
      const store = await (await storage()).open(randomBytes(32));
      const broken: StoreItem[] = [
        { type: 'version', record: record('a', 'a1') },
        { type: 'head', name: 'b', hash: 'b1' },
      ];
      await assert.rejects(store.load(replay(broken)), code('STORE_CORRUPT'));
      assert.deepEqual(await store.list(), []);
      assert.equal(await store.countSessions(), 0);
      assert.equal(await store.version('a', 'a1'), undefined);
      async function* endsEarly(): AsyncIterable<StoreItem> {
        yield { type: 'version', record: record('x', 'x1') };
        yield { type: 'head', name: 'x', hash: 'x1' };
        throw new Error('the backup ended early');
      }
      await assert.rejects(store.load(endsEarly()), /ended early/);
      assert.deepEqual(await store.list(), []);
      await store.close();
    });

    it('loads only into an empty store: one blob is enough to refuse, and nothing is changed', async () => {
      const store = await (await storage()).open(randomBytes(32));
      await store.putBlobIfAbsent('k', Buffer.from('mine'));
      const items: StoreItem[] = [{ type: 'version', record: record('x', 'x1') }];
      await assert.rejects(store.load(replay(items)), code('STORE_NOT_EMPTY'));
      assert.equal(await store.version('x', 'x1'), undefined);
      assert.deepEqual(await store.getBlob('k'), Buffer.from('mine'));
      await store.close();
    });
  });
}
