import { X509Certificate } from 'node:crypto';
import type { RuntimeConfig } from './attest.js';

/**
 * When and whether `veil run` renews: pure rules, so the supervisor (renewal.ts) is tested with a fake clock.
 * The CAS says when to come back (`renew_at`: the first released certificate at two thirds of its lifetime).
 */

/** Attest this long after `renew_at`: a CAS whose clock is behind ours still finds the certificate due. */
export const RENEW_MARGIN_MS = 1_000;
/** Retries after a failed renewal: 1 s, doubling, at most this (also the pace after expiry). */
export const MAX_BACKOFF_MS = 30_000;
/** setTimeout's delay is a signed 32-bit number of ms (≈ 24.8 days): longer waits are chained. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Calls `fn` at `at` (ms since the epoch) by the clock of `timers`, however far away; returns a cancel. */
export function callAt(timers: Timers, at: number, fn: () => void): () => void {
  let handle: unknown;
  const arm = () => {
    const delay = Math.max(0, at - timers.now());
    handle = delay > MAX_TIMER_MS ? timers.setTimeout(arm, MAX_TIMER_MS) : timers.setTimeout(fn, delay);
  };
  arm();
  return () => timers.clearTimeout(handle);
}

/** The wait before retry number `attempt` (0-based) after a failure. */
export function backoff(attempt: number): number {
  return Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(attempt, 30));
}

/**
 * When the first certificate in the injected files expires (ms since the epoch), or undefined when they hold
 * none. Node's own X509Certificate: veil run loads no npm package.
 */
export function certificateExpiry(config: RuntimeConfig): number | undefined {
  let first: number | undefined;
  for (const file of config.injectionFiles) {
    const text = Buffer.from(file.content, 'base64').toString('latin1');
    for (const pem of text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []) {
      const notAfter = parseNotAfter(pem);
      if (notAfter !== undefined && (first === undefined || notAfter < first)) first = notAfter;
    }
  }
  return first;
}

function parseNotAfter(pem: string): number | undefined {
  try {
    return Date.parse(new X509Certificate(pem).validTo);
  } catch {
    return undefined; // not a certificate after all: nothing to renew in it
  }
}

/** What a new answer asks of the running program. */
export type RenewalAction = { kind: 'none' } | { kind: 'rewrite' } | { kind: 'restart'; why: string };

/**
 * Only injected file contents can change under a running program. Anything else (command, environment,
 * working directory, the files' paths or modes, the shield, the renewal field) restarts it: a program never
 * keeps running a stale command. Reasons name fields, never values (they may hold secrets).
 */
export function renewalAction(old: RuntimeConfig, next: RuntimeConfig): RenewalAction {
  const changed = changedField(old, next);
  if (changed) return { kind: 'restart', why: `${changed} changed` };
  const same = old.injectionFiles.every((f, i) => f.content === next.injectionFiles[i]!.content);
  if (same) return { kind: 'none' };
  return next.renewal === 'restart'
    ? { kind: 'restart', why: 'the policy says renewal: restart' }
    : { kind: 'rewrite' };
}

function changedField(old: RuntimeConfig, next: RuntimeConfig): string | undefined {
  if (!sameList(old.command, next.command)) return 'the command';
  if (!sameRecord(old.environment, next.environment)) return 'the environment';
  if (old.pwd !== next.pwd) return 'the working directory';
  const files = (c: RuntimeConfig) => c.injectionFiles.map((f) => `${f.mode}:${f.path}`);
  if (!sameList(files(old), files(next))) return "the injected files' paths or modes";
  const fspf = (c: RuntimeConfig) => [c.fspf?.path ?? '', c.fspf?.key ?? '', c.fspf?.tag ?? ''];
  if (!sameList(fspf(old), fspf(next))) return 'the file-system shield';
  if ((old.renewal ?? 'rewrite') !== (next.renewal ?? 'rewrite')) return 'the renewal field';
  return undefined;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}
