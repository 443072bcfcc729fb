import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadIdentity } from './identity.js';
import { buildApp } from './server.js';
import { checkReady, givenMasterKey, openStore } from './store-choice.js';
import { StoreError, type Store } from './store/index.js';
import { tempStore } from './test-store.js';

const { dir, store, ctx } = tempStore('veil-store-choice-');
const unavailable = () =>
  new StoreError('STORE_UNAVAILABLE', 'cannot read in PostgreSQL at postgres://veil@db.internal:5432/cas: down');

/** The store with every read failing as a database that does not answer. */
const downStore: Store = new Proxy(store, {
  get(target, prop, receiver) {
    if (prop === 'current' || prop === 'ping' || prop === 'list' || prop === 'listReadable')
      return async () => {
        throw unavailable();
      };
    return Reflect.get(target, prop, receiver);
  },
});

describe('the store a CAS serves from', () => {
  it('on PostgreSQL, needs the master key given, and generates none', async () => {
    const dataDir = join(dir, 'fresh');
    assert.throws(
      () => givenMasterKey({ dataDir }),
      (e: StoreError) => e.code === 'STORE_MASTER_KEY' && /--master-key-file or VEIL_MASTER_KEY/.test(e.hint ?? ''),
    );
    await assert.rejects(
      openStore({ dataDir, store: 'postgres://veil@127.0.0.1:1/cas' }),
      (e: StoreError) => e.code === 'STORE_MASTER_KEY',
    );
    assert.ok(!existsSync(join(dataDir, 'master.key')));
  });

  it('is ready when its ping answers, and CAS_STORE_UNAVAILABLE when it throws or does not answer', async () => {
    assert.deepEqual(await checkReady(store), { ready: true });
    await assert.rejects(checkReady(downStore), { code: 'CAS_STORE_UNAVAILABLE', status: 503 });
    const silent = { ...store, ping: () => new Promise<void>(() => undefined) } as Store;
    await assert.rejects(checkReady(silent), { code: 'CAS_STORE_UNAVAILABLE' });
  });
});

describe('a store that does not answer', async () => {
  const identity = await loadIdentity(store, ['127.0.0.1'], new Date());
  const app = buildApp({ ...ctx, store: downStore }, identity, { logLevel: 'silent' });
  after(() => app.close());

  it("answers 503 CAS_STORE_UNAVAILABLE, without the database's address", async () => {
    for (const url of ['/v1/health/ready', '/v1/values/session=x', '/v1/sessions']) {
      const res = await app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 503, `${url}: ${res.body}`);
      assert.equal(res.json().error.code, 'CAS_STORE_UNAVAILABLE');
      assert.ok(!res.body.includes('db.internal'), res.body);
    }
  });
});
