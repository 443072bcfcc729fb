import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dieWithParent } from '../runtime/parent-death.js';
import { MeshError } from './errors.js';
import { listeningPorts } from './procfs.js';

export interface ServiceSpec {
  name: string;
  /** The command that starts it: `veil run --host … -- <program>`. */
  argv: string[];
  env: NodeJS.ProcessEnv;
}

/** A service of the mesh as a local process: its log lines prefixed with its name, and its end observed. */
export class ServiceProcess {
  readonly child: ChildProcess;
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly recent: string[] = [];
  private readonly exitWaiters: Array<() => void> = [];

  constructor(
    readonly spec: ServiceSpec,
    log: (line: string) => void,
  ) {
    // Its own process group: a terminal's Ctrl-C reaches veil up only, which stops services in order, and a
    // last-resort SIGKILL reaches the program under veil run too. If veil up dies without stopping it (kill -9),
    // the kernel kills veil run, and veil run's program with it.
    const [command, ...args] = dieWithParent(spec.argv);
    this.child = spawn(command!, args, { env: spec.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        this.recent.push(line);
        if (this.recent.length > 20) this.recent.shift();
        log(`[${spec.name}] ${line}`);
      });
    }
    // 'close', not 'exit': the last lines of its output are in by then (failure messages quote them).
    this.child.on('close', (code, signal) => {
      this.exited = { code, signal };
      for (const f of this.exitWaiters.splice(0)) f();
    });
    this.child.on('error', (err) => {
      log(`[${spec.name}] cannot start: ${err.message}`);
      this.exited ??= { code: 127, signal: null };
      for (const f of this.exitWaiters.splice(0)) f();
    });
  }

  get exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.exited;
  }

  get lastLines(): string[] {
    return [...this.recent];
  }

  /** The first port the service listens on; rejects if it ends first, takes too long or `abort` fires. */
  async ready(timeoutMs: number, abort?: AbortSignal): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exited)
        throw this.failure(
          'MESH_SERVICE_ENDED',
          `${this.spec.name} ended before it was ready (${describe(this.exited)})`,
        );
      if (abort?.aborted) throw stopped(`while ${this.spec.name} was starting`);
      const ports = this.child.pid ? listeningPorts(this.child.pid) : [];
      if (ports.length > 0) return ports[0]!;
      if (Date.now() > deadline)
        throw this.failure(
          'MESH_NOT_READY',
          `${this.spec.name} did not listen on any port within ${timeoutMs / 1000} s`,
        );
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  private killGroup(): void {
    try {
      if (this.child.pid) process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      this.child.kill('SIGKILL'); // the group is gone already
    }
  }

  private failure(code: 'MESH_NOT_READY' | 'MESH_SERVICE_ENDED', message: string): MeshError {
    const log = this.recent.map((l) => `\n  | ${l}`).join('');
    return new MeshError(code, `${message}${log ? `; its last lines:${log}` : ''}`, {
      hint: 'the lines above say why; fix the service or its manifest and run veil up again',
    });
  }

  whenExited(): Promise<void> {
    return this.exited ? Promise.resolve() : new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  /** SIGTERM (veil run passes it to the program), then SIGKILL if it has not ended after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exited) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.killGroup(), graceMs);
    await this.whenExited();
    clearTimeout(timer);
  }
}

/** veil up was told to stop (a signal) before the mesh was up. */
export function stopped(when: string): MeshError {
  return new MeshError('MESH_STOPPED', `veil up was stopped ${when}`, {
    hint: 'nothing was left running; run veil up again',
  });
}

export function describe(exit: { code: number | null; signal: NodeJS.Signals | null }): string {
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}
