import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The simulation analogue of MRENCLAVE: SHA-256 over the runtime's own code (every file of its code tree, in
 * a fixed order, with its relative path) and the bytes of the program's executable. A changed runtime or a
 * changed program gives another measurement, as a changed enclave does.
 */
export function simulationMeasurement(runtimeCode: Buffer, program: Buffer): string {
  return createHash('sha256')
    .update('veil-simulation-measurement-v1\0')
    .update(runtimeCode)
    .update(createHash('sha256').update(program).digest())
    .digest('hex');
}

/**
 * Digest of a code tree (the runtime's `dist/`): relative paths and contents, sorted. Tests and benchmarks
 * are not code the runtime runs, so they are left out: changing a test does not change every measurement.
 */
export function codeTreeDigest(root: string): Buffer {
  const hash = createHash('sha256');
  for (const path of listFiles(root)) {
    hash.update(`${path}\0`);
    hash.update(createHash('sha256').update(readFileSync(join(root, path))).digest());
  }
  return hash.digest();
}

const NOT_RUNTIME_DIRS = new Set(['e2e', 'bench']);

function listFiles(root: string, prefix = ''): string[] {
  return readdirSync(join(root, prefix), { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((e) => {
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isDirectory()) return NOT_RUNTIME_DIRS.has(rel) ? [] : listFiles(root, rel);
      return e.isFile() && e.name.endsWith('.js') && !e.name.endsWith('.test.js') ? [rel] : [];
    });
}
