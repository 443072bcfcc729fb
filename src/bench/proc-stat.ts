/**
 * CPU time of processes from /proc, for benchmarks on a shared machine: what a server spent per operation is
 * robust to other load where wall-clock time is not.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** utime + stime (clock ticks) from the text of /proc/<pid>/stat; the comm field may hold spaces and ')'. */
export function cpuTicksOf(stat: string): number {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After ") ": state is field 3, so utime (14) and stime (15) are at 11 and 12.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`not a /proc/<pid>/stat line: ${stat}`);
  return utime + stime;
}

export type ChildrenOf = (pid: number) => number[];

/** `pid` and every descendant alive now (children read from /proc/<pid>/task/<tid>/children). */
export function processTree(pid: number, childrenOf: ChildrenOf = procChildren): number[] {
  const seen = new Set<number>();
  const walk = (p: number) => {
    if (seen.has(p)) return;
    seen.add(p);
    for (const c of childrenOf(p)) walk(c);
  };
  walk(pid);
  return [...seen];
}

function procChildren(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

let ticksPerSecond: number | undefined;

export function clockTicks(): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticksPerSecond;
}

/** CPU seconds of each pid (a process that exited meanwhile counts 0: its time is lost, say so). */
export function cpuSeconds(pids: readonly number[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of pids) {
    try {
      out.set(pid, cpuTicksOf(readFileSync(`/proc/${pid}/stat`, 'utf8')) / clockTicks());
    } catch {
      out.set(pid, 0);
    }
  }
  return out;
}

/** CPU seconds the processes spent between two samples (pids present in both). */
export function spentBetween(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, t] of after) total += Math.max(0, t - (before.get(pid) ?? t));
  return total;
}

/** The p-th percentile (nearest rank) of ascending samples. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * Busy CPU seconds of the whole machine from the first line of /proc/stat (user, nice, system, irq, softirq,
 * steal; not idle or iowait): beside a benchmark's own processes, what everything else on a shared machine took.
 */
export function machineBusyOf(stat: string): number {
  const line = stat.split('\n', 1)[0] ?? '';
  const f = line.trim().split(/\s+/);
  if (f[0] !== 'cpu') throw new Error(`not /proc/stat: ${line}`);
  const n = f.slice(1, 9).map(Number);
  if (n.length < 8 || n.some((x) => !Number.isFinite(x))) throw new Error(`not /proc/stat: ${line}`);
  const [user, nice, system, , , irq, softirq, steal] = n as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return (user + nice + system + irq + softirq + steal) / clockTicks();
}

export function machineBusySeconds(): number {
  return machineBusyOf(readFileSync('/proc/stat', 'utf8'));
}
