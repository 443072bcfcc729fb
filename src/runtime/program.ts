import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, realpathSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { codeTreeDigest, simulationMeasurementOf } from '../attestation/index.js';
import { RuntimeError } from './errors.js';

/** The runtime's own code: the compiled tree it runs from. */
export const RUNTIME_ROOT = fileURLToPath(new URL('../', import.meta.url));

/** The program as the host names it, opened once: the bytes measured are the bytes of the file executed. */
export interface OpenedProgram {
  path: string;
  fd: number;
  /** The simulation measurement (veil measure). */
  measurement: string;
  /** SHA-256 of the program file and the runtime's code-tree digest: what hardware evidence states (RTMR3). */
  sha256: Buffer;
  runtimeCodeDigest: Buffer;
  close(): void;
}

export function openProgram(program: string, pathVar: string): OpenedProgram {
  const path = resolveProgram(program, pathVar);
  const fd = openSync(path, 'r');
  if (!fstatSync(fd).isFile())
    throw new RuntimeError('RUNTIME_PROGRAM', `${path} is not a regular file`, { hint: 'name an executable program' });
  const sha256 = createHash('sha256').update(readFileSync(fd)).digest();
  const runtimeCodeDigest = codeTreeDigest(RUNTIME_ROOT);
  return {
    path,
    fd,
    measurement: simulationMeasurementOf(runtimeCodeDigest, sha256),
    sha256,
    runtimeCodeDigest,
    close: () => closeSync(fd),
  };
}

/** The file `execvp` would find, with links resolved. */
export function resolveProgram(program: string, pathVar: string): string {
  const candidates = program.includes('/')
    ? [program]
    : pathVar
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(d, program));
  const found = candidates.find((c) => existsSync(c));
  if (!found) {
    throw new RuntimeError(
      'RUNTIME_PROGRAM',
      `program '${program}' was not found${program.includes('/') ? '' : ' on PATH'}`,
      { hint: 'give a path, or install the program' },
    );
  }
  return realpathSync(isAbsolute(found) ? found : join(process.cwd(), found));
}
