import { memoryAuditLog } from './audit-testing.js';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  hardwareReportData,
  simulationMeasurement,
  type Evidence,
  type EvidenceVerifier,
} from '../attestation/index.js';
import { signedSimulation, testHost, verifiedTdx } from '../attestation/testing.js';
import type { TdxClaims } from '../attestation/types.js';
import { attest, type AttestationContext } from './attest.js';
import type { CasError } from './errors.js';
import { loadIdentity } from './identity.js';
import { identityFromPem, type ClientIdentity } from './identity-of.js';
import { NonceStore } from './nonces.js';
import { buildApp } from './server.js';
import { writeSession, type CasContext } from './sessions.js';
import { loadMasterKey, openSqliteStore } from './store/index.js';
import { ephemeral } from './testing.js';

/**
 * attest()'s rules, each with a case that passes only while the rule holds. Hardware verification itself is
 * the verifier's (tested with real quotes elsewhere); here a verifier stand-in returns chosen claims, so that
 * what the CAS does with a verified result is what is judged.
 */
const dir = mkdtempSync(join(tmpdir(), 'veil-attest-rules-'));
const store = openSqliteStore({ dataDir: dir, masterKey: loadMasterKey({ dataDir: dir }) });
after(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});
const MRTD = 'a1'.repeat(48);
const program = simulationMeasurement(Buffer.from('runtime'), Buffer.from('python3'));
const host = testHost();
let reported: ((nonce: Buffer, spki: Buffer) => Buffer) | undefined;
let lastBinding: { nonce: Buffer; spki: Buffer } | undefined;
const claims = { mrtd: MRTD, rtmr: ['00', '00', '00', '00'], debug: false } as unknown as TdxClaims;
const verifier: EvidenceVerifier = {
  verify: async () => {
    const { nonce, spki } = lastBinding!;
    return verifiedTdx(claims, (reported ?? hardwareReportData)(nonce, spki));
  },
};
const ctx: CasContext & AttestationContext = { store, now: () => new Date(), audit: memoryAuditLog(), verifier };
const owner = identityFromPem(ephemeral().certPem);
const platformsOf = (name: string) => (name.startsWith('sim') ? `, platforms: [${host.id}]` : '');
const session = (name: string, identity: string, security: string) =>
  writeSession(
    ctx,
    // Hardware evidence refuses a service that lists platforms (they would be ignored): simulation ones only.
    `name: ${name}\nservices:\n  - {name: api, command: run${platformsOf(name)}${identity}}\n${security}\n`,
    owner,
  );
await session('sim', `, mrenclaves: [${program}]`, 'security: {attestation: {mode: none}}');
await session('sim-none', '', 'security: {attestation: {mode: none}}');
const tdxIdentity = `, mrenclaves: [${program}], attestation: {tdx: {mrtd: ${MRTD}}}`;
await session('hw', tdxIdentity, 'security: {attestation: {mode: hardware}}');
await session('hw-default', tdxIdentity, '');
await session(
  'hw-debug',
  `, mrenclaves: [${program}]`,
  'security: {attestation: {tolerate: [debug-mode, outdated-tcb]}}',
);
await session('hw-none', '', '');

const nonces = new NonceStore(ctx.now);
const client = (): ClientIdentity => identityFromPem(ephemeral().certPem);
const simulation = (nonce: string, spki: Buffer, measurement = program): Evidence =>
  signedSimulation(host, measurement, { nonce: Buffer.from(nonce, 'hex'), spki });
const tdxEvidence: Evidence = { type: 'tdx', quote: Buffer.from('a quote').toString('base64') };

async function attestAs(configId: string, make: (nonce: string, rt: ClientIdentity) => Evidence, rt = client()) {
  const nonce = nonces.issue(rt.keyHash).toString('hex');
  lastBinding = { nonce: Buffer.from(nonce, 'hex'), spki: rt.spki };
  return attest(ctx, nonces, { config_id: configId, nonce, evidence: make(nonce, rt) }, rt);
}
const refused = (pattern: RegExp) => (e: CasError) => {
  assert.equal(e.code, 'CAS_ATTESTATION_FAILED', e.message);
  assert.match(e.message, pattern);
  return true;
};

describe('attest: simulation evidence', () => {
  it('is accepted only by a session that turns hardware attestation off', async () => {
    assert.equal((await attestAs('sim/api', (n, rt) => simulation(n, rt.spki))).outcome.simulated, true);
    for (const id of ['hw/api', 'hw-default/api', 'hw-debug/api']) {
      const refusal = refused(/does not accept simulation evidence/);
      await assert.rejects(
        attestAs(id, (n, rt) => simulation(n, rt.spki)),
        refusal,
        id,
      );
    }
  });

  it('must bind this nonce and this connection key', async () => {
    const other = client();
    await assert.rejects(
      attestAs('sim/api', (n) => simulation(n, other.spki)),
      refused(/not bound to this nonce/),
    );
    const otherNonce = (_n: string, rt: ClientIdentity) => simulation('ab'.repeat(32), rt.spki);
    await assert.rejects(attestAs('sim/api', otherNonce), refused(/not bound to this nonce/));
  });

  it('a service that lists no measurement accepts none', async () => {
    const refusal = refused(/Unexpected enclave measurement.*\(none listed\)/);
    await assert.rejects(
      attestAs('sim-none/api', (n, rt) => simulation(n, rt.spki)),
      refusal,
    );
  });

  it('a measurement the service does not list is refused', async () => {
    const unlisted = (n: string, rt: ClientIdentity) => simulation(n, rt.spki, 'cd'.repeat(32));
    await assert.rejects(attestAs('sim/api', unlisted), refused(/Unexpected enclave measurement/));
  });
});

describe('attest: hardware evidence', () => {
  it('is accepted when it binds this nonce and key and matches the identity', async () => {
    reported = undefined;
    const { outcome } = await attestAs('hw/api', () => tdxEvidence);
    assert.deepEqual(outcome, { evidence: 'tdx', simulated: false, tcb_status: 'UpToDate', tolerated: [] });
    assert.equal((await attestAs('hw-default/api', () => tdxEvidence)).outcome.simulated, false);
  });

  it('is refused when its report data binds another nonce or key', async () => {
    const other = client();
    reported = (nonce) => hardwareReportData(nonce, other.spki);
    const refusal = refused(/does not bind this nonce and this connection key/);
    await assert.rejects(
      attestAs('hw/api', () => tdxEvidence),
      refusal,
    );
    reported = (_nonce, spki) => hardwareReportData(Buffer.alloc(32, 7), spki);
    await assert.rejects(
      attestAs('hw/api', () => tdxEvidence),
      refused(/does not bind this nonce/),
    );
    reported = () => Buffer.alloc(32);
    await assert.rejects(
      attestAs('hw/api', () => tdxEvidence),
      refused(/does not bind this nonce/),
    );
    reported = undefined;
  });

  it('a service that lists no identity accepts none', async () => {
    await assert.rejects(
      attestAs('hw-none/api', () => tdxEvidence),
      refused(/lists no measurement/),
    );
  });

  it('is refused by a CAS started without hardware verifiers', async () => {
    const rt = client();
    const nonce = nonces.issue(rt.keyHash).toString('hex');
    const bare = { store, now: ctx.now, audit: ctx.audit };
    const request = { config_id: 'hw/api', nonce, evidence: tdxEvidence };
    await assert.rejects(attest(bare, nonces, request, rt), refused(/without hardware verifiers/));
  });
});

describe('CAS routes: a TLS client certificate is required', async () => {
  const identity = await loadIdentity(store, ['127.0.0.1'], new Date());
  const app = buildApp(ctx, identity, { logLevel: 'silent' });
  after(() => app.close());

  it('refuses to write, read or attest without one, and answers 401 (never a 5xx)', async () => {
    const calls = [
      { method: 'POST' as const, url: '/v1/sessions', payload: 'name: anon\n' },
      { method: 'POST' as const, url: '/session', payload: 'name: anon\n' },
      { method: 'GET' as const, url: '/v1/sessions/sim' },
      { method: 'POST' as const, url: '/v1/attest/nonce', payload: '' },
      { method: 'POST' as const, url: '/v1/attest', payload: '{}' },
    ];
    for (const call of calls) {
      const res = await app.inject(call);
      assert.equal(res.statusCode, 401, `${call.method} ${call.url}: ${res.body}`);
      assert.equal(res.json().error.code, 'CAS_UNAUTHENTICATED', call.url);
    }
    assert.equal(await store.current('anon'), undefined);
  });
});
