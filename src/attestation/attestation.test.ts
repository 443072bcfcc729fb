import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  type AttestationError,
  checkMeasurement,
  hostId,
  simulationMeasurement,
  verifySimulation,
  type Evidence,
} from './index.js';
import { signedSimulation, testHost } from './testing.js';

const nonce = randomBytes(32);
const spki = randomBytes(91);
const measurement = simulationMeasurement(Buffer.from('runtime'), Buffer.from('program'));
const host = testHost();
const evidence = signedSimulation(host, measurement, { nonce, spki });
const allow = { mode: 'none' as const };
const service = { name: 'api', platforms: [host.id] };
const code = (c: string) => (e: AttestationError) => e.code === c;
type Policy = Parameters<typeof verifySimulation>[2];
type Service = Parameters<typeof verifySimulation>[3];
/** `policy` given as undefined means no policy at all (not the default). */
const verify = (ev: Evidence, binding = { nonce, spki }, ...rest: [Policy?, Service?]) =>
  verifySimulation(ev, binding, rest.length > 0 ? rest[0] : allow, rest[1] ?? service);

describe('simulation evidence', () => {
  it('is accepted only when the policy allows it', async () => {
    assert.equal((await verify(evidence)).measurement, measurement);
    assert.equal((await verify(evidence)).simulated, true);
    await assert.rejects(verify(evidence, undefined, undefined), code('ATTESTATION_SIMULATION_REFUSED'));
    await assert.rejects(
      verify(evidence, undefined, { tolerate: ['outdated-tcb'] }),
      code('ATTESTATION_SIMULATION_REFUSED'),
    );
    // debug-mode tolerates debug enclaves (still hardware); it never turns attestation off.
    await assert.rejects(
      verify(evidence, undefined, { tolerate: ['debug-mode'] }),
      code('ATTESTATION_SIMULATION_REFUSED'),
    );
    await assert.rejects(
      verify(evidence, undefined, { mode: 'hardware', tolerate: ['debug-mode'] }),
      code('ATTESTATION_SIMULATION_REFUSED'),
    );
  });

  it('binds the nonce and the connection key', async () => {
    await assert.rejects(verify(evidence, { nonce: randomBytes(32), spki }), code('ATTESTATION_BINDING'));
    await assert.rejects(verify(evidence, { nonce, spki: randomBytes(91) }), code('ATTESTATION_BINDING'));
  });

  it('is a separate verifier: hardware evidence never passes it', async () => {
    await assert.rejects(verify({ type: 'tdx', quote: '' }), code('ATTESTATION_UNSUPPORTED'));
  });

  it('changes with the runtime and with the program', () => {
    assert.notEqual(simulationMeasurement(Buffer.from('runtime2'), Buffer.from('program')), measurement);
    assert.notEqual(simulationMeasurement(Buffer.from('runtime'), Buffer.from('program2')), measurement);
  });

  it('reports an unexpected measurement as SCONE does', () => {
    const want = 'ab'.repeat(32);
    assert.doesNotThrow(() => checkMeasurement(measurement, [measurement.toUpperCase()]));
    assert.throws(
      () => checkMeasurement(measurement, [want]),
      (e: AttestationError) =>
        e.message === `Unexpected enclave measurement (MRENCLAVE, ${measurement}) - Expected ${want}`,
    );
  });
});

describe('simulation hosts (platforms)', () => {
  it('accepts a listed host and names it: the hex SHA-256 of its SPKI', async () => {
    const verified = await verify(evidence);
    assert.equal(verified.platform, host.id);
    assert.match(host.id, /^[0-9a-f]{64}$/);
    assert.equal(hostId(host.spki), host.id);
    // Listed in upper case, or among others: still this host.
    assert.equal(
      (await verify(evidence, undefined, allow, { name: 'api', platforms: ['ab'.repeat(32), host.id.toUpperCase()] }))
        .platform,
      host.id,
    );
  });

  it('refuses an unlisted host, naming its id and how to list it', async () => {
    const other = testHost();
    await assert.rejects(
      verify(evidence, undefined, allow, { name: 'api', platforms: [other.id] }),
      (e: AttestationError) =>
        e.code === 'ATTESTATION_PLATFORM' &&
        e.message.includes(host.id) &&
        /services\[api\]\.platforms/.test(e.hint ?? '') &&
        /veil host id/.test(e.hint ?? ''),
    );
    // A placeholder never matches.
    await assert.rejects(
      verify(evidence, undefined, allow, { name: 'api', platforms: ['$$SCONE::hosts$$'] }),
      code('ATTESTATION_PLATFORM'),
    );
  });

  it('refuses every host when the service lists none (default deny)', async () => {
    for (const platforms of [undefined, [] as string[]]) {
      await assert.rejects(
        verify(evidence, undefined, allow, { name: 'api', platforms }),
        (e: AttestationError) =>
          e.code === 'ATTESTATION_PLATFORM' && /lists no platforms/.test(e.message) && e.message.includes(host.id),
      );
    }
  });

  it("refuses evidence signed by another key under a listed host's SPKI", async () => {
    const forger = testHost();
    const forged = signedSimulation(forger, measurement, { nonce, spki }, { as: host.spki });
    await assert.rejects(verify(forged), code('ATTESTATION_SIGNATURE'));
  });

  it('refuses a signature over other report data (another nonce or connection)', async () => {
    const otherNonce = signedSimulation(
      host,
      measurement,
      { nonce, spki },
      {
        signed: Buffer.from(signedSimulation(host, measurement, { nonce: randomBytes(32), spki }).reportData, 'hex'),
      },
    );
    await assert.rejects(verify(otherNonce), code('ATTESTATION_SIGNATURE'));
    // Nor can the measurement be changed under a signature.
    const swapped = { ...evidence, measurement: 'ab'.repeat(32) };
    await assert.rejects(verify(swapped), code('ATTESTATION_SIGNATURE'));
  });

  it('checks the signature before the binding, and the binding before the platform', async () => {
    const forger = testHost();
    const unboundForgery = signedSimulation(forger, measurement, { nonce, spki }, { as: host.spki });
    await assert.rejects(verify(unboundForgery, { nonce: randomBytes(32), spki }), code('ATTESTATION_SIGNATURE'));
    await assert.rejects(
      verify(evidence, { nonce: randomBytes(32), spki }, allow, { name: 'api', platforms: [] }),
      code('ATTESTATION_BINDING'),
    );
  });

  it('takes Ed25519 host keys only, in their one DER encoding', async () => {
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });
    await assert.rejects(verify({ ...evidence, hostSpki: p256.toString('base64') }), code('ATTESTATION_MALFORMED'));
    await assert.rejects(
      verify({ ...evidence, hostSpki: Buffer.from('junk').toString('base64') }),
      code('ATTESTATION_MALFORMED'),
    );
    // The same key with trailing bytes would be another id for one key.
    const padded = Buffer.concat([host.spki, Buffer.of(0)]);
    await assert.rejects(
      verify({ ...evidence, hostSpki: padded.toString('base64') }, undefined, allow, {
        name: 'api',
        platforms: [hostId(padded)],
      }),
      code('ATTESTATION_MALFORMED'),
    );
  });
});
