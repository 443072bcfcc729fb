import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { codeTreeDigest, simulationMeasurement } from '../../attestation/index.js';
import { CliError, usage } from '../errors.js';
import type { Io } from '../io.js';

/** The runtime's own code: the compiled tree this CLI runs from. */
export const RUNTIME_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** `veil measure <program>`: the measurement a policy lists in services[].mrenclaves for simulation mode. */
export async function measureCommand(args: string[], io: Io): Promise<number> {
  const [program, ...rest] = args;
  if (!program || rest.length > 0) throw usage('veil measure needs exactly one program', 'e.g. veil measure python3');
  const path = resolveProgram(program, io.env['PATH'] ?? '');
  io.out(`${simulationMeasurement(codeTreeDigest(RUNTIME_ROOT), readFileSync(path))}\n`);
  return 0;
}

/** The file the host names, as `execvp` would find it, with links resolved (what runs is what is measured). */
export function resolveProgram(program: string, pathVar: string): string {
  const candidates = program.includes('/') ? [program] : pathVar.split(delimiter).filter(Boolean).map((d) => join(d, program));
  const found = candidates.find((c) => existsSync(c));
  if (!found) {
    throw new CliError('CLI_FILE', `program '${program}' was not found${program.includes('/') ? '' : ' on PATH'}`, { hint: 'give a path, or install the program' });
  }
  return realpathSync(isAbsolute(found) ? found : join(process.cwd(), found));
}
