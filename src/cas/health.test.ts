import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import Fastify from 'fastify';
import { aliveAnswerSchema, casErrorBodySchema, readyzAnswerSchema } from '../contract/index.js';
import { openAuditLog } from './audit-log.js';
import { registerHealth } from './health.js';
import { loadIdentity } from './identity.js';
import { buildApp } from './server.js';
import type { Store } from './store/index.js';
import { tempStore } from './test-store.js';
import { zodValidatorCompiler } from './wire.js';

const { store, ctx } = tempStore('veil-health-');
const silent = { ...store, ping: () => new Promise<void>(() => undefined) } as Store;

describe('health endpoints', async () => {
  const identity = await loadIdentity(store, ['127.0.0.1'], new Date());
  const up = buildApp(ctx, identity, { logLevel: 'silent' });
  const down = buildApp({ ...ctx, store: silent }, identity, { logLevel: 'silent' });
  after(async () => {
    await up.close();
    await down.close();
  });

  it('answers /healthz, /readyz and /v1/health/ready in the contract, without a client certificate', async () => {
    const alive = await up.inject({ method: 'GET', url: '/healthz' });
    assert.equal(alive.statusCode, 200);
    assert.deepEqual(aliveAnswerSchema.parse(alive.json()), { alive: true });
    for (const url of ['/readyz', '/v1/health/ready']) {
      const ready = await up.inject({ method: 'GET', url });
      assert.equal(ready.statusCode, 200, url);
      assert.deepEqual(readyzAnswerSchema.parse(ready.json()), { ready: true });
    }
  });

  it('names the worker that answered under veil cas serve --workers N, in the contract', async () => {
    const second = buildApp(ctx, identity, { logLevel: 'silent', worker: 2 });
    try {
      const alive = await second.inject({ method: 'GET', url: '/healthz' });
      assert.deepEqual(aliveAnswerSchema.parse(alive.json()), { alive: true, worker: 2 });
    } finally {
      await second.close();
    }
  });

  it('stays alive but not ready while the store does not answer within the deadline', async () => {
    assert.equal((await down.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    const ready = await down.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 503);
    assert.equal(casErrorBodySchema.parse(ready.json()).error.code, 'CAS_STORE_UNAVAILABLE');
  });

  it('is not ready while the keys are not loaded', async () => {
    const app = Fastify({ logger: false });
    app.setValidatorCompiler(zodValidatorCompiler);
    app.setErrorHandler((err: { code?: string }, _req, reply) => reply.code(503).send({ code: err.code }));
    registerHealth(app, store, () => false);
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 503);
    assert.equal(ready.json().code, 'CAS_NOT_READY');
    assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    await app.close();
  });

  it('refuses a query it does not read', async () => {
    const res = await up.inject({ method: 'GET', url: '/readyz?verbose=1' });
    assert.equal(res.statusCode, 400);
  });
});

describe('readiness and the audit log', async () => {
  const { store: real, ctx: base } = tempStore('veil-health-audit-');
  await openAuditLog(real, () => new Date());
  let failing = true;
  // The store's methods live on its prototype: a proxy fails its audit appends only.
  const flaky = new Proxy(real, {
    get(target, prop, receiver) {
      if (prop === 'appendAudit' && failing) return () => Promise.reject(new Error('disk full'));
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const audit = await openAuditLog(flaky, () => new Date());
  const identity = await loadIdentity(real, ['127.0.0.1'], new Date());
  const app = buildApp({ ...base, audit }, identity, { logLevel: 'silent' });
  after(async () => {
    await app.close();
    await audit.close();
  });

  it('is not ready after a failed audit commit, and ready again once one succeeds', async () => {
    assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
    await assert.rejects(audit.record({ type: 'key.created', key: 'master', fingerprint: 'ab'.repeat(32) }));
    const down = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(down.statusCode, 503);
    assert.equal(casErrorBodySchema.parse(down.json()).error.code, 'CAS_AUDIT_UNAVAILABLE');
    assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    failing = false;
    await audit.record({ type: 'key.created', key: 'master', fingerprint: 'ab'.repeat(32) });
    assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
  });
});
