import { memoryAuditLog } from './audit-testing.js';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { simulationMeasurement, type Evidence } from '../attestation/index.js';
import { signedSimulation, testHost } from '../attestation/testing.js';
import { attest } from './attest.js';
import type { CasError } from './errors.js';
import { identityFromPem, type ClientIdentity } from './identity-of.js';
import { NonceStore } from './nonces.js';
import { writeSession, type CasContext } from './sessions.js';
import { loadMasterKey, openSqliteStore } from './store/index.js';
import { ephemeral } from './testing.js';

/** The nonce rules as attest() applies them, with the CAS's clock in the test's hand. */
const dir = mkdtempSync(join(tmpdir(), 'veil-nonce-rules-'));
const store = openSqliteStore({ dataDir: dir, masterKey: loadMasterKey({ dataDir: dir }) });
after(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});
let clock = Date.parse('2026-01-01T00:00:00Z');
const ctx: CasContext = { store, now: () => new Date(clock), audit: memoryAuditLog() };
const TTL = 60_000;
const program = simulationMeasurement(Buffer.from('runtime'), Buffer.from('python3'));
const owner = identityFromPem(ephemeral().certPem);
const host = testHost();
const services = `services:\n  - {name: api, mrenclaves: [${program}], platforms: [${host.id}], command: run}\n`;
await writeSession(ctx, `name: sim\n${services}security: {attestation: {mode: none}}\n`, owner);

const client = (): ClientIdentity => identityFromPem(ephemeral().certPem);
const evidence = (nonce: string, who: ClientIdentity, measurement = program): Evidence =>
  signedSimulation(host, measurement, { nonce: Buffer.from(nonce, 'hex'), spki: who.spki });
const attestWith = (nonces: NonceStore, who: ClientIdentity, nonce: string, ev = evidence(nonce, who)) =>
  attest(ctx, nonces, { config_id: 'sim/api', nonce, evidence: ev }, who);
const refused = (pattern: RegExp) => (e: CasError) => e.code === 'CAS_ATTESTATION_FAILED' && pattern.test(e.message);

describe('attestation nonces: expiry', () => {
  it('a nonce is good up to its expiry and refused one millisecond after', async () => {
    const store = new NonceStore(ctx.now, { ttlMs: TTL });
    const atEnd = store.issue('k').toString('hex');
    const late = store.issue('k').toString('hex');
    clock += TTL;
    assert.equal(store.consume(atEnd, 'k'), 'ok');
    clock += 1;
    assert.equal(store.consume(late, 'k'), 'expired');
  });

  it('attest refuses an expired nonce, saying so', async () => {
    const nonces = new NonceStore(ctx.now, { ttlMs: TTL });
    const rt = client();
    const nonce = nonces.issue(rt.keyHash).toString('hex');
    clock += TTL + 1;
    await assert.rejects(attestWith(nonces, rt, nonce), refused(/nonce has expired/));
  });

  it('the CAS issues nonces that expire (no TTL left out)', async () => {
    const nonces = new NonceStore(ctx.now);
    const rt = client();
    const nonce = nonces.issue(rt.keyHash).toString('hex');
    clock += 24 * 3600_000;
    await assert.rejects(attestWith(nonces, rt, nonce), refused(/nonce has expired/));
  });
});

describe('attestation nonces: a presented nonce is spent whatever the outcome', () => {
  it('a failed attempt from another key burns the nonce for its own key too', async () => {
    const store = new NonceStore(ctx.now, { ttlMs: TTL });
    const nonce = store.issue('victim').toString('hex');
    assert.equal(store.consume(nonce, 'thief'), 'unknown');
    assert.equal(store.consume(nonce, 'victim'), 'used');
  });

  it('attest: a nonce presented on another connection cannot be used afterwards', async () => {
    const nonces = new NonceStore(ctx.now, { ttlMs: TTL });
    const [rt, thief] = [client(), client()];
    const nonce = nonces.issue(rt.keyHash).toString('hex');
    await assert.rejects(attestWith(nonces, thief, nonce), refused(/nonce is unknown/));
    await assert.rejects(attestWith(nonces, rt, nonce), refused(/already used/));
  });

  it('attest: evidence that fails burns the nonce, so the attempt cannot be retried with it', async () => {
    const nonces = new NonceStore(ctx.now, { ttlMs: TTL });
    const rt = client();
    const nonce = nonces.issue(rt.keyHash).toString('hex');
    const wrong = evidence(nonce, rt, 'ab'.repeat(32));
    await assert.rejects(attestWith(nonces, rt, nonce, wrong), refused(/Unexpected enclave measurement/));
    await assert.rejects(attestWith(nonces, rt, nonce), refused(/already used/));
  });

  it('attest: a nonce is single use', async () => {
    const nonces = new NonceStore(ctx.now, { ttlMs: TTL });
    const rt = client();
    const nonce = nonces.issue(rt.keyHash).toString('hex');
    assert.equal((await attestWith(nonces, rt, nonce)).outcome.simulated, true);
    await assert.rejects(attestWith(nonces, rt, nonce), refused(/already used/));
  });

  it('a nonce altered or presented with another key is unknown, never "expired" or "used"', async () => {
    const store = new NonceStore(ctx.now, { ttlMs: TTL });
    const nonce = store.issue('k').toString('hex');
    assert.equal(store.consume(nonce, 'k'), 'ok');
    assert.equal(store.consume(nonce, 'other'), 'unknown');
    clock += TTL + 1;
    assert.equal(store.consume(nonce, 'other'), 'unknown');
    assert.equal(store.consume(Buffer.alloc(32).toString('hex'), 'k'), 'unknown');
  });
});
