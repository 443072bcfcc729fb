import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import Fastify from 'fastify';
import { aliveAnswerSchema, casErrorBodySchema, readyzAnswerSchema } from '../contract/index.js';
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
