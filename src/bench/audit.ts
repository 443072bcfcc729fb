/**
 * `npm run bench:audit`: the cost of a durable audit entry on SQLite, synchronous=NORMAL (the default: survives
 * kill -9) against FULL (an fsync per commit: survives power loss too), for one entry per transaction (each caller
 * waits for the last: the worst case) and for group commit (many callers at once). Each figure is printed beside a
 * bound, with the FULL/NORMAL ratio and the CPU time per entry (process user+system; the machine is shared, so
 * wall-clock is printed too). ENTRIES (default 2000) sets the size of each run.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent } from '../audit/types.js';
import { openAuditLog } from '../cas/audit-log.js';
import { openSqliteStore } from '../cas/store/sqlite.js';

const ENTRIES = Number(process.env['ENTRIES'] ?? 2000);
/**
 * Bounds per entry (µs of CPU, which a shared machine does not inflate as it does wall-clock): what the CAS may
 * spend on an audit entry without being the slow part of the request it records (a session write, a release).
 * FULL's extra cost is waiting for the fsync (wall-clock), reported as the ratio.
 */
const BOUNDS = { sequential: 1000, grouped: 150 };

type Mode = 'NORMAL' | 'FULL';
type Shape = 'sequential' | 'grouped';

const event = (i: number): AuditEvent => ({ type: 'value.read', session: 'bench/s', secret: `s${i}`, actor: null });

async function run(mode: Mode, shape: Shape): Promise<{ wall: number; cpu: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'veil-bench-audit-'));
  const store = openSqliteStore({ dataDir: dir, masterKey: randomBytes(32), synchronous: mode });
  const log = await openAuditLog(store, () => new Date());
  try {
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    if (shape === 'sequential') for (let i = 0; i < ENTRIES; i++) await log.record(event(i));
    else await Promise.all(Array.from({ length: ENTRIES }, (_, i) => log.record(event(i))));
    const wall = Number(process.hrtime.bigint() - t0) / 1000 / ENTRIES;
    const used = process.cpuUsage(cpu0);
    return { wall, cpu: (used.user + used.system) / ENTRIES };
  } finally {
    await log.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const us = (n: number) => `${n.toFixed(1).padStart(8)} µs`;

const results = new Map<string, { wall: number; cpu: number }>();
for (const shape of ['sequential', 'grouped'] as const) {
  for (const mode of ['NORMAL', 'FULL'] as const) {
    const r = await run(mode, shape);
    results.set(`${shape} ${mode}`, r);
    const bound = BOUNDS[shape];
    const verdict = r.cpu <= bound ? 'within' : 'OVER';
    console.log(
      `${shape.padEnd(10)} ${mode.padEnd(6)} ${ENTRIES} entries: ${us(r.wall)} wall/entry, ${us(r.cpu)} CPU/entry ` +
        `(CPU bound ${bound} µs: ${verdict})`,
    );
  }
}
for (const shape of ['sequential', 'grouped'] as const) {
  const ratio = results.get(`${shape} FULL`)!.wall / results.get(`${shape} NORMAL`)!.wall;
  console.log(`${shape}: FULL costs ${ratio.toFixed(1)}× NORMAL per entry`);
}
