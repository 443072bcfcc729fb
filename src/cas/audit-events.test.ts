import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { simulationMeasurement, type Evidence } from '../attestation/index.js';
import { signedSimulation, testHost } from '../attestation/testing.js';
import { attest } from './attest.js';
import { failingAuditLog, memoryAuditLog } from './audit-testing.js';
import type { CasError } from './errors.js';
import { identityFromPem, type ClientIdentity } from './identity-of.js';
import { NonceStore } from './nonces.js';
import { readSession, writeSession, writeUpload, type CasContext } from './sessions.js';
import { tempStore } from './test-store.js';
import { ephemeral } from './testing.js';
import { publicValue, publicValues } from './values.js';

/** What the CAS records for each operation, and that it fails closed when the log cannot take an entry. */
const { ctx: base } = tempStore('veil-audit-events-');
const log = memoryAuditLog();
const ctx: CasContext = { ...base, audit: log };
const someone = (): ClientIdentity => identityFromPem(ephemeral().certPem);
const [alice, bob] = [someone(), someone()];
const program = simulationMeasurement(Buffer.from('runtime'), Buffer.from('python3'));
const host = testHost();
const nonces = new NonceStore(ctx.now);
const code = (want: string) => (e: CasError) => e.code === want;
const last = () => log.entries.at(-1)?.event;

const session = (name: string) =>
  [
    `name: ${name}`,
    'services:',
    `  - {name: api, mrenclaves: [${program}], platforms: [${host.id}], command: "run $$SCONE::pw$$",`,
    '     environment: {CERT: "$$SCONE::crt:crt$$"}}',
    'secrets:',
    '  - {name: pw, kind: ascii, size: 16}',
    '  - {name: unused, kind: ascii, size: 16}',
    '  - {name: key, kind: private-key}',
    '  - {name: crt, kind: x509, private_key: key, export_public: true}',
    'security: {attestation: {mode: none}}',
    '',
  ].join('\n');

function attestWith(c: CasContext, configId: string, measurement = program) {
  const rt = someone();
  const nonce = nonces.issue(rt.keyHash).toString('hex');
  const binding = { nonce: Buffer.from(nonce, 'hex'), spki: rt.spki };
  const evidence: Evidence = signedSimulation(host, measurement, binding);
  return attest(c, nonces, { config_id: configId, nonce, evidence }, rt);
}

describe('audit events of session operations', () => {
  it('a create and an update name their actor and the hashes before and after', async () => {
    const first = await writeSession(ctx, session('ev'), alice);
    assert.deepEqual(last(), {
      type: 'session.created',
      session: 'ev',
      actor: alice.keyHash,
      old_hash: null,
      new_hash: first.hash,
    });
    const second = await writeSession(ctx, `${session('ev')}predecessor: ${first.hash}\n`, alice);
    assert.deepEqual(last(), {
      type: 'session.updated',
      session: 'ev',
      actor: alice.keyHash,
      old_hash: first.hash,
      new_hash: second.hash,
    });
  });

  it("a write the session's policy refuses is recorded with its code; a malformed upload is not", async () => {
    const current = await readSession(ctx, 'ev', undefined, alice);
    const before = log.entries.length;
    await assert.rejects(
      writeSession(ctx, `${session('ev')}predecessor: ${current.hash}\n`, bob),
      code('CAS_FORBIDDEN'),
    );
    const refused = last();
    assert.equal(log.entries.length, before + 1);
    assert.equal(refused?.type, 'session.refused');
    assert.deepEqual(
      { ...refused, reason: undefined },
      {
        type: 'session.refused',
        session: 'ev',
        actor: bob.keyHash,
        code: 'CAS_FORBIDDEN',
        reason: undefined,
      },
    );
    await assert.rejects(writeSession(ctx, 'name: [broken\n', bob), code('CAS_POLICY_INVALID'));
    assert.equal(log.entries.length, before + 1);
  });

  it("an encrypted upload's refusal keeps its code only: no words of the text it came in", async () => {
    const current = await readSession(ctx, 'ev', undefined, alice);
    const text = `${session('ev')}predecessor: ${current.hash}\n`;
    await assert.rejects(writeUpload(ctx, { text, signatures: [], sealed: true }, bob), code('CAS_FORBIDDEN'));
    const refused = last();
    assert.equal(refused?.type === 'session.refused' && refused.reason, 'an encrypted upload refused (CAS_FORBIDDEN)');
  });

  it('a read and a public value read are recorded (actor null without a certificate)', async () => {
    const { hash } = await readSession(ctx, 'ev', undefined, alice);
    assert.deepEqual(last(), { type: 'session.read', session: 'ev', actor: alice.keyHash, hash });
    await publicValue(ctx, 'ev', 'crt', null);
    assert.deepEqual(last(), { type: 'value.read', session: 'ev', secret: 'crt', actor: null });
    await publicValues(ctx, 'ev', bob.keyHash);
    assert.deepEqual(last(), { type: 'value.read', session: 'ev', secret: 'crt', actor: bob.keyHash });
  });
});

describe('audit events of attestations', () => {
  it('a release names the evidence, measurement, platform and the secrets rendered, by name only', async () => {
    const { config } = await attestWith(ctx, 'ev/api');
    const { hash } = await readSession(ctx, 'ev', undefined, alice);
    const released = log.events('attestation.released').at(-1);
    assert.deepEqual(released, {
      type: 'attestation.released',
      config_id: 'ev/api',
      session: 'ev',
      service: 'api',
      session_hash: hash,
      evidence: 'simulation',
      simulated: true,
      measurement: program,
      platform: host.id,
      secrets: ['crt', 'pw'],
    });
    const password = config.command[1] as string;
    assert.match(password, /^.{16}$/);
    assert.ok(!JSON.stringify(log.entries).includes(password), 'no value in the log');
  });

  it('a refusal names the failed check by its attestation code and message', async () => {
    await assert.rejects(attestWith(ctx, 'ev/api', 'cd'.repeat(32)), code('CAS_ATTESTATION_FAILED'));
    const refused = log.events('attestation.refused').at(-1);
    assert.equal(refused?.code, 'ATTESTATION_MEASUREMENT');
    assert.equal(refused?.session, 'ev');
    assert.equal(refused?.evidence, 'simulation');
    assert.match(refused?.check ?? '', /Unexpected enclave measurement/);
  });
});

describe('fail closed: without a durable entry, no answer', () => {
  const broken: CasContext = { ...ctx, audit: failingAuditLog() };

  it('no configuration is released when the release cannot be recorded', async () => {
    await assert.rejects(attestWith(broken, 'ev/api'), (e: CasError) => {
      assert.equal(e.code, 'CAS_AUDIT_UNAVAILABLE');
      assert.equal(e.status, 503);
      assert.doesNotMatch(JSON.stringify(e.toJSON()), /BEGIN CERTIFICATE/);
      return true;
    });
  });

  it('no session is read, no public value shown, no write acknowledged', async () => {
    await assert.rejects(readSession(broken, 'ev', undefined, alice), code('CAS_AUDIT_UNAVAILABLE'));
    await assert.rejects(publicValue(broken, 'ev', 'crt'), code('CAS_AUDIT_UNAVAILABLE'));
    await assert.rejects(writeSession(broken, session('ev2'), alice), code('CAS_AUDIT_UNAVAILABLE'));
  });
});
