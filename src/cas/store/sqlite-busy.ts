import Database from 'better-sqlite3';
import { StoreError } from './errors.js';

/**
 * How the SQLite store waits for a write lock another connection holds (another CAS worker with --workers N,
 * `veil cas backup` appending its audit entry): better-sqlite3 is synchronous, so SQLite's own busy handler
 * (busy_timeout) would sleep inside the call and hold the whole event loop — every other client of this process
 * waiting — for as long as the lock is held. The connection therefore serves with busy_timeout = 0, and the
 * operation is tried again here, after an asynchronous, jittered, growing pause, until `deadlineMs` from its
 * first attempt has passed (README "Limits", the store); then it fails with STORE_BUSY (503 to clients).
 */
export interface BusyWait {
  /** In all, from the first attempt; past it the operation fails with STORE_BUSY. */
  deadlineMs: number;
  /** The first pause; each next one doubles, up to `maxDelayMs`. */
  firstDelayMs: number;
  maxDelayMs: number;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  /** In [0, 1): each pause is between half its ceiling and its ceiling, so waiting workers do not retry in step. */
  random: () => number;
}

export const BUSY_WAIT: BusyWait = {
  deadlineMs: 5_000,
  firstDelayMs: 1,
  maxDelayMs: 50,
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: Math.random,
};

/** SQLITE_BUSY and its extended codes (SQLITE_BUSY_SNAPSHOT, _RECOVERY, _TIMEOUT): the lock, not the data. */
export function isBusy(err: unknown): boolean {
  return err instanceof Database.SqliteError && err.code.startsWith('SQLITE_BUSY');
}

/** The pause before attempt `attempt + 2`: ceiling firstDelayMs · 2^attempt, at most maxDelayMs, jittered. */
export function pauseOf(attempt: number, wait: BusyWait): number {
  const ceiling = Math.min(wait.maxDelayMs, wait.firstDelayMs * 2 ** attempt);
  return ceiling / 2 + (wait.random() * ceiling) / 2;
}

/**
 * Runs `unit` — one statement or one whole transaction, which either committed or left nothing — and, while
 * SQLite answers busy, runs it again after a pause. The first attempt is synchronous, so an uncontended call
 * costs no timer; a unit is always re-run whole, never resumed (see SqliteStore's BEGIN IMMEDIATE).
 */
export function whenUnlocked<T>(unit: () => T, wait: BusyWait, where: string): T | Promise<T> {
  const started = wait.now();
  try {
    return unit();
  } catch (err) {
    if (!isBusy(err)) throw err;
    return retry(unit, wait, where, started, err);
  }
}

async function retry<T>(unit: () => T, wait: BusyWait, where: string, started: number, first: unknown): Promise<T> {
  let cause = first;
  for (let attempt = 0; ; attempt++) {
    const left = wait.deadlineMs - (wait.now() - started);
    if (left <= 0) throw stayedBusy(where, wait.deadlineMs, cause);
    await wait.sleep(Math.min(left, pauseOf(attempt, wait)));
    try {
      return unit();
    } catch (err) {
      if (!isBusy(err)) throw err;
      cause = err;
    }
  }
}

function stayedBusy(where: string, deadlineMs: number, cause: unknown): StoreError {
  return new StoreError(
    'STORE_BUSY',
    `the CAS database in ${where} stayed locked by another writer for ${deadlineMs} ms; nothing was changed`,
    {
      hint:
        'another process holds its write lock (another worker of this CAS, or a veil cas command on this data ' +
        'directory): retry; if it lasts, find that process',
      cause,
    },
  );
}
