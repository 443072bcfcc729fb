import { spawn, type ChildProcess } from 'node:child_process';
import { VEIL_BIN, waitFor } from './harness.js';

/**
 * Shared by the renewal e2e tests: a long-running program under `veil run` that reads its injected certificate
 * every second and prints its PID and notAfter, and what it printed so far.
 */
export function watcherCommand(certPath: string): string[] {
  const read = `openssl x509 -noout -enddate -in ${certPath} 2>&1`;
  return ['sh', '-c', `while :; do echo "pid=$$ now=$(date +%s) $(${read})"; sleep 1; done`];
}

export interface Watched {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Each line the program printed: its PID and the certificate's notAfter (or openssl's complaint). */
  readings(): Array<{ pid: string; at: number; notAfter: string }>;
  stop(): Promise<void>;
}

export function startWatched(args: string[], env: NodeJS.ProcessEnv): Watched {
  const child = spawn(process.execPath, [VEIL_BIN, 'run', '--mode', 'debug', ...args, '--', 'sh'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    readings: () =>
      [...out.matchAll(/^pid=(\d+) now=(\d+) (.*)$/gm)].map((m) => ({
        pid: m[1]!,
        at: Number(m[2]) * 1000,
        notAfter: m[3]!.replace('notAfter=', ''),
      })),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Waits until the program has printed `count` distinct notAfter values, each a real date. */
export async function waitForRenewals(w: Watched, count: number, ms: number): Promise<void> {
  await waitFor(
    () => distinct(w.readings().map((r) => r.notAfter)).length >= count || w.child.exitCode !== null,
    ms,
    () => `no ${count} distinct certificates within ${ms} ms:\n${w.stdout()}\n${w.stderr()}`,
  );
  if (w.child.exitCode !== null) throw new Error(`veil run ended (${w.child.exitCode}):\n${w.stderr()}`);
}

export function distinct<T>(values: T[]): T[] {
  return [...new Set(values)];
}

/**
 * Every reading found a whole certificate (openssl printed a date, not an error) that had not expired when it
 * was read: renewal came before expiry. Returns the readings that break this.
 */
export function staleOrBroken(w: Watched): string[] {
  return w
    .readings()
    .filter((r) => Number.isNaN(Date.parse(r.notAfter)) || Date.parse(r.notAfter) <= r.at)
    .map((r) => `pid ${r.pid} at ${new Date(r.at).toISOString()}: ${r.notAfter}`);
}
