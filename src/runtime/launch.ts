import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { constants } from 'node:os';
import type { RuntimeConfig } from './attest.js';
import { RuntimeError } from './errors.js';
import { HELPER_SOURCE } from './helper.js';
import { PDEATHSIG } from './parent-death.js';
import { encodePlan, launchPlan } from './plan.js';

const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/** unshare's arguments for a private mount namespace (inside a user namespace when not root). */
function unshareArgs(): string[] {
  const base = ['--mount', '--propagation', 'private'];
  return process.getuid?.() === 0 ? base : ['--user', '--map-root-user', ...base];
}

/** Whether a private mount namespace can be made here; started early, it runs while attestation does. */
export function namespacesWork(): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = spawn('unshare', [...unshareArgs(), 'true'], { stdio: 'ignore' });
    probe.on('error', () => resolve(false));
    probe.on('exit', (code) => resolve(code === 0));
  });
}

export interface LaunchOptions {
  insecureNoNamespace: boolean;
  /** The result of namespacesWork(), when the caller started the probe earlier. */
  namespaces?: Promise<boolean>;
  hosts?: Record<string, string> | undefined;
}

/** A started program: what renewal needs to rewrite its files, stop it or wait for it. */
export interface Running {
  pid: number;
  /** Its exit status (128 + n for signal n). */
  exited: Promise<number>;
  /** Resolves once the helper has exec'd the program: every mount of its namespace is in place. */
  started: Promise<void>;
  /** Whether it runs in a private namespace (its files are then reached through /proc/<pid>/root). */
  secure: boolean;
  /** Sends `signal` to the program's whole process group: its children too, never only the leader. */
  kill(signal: NodeJS.Signals): void;
  /** Whether a process of its group is still there (a child that outlived the program, say). */
  lingering(): boolean;
}

/**
 * Starts the program through the namespace helper and resolves with its exit status (128 + n for signal n).
 * The program replaces the helper, so it is this process's child: signals go straight to it, and it gets
 * SIGKILL from the kernel if this process dies without passing one on (parent-death.ts). Without
 * namespaces it refuses, unless the caller passed the explicitly insecure flag.
 */
export async function launch(config: RuntimeConfig, programFd: number, opts: LaunchOptions): Promise<number> {
  const running = await startProgram(config, programFd, opts);
  const forward = (signal: NodeJS.Signals) => running.kill(signal);
  for (const signal of SIGNALS) process.on(signal, forward);
  try {
    return await running.exited;
  } finally {
    for (const s of SIGNALS) process.off(s, forward);
  }
}

/** Starts the program as launch() does, and hands it back running (the caller forwards signals). */
export async function startProgram(config: RuntimeConfig, programFd: number, opts: LaunchOptions): Promise<Running> {
  const secure = await (opts.namespaces ?? namespacesWork());
  if (!secure && !opts.insecureNoNamespace) {
    throw new RuntimeError('RUNTIME_NAMESPACE', 'cannot create a private mount namespace for the injected files', {
      hint: 'run as root or enable unprivileged user namespaces; --INSECURE-no-namespace writes secrets to the host file system',
    });
  }
  const plan = encodePlan(launchPlan(config, { secure, hosts: opts.hosts }));
  // The helper checks that its parent is still this process: the death signal then certainly applies.
  const helper = ['perl', '-e', HELPER_SOURCE, 'veil-launch', String(process.pid)];
  const [command, ...args] = [...PDEATHSIG, ...(secure ? ['unshare', ...unshareArgs(), '--'] : []), ...helper];
  // detached: the helper, and the program it becomes, lead a process group of their own, so a restart or
  // veil run's end reaches the program's children too (they hold the old secrets and ports).
  const child = spawn(command!, args, {
    detached: true,
    stdio: ['inherit', 'inherit', 'inherit', 'pipe', programFd, 'pipe'],
    env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  const planPipe = child.stdio[3] as NodeJS.WritableStream;
  planPipe.on('error', () => undefined); // a helper that died early (EPIPE) reports through its exit status
  planPipe.end(plan);
  const exited = new Promise<number>((resolve, reject) => {
    const hint = 'install util-linux ≥ 2.33 (unshare, setpriv) and perl';
    const helperError = (err: Error) => `cannot start the namespace helper (${err.message})`;
    child.on('error', (err) => reject(new RuntimeError('RUNTIME_NAMESPACE', helperError(err), { hint, cause: err })));
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
  const ready = (child.stdio as unknown[])[5] as NodeJS.ReadableStream;
  const started = new Promise<void>((resolve) => {
    ready.on('error', () => undefined);
    ready.on('close', () => resolve());
    ready.resume();
  });
  await new Promise<void>((resolve) => {
    child.once('spawn', resolve);
    exited.catch(() => resolve());
  });
  const pid = child.pid ?? 0;
  return { pid, exited, started, secure, kill: (signal) => signalGroup(pid, signal), lingering: () => groupAlive(pid) };
}

/** kill(-pgid): the group the detached helper leads; ESRCH (nobody left) is no error. */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  if (pgid <= 0) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * A live member of the group: kill(-pgid, 0) also succeeds for zombies (an orphan waiting for a reaper that
 * may never come in a container), which hold no secret or port any more, so /proc tells the states apart.
 */
function groupAlive(pgid: number): boolean {
  if (!signalGroup(pgid, 0)) return false;
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') return true;
  }
  return false;
}
