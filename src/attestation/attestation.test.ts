import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { AttestationError, checkMeasurement, reportData, simulationMeasurement, verifySimulation, type Evidence } from './index.js';

const nonce = randomBytes(32);
const spki = randomBytes(91);
const measurement = simulationMeasurement(Buffer.from('runtime'), Buffer.from('program'));
const evidence: Evidence = { type: 'simulation', measurement, reportData: reportData(nonce, spki).toString('hex') };
const allow = { mode: 'none' as const };
const code = (c: string) => (e: AttestationError) => e.code === c;

describe('simulation evidence', () => {
  it('is accepted only when the policy allows it', () => {
    assert.equal(verifySimulation(evidence, { nonce, spki }, allow).measurement, measurement);
    assert.equal(verifySimulation(evidence, { nonce, spki }, { mode: 'none' }).simulated, true);
    assert.throws(() => verifySimulation(evidence, { nonce, spki }, undefined), code('ATTESTATION_SIMULATION_REFUSED'));
    assert.throws(() => verifySimulation(evidence, { nonce, spki }, { tolerate: ['outdated-tcb'] }), code('ATTESTATION_SIMULATION_REFUSED'));
    // debug-mode tolerates debug enclaves (still hardware); it never turns attestation off.
    assert.throws(() => verifySimulation(evidence, { nonce, spki }, { tolerate: ['debug-mode'] }), code('ATTESTATION_SIMULATION_REFUSED'));
    assert.throws(() => verifySimulation(evidence, { nonce, spki }, { mode: 'hardware', tolerate: ['debug-mode'] }), code('ATTESTATION_SIMULATION_REFUSED'));
  });

  it('binds the nonce and the connection key', () => {
    assert.throws(() => verifySimulation(evidence, { nonce: randomBytes(32), spki }, allow), code('ATTESTATION_BINDING'));
    assert.throws(() => verifySimulation(evidence, { nonce, spki: randomBytes(91) }, allow), code('ATTESTATION_BINDING'));
  });

  it('is a separate verifier: hardware evidence never passes it', () => {
    assert.throws(() => verifySimulation({ type: 'tdx', quote: '' }, { nonce, spki }, allow), code('ATTESTATION_UNSUPPORTED'));
  });

  it('changes with the runtime and with the program', () => {
    assert.notEqual(simulationMeasurement(Buffer.from('runtime2'), Buffer.from('program')), measurement);
    assert.notEqual(simulationMeasurement(Buffer.from('runtime'), Buffer.from('program2')), measurement);
  });

  it('reports an unexpected measurement as SCONE does', () => {
    const want = 'ab'.repeat(32);
    assert.doesNotThrow(() => checkMeasurement(measurement, [measurement.toUpperCase()]));
    assert.throws(() => checkMeasurement(measurement, [want]), (e: AttestationError) =>
      e.message === `Unexpected enclave measurement (MRENCLAVE, ${measurement}) - Expected ${want}`);
  });
});
