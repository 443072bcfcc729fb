import { expectedRtmr3, veilRtmr3Events } from '../../attestation/rtmr.js';
import { openProgram } from '../../runtime/index.js';
import { usage } from '../errors.js';
import { defineCommand } from '../spec.js';

/**
 * `veil measure [--rtmr] <program>`: the measurement a policy lists in services[].mrenclaves for simulation
 * mode (the only line without --rtmr: scripts read it). With --rtmr, also the RTMR3 a TDX quote reports after
 * `veil run` extended it for this program, and the extension log to recompute it (see attestation/rtmr.ts).
 */
export const measureCommand = defineCommand(
  {
    name: 'measure',
    usage: ['[--rtmr] PROGRAM'],
    summary: 'the simulation measurement a policy lists in mrenclaves (only line printed without --rtmr)',
    options: {
      rtmr: { type: 'boolean', description: 'also the TDX RTMR3 after veil run extended it for PROGRAM, and its log' },
    },
    positionals: true,
  },
  ({ values, positionals }, io) => {
    const [program, ...rest] = positionals;
    if (!program || rest.length > 0)
      throw usage(
        'veil measure needs exactly one program',
        'e.g. veil measure python3, or veil measure --rtmr python3',
      );
    const opened = openProgram(program, io.env['PATH'] ?? '');
    opened.close();
    io.out(`${opened.measurement}\n`);
    if (values.rtmr) {
      io.out(`rtmr3 ${expectedRtmr3(opened.runtimeCodeDigest, opened.sha256).toString('hex')}\n`);
      for (const e of veilRtmr3Events(opened.runtimeCodeDigest, opened.sha256))
        io.out(`extend rtmr${e.index} ${e.digest} ${e.description}\n`);
    }
    return 0;
  },
);
