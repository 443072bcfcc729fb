import { createPublicKey, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { Lru } from '../lru.js';
import { AttestationError } from './errors.js';
import { hostId, reportData, simulationMessage, type Evidence } from './evidence.js';
import type { AttestationPolicy } from './policy.js';

export interface VerifiedEvidence {
  type: Evidence['type'];
  measurement: string;
  /** True for simulation evidence: it proves code identity only as far as the host is trusted. */
  simulated: boolean;
  /** The platform ID of the host that signed simulation evidence (hex SHA-256 of its host key's SPKI). */
  platform: string;
}

/** The service the evidence is for, as far as simulation needs it: the hosts it trusts. */
export interface SimulationService {
  name: string;
  platforms?: readonly string[] | undefined;
}

const verifyAsync = promisify(verify);

/**
 * The simulation verifier, a separate path chosen by the evidence's declared type (never by its bytes).
 * Default deny: simulation evidence is accepted only by a session that turns hardware attestation off
 * (`security.attestation.mode: none`), and only from a host the service lists in `platforms`. `mode:
 * hardware`, or no mode, never accepts it, whatever it tolerates: `debug-mode` tolerates debug enclaves,
 * which are still hardware. Order: the evidence (host key signature), its binding, the platform; the
 * caller then checks the identity (the measurement).
 */
export async function verifySimulation(
  evidence: Evidence,
  binding: { nonce: Buffer; spki: Buffer },
  policy: AttestationPolicy | undefined,
  service: SimulationService,
): Promise<VerifiedEvidence> {
  if (evidence.type !== 'simulation') {
    throw new AttestationError(
      'ATTESTATION_UNSUPPORTED',
      `${evidence.type} evidence is hardware evidence, not simulation`,
    );
  }
  if (!allowsSimulation(policy)) {
    const debug = policy?.tolerate?.includes('debug-mode')
      ? ' (debug-mode tolerates debug enclaves, not simulation)'
      : '';
    throw new AttestationError(
      'ATTESTATION_SIMULATION_REFUSED',
      'the session does not accept simulation evidence (no hardware attestation was given)',
      {
        hint: `only for testing: set security.attestation.mode: none${debug}`,
      },
    );
  }
  // typeof first: a regex test stringifies its argument, so ['<64 hex>'] would pass it.
  if (!isHex64(evidence.measurement) || !isHex64(evidence.reportData)) {
    throw new AttestationError(
      'ATTESTATION_MALFORMED',
      'simulation evidence needs a 64-hex measurement and report data',
    );
  }
  const measurement = Buffer.from(evidence.measurement, 'hex');
  const claimed = Buffer.from(evidence.reportData, 'hex');
  const spki = Buffer.from(evidence.hostSpki, 'base64');
  await checkHostSignature(hostKeyOf(spki), simulationMessage(measurement, claimed), evidence.signature);
  if (!timingSafeEqual(claimed, reportData(binding.nonce, binding.spki))) {
    throw new AttestationError(
      'ATTESTATION_BINDING',
      'the evidence is not bound to this nonce and this connection key',
      {
        hint: 'evidence cannot be replayed or moved to another connection; start the program again',
      },
    );
  }
  const platform = hostId(spki);
  checkSimulationPlatform(platform, service);
  return { type: 'simulation', measurement: evidence.measurement, simulated: true, platform };
}

/**
 * The host key from its SPKI: Ed25519 only, and in its one DER encoding (re-exported byte for byte), so a key
 * has exactly one platform ID.
 */
// A host signs every attestation of its programs with one key: decode it once. Keyed by the exact SPKI bytes,
// and only keys that passed the checks below are kept.
const hostKeys = new Lru<KeyObject>(1024);

function hostKeyOf(spki: Buffer): KeyObject {
  const id = spki.toString('hex');
  const known = hostKeys.get(id);
  if (known) return known;
  const key = decodeHostKey(spki);
  hostKeys.set(id, key);
  return key;
}

function decodeHostKey(spki: Buffer): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (err) {
    throw new AttestationError(
      'ATTESTATION_MALFORMED',
      'the host key of the simulation evidence is not a DER SubjectPublicKeyInfo',
      {
        check: 'host key',
        hint: 'use veil run',
        cause: err,
      },
    );
  }
  const canonical = key.asymmetricKeyType === 'ed25519' && key.export({ type: 'spki', format: 'der' }).equals(spki);
  if (!canonical) {
    throw new AttestationError(
      'ATTESTATION_MALFORMED',
      `the host key of the simulation evidence is ${key.asymmetricKeyType ?? 'unknown'}, not an Ed25519 key in DER`,
      {
        check: 'host key',
        hint: 'use veil run (its host keys are Ed25519)',
      },
    );
  }
  return key;
}

async function checkHostSignature(key: KeyObject, message: Buffer, signatureBase64: string): Promise<void> {
  const signature = Buffer.from(signatureBase64, 'base64');
  // Ed25519 verification runs in libuv's pool (the callback form of crypto.verify), off the event loop.
  const ok = signature.length === 64 && (await verifyAsync(null, message, key, signature));
  if (!ok) {
    throw new AttestationError(
      'ATTESTATION_SIGNATURE',
      'the host key signature over the measurement and report data does not verify',
      {
        check: 'host signature',
        hint:
          'simulation evidence must be signed by the host key it names (veil run does this); ' +
          'start the program again',
      },
    );
  }
}

/**
 * The host must be one the service lists. IDs are compared in constant time and every entry is looked at, so
 * the time taken does not say which entry (or how much of one) matched. Entries that are not 64 hex digits
 * (a $$SCONE::…$$ placeholder) match nothing.
 */
export function checkSimulationPlatform(platform: string, service: SimulationService): void {
  const listed = service.platforms ?? [];
  const mine = Buffer.from(platform, 'hex');
  let found = false;
  for (const entry of listed) {
    if (!/^[0-9a-fA-F]{64}$/.test(entry)) continue;
    if (timingSafeEqual(Buffer.from(entry, 'hex'), mine)) found = true;
  }
  if (found) return;
  const add =
    `if you trust that host, add its id to services[${service.name}].platforms ` +
    `(platforms: [${platform}]; 'veil host id' on that host prints it)`;
  const lists = listed.length === 0 ? 'lists no platforms' : `lists ${listed.length} other platform(s)`;
  throw new AttestationError(
    'ATTESTATION_PLATFORM',
    `simulation evidence from host ${platform}, which service '${service.name}' does not trust (it ${lists})`,
    {
      check: 'platform',
      hint: `simulation is accepted only from listed hosts: ${add}`,
    },
  );
}

const isHex64 = (value: unknown): value is string => typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);

export function allowsSimulation(policy: AttestationPolicy | undefined): boolean {
  return policy?.mode === 'none';
}

/** SCONE's diagnostic: `Unexpected enclave measurement (MRENCLAVE, <got>) - Expected <want>`. */
export function checkMeasurement(got: string, allowed: readonly string[]): void {
  const wanted = allowed.map((m) => m.toLowerCase());
  if (wanted.includes(got.toLowerCase())) return;
  throw new AttestationError(
    'ATTESTATION_MEASUREMENT',
    `Unexpected enclave measurement (MRENCLAVE, ${got}) - Expected ${wanted.join(' or ') || '(none listed)'}`,
    {
      hint: "list the program's measurement (veil measure <program>) in services[].mrenclaves",
    },
  );
}
