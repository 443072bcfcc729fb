import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { hostId, reportData, simulationMessage, type Evidence } from './evidence.js';
import type { TdxClaims, VerificationResult } from './types.js';

/** Shared by the verifiers' tests (and loaded by nothing else). */

/** mulberry32: a small seeded PRNG, so every mutation run is reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A simulation host for tests: an in-memory Ed25519 host key and its platform ID. */
export interface TestHost {
  id: string;
  spki: Buffer;
  privateKey: KeyObject;
}

export function testHost(): TestHost {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return { id: hostId(spki), spki, privateKey };
}

/**
 * Simulation evidence as `veil run` makes it, signed by `host` for this nonce and connection key. `signed`
 * replaces what the signature covers (to sign one report data and send another); `as` sends another SPKI.
 */
export function signedSimulation(
  host: TestHost,
  measurement: string,
  binding: { nonce: Buffer; spki: Buffer },
  opts: { signed?: Buffer; as?: Buffer } = {},
): Extract<Evidence, { type: 'simulation' }> {
  const bound = reportData(binding.nonce, binding.spki);
  const message = simulationMessage(Buffer.from(measurement, 'hex'), opts.signed ?? bound);
  const signature = sign(null, message, host.privateKey);
  return {
    type: 'simulation',
    measurement,
    reportData: bound.toString('hex'),
    hostSpki: (opts.as ?? host.spki).toString('base64'),
    signature: signature.toString('base64'),
  };
}

/** What a verifier stand-in returns for a TDX quote it "verified": up to date, with these claims and report data. */
export function verifiedTdx(claims: TdxClaims, reportData: Buffer): VerificationResult {
  return {
    type: 'tdx',
    claims,
    reportData,
    chain: [],
    warnings: [],
    simulated: false,
    revocation: 'checked',
    tcb: { status: 'UpToDate', advisoryIds: [], parts: { platform: 'UpToDate' } },
  } as VerificationResult;
}
