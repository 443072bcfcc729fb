import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The simulation analogue of MRENCLAVE: SHA-256 over the runtime's own code (every file of its code tree, in
 * a fixed order, with its relative path) and the bytes of the program's executable. A changed runtime or a
 * changed program gives another measurement, as a changed enclave does.
 */
export function simulationMeasurement(runtimeCode: Buffer, program: Buffer): string {
  return simulationMeasurementOf(runtimeCode, createHash('sha256').update(program).digest());
}

/** The same from the program's SHA-256, which the runtime also extends into RTMR3 (hashed once at launch). */
export function simulationMeasurementOf(runtimeCode: Buffer, programSha256: Buffer): string {
  return createHash('sha256')
    .update('veil-simulation-measurement-v1\0')
    .update(runtimeCode)
    .update(programSha256)
    .digest('hex');
}

/**
 * Digest of the runtime's code in a compiled tree (`dist/`): relative paths and contents, sorted. Only the
 * parts `veil run` executes count (RUNTIME_PARTS) — not the CAS server, the image and chart builders, tests
 * or benchmarks — so changing those does not change every service's measurement.
 */
export function codeTreeDigest(root: string): Buffer {
  const hash = createHash('sha256');
  for (const path of listFiles(root)) {
    hash.update(`${path}\0`);
    hash.update(
      createHash('sha256')
        .update(readFileSync(join(root, path)))
        .digest(),
    );
  }
  return hash.digest();
}

/** What `veil run` loads (its imports, checked by a test): the CLI shell, the runtime and what it uses. */
export const RUNTIME_PARTS = new Set([
  'attestation',
  'cli',
  'contract',
  'errors.js',
  'fsshield',
  'issues.js',
  'key-types.js',
  'lru.js',
  'runtime',
  'secrets',
  'suggest.js',
]);

/**
 * Inside those parts, what only the CAS and the offline verifier use: the hardware verifiers, their roots and
 * collateral. Changing a verifier must not change the measurement of every program (the same test checks
 * that veil run loads none of it).
 */
export const NOT_RUNTIME = new Set([
  'attestation/azure',
  'attestation/intel',
  'attestation/snp',
  'attestation/collateral.js',
  'attestation/hardware.js',
  'attestation/pki.js',
  'attestation/roots.js',
  'attestation/testing.js',
  // The contract's zod schemas serve the CAS and the CLI; veil run reads only their generated JSON Schema.
  'contract/attest.js',
  'contract/cas-api.js',
  'contract/encrypted-session.js',
  'contract/evidence.js',
  'contract/index.js',
]);

/** Whether a file of the compiled tree (path relative to it) is part of the measured runtime code. */
export function isRuntimeCode(rel: string): boolean {
  const parts = rel.split('/');
  if (!RUNTIME_PARTS.has(parts[0]!)) return false;
  return !parts.some((_, i) => NOT_RUNTIME.has(parts.slice(0, i + 1).join('/')));
}

function listFiles(root: string, prefix = ''): string[] {
  return readdirSync(join(root, prefix), { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((e) => {
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (!isRuntimeCode(rel)) return [];
      if (e.isDirectory()) return listFiles(root, rel);
      return e.isFile() && e.name.endsWith('.js') && !e.name.endsWith('.test.js') ? [rel] : [];
    });
}
