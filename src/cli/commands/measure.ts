import { openProgram } from '../../runtime/index.js';
import { usage } from '../errors.js';
import type { Io } from '../io.js';

/** `veil measure <program>`: the measurement a policy lists in services[].mrenclaves for simulation mode. */
export async function measureCommand(args: string[], io: Io): Promise<number> {
  const [program, ...rest] = args;
  if (!program || rest.length > 0) throw usage('veil measure needs exactly one program', 'e.g. veil measure python3');
  const opened = openProgram(program, io.env['PATH'] ?? '');
  opened.close();
  io.out(`${opened.measurement}\n`);
  return 0;
}
