import { timingSafeEqual } from 'node:crypto';
import { AttestationError } from './errors.js';
import { reportData, type Evidence } from './evidence.js';
import type { AttestationPolicy } from './policy.js';

export interface VerifiedEvidence {
  type: Evidence['type'];
  measurement: string;
  /** True for simulation evidence: it proves code identity only as far as the host is trusted. */
  simulated: boolean;
}

/**
 * The simulation verifier, a separate path chosen by the evidence's declared type (never by its bytes).
 * Default deny: simulation evidence is accepted only by a session that turns hardware attestation off
 * (`security.attestation.mode: none`). `mode: hardware`, or no mode, never accepts it, whatever it tolerates:
 * `debug-mode` tolerates debug enclaves, which are still hardware.
 */
export function verifySimulation(evidence: Evidence, binding: { nonce: Buffer; spki: Buffer }, policy: AttestationPolicy | undefined): VerifiedEvidence {
  if (evidence.type !== 'simulation') {
    throw new AttestationError('ATTESTATION_UNSUPPORTED', `${evidence.type} evidence is hardware evidence, not simulation`);
  }
  if (!allowsSimulation(policy)) {
    throw new AttestationError('ATTESTATION_SIMULATION_REFUSED', 'the session does not accept simulation evidence (no hardware attestation was given)', {
      hint: `only for testing: set security.attestation.mode: none${policy?.tolerate?.includes('debug-mode') ? ' (debug-mode tolerates debug enclaves, not simulation)' : ''}`,
    });
  }
  // typeof first: a regex test stringifies its argument, so ['<64 hex>'] would pass it.
  if (!isHex64(evidence.measurement) || !isHex64(evidence.reportData)) {
    throw new AttestationError('ATTESTATION_MALFORMED', 'simulation evidence needs a 64-hex measurement and report data');
  }
  const expected = reportData(binding.nonce, binding.spki);
  if (!timingSafeEqual(Buffer.from(evidence.reportData, 'hex'), expected)) {
    throw new AttestationError('ATTESTATION_BINDING', 'the evidence is not bound to this nonce and this connection key', {
      hint: 'evidence cannot be replayed or moved to another connection; start the program again',
    });
  }
  return { type: 'simulation', measurement: evidence.measurement, simulated: true };
}

const isHex64 = (value: unknown): value is string => typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);

export function allowsSimulation(policy: AttestationPolicy | undefined): boolean {
  return policy?.mode === 'none';
}

/** SCONE's diagnostic: `Unexpected enclave measurement (MRENCLAVE, <got>) - Expected <want>`. */
export function checkMeasurement(got: string, allowed: readonly string[]): void {
  const wanted = allowed.map((m) => m.toLowerCase());
  if (wanted.includes(got.toLowerCase())) return;
  throw new AttestationError('ATTESTATION_MEASUREMENT', `Unexpected enclave measurement (MRENCLAVE, ${got}) - Expected ${wanted.join(' or ') || '(none listed)'}`, {
    hint: "list the program's measurement (veil measure <program>) in services[].mrenclaves",
  });
}
