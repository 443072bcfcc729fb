import { readFileSync } from 'node:fs';
import type { Io } from './io.js';

/** An Io for command tests: what the command prints is kept, files are read from disk, no signal ever comes. */
export function capture(env: NodeJS.ProcessEnv = {}): Io & { stdout: string; stderr: string } {
  const io = {
    env,
    stdout: '',
    stderr: '',
    out: (t: string) => {
      io.stdout += t;
    },
    err: (t: string) => {
      io.stderr += t;
    },
    readFile: (p: string) => readFileSync(p, 'utf8'),
    untilSignal: () => new Promise<NodeJS.Signals>(() => {}),
  };
  return io;
}
