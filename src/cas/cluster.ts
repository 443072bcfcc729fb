import cluster from 'node:cluster';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_CONNECTION_LIMITS, type ConnectionLimits } from './limits.js';
import { DEFAULT_NONCE_LIMITS, type NonceLimits } from './nonces.js';
import { DEFAULT_FOLLOW_LIMITS, type FollowLimits } from './audit-follow.js';
import { PrimaryLedger, type LedgerAnswer } from './ledger.js';
import { POSTGRES_LIMITS, type PostgresLimits } from './store/index.js';

/**
 * The CAS on every core (README "The CAS on every core"): a primary that binds nothing and N worker processes,
 * each a full CAS on the shared store, listening on one port through node:cluster (Node 20's net has no
 * reusePort). The primary forks, supervises and stops, and keeps the ledger of the slots held per client
 * address and per client key for all workers (ledger.ts); everything here takes its clock and its way of
 * forking as parameters so that the rules can be tested without processes.
 */

/** The slot (1-based) and the number of workers, passed by the primary to each worker it forks. */
export const WORKER_SLOT_ENV = 'VEIL_CAS_WORKER_SLOT';
export const WORKER_COUNT_ENV = 'VEIL_CAS_WORKER_COUNT';

/** One worker's share of a cap documented as a total: the shares together never fall below it by rounding. */
export function shareOf(total: number, workers: number): number {
  return Math.max(1, Math.ceil(total / workers));
}

/**
 * One worker's share of a per-address or per-key rate kept per worker: together they stay within it, except
 * with more workers than the figure (each keeps at least 1, so N in all; README "Limits").
 */
export function floorShareOf(total: number, workers: number): number {
  return Math.max(1, Math.floor(total / workers));
}

/**
 * The caps that README "Limits" states "in all", divided among `workers` processes so that they still hold as
 * totals (up to rounding up), and the per-address and per-key caps that each worker keeps itself (the upload
 * time budget, spent nonces per key), divided rounding down. The per-address and per-key slot caps are not
 * divided: the primary's ledger counts them for all workers together.
 * The PostgreSQL pool is divided too, rounding up: `--store-pool-size` is what this CAS asks of the database,
 * not N times it (the database's max_connections is shared with every replica).
 */
export function workerShares(
  workers: number,
  given: {
    limits: Partial<ConnectionLimits>;
    nonceLimits: Partial<NonceLimits>;
    followLimits?: Partial<FollowLimits> | undefined;
    storeLimits?: Partial<PostgresLimits> | undefined;
  },
): {
  limits: Partial<ConnectionLimits>;
  nonceLimits: Partial<NonceLimits>;
  followLimits: Partial<FollowLimits>;
  storeLimits: Partial<PostgresLimits>;
} {
  const limits = { ...DEFAULT_CONNECTION_LIMITS, ...given.limits };
  const nonces = { ...DEFAULT_NONCE_LIMITS, ...given.nonceLimits };
  const follow = { ...DEFAULT_FOLLOW_LIMITS, ...given.followLimits };
  const pool = { ...POSTGRES_LIMITS, ...given.storeLimits };
  return {
    storeLimits: { ...given.storeLimits, poolSize: shareOf(pool.poolSize, workers) },
    limits: {
      ...given.limits,
      maxConnections: shareOf(limits.maxConnections, workers),
      maxWrites: shareOf(limits.maxWrites, workers),
      writeMsPerSecondPerAddress: floorShareOf(limits.writeMsPerSecondPerAddress, workers),
    },
    nonceLimits: {
      ...given.nonceLimits,
      max: shareOf(nonces.max, workers),
      perClient: floorShareOf(nonces.perClient, workers),
    },
    followLimits: {
      ...given.followLimits,
      waiters: shareOf(follow.waiters, workers),
      strangers: shareOf(follow.strangers, workers),
    },
  };
}

export const CRASH_LOOP = { deaths: 5, windowMs: 30_000 };

/**
 * The crash-loop rule: each call notes one unexpected worker exit and answers whether there were more than
 * `deaths` of them within the last `windowMs` — then forking again would only repeat the failure.
 */
export function crashLoopGuard(now: () => number, rule = CRASH_LOOP): () => boolean {
  const deaths: number[] = [];
  return () => {
    const t = now();
    deaths.push(t);
    while (deaths.length > 0 && deaths[0]! <= t - rule.windowMs) deaths.shift();
    return deaths.length > rule.deaths;
  };
}

/** What a worker tells the primary once it listens. */
export interface ListeningMessage {
  veil: 'listening';
  url: string;
  port: number;
  fingerprint: string;
}

export function isListening(message: unknown): message is ListeningMessage {
  const m = message as Partial<ListeningMessage> | null;
  return typeof m === 'object' && m !== null && m.veil === 'listening' && typeof m.port === 'number';
}

/** A forked worker as the primary sees it (node:cluster's Worker fits). */
export interface WorkerHandle {
  readonly process: { readonly pid?: number | undefined; kill(signal?: NodeJS.Signals): boolean };
  /** Answers the worker's ledger requests; the callback takes the error of a worker already gone. */
  send(message: LedgerAnswer, handle: undefined, options: object, callback: (error: Error | null) => void): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  on(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
}

export interface PrimaryOptions {
  workers: number;
  /** Forks the worker of `slot` (1-based). */
  fork(slot: number): WorkerHandle;
  now(): number;
  out(text: string): void;
  err(text: string): void;
  /** Settles on the first terminating signal. */
  untilSignal(): Promise<unknown>;
  /** How long stopping workers get before SIGKILL. */
  stopTimeoutMs?: number;
  crashLoop?: typeof CRASH_LOOP;
  /**
   * Fork every worker at once: nothing is left for the first to make alone (the master key exists or is
   * given; the CA, audit and session keys are put only if absent, as replicas on one database put them).
   */
  together?: boolean;
}

interface Slot {
  worker: WorkerHandle;
  pid: number | undefined;
  listening?: ListeningMessage;
  exited: Promise<void>;
}

/**
 * The primary: forks worker 1 alone (it may create the master key, the CA, the audit key and the schema), then
 * the others once it listens (all at once with `together`); prints where they listen; replaces a worker that exits; stops on a signal, and
 * exits non-zero when the first worker cannot start or workers die in a loop. Answers the exit code.
 */
export async function runPrimary(options: PrimaryOptions): Promise<number> {
  const slots = new Map<number, Slot>();
  const ledger = new PrimaryLedger();
  const noteDeath = crashLoopGuard(options.now, options.crashLoop);
  let stopping = false;
  let port: number | undefined;
  let fail: (message: string) => void = () => {};
  const fatal = new Promise<string>((resolve) => (fail = resolve));
  const listeners: Array<() => void> = [];
  const started = () => {
    for (const listener of listeners.splice(0)) listener();
  };

  const start = (slot: number): Slot => {
    const worker = options.fork(slot);
    let exit: () => void = () => {};
    const entry: Slot = { worker, pid: worker.process.pid, exited: new Promise<void>((r) => (exit = () => r())) };
    slots.set(slot, entry);
    const holder = ledger.holder();
    const answer = (message: LedgerAnswer) => void worker.send(message, undefined, {}, () => {});
    worker.on('message', (message) => {
      if (ledger.handle(holder, message, answer) || !isListening(message)) return;
      if (port !== undefined && message.port !== port) {
        fail(`worker ${slot} (pid ${entry.pid}) listens on port ${message.port}, not on the shared port ${port}`);
        return;
      }
      port = message.port;
      entry.listening = message;
      started();
    });
    worker.on('exit', (code, signal) => {
      ledger.release(holder);
      exit();
      if (stopping || slots.get(slot) !== entry) return;
      slots.delete(slot);
      const how = signal ?? `code ${code}`;
      if (!entry.listening && port === undefined) {
        fail(`the first CAS worker (pid ${entry.pid}) exited (${how}) before it listened; its error is above`);
        return;
      }
      if (noteDeath()) {
        const rule = options.crashLoop ?? CRASH_LOOP;
        const within = `${rule.deaths} times within ${rule.windowMs / 1000} s`;
        fail(`CAS workers exited more than ${within} (the last: pid ${entry.pid}, ${how}); stopping all`);
        return;
      }
      const replacement = start(slot);
      const line = { level: 'warn', msg: 'CAS worker exited; replaced', worker: slot, pid: entry.pid, code, signal };
      options.out(`${JSON.stringify({ ...line, replacement: replacement.pid })}\n`);
    });
    return entry;
  };

  const allListening = (n: number) => [...slots.values()].filter((s) => s.listening).length >= n;
  const until = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => (allListening(n) ? resolve() : listeners.push(check));
      check();
    });
  const signal = options.untilSignal().then(() => 'signal' as const);
  const outcome = (p: Promise<void>) =>
    Promise.race([p.then(() => 'ok' as const), signal, fatal.then((m) => ({ fatal: m }))]);

  start(1);
  const others = () => {
    for (let slot = 2; slot <= options.workers; slot++) start(slot);
  };
  if (options.together) others();
  let step = await outcome(until(1));
  if (step === 'ok') {
    if (!options.together) others();
    step = await outcome(until(options.workers));
  }
  if (step === 'ok') {
    const first = slots.get(1)?.listening ?? [...slots.values()].find((s) => s.listening)!.listening!;
    const pids = [...slots.keys()].sort((a, b) => a - b).map((k) => slots.get(k)!.pid);
    options.out(
      `CAS listening at ${first.url}\nCA fingerprint (SHA-256): ${first.fingerprint}\n` +
        `${options.workers} worker processes (pids ${pids.join(', ')})\n`,
    );
    step = await Promise.race([signal, fatal.then((m) => ({ fatal: m }))]);
  }
  stopping = true;
  await stopAll([...slots.values()], options.stopTimeoutMs ?? 15_000);
  if (typeof step === 'object') {
    options.err(`veil: ${step.fatal}\n`);
    return 1;
  }
  return 0;
}

/** SIGTERM to every worker (each closes, recording cas.stopped), SIGKILL to those still there after `ms`. */
async function stopAll(slots: Slot[], ms: number): Promise<void> {
  for (const s of slots) s.worker.process.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ms)));
  const all = Promise.all(slots.map((s) => s.exited));
  if ((await Promise.race([all, late])) === 'late') {
    for (const s of slots) s.worker.process.kill('SIGKILL');
    await all;
  }
  clearTimeout(timer);
}

/**
 * Whether worker 1 has nothing to make alone (runPrimary's `together`): the one thing two workers starting at
 * once could make twice is the master key file of a new SQLite data directory — every key in the store is put
 * only if absent, the key check and the schema are idempotent. A restart finds the file; PostgreSQL and a
 * given key need none.
 */
export function initializedStore(o: {
  dataDir: string;
  store?: string | undefined;
  masterKeyFile?: string | undefined;
  masterKeyEnv?: string | undefined;
}): boolean {
  if (o.store !== undefined || o.masterKeyFile || o.masterKeyEnv) return true;
  return existsSync(join(o.dataDir, 'master.key'));
}

/** Forks worker `slot` of `count` with node:cluster: the same command line, the slot in the environment. */
export function clusterFork(count: number): (slot: number) => WorkerHandle {
  return (slot) => cluster.fork({ [WORKER_SLOT_ENV]: String(slot), [WORKER_COUNT_ENV]: String(count) });
}

/** In a worker forked by the primary: its slot and the number of workers; undefined in a single process. */
export function workerSlotOf(env: NodeJS.ProcessEnv): { slot: number; count: number } | undefined {
  if (!cluster.isWorker) return undefined;
  const slot = Number(env[WORKER_SLOT_ENV]);
  const count = Number(env[WORKER_COUNT_ENV]);
  if (!Number.isSafeInteger(slot) || !Number.isSafeInteger(count) || slot < 1 || count < slot) return undefined;
  return { slot, count };
}

/** How long a worker whose primary died may take to close before it exits anyway. */
const ORPHAN_EXIT_MS = 10_000;

/**
 * A worker's life: start the CAS, tell the primary where it listens, serve until a signal or until the primary
 * is gone (its IPC channel closes: no orphan stays behind, it could take no new connection anyway since the
 * primary holds the listening socket), then close gracefully (`cas.stopped` recorded).
 */
export async function serveAsWorker(
  start: () => Promise<{ url: string; port: number; identity: { fingerprint: string }; close(): Promise<void> }>,
  untilSignal: () => Promise<unknown>,
): Promise<number> {
  let orphaned: () => void = () => {};
  const primaryGone = new Promise<void>((resolve) => (orphaned = () => resolve()));
  // Before node:cluster's own listener, which would exit at once without closing the CAS.
  process.prependListener('disconnect', () => {
    if (cluster.worker) cluster.worker.exitedAfterDisconnect = true;
    setTimeout(() => process.exit(0), ORPHAN_EXIT_MS).unref();
    orphaned();
  });
  let cas: Awaited<ReturnType<typeof start>>;
  try {
    cas = await start();
  } catch (err) {
    // The IPC channel would keep this process alive after the CLI reports the error: the primary waits for
    // this exit to report a startup failure instead of hanging.
    if (process.connected) process.disconnect();
    throw err;
  }
  const message: ListeningMessage = {
    veil: 'listening',
    url: cas.url,
    port: cas.port,
    fingerprint: cas.identity.fingerprint,
  };
  if (process.connected) process.send?.(message, undefined, {}, () => {});
  await Promise.race([untilSignal(), primaryGone]);
  await cas.close();
  if (process.connected) process.disconnect();
  return 0;
}
