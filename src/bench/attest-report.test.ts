import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { goalLine, mergeRounds, type Row } from './attest-report.js';

const row = (server: string, over: Partial<Row>): Row => ({
  server,
  concurrency: 16,
  count: 100,
  errors: 0,
  perSecond: 50,
  p50: 100,
  p99: 200,
  cpuMs: 10,
  cores: 0.5,
  clientCpuMs: 12,
  load: 1,
  otherCores: 0,
  processes: 1,
  ...over,
});

describe('bench:attest goals', () => {
  const rows = [
    row('bare https', { cpuMs: 5 }),
    row('CAS ×1', { cpuMs: 10, cores: 0.5, perSecond: 50, clientCpuMs: 12 }),
    row('CAS ×2', { cpuMs: 10, cores: 0.7, perSecond: 70, clientCpuMs: 12 }),
  ];

  it('judges the CPU ratio and the scaling by their figures', () => {
    const lines = goalLine(rows, [1, 2], 2);
    assert.match(lines[0]!, /0\.50× .* NOT met/);
    assert.match(lines[1]!, /throughput ≥ 1\.8× CAS ×1 — 1\.40× .* NOT met/);
  });

  it("splits the gap: the framework's share and the CAS's own", () => {
    const withFastify = [...rows, row('bare fastify', { cpuMs: 6.25 })];
    const line = goalLine(withFastify, [1, 2], 2).find((l) => l.includes('framework alone'));
    assert.match(line ?? '', /bare fastify at 0\.80× the bare server's rate; CAS ×1 at 0\.63× bare fastify's/);
    assert.equal(
      goalLine(rows, [1, 2], 2).find((l) => l.includes('framework alone')),
      undefined,
    );
  });

  it('says what the machine allows: the CAS and the load client share its cores', () => {
    // At 50/s one worker used 0.5 cores and the client 0.6: two cores allow 2 / 1.1 = 1.82×.
    assert.match(goalLine(rows, [1, 2], 2)[2]!, /allows at most 1\.82× .*room enough/);
    assert.match(goalLine(rows, [1, 2], 1)[2]!, /allows at most 0\.91× .*cannot be measured here/);
    assert.match(goalLine(rows, [1, 2], 8)[2]!, /allows at most 2\.00×/, 'two workers never more than 2×');
    // Other work on the machine took 0.9 of its 2 cores: 1.1 free allow 1.00×.
    const busy = rows.map((r) => ({ ...r, otherCores: r.server === 'CAS ×2' ? 0.9 : 0.2 }));
    assert.match(goalLine(busy, [1, 2], 2)[2]!, /other work using 0\.90\) allows at most 1\.00× .*cannot be measured/);
  });
});

describe('bench:attest rounds', () => {
  it('per server and level, the median of each figure, counts summed', () => {
    const rounds = [
      [row('bare https', { cpuMs: 5, count: 10 }), row('CAS ×1', { cpuMs: 9, p99: 300 })],
      [row('bare https', { cpuMs: 50, count: 20 }), row('CAS ×1', { cpuMs: 8, p99: 100, errors: 2 })],
      [row('bare https', { cpuMs: 6, count: 30 }), row('CAS ×1', { cpuMs: 7, p99: 200 })],
    ];
    const [bare, cas] = mergeRounds(rounds);
    assert.deepEqual([bare?.cpuMs, bare?.count], [6, 60], 'a burst in one round moves the median little');
    assert.deepEqual([cas?.cpuMs, cas?.p99, cas?.errors], [8, 200, 2]);
    assert.deepEqual(mergeRounds([rounds[0]!]), rounds[0]);
  });
});
