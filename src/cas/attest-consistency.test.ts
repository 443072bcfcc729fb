import { memoryAuditLog } from './audit-testing.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hardwareReportData, simulationMeasurement, type EvidenceVerifier } from '../attestation/index.js';
import { verifiedTdx } from '../attestation/testing.js';
import type { TdxClaims } from '../attestation/types.js';
import { attest, type AttestationContext } from './attest.js';
import type { CasError } from './errors.js';
import { identityFromPem } from './identity-of.js';
import { NonceStore } from './nonces.js';
import { cachedVersion } from './session-reader.js';
import { writeSession, type CasContext } from './sessions.js';
import { tempStore } from './test-store.js';
import { ephemeral } from './testing.js';

/**
 * What attest() releases was judged against the sessions that are current when it leaves: a session, or one it
 * imports from, that changes while the evidence is verified makes it refuse (the verifier stand-in changes one).
 */
const { store } = tempStore('veil-attest-consistency-');
const MRTD = 'b2'.repeat(48);
const program = simulationMeasurement(Buffer.from('runtime'), Buffer.from('app'));
let binding: { nonce: Buffer; spki: Buffer } | undefined;
let during: (() => Promise<unknown>) | undefined;
const verifier: EvidenceVerifier = {
  verify: async () => {
    await during?.();
    const claims = { mrtd: MRTD, rtmr: ['00', '00', '00', '00'], debug: false } as unknown as TdxClaims;
    return verifiedTdx(claims, hardwareReportData(binding!.nonce, binding!.spki));
  },
};
const ctx: CasContext & AttestationContext = { store, now: () => new Date(), audit: memoryAuditLog(), verifier };
const owner = identityFromPem(ephemeral().certPem);
const nonces = new NonceStore(ctx.now);

const lib = (pw: string) =>
  `name: lib\nsecrets:\n  - {name: pw, kind: ascii, value: ${pw}, export: [{session: app}]}\n`;
const app = (predecessor?: string) =>
  [
    'name: app',
    ...(predecessor ? [`predecessor: ${predecessor}`] : []),
    'services:',
    `  - {name: api, command: run $$SCONE::pw$$, mrenclaves: [${program}], attestation: {tdx: {mrtd: ${MRTD}}}}`,
    'secrets:',
    '  - {name: pw, import: {session: lib, secret: pw}}',
    '',
  ].join('\n');
const libV1 = await writeSession(ctx, lib('first-value'), owner);
const appV1 = await writeSession(ctx, app(), owner);

async function attestNow(configId = 'app/api') {
  const rt = identityFromPem(ephemeral().certPem);
  const nonce = nonces.issue(rt.keyHash).toString('hex');
  binding = { nonce: Buffer.from(nonce, 'hex'), spki: rt.spki };
  const quote = Buffer.from('a quote').toString('base64');
  return attest(ctx, nonces, { config_id: configId, nonce, evidence: { type: 'tdx', quote } }, rt);
}
const busy = (name: string) => (e: CasError) =>
  e.code === 'CAS_BUSY' && e.message.includes(`session '${name}' changed while the service attested`);

describe('attest: one consistent set of sessions', () => {
  it('releases the configuration when nothing changed meanwhile', async () => {
    during = undefined;
    const { config } = await attestNow();
    assert.match(config.command.join(' '), /first-value/);
  });

  it('refuses when an exporter changes while the evidence is verified', async () => {
    during = () => writeSession(ctx, `${lib('second-value')}predecessor: ${libV1.hash}\n`, owner);
    await assert.rejects(attestNow(), busy('lib'));
    during = undefined;
    assert.match((await attestNow()).config.command.join(' '), /second-value/);
  });

  it('refuses when the session itself changes while the evidence is verified', async () => {
    during = () => writeSession(ctx, app(appV1.hash).replace('run ', 'run --new '), owner);
    await assert.rejects(attestNow(), busy('app'));
    during = undefined;
    assert.match((await attestNow()).config.command.join(' '), /--new/);
  });
});

describe('attest: the session cache', () => {
  it('is filled only for a service whose evidence was accepted, never by a refused attestation', async () => {
    const other = 'c3'.repeat(48);
    const exporter = await writeSession(
      ctx,
      lib('cold-value').replace('name: lib', 'name: cold-lib').replace('session: app', 'session: cold'),
      owner,
    );
    const cold = await writeSession(
      ctx,
      app().replace('name: app', 'name: cold').replace('session: lib', 'session: cold-lib').replace(MRTD, other),
      owner,
    );
    await assert.rejects(attestNow('cold/api'), (e: CasError) => e.code === 'CAS_ATTESTATION_FAILED');
    assert.equal(cachedVersion(store, 'cold'), undefined);
    assert.equal(cachedVersion(store, 'cold-lib'), undefined);
    await writeSession(
      ctx,
      `${app(cold.hash).replace('name: app', 'name: cold').replace('session: lib', 'session: cold-lib')}`,
      owner,
    );
    const { config } = await attestNow('cold/api');
    assert.match(config.command.join(' '), /cold-value/);
    assert.notEqual(cachedVersion(store, 'cold'), undefined);
    assert.equal(cachedVersion(store, 'cold-lib'), exporter.hash);
  });
});
