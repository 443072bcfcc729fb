import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  clockTicks,
  cpuSeconds,
  cpuTicksOf,
  machineBusyOf,
  machineBusySeconds,
  percentile,
  processTree,
  spentBetween,
} from './proc-stat.js';

describe('bench /proc readers', () => {
  it('reads utime + stime even when the command name holds spaces and parentheses', () => {
    const line = '4242 (node (a) b) S 1 4242 4242 0 -1 4194560 100 0 0 0 37 5 0 0 20 0 11 0 123 456 789';
    assert.equal(cpuTicksOf(line), 42);
    assert.throws(() => cpuTicksOf('4242 (x) S 1'), /not a \/proc/);
  });

  it('reads this process', () => {
    assert.ok(cpuTicksOf(readFileSync('/proc/self/stat', 'utf8')) >= 0);
    const t = cpuSeconds([process.pid]);
    assert.ok((t.get(process.pid) ?? -1) >= 0);
  });

  it('walks descendants once each, cycles included', () => {
    const tree: Record<number, number[]> = { 1: [2, 3], 2: [4], 3: [], 4: [1] };
    assert.deepEqual(processTree(1, (p) => tree[p] ?? []).sort(), [1, 2, 3, 4]);
  });

  it('counts only time spent between samples by pids in both', () => {
    const before = new Map([
      [1, 1.0],
      [2, 2.0],
    ]);
    const after = new Map([
      [1, 1.5],
      [2, 2.25],
      [3, 9],
    ]);
    assert.equal(spentBetween(before, after), 0.75);
  });

  it('percentiles by nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(xs, 50), 50);
    assert.equal(percentile(xs, 99), 99);
    assert.equal(percentile([7], 99), 7);
    assert.ok(Number.isNaN(percentile([], 50)));
  });
  it("reads the machine's busy time, leaving out idle and iowait", () => {
    const stat = 'cpu  100 20 30 5000 400 6 7 8 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n';
    assert.equal(machineBusyOf(stat), (100 + 20 + 30 + 6 + 7 + 8) / clockTicks());
    assert.throws(() => machineBusyOf('intr 1 2 3'), /not \/proc\/stat/);
    assert.ok(machineBusySeconds() > 0);
  });
});
