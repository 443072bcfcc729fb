import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { simulationMeasurement, type Evidence } from '../attestation/index.js';
import { signedSimulation, testHost } from '../attestation/testing.js';
import { attest } from './attest.js';
import { REFUSAL_LIMITS } from './audit-events.js';
import { failingAuditLog, memoryAuditLog } from './audit-testing.js';
import type { CasError } from './errors.js';
import { NonceStore } from './nonces.js';
import { exportSecret } from './remote-export.js';
import { writeSession, type CasContext } from './sessions.js';
import { clientIdentity, tempStore } from './test-store.js';

/** Which refusals become entries, naming whom, how many per client key; exports to other CAS recorded. */
const { ctx: base } = tempStore('veil-audit-refusals-');
let clock = Date.now();
const log = memoryAuditLog();
const ctx: CasContext = { ...base, audit: log, now: () => new Date(clock) };
const program = simulationMeasurement(Buffer.from('runtime'), Buffer.from('python3'));
const host = testHost();
const nonces = new NonceStore(() => new Date(), { perClient: 1_000, max: 10_000 });
const owner = clientIdentity('owner');
const F = 'f1'.repeat(32);
const H = '3c'.repeat(32);
const code = (want: string) => (e: CasError) => e.code === want;

const victim = [
  'name: victim',
  `services: [{name: api, mrenclaves: [${program}], platforms: [${host.id}], command: run}]`,
  'security: {attestation: {mode: none}}',
  '',
].join('\n');

/** One runtime key attesting `n` times; `bad` picks what is wrong with the evidence. */
async function attestMany(n: number, configId: string, bad: 'nonce' | 'binding' | 'measurement') {
  const rt = clientIdentity('runtime');
  for (let i = 0; i < n; i++) {
    const nonce = nonces.issue(rt.keyHash).toString('hex');
    const bound = bad === 'binding' ? Buffer.alloc(32, 7) : Buffer.from(nonce, 'hex');
    const measurement = bad === 'measurement' ? 'cd'.repeat(32) : program;
    const evidence: Evidence = signedSimulation(host, measurement, { nonce: bound, spki: rt.spki });
    const sent = bad === 'nonce' ? 'ab'.repeat(32) : nonce;
    await assert.rejects(attest(ctx, nonces, { config_id: configId, nonce: sent, evidence }, rt));
  }
}

describe('attestation refusals as entries', async () => {
  await writeSession(ctx, victim, owner);
  const refused = () => log.events('attestation.refused');

  it('records no bad nonce, no unbound evidence and no unknown session or service', async () => {
    await attestMany(50, 'victim/api', 'nonce');
    await attestMany(5, 'victim/api', 'binding');
    await attestMany(5, 'victim/nothing', 'measurement');
    await attestMany(5, `victim/${'x'.repeat(8)}/api`, 'measurement');
    t_count('bad nonce, unbound, unknown', refused().length);
    assert.equal(refused().length, 0);
  });

  it('records at most REFUSAL_LIMITS.burst refusals of one key, then counts the rest into its next', async () => {
    await attestMany(50, 'victim/api', 'measurement');
    t_count('50 refused measurements', refused().length);
    assert.equal(refused().length, REFUSAL_LIMITS.burst);
    assert.ok(refused().every((e) => e.session === 'victim' && e.code === 'ATTESTATION_MEASUREMENT'));
    clock += 60_000;
    // The same runtime key again: a new key would have its own bucket.
    const rt = clientIdentity('again');
    const nonce = nonces.issue(rt.keyHash).toString('hex');
    const evidence = signedSimulation(host, 'cd'.repeat(32), { nonce: Buffer.from(nonce, 'hex'), spki: rt.spki });
    await assert.rejects(attest(ctx, nonces, { config_id: 'victim/api', nonce, evidence }, rt));
    assert.equal(refused().length, REFUSAL_LIMITS.burst + 1);
    assert.equal(refused().at(-1)?.suppressed, undefined, 'a fresh key suppressed nothing');
  });
});

describe('refusal entries of all keys together', () => {
  it('stay within REFUSAL_LIMITS.allPerMinute however many throwaway keys send them', async () => {
    clock += 120_000;
    const before = log.events('attestation.refused').length;
    const keys = REFUSAL_LIMITS.allPerMinute / REFUSAL_LIMITS.burst + 5;
    for (let k = 0; k < keys; k++) await attestMany(REFUSAL_LIMITS.burst, 'victim/api', 'measurement');
    const added = log.events('attestation.refused').length - before;
    t_count(`${keys * REFUSAL_LIMITS.burst} refusals from ${keys} keys`, added);
    assert.equal(added, REFUSAL_LIMITS.allPerMinute);
    clock += 120_000;
  });
});

describe('refused uploads per client key', () => {
  it('records at most the burst of one key, the rest as `suppressed` in its next entry', async () => {
    const mallory = clientIdentity('mallory');
    const before = log.events('session.refused').length;
    for (let i = 0; i < 30; i++) {
      await assert.rejects(writeSession(ctx, victim.replace('command: run', 'command: evil'), mallory));
    }
    assert.equal(log.events('session.refused').length - before, REFUSAL_LIMITS.burst);
    clock += 60_000;
    await assert.rejects(writeSession(ctx, victim, mallory), code('CAS_FORBIDDEN'));
    assert.equal(log.events('session.refused').at(-1)?.suppressed, 30 - REFUSAL_LIMITS.burst);
  });

  it('records an import refusal in the undetailed words, though the uploader may read the exporter', async () => {
    await writeSession(ctx, 'name: lib\nsecrets: [{name: key, kind: private-key}]\n', owner);
    // The certificate is made at upload from the imported key: the import is judged then.
    const importer =
      'name: imp\nsecrets:\n  - {name: k, import: {session: lib, secret: key}}\n' +
      '  - {name: c, kind: x509, private_key: k}\n';
    await assert.rejects(writeSession(ctx, importer, owner), (e: CasError) => /does not export it/.test(e.message));
    const entry = log.events('session.refused').at(-1);
    assert.equal(entry?.code, 'CAS_IMPORT_DENIED');
    assert.doesNotMatch(entry?.reason ?? '', /does not export it/);
    assert.match(entry?.reason ?? '', /does not exist there, is not exported/);
  });
});

describe('secrets sent to another CAS', async () => {
  const redis = [
    'name: redis',
    'secrets:',
    `  - {name: key, kind: private-key, export: [{session: flask, cas_key: ${F}}]}`,
    '  - {name: ca_key, kind: private-key}',
    '  - {name: ca, kind: x509-ca, private_key: ca_key}',
    `  - {name: cert, kind: x509, issuer: ca, private_key: key, export: [{session: flask, cas_key: ${F}}]}`,
    `  - {name: pinned, kind: ascii, size: 8, export: [{session: flask, cas_key: ${F}, session_hash: ${'d4'.repeat(32)}}]}`,
    '',
  ].join('\n');
  await writeSession(ctx, redis, owner);
  const ask = (c: CasContext, session: string, secret: string) =>
    exportSecret(c, { session, secret, importer: { session: 'flask', session_hash: H } }, F);

  it('records export.released, naming the importer and whether the key went along', async () => {
    await ask(ctx, 'redis', 'cert');
    assert.deepEqual(log.events('export.released').at(-1), {
      type: 'export.released',
      session: 'redis',
      secret: 'cert',
      importer_session: 'flask',
      importer_cas: F,
      private_key: true,
    });
  });

  it('releases nothing when the entry cannot be written', async () => {
    await assert.rejects(ask({ ...ctx, audit: failingAuditLog() }, 'redis', 'key'), code('CAS_AUDIT_UNAVAILABLE'));
  });

  it('records refusals of an existing session in general words, none for a session that does not exist', async () => {
    await assert.rejects(ask(ctx, 'redis', 'ca_key'), code('CAS_IMPORT_DENIED'));
    await assert.rejects(ask(ctx, 'redis', 'pinned'), code('CAS_IMPORT_DENIED'));
    await assert.rejects(ask(ctx, 'nosuch', 'key'), code('CAS_IMPORT_DENIED'));
    const refusals = log.events('export.refused');
    assert.deepEqual(
      refusals.map((e) => [e.session, e.secret, e.importer_cas, e.code]),
      [
        ['redis', 'ca_key', F, 'CAS_IMPORT_DENIED'],
        ['redis', 'pinned', F, 'CAS_IMPORT_DENIED'],
      ],
    );
    assert.match(refusals[1]?.reason ?? '', /pins another session_hash/);
  });
});

function t_count(what: string, n: number): void {
  console.log(`# ${what}: ${n} entries`);
}
