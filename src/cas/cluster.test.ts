import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crashLoopGuard, initializedStore, runPrimary, shareOf, workerShares, type WorkerHandle } from './cluster.js';

describe('shares of the caps stated in all', () => {
  it('is ceil(total / workers), at least 1', () => {
    assert.equal(shareOf(1024, 2), 512);
    assert.equal(shareOf(5, 2), 3);
    assert.equal(shareOf(4, 3), 2);
    assert.equal(shareOf(1, 4), 1);
    assert.equal(shareOf(100_000, 1), 100_000);
  });

  it('divides the totals and the per-worker rates, and leaves the slot caps the ledger counts whole', () => {
    const shares = workerShares(2, {
      limits: { maxWrites: 7, maxConnectionsPerAddress: 10, maxWritesPerAddress: 3 },
      nonceLimits: { perClient: 17 },
    });
    // Defaults: 1024 connections, 100,000 spent nonces, 64 audit followers of which 8 strangers.
    assert.equal(shares.limits.maxConnections, 512);
    assert.equal(shares.limits.maxWrites, 4);
    assert.equal(shares.nonceLimits.max, 50_000);
    assert.equal(shares.followLimits.waiters, 32);
    assert.equal(shares.followLimits.strangers, 4);
    assert.equal(shares.limits.maxConnectionsPerAddress, 10);
    assert.equal(shares.limits.maxWritesPerAddress, 3);
    assert.equal(shares.followLimits.waitersPerClient, undefined, 'the default: counted by the ledger');
    // Kept per worker, so divided rounding down: together never more than the figure stated.
    assert.equal(shares.nonceLimits.perClient, 8);
    assert.equal(shares.limits.writeMsPerSecondPerAddress, 125);
    assert.equal(
      workerShares(3, { limits: { writeMsPerSecondPerAddress: 2 }, nonceLimits: {} }).limits.writeMsPerSecondPerAddress,
      1,
      'at least 1',
    );
    // PostgreSQL's pool: 10 connections by default, so 5 each; the other store limits are per connection.
    assert.equal(shares.storeLimits.poolSize, 5);
    const given = workerShares(3, { limits: {}, nonceLimits: {}, storeLimits: { poolSize: 7, connectTimeoutMs: 900 } });
    assert.deepEqual(given.storeLimits, { poolSize: 3, connectTimeoutMs: 900 });
  });

  it('keeps the totals whole with one worker', () => {
    const shares = workerShares(1, { limits: { maxConnections: 9 }, nonceLimits: {} });
    assert.equal(shares.limits.maxConnections, 9);
    assert.equal(shares.limits.maxWrites, 4);
    assert.equal(shares.limits.writeMsPerSecondPerAddress, 250);
    assert.equal(shares.nonceLimits.perClient, 16);
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
  /** What the primary sent this worker (ledger answers). */
  readonly received: unknown[] = [];
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
  send(message: unknown, _handle: undefined, _options: object, callback: (error: Error | null) => void) {
    if (this.exited) {
      setImmediate(() => callback(new Error('channel closed')));
      return false;
    }
    this.received.push(message);
    setImmediate(() => callback(null));
    return true;
  }
  /** Asks the primary for a slot as a worker's IpcLedger would; answers the primary's yes or no. */
  take(id: number, key: string, cap = 1): boolean | undefined {
    this.emit('message', { veil: 'ledger-take', id, kind: 'connection', key, cap });
    const answer = this.received.find((m) => (m as { id?: number }).id === id) as { ok: boolean } | undefined;
    return answer?.ok;
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

/** A primary with two workers, both listening (worker 1 first, as on a new store). */
async function twoListening(): Promise<ReturnType<typeof primary>> {
  const p = primary(2);
  await p.tick();
  p.forked[0]!.listen();
  await p.tick();
  p.forked[1]!.listen();
  await p.tick();
  return p;
}

function primary(workers: number, opts: { now?: () => number; together?: boolean } = {}) {
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
    ...(opts.together ? { together: true } : {}),
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

  it('forks every worker at once when the store needs no first-time initialization', async () => {
    const p = primary(3, { together: true });
    await p.tick();
    assert.equal(p.forked.length, 3);
    for (const w of p.forked) w.listen();
    await p.tick();
    assert.match(p.out(), /3 worker processes \(pids 100, 101, 102\)/);
    p.signal();
    assert.equal(await p.code, 0);
  });

  it('replaces a worker that exits, in its slot, and logs its pid and exit status', async () => {
    const p = await twoListening();
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
    const p = await twoListening();
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

  it("keeps one ledger for all workers and frees all of a worker's slots when it exits", async () => {
    const p = await twoListening();
    const [a, b] = [p.forked[0]!, p.forked[1]!];
    assert.equal(b.take(1, '10.0.0.1', 2), true);
    assert.equal(b.take(2, '10.0.0.1', 2), true);
    assert.equal(a.take(1, '10.0.0.1', 2), false, 'the cap holds across workers');
    assert.equal(a.take(2, '10.0.0.2', 2), true, 'another address has its own count');
    b.exit(null, 'SIGKILL');
    await p.tick();
    assert.equal(a.take(3, '10.0.0.1', 2), true, "the dead worker's slots are free");
    assert.equal(a.take(4, '10.0.0.1', 2), true);
    assert.equal(a.take(5, '10.0.0.1', 2), false);
    b.emit('message', { veil: 'ledger-take', id: 9, kind: 'connection', key: '10.0.0.3', cap: 1 });
    assert.equal(p.forked[2]!.take(1, '10.0.0.3', 1), true, 'a late message of the dead worker took nothing');
    p.signal();
    assert.equal(await p.code, 0);
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

describe('which stores need their first worker alone', () => {
  it('a new SQLite data directory (its master key file is made by the first worker), not one made before', () => {
    const dir = mkdtempSync(join(tmpdir(), 'veil-cluster-'));
    try {
      assert.equal(initializedStore({ dataDir: dir }), false);
      assert.equal(initializedStore({ dataDir: join(dir, 'absent') }), false);
      writeFileSync(join(dir, 'master.key'), `${'ab'.repeat(32)}\n`, { mode: 0o600 });
      assert.equal(initializedStore({ dataDir: dir }), true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('none when the key is given or the store is PostgreSQL (keys put only if absent, as replicas put them)', () => {
    const dir = join(tmpdir(), 'veil-cluster-never-made');
    assert.equal(initializedStore({ dataDir: dir, masterKeyFile: '/k' }), true);
    assert.equal(initializedStore({ dataDir: dir, masterKeyEnv: 'ab'.repeat(32) }), true);
    assert.equal(initializedStore({ dataDir: dir, store: 'postgres://veil@db:5432/cas' }), true);
  });
});
