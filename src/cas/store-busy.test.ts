import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openAuditLog } from './audit-log.js';
import { identityFromPem } from './identity-of.js';
import { loadIdentity } from './identity.js';
import { buildApp } from './server.js';
import { writeSession } from './sessions.js';
import { StoreError, type Store } from './store/index.js';
import { tempStore } from './test-store.js';
import { ephemeral } from './testing.js';

/** A CAS whose SQLite store stayed locked by another process past its wait (STORE_BUSY), method by method. */
const { dir, store, ctx } = tempStore('veil-store-busy-');
const locked = new Set<string>();
const busyStore: Store = new Proxy(store, {
  get(target, prop, receiver) {
    if (typeof prop === 'string' && locked.has(prop))
      return async () => {
        throw new StoreError('STORE_BUSY', `the CAS database in ${dir} stayed locked by another writer for 5000 ms`);
      };
    return Reflect.get(target, prop, receiver);
  },
});

const session = [
  'name: pub',
  'secrets:',
  '  - {name: key, kind: private-key}',
  '  - {name: crt, kind: x509, private_key: key, export_public: true}',
  '',
].join('\n');

describe('a store locked past its wait', async () => {
  const identity = await loadIdentity(store, ['127.0.0.1'], new Date());
  const audit = await openAuditLog(busyStore, ctx.now);
  const busyCtx = { ...ctx, store: busyStore, audit };
  const app = buildApp(busyCtx, identity, { logLevel: 'silent' });
  before(async () => void (await writeSession(ctx, session, identityFromPem(ephemeral().certPem))));
  after(async () => {
    locked.clear();
    await app.close();
    await audit.close();
  });

  const expectRetry = async (url: string) => {
    const res = await app.inject({ method: 'GET', url });
    assert.equal(res.statusCode, 503, res.body);
    assert.equal(res.headers['retry-after'], '1');
    assert.equal(res.json().error.code, 'CAS_STORE_UNAVAILABLE');
    assert.match(res.json().error.message, /locked by another of its writers/);
    assert.match(res.json().error.hint, /retry after 1 s \(Retry-After\) — an attestation with a new nonce/);
    assert.ok(!res.body.includes(dir), res.body);
  };

  it('answers 503 with Retry-After when a read finds it locked', async () => {
    locked.add('current');
    await expectRetry('/v1/values/session=pub');
    locked.clear();
    assert.equal((await app.inject({ method: 'GET', url: '/v1/values/session=pub' })).statusCode, 200);
  });

  it('answers 503 with Retry-After, not CAS_AUDIT_UNAVAILABLE, when the audit entry meets the lock', async () => {
    locked.clear();
    locked.add('appendAudit');
    await expectRetry('/v1/values/session=pub');
  });

  it('gives a write the store error as it is, which the routes answer alike', async () => {
    locked.clear();
    locked.add('append');
    await assert.rejects(
      writeSession(busyCtx, session.replace('pub', 'pub2'), identityFromPem(ephemeral().certPem)),
      (e: StoreError) => e instanceof StoreError && e.code === 'STORE_BUSY',
    );
  });
});
