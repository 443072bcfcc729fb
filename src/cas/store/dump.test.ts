import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadMasterKey, openSqliteStore, type SessionRecord, type Store, type StoreItem } from './index.js';

const root = mkdtempSync(join(tmpdir(), 'veil-dump-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function open(): Store {
  const dataDir = join(root, `d${n++}`);
  return openSqliteStore({ dataDir, masterKey: loadMasterKey({ dataDir }) });
}

function record(name: string, hash: string, predecessor: string | null = null): SessionRecord {
  const text = `name: ${name}\naccess_policy: {read: [ANY]}\n`;
  return {
    name,
    hash,
    predecessor,
    text,
    creator: 'PEM',
    createdAt: n,
    secrets: { v: { kind: 'ascii', value: hash } },
  };
}

async function collect(items: AsyncIterable<StoreItem>): Promise<StoreItem[]> {
  const out: StoreItem[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function* replay(items: StoreItem[]): AsyncIterable<StoreItem> {
  yield* items;
}

describe('store dump and load', () => {
  it('moves every version, head and blob; the loaded store answers as the dumped one', async () => {
    const from = open();
    await from.append(record('a', 'h1'), null);
    await from.append(record('a', 'h2', 'h1'), 'h1');
    await from.append(record('b', 'h3'), null);
    await from.putBlobIfAbsent('identity/x', Buffer.from('blob'));
    const items = await collect(from.dump());
    assert.deepEqual(
      items.map((i) => i.type),
      ['version', 'version', 'version', 'head', 'head', 'blob'],
    );
    const to = open();
    assert.deepEqual(await to.load(replay(items)), { versions: 3, heads: 2, blobs: 1 });
    assert.equal((await to.current('a'))?.hash, 'h2');
    assert.deepEqual((await to.version('a', 'h1'))?.secrets, { v: { kind: 'ascii', value: 'h1' } });
    assert.equal((await to.getBlob('identity/x'))?.toString(), 'blob');
    assert.deepEqual(await to.listReadable(undefined), await from.listReadable(undefined), 'read index rebuilt');
  });

  it('is a snapshot: writes after the dump began are not in it, and do not wait for it', async () => {
    const store = open();
    await store.append(record('s', 'h1'), null);
    const dump = store.dump()[Symbol.asyncIterator]();
    const first = await dump.next();
    await store.append(record('late', 'h9'), null);
    const rest: StoreItem[] = [];
    for (let next = await dump.next(); !next.done; next = await dump.next()) rest.push(next.value);
    const names = [first.value, ...rest].flatMap((i: StoreItem) => (i.type === 'head' ? [i.name] : []));
    assert.deepEqual(names, ['s']);
  });

  it('refuses to load into a store that holds anything, and changes nothing there', async () => {
    const to = open();
    await to.putBlobIfAbsent('k', Buffer.from('mine'));
    await assert.rejects(to.load(replay([{ type: 'version', record: record('x', 'h1') }])), {
      code: 'STORE_NOT_EMPTY',
    });
    assert.equal(await to.current('x'), undefined);
    assert.equal((await to.getBlob('k'))?.toString(), 'mine');
  });

  it('loads all or nothing: a failing dump leaves the store empty', async () => {
    const to = open();
    async function* broken(): AsyncIterable<StoreItem> {
      yield { type: 'version', record: record('x', 'h1') };
      yield { type: 'head', name: 'x', hash: 'h1' };
      throw new Error('the backup ended early');
    }
    await assert.rejects(to.load(broken()), /ended early/);
    assert.equal(await to.current('x'), undefined);
    assert.deepEqual(await to.list(), []);
  });

  it('refuses a head without its version', async () => {
    const to = open();
    await assert.rejects(to.load(replay([{ type: 'head', name: 'x', hash: 'h1' }])), { code: 'STORE_CORRUPT' });
    assert.deepEqual(await to.list(), []);
  });
});

describe('putBlobIfAbsent', () => {
  it('keeps the first value and returns it to every later caller', async () => {
    const store = open();
    assert.equal((await store.putBlobIfAbsent('k', Buffer.from('first'))).toString(), 'first');
    assert.equal((await store.putBlobIfAbsent('k', Buffer.from('second'))).toString(), 'first');
    assert.equal((await store.getBlob('k'))?.toString(), 'first');
  });
});
