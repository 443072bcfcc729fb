/**
 * `npm run bench:store-busy`: what a CAS worker's event loop suffers while its writes meet another process's
 * SQLite write lock (another worker, `veil cas backup`), the store's asynchronous wait beside the blocking wait
 * it replaced (SQLite's busy_timeout = 5000 on the calling thread), in one run on one file.
 *
 * A child process takes the write lock BENCH_HOLDS times for BENCH_HOLD_MS each (BENCH_GAP_MS apart); meanwhile
 * this process writes in a loop and measures its own event-loop delay (perf_hooks). The blocking design stalls
 * the loop for as long as the lock is held — every other client of the worker waits that long; the store's
 * wait should keep the stall near what one write costs.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { loadMasterKey, openSqliteStore } from '../cas/store/index.js';

const HOLD_MS = Number(process.env['BENCH_HOLD_MS'] ?? 200);
const HOLDS = Number(process.env['BENCH_HOLDS'] ?? 5);
const GAP_MS = Number(process.env['BENCH_GAP_MS'] ?? 100);

interface Result {
  writes: number;
  maxStallMs: number;
  p99StallMs: number;
  writeP50Ms: number;
  writeMaxMs: number;
  cpuMsEach: number;
}

/**
 * The other process: takes the write lock, holds it asleep (Atomics.wait: it takes no core from this one on a
 * small machine), lets go. Without `lock` it only sleeps as long: the same run's floor, with no lock held.
 */
function holdLocks(file: string, lock: boolean): Promise<void> {
  const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
  const script = `const db = new (require(${JSON.stringify(sqlite)}))(${JSON.stringify(file)});
    (async () => { for (let i = 0; i < ${HOLDS}; i++) {
      await new Promise((r) => setTimeout(r, ${GAP_MS}));
      if (${lock}) db.exec('BEGIN IMMEDIATE');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${HOLD_MS});
      if (${lock}) db.exec('COMMIT');
    } db.close(); })();`;
  const child = spawn(process.execPath, ['-e', script], { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`the lock holder exited with ${code}`))));
  });
}

async function phase(file: string, write: (i: number) => unknown, lock = true): Promise<Result> {
  let done = false;
  const holder = holdLocks(file, lock).finally(() => {
    done = true;
  });
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const cpu = process.cpuUsage();
  const latencies: number[] = [];
  for (let i = 0; !done; i++) {
    const t = performance.now();
    await write(i);
    latencies.push(performance.now() - t);
    // Other clients' turn, as on a CAS serving many: the stall is what they see.
    await new Promise((resolve) => setImmediate(resolve));
  }
  await holder;
  delay.disable();
  const used = process.cpuUsage(cpu);
  latencies.sort((a, b) => a - b);
  const n = latencies.length;
  return {
    writes: n,
    maxStallMs: delay.max / 1e6,
    p99StallMs: delay.percentile(99) / 1e6,
    writeP50Ms: latencies[Math.floor(n / 2)] ?? 0,
    writeMaxMs: latencies[n - 1] ?? 0,
    cpuMsEach: (used.user + used.system) / 1000 / Math.max(1, n),
  };
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'veil-bench-busy-'));
  try {
    const store = openSqliteStore({ dataDir, masterKey: loadMasterKey({ dataDir }) });
    const file = join(dataDir, 'cas.db');
    const value = Buffer.alloc(256, 1);
    const blocking = new Database(file);
    blocking.pragma('busy_timeout = 5000');
    const insert = blocking.prepare('INSERT INTO blobs (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING');
    const before = await phase(file, (i) => insert.run(`blocking/${i}`, value));
    blocking.close();
    const floor = await phase(file, (i) => store.putBlobIfAbsent(`free/${i}`, value), false);
    const after = await phase(file, (i) => store.putBlobIfAbsent(`waiting/${i}`, value));
    await store.close();
    report(before, floor, after);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function report(before: Result, floor: Result, after: Result): void {
  const f = (x: number) => x.toFixed(x < 10 ? 2 : 1);
  console.log(
    `bench:store-busy — another process holds the write lock ${HOLDS} × ${HOLD_MS} ms (${GAP_MS} ms apart) ` +
      'while this one writes in a loop\n',
  );
  console.log(
    '| design | longest event-loop stall ms | p99 stall ms | writes | write p50 ms | write max ms | CPU ms each |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const [name, r] of [
    ['blocking wait (busy_timeout 5000, before)', before],
    ["the store, no lock held (this run's floor)", floor],
    ['the store: busy_timeout 0, retry on a timer', after],
  ] as const) {
    console.log(
      `| ${name} | ${f(r.maxStallMs)} | ${f(r.p99StallMs)} | ${r.writes} | ${f(r.writeP50Ms)} | ${f(r.writeMaxMs)} | ${f(r.cpuMsEach)} |`,
    );
  }
  // The bounds: a blocking wait stalls the loop for a whole hold; with no lock held the stall is the machine's
  // own (scheduling, GC). The store's writes seal and read back too, hence more CPU each than a bare INSERT.
  const goal = after.p99StallMs <= floor.p99StallMs + 5;
  console.log(
    `\nlongest stall ÷ the blocking design's: ${(after.maxStallMs / before.maxStallMs).toFixed(3)}; ` +
      `p99 stall ${f(after.p99StallMs)} ms with the lock held vs ${f(floor.p99StallMs)} ms without\n` +
      `goal (this bench; #14 states none): a held lock adds at most 5 ms to the p99 event-loop stall — ` +
      `${goal ? 'met' : 'NOT met'}`,
  );
}

await main();
