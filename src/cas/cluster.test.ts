import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { crashLoopGuard, runPrimary, shareOf, workerShares, type WorkerHandle } from './cluster.js';

describe('shares of the caps stated in all', () => {
  it('is ceil(total / workers), at least 1', () => {
    assert.equal(shareOf(1024, 2), 512);
    assert.equal(shareOf(5, 2), 3);
    assert.equal(shareOf(4, 3), 2);
    assert.equal(shareOf(1, 4), 1);
    assert.equal(shareOf(100_000, 1), 100_000);
  });

  it('divides the totals (defaults and flags) and leaves per-address and per-key caps whole', () => {
    const shares = workerShares(2, {
      limits: { maxWrites: 7, maxConnectionsPerAddress: 10, maxWritesPerAddress: 3 },
      nonceLimits: { perClient: 16 },
    });
    // Defaults: 1024 connections, 100,000 spent nonces, 64 audit followers of which 8 strangers.
    assert.equal(shares.limits.maxConnections, 512);
    assert.equal(shares.limits.maxWrites, 4);
    assert.equal(shares.nonceLimits.max, 50_000);
    assert.equal(shares.followLimits.waiters, 32);
    assert.equal(shares.followLimits.strangers, 4);
    assert.equal(shares.limits.maxConnectionsPerAddress, 10);
    assert.equal(shares.limits.maxWritesPerAddress, 3);
    assert.equal(shares.nonceLimits.perClient, 16);
    // PostgreSQL's pool: 10 connections by default, so 5 each; the other store limits are per connection.
    assert.equal(shares.storeLimits.poolSize, 5);
    const given = workerShares(3, { limits: {}, nonceLimits: {}, storeLimits: { poolSize: 7, connectTimeoutMs: 900 } });
    assert.deepEqual(given.storeLimits, { poolSize: 3, connectTimeoutMs: 900 });
  });

  it('keeps the totals whole with one worker', () => {
    const shares = workerShares(1, { limits: { maxConnections: 9 }, nonceLimits: {} });
    assert.equal(shares.limits.maxConnections, 9);
    assert.equal(shares.limits.maxWrites, 4);
    assert.equal(shares.storeLimits.poolSize, 10);
  });
});

describe('the crash-loop rule', () => {
  it('trips at the sixth death within 30 s, not before, and forgets deaths older than the window', () => {
    let t = 0;
    const died = crashLoopGuard(() => t);
    for (let i = 0; i < 5; i++) {
      assert.equal(died(), false, `death ${i + 1}`);
      t += 1_000;
    }
    assert.equal(died(), true);
    const slow = crashLoopGuard(() => t);
    for (let i = 0; i < 20; i++) {
      assert.equal(slow(), false);
      t += 7_000; // five deaths within any 30 s at most
    }
  });
});

/** A worker that the test drives: listens, exits, and records the signals it is sent. */
class FakeWorker extends EventEmitter {
  readonly signals: string[] = [];
  exited = false;
  /** Ignores SIGTERM (a worker stuck closing). */
  stubborn = false;
  readonly process: WorkerHandle['process'];
  constructor(
    readonly slot: number,
    pid: number,
  ) {
    super();
    this.process = {
      pid,
      kill: (signal?: NodeJS.Signals) => {
        this.signals.push(signal ?? 'SIGTERM');
        if (this.stubborn && signal !== 'SIGKILL') return true;
        if (!this.exited) setImmediate(() => this.exit(null, signal ?? 'SIGTERM'));
        return true;
      },
    };
  }
  listen(port = 4000) {
    this.emit('message', { veil: 'listening', url: `https://127.0.0.1:${port}`, port, fingerprint: 'f'.repeat(64) });
  }
  exit(code: number | null, signal: string | null = null) {
    if (this.exited) return;
    this.exited = true;
    this.emit('exit', code, signal);
  }
}

function primary(workers: number, opts: { now?: () => number } = {}) {
  const forked: FakeWorker[] = [];
  let pid = 100;
  let signal: () => void = () => {};
  let out = '';
  let err = '';
  const code = runPrimary({
    workers,
    fork: (slot) => {
      const w = new FakeWorker(slot, pid++);
      forked.push(w);
      return w;
    },
    now: opts.now ?? (() => 0),
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    untilSignal: () => new Promise<void>((r) => (signal = () => r())),
    stopTimeoutMs: 50,
  });
  const tick = () => new Promise((r) => setImmediate(r));
  return { forked, code, signal: () => signal(), out: () => out, err: () => err, tick };
}

describe('the primary', () => {
  it('forks the others only once the first listens, prints once, and stops all with SIGTERM on a signal', async () => {
    const p = primary(3);
    await p.tick();
    assert.equal(p.forked.length, 1, 'the first worker starts alone');
    p.forked[0]!.listen();
    await p.tick();
    assert.equal(p.forked.length, 3);
    p.forked[1]!.listen();
    await p.tick();
    assert.equal(p.out(), '', 'nothing printed before every worker listens');
    p.forked[2]!.listen();
    await p.tick();
    assert.match(p.out(), /^CAS listening at https:\/\/127\.0\.0\.1:4000\nCA fingerprint \(SHA-256\): f{64}\n/);
    assert.match(p.out(), /3 worker processes \(pids 100, 101, 102\)/);
    p.signal();
    assert.equal(await p.code, 0);
    for (const w of p.forked) assert.deepEqual(w.signals, ['SIGTERM']);
  });

  it('replaces a worker that exits, in its slot, and logs its pid and exit status', async () => {
    const p = primary(2);
    await p.tick();
    p.forked[0]!.listen();
    await p.tick();
    p.forked[1]!.listen();
    await p.tick();
    p.forked[1]!.exit(null, 'SIGKILL');
    await p.tick();
    assert.equal(p.forked.length, 3);
    assert.equal(p.forked[2]!.slot, 2);
    const line = JSON.parse(p.out().trim().split('\n').at(-1)!);
    assert.deepEqual(
      { pid: line.pid, signal: line.signal, worker: line.worker, replacement: line.replacement },
      { pid: 101, signal: 'SIGKILL', worker: 2, replacement: 102 },
    );
    p.signal();
    assert.equal(await p.code, 0);
  });

  it('stops all and exits non-zero when workers die in a loop', async () => {
    const p = primary(2);
    await p.tick();
    p.forked[0]!.listen();
    await p.tick();
    p.forked[1]!.listen();
    await p.tick();
    for (let i = 0; i < 6; i++) {
      p.forked.at(-1)!.exit(1);
      await p.tick();
    }
    assert.equal(await p.code, 1);
    assert.match(p.err(), /more than 5 times within 30 s/);
    assert.deepEqual(p.forked[0]!.signals, ['SIGTERM'], 'the survivor is stopped');
    assert.equal(p.forked.length, 2 + 5, 'five replacements, no sixth');
  });

  it('exits non-zero, without forking the others, when the first worker fails to start', async () => {
    const p = primary(4);
    await p.tick();
    p.forked[0]!.exit(1);
    assert.equal(await p.code, 1);
    assert.equal(p.forked.length, 1);
    assert.match(p.err(), /first CAS worker \(pid 100\) exited \(code 1\) before it listened/);
  });

  it('refuses workers that do not share one port', async () => {
    const p = primary(2);
    await p.tick();
    p.forked[0]!.listen(4000);
    await p.tick();
    p.forked[1]!.listen(4001);
    assert.equal(await p.code, 1);
    assert.match(p.err(), /port 4001, not on the shared port 4000/);
  });

  it('kills with SIGKILL a worker that does not stop in time', async () => {
    const p = primary(1);
    await p.tick();
    const w = p.forked[0]!;
    w.listen();
    await p.tick();
    w.stubborn = true;
    p.signal();
    assert.equal(await p.code, 0);
    assert.deepEqual(w.signals, ['SIGTERM', 'SIGKILL']);
  });
});
