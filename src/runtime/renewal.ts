import type { RuntimeConfig } from './attest.js';
import type { Running } from './launch.js';
import {
  RENEW_MARGIN_MS,
  MAX_BACKOFF_MS,
  backoff,
  callAt,
  certificateExpiry,
  renewalAction,
  type Timers,
} from './renewal-rules.js';

/** After SIGTERM, a program being restarted gets this long before SIGKILL. */
export const RESTART_GRACE_MS = 5_000;
/** How often a stopped program's group is checked for processes that outlived it (during the grace period). */
export const GROUP_POLL_MS = 100;
const TERMINATING = new Set<NodeJS.Signals>(['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT']);

export interface SupervisorDeps {
  start(config: RuntimeConfig): Promise<Running>;
  /** A fresh attestation (new nonce, new evidence), checked as at start. */
  reattest(): Promise<RuntimeConfig>;
  rewrite(running: Running, files: RuntimeConfig['injectionFiles']): Promise<void> | void;
  timers: Timers;
  log(line: string): void;
  graceMs?: number;
}

/**
 * Keeps a long-running program's injected certificates fresh: at the CAS's `renew_at` (+ a margin) it attests
 * again and rewrites the files in the program's namespace, or restarts the program (policy `renewal: restart`,
 * or anything but file contents changed). Driven by the clock alone, never by the program's traffic. A failed
 * renewal is retried with backoff; past the certificates' expiry the program keeps running with its stale files
 * (said on stderr) and retries go on, so the first answer of the CAS heals it. run() resolves with the
 * program's own exit status; a restart is not an exit.
 */
export class Supervisor {
  private running: Running | undefined;
  private restarting = false;
  private stopping = false;
  /** A terminating signal came: the program's whole group ends with it (SIGKILL after the grace period). */
  private signalled = false;
  private cancel: (() => void) | undefined;
  private failures = 0;
  private expiredSaid = false;
  private finish: ((code: number) => void) | undefined;
  private fail: ((err: unknown) => void) | undefined;

  constructor(
    private config: RuntimeConfig,
    private readonly deps: SupervisorDeps,
  ) {}

  async run(): Promise<number> {
    const done = new Promise<number>((resolve, reject) => {
      this.finish = resolve;
      this.fail = reject;
    });
    this.watch(await this.deps.start(this.config));
    this.scheduleFrom(this.config);
    return done;
  }

  /** A signal for the program; the terminating ones also end renewal (no restart starts after them). */
  signal(signal: NodeJS.Signals): void {
    if (TERMINATING.has(signal)) {
      this.stopping = true;
      this.signalled = true;
      this.cancel?.();
    }
    this.running?.kill(signal);
  }

  private watch(running: Running): void {
    this.running = running;
    running.exited.then(
      async (code) => {
        if (this.running !== running || this.restarting) return;
        this.stopping = true;
        this.cancel?.();
        if (this.signalled) await this.drain(running, this.deps.timers.now() + this.grace());
        this.finish?.(code);
      },
      (err) => this.fail?.(err),
    );
  }

  private scheduleFrom(config: { renew_at?: number }): void {
    if (config.renew_at === undefined) return;
    const at = config.renew_at + RENEW_MARGIN_MS;
    this.deps.log(`[VEIL|INFO] certificates are renewed at ${iso(at)}: veil run attests again then`);
    this.after(at);
  }

  private after(at: number): void {
    if (this.stopping) return;
    this.cancel?.();
    this.cancel = callAt(this.deps.timers, at, () => void this.renew());
  }

  private async renew(): Promise<void> {
    let next: RuntimeConfig;
    try {
      next = await this.deps.reattest();
      if (this.stopping) return;
      await this.apply(next);
    } catch (err) {
      if (!this.stopping) this.retry(err);
      return;
    }
    const now = this.deps.timers.now();
    if (next.renew_at !== undefined && next.renew_at + RENEW_MARGIN_MS <= now) {
      this.retry(new Error(`the CAS answered with renew_at ${iso(next.renew_at)}, which has passed (clocks apart?)`));
      return;
    }
    this.failures = 0;
    this.expiredSaid = false;
    this.scheduleFrom(next);
  }

  private async apply(next: RuntimeConfig): Promise<void> {
    const action = renewalAction(this.config, next);
    if (action.kind === 'none') return;
    const running = this.running!;
    if (action.kind === 'rewrite') {
      try {
        await running.started;
        await this.deps.rewrite(running, next.injectionFiles);
        this.config = next;
        this.deps.log(`[VEIL|INFO] renewed: ${next.injectionFiles.length} injected files rewritten in place`);
        return;
      } catch (err) {
        // Never left with stale files: a fresh start places them as at launch.
        this.deps.log(`[VEIL|WARNING] cannot rewrite the injected files (${(err as Error).message}): restarting`);
      }
    } else this.deps.log(`[VEIL|INFO] renewed: restarting the program (${action.why})`);
    await this.restart(next);
  }

  /** SIGTERM, SIGKILL after the grace period, then the program again with the new configuration. */
  private async restart(next: RuntimeConfig): Promise<void> {
    const old = this.running!;
    this.restarting = true;
    old.kill('SIGTERM');
    const deadline = this.deps.timers.now() + this.grace();
    const kill = callAt(this.deps.timers, deadline, () => old.kill('SIGKILL'));
    const code = await old.exited.catch(() => 1);
    kill();
    await this.drain(old, deadline);
    if (this.stopping) {
      this.finish?.(code); // a signal came while it stopped: that was its end, not a restart
      return;
    }
    let fresh: Running;
    try {
      fresh = await this.deps.start(next);
    } catch (err) {
      this.stopping = true;
      this.fail?.(err);
      return;
    }
    this.config = next;
    this.restarting = false;
    this.watch(fresh);
    if (this.stopping) fresh.kill('SIGTERM'); // a signal came while it started
  }

  private grace(): number {
    return this.deps.graceMs ?? RESTART_GRACE_MS;
  }

  /**
   * Waits until nothing of the program's group is left, up to `deadline`, then SIGKILLs what is: a child that
   * outlived the program must not keep the old secrets and ports (they had SIGTERM with the program).
   */
  private async drain(running: Running, deadline: number): Promise<void> {
    if (!running.lingering()) return;
    // The timers are unref'd and the program is gone: this keeps veil run alive until its group is.
    const hold = setInterval(() => undefined, GROUP_POLL_MS);
    try {
      while (running.lingering() && this.deps.timers.now() < deadline) {
        const next = Math.min(deadline, this.deps.timers.now() + GROUP_POLL_MS);
        await new Promise<void>((resolve) => callAt(this.deps.timers, next, resolve));
      }
      if (running.lingering()) running.kill('SIGKILL');
    } finally {
      clearInterval(hold);
    }
  }

  private retry(err: unknown): void {
    const now = this.deps.timers.now();
    const expiry = certificateExpiry(this.config);
    const wait = expiry !== undefined && now >= expiry ? MAX_BACKOFF_MS : backoff(this.failures++);
    const until = expiry !== undefined && now < expiry ? Math.min(now + wait, expiry) : now + wait;
    const expires = expiry === undefined ? '' : `; the certificates expire at ${iso(expiry)}`;
    this.deps.log(`[VEIL|WARNING] renewal failed (${(err as Error).message}); retrying at ${iso(until)}${expires}`);
    if (expiry !== undefined && now >= expiry && !this.expiredSaid) {
      this.expiredSaid = true;
      this.deps.log(
        `[VEIL|ERROR] the injected certificates EXPIRED at ${iso(expiry)}: the program keeps running with them ` +
          `and peers will refuse it until a renewal succeeds (retrying every ${MAX_BACKOFF_MS / 1000} s)`,
      );
    }
    this.after(until);
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
