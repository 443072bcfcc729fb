/** The seed policies as the attestation bench uploads them, and its table and goals. */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

export interface Row {
  server: string;
  concurrency: number;
  count: number;
  errors: number;
  firstError?: string;
  perSecond: number;
  p50: number;
  p99: number;
  /** Server CPU (its whole process tree) per attestation. */
  cpuMs: number;
  /** Server CPU seconds per wall second: cores it used. */
  cores: number;
  clientCpuMs: number;
  load: number;
  /** Cores busy with everything but the server and the load client (a shared machine's other work). */
  otherCores: number;
  processes: number;
}

/**
 * The seed's policy with its `$VAR`s filled, made acceptable for simulation evidence from one host: the only
 * changes are `platforms: [host]` on each service and `mode: none` (a policy must allow simulation explicitly).
 */
export function benchPolicy(root: string, which: 'flask' | 'redis', vars: Record<string, string>, host: string) {
  const text = readFileSync(join(root, 'examples', 'flask-redis', 'policies', `${which}-session.yaml`), 'utf8');
  const filled = text.replace(/(?<!\$)\$([A-Z_][A-Z0-9_]*)/g, (m, name: string) => vars[name] ?? m);
  const withHost = filled.replace(/^( +)mrenclaves: (.*)$/m, `$1mrenclaves: $2\n$1platforms: [${host}]`);
  if (/^ {2}attestation:$/m.test(withHost))
    return withHost.replace(/^ {2}attestation:$/m, '  attestation:\n    mode: none');
  return `${withHost}\nsecurity:\n  attestation:\n    mode: none\n`;
}

/**
 * Rounds of the same phases (BENCH_ROUNDS), run one after the other so that a burst of the machine's other work
 * falls on one round of each server rather than on one server: per server and level, the median of each figure
 * (counts and errors summed).
 */
export function mergeRounds(rounds: Row[][]): Row[] {
  if (rounds.length <= 1) return rounds[0] ?? [];
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    const mid = s.length >> 1;
    return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  };
  return rounds[0]!.map((first) => {
    const same = rounds.flatMap((round) =>
      round.filter((r) => r.server === first.server && r.concurrency === first.concurrency),
    );
    const of = (key: keyof Row) => median(same.map((r) => r[key] as number));
    const firstError = same.find((r) => r.firstError !== undefined)?.firstError;
    return {
      ...first,
      count: same.reduce((n, r) => n + r.count, 0),
      errors: same.reduce((n, r) => n + r.errors, 0),
      ...(firstError === undefined ? {} : { firstError }),
      perSecond: of('perSecond'),
      p50: of('p50'),
      p99: of('p99'),
      cpuMs: of('cpuMs'),
      cores: of('cores'),
      clientCpuMs: of('clientCpuMs'),
      load: of('load'),
      otherCores: of('otherCores'),
    };
  });
}

const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '—');

export function table(rows: Row[]): string {
  const bare = new Map(rows.filter((r) => r.server === 'bare https').map((r) => [r.concurrency, r]));
  const head =
    '| server | concurrency | attestations/CPU-s | CPU ms each | ÷ bare (per CPU-s) | cores used | /s | p50 ms | p99 ms | errors | client CPU ms | load | other cores |';
  const lines = [head, `|${'---|'.repeat(13)}`];
  for (const r of rows) {
    const b = bare.get(r.concurrency);
    const ratio = b ? b.cpuMs / r.cpuMs : Number.NaN;
    lines.push(
      `| ${r.server} | ${r.concurrency} | ${f(1000 / r.cpuMs, 0)} | ${f(r.cpuMs, 2)} | ${r.server === 'bare https' ? '1' : f(ratio, 2)} | ` +
        `${f(r.cores, 2)} | ${f(r.perSecond, 0)} | ${f(r.p50)} | ${f(r.p99)} | ${r.errors} | ${f(r.clientCpuMs, 2)} | ${f(r.load, 2)} | ${f(r.otherCores, 2)} |`,
    );
  }
  return lines.join('\n');
}

/** Each goal of the issue beside the figure it is judged by. */
export function goalLine(rows: Row[], workers: number[], cpuCount = availableParallelism()): string[] {
  const at = (server: string, c: number) => rows.find((r) => r.server === server && r.concurrency === c);
  const out: string[] = [];
  const mark = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const one = `CAS ×${Math.min(...workers)}`;
  const many = `CAS ×${Math.max(...workers)}`;
  const ratios = rows
    .filter((r) => r.server === one)
    .map((r) => {
      const b = at('bare https', r.concurrency);
      return b ? b.cpuMs / r.cpuMs : Number.NaN;
    });
  const best = Math.max(...ratios);
  out.push(
    `goal: CPU per attestation ≥ 0.8× the bare server's rate — ${f(best, 2)}× (best level; ${ratios.map((x) => f(x, 2)).join(', ')}) ${mark(best >= 0.8)}`,
  );
  if (workers.length > 1) {
    const levels = [...new Set(rows.map((r) => r.concurrency))].filter((c) => c >= 16);
    const scale = levels.map((c) => (at(many, c)?.perSecond ?? Number.NaN) / (at(one, c)?.perSecond ?? Number.NaN));
    const cores = levels.map((c) => at(many, c)?.cores ?? Number.NaN);
    const best2 = Math.max(...scale);
    out.push(
      `goal: ${many} throughput ≥ 1.8× ${one} — ${f(best2, 2)}× (c=${levels.join('/')}: ${scale.map((x) => f(x, 2)).join(', ')}; ` +
        `cores used by ${many}: ${cores.map((x) => f(x, 2)).join(', ')}) ${mark(best2 >= 1.8)}; ` +
        'the load client runs on the same cores (its CPU per attestation is in the table)',
    );
    // What the machine leaves the CAS: at one worker's rate, the CAS and the load client together need
    // (CAS cores + client cores) of the cores the machine's other work left free; that allows at most
    // free / need times the rate, and N workers at most N×.
    const ceiling = levels.map((c) => {
      const r = at(one, c);
      const r2 = at(many, c);
      if (!r) return Number.NaN;
      const client = (r.clientCpuMs * r.perSecond) / 1000;
      const free = cpuCount - Math.max(r.otherCores, r2?.otherCores ?? 0);
      return Math.min(Math.max(...workers), free / (r.cores + client));
    });
    const others = levels.map((c) => f(Math.max(at(one, c)?.otherCores ?? 0, at(many, c)?.otherCores ?? 0), 2));
    out.push(
      `      this machine (${cpuCount} cores, the load client on them, other work using ${others.join(', ')}) ` +
        `allows at most ${ceiling.map((x) => f(x, 2)).join(', ')}× at those levels: ` +
        `${Math.max(...ceiling) < 1.8 ? 'the 1.8× goal cannot be measured here' : 'room enough for the goal'}`,
    );
  }
  const framework = rows
    .filter((r) => r.server === 'bare fastify')
    .map((r) => {
      const b = at('bare https', r.concurrency);
      const cas = at(one, r.concurrency);
      return { toBare: b ? b.cpuMs / r.cpuMs : Number.NaN, casToIt: cas ? r.cpuMs / cas.cpuMs : Number.NaN };
    });
  if (framework.length > 0)
    out.push(
      `      the framework alone: bare fastify at ${framework.map((x) => f(x.toBare, 2)).join(', ')}× the bare server's rate; ` +
        `${one} at ${framework.map((x) => f(x.casToIt, 2)).join(', ')}× bare fastify's`,
    );
  const p = at(many, 64) ?? at(one, 64);
  if (p)
    out.push(
      `goal: p99 ≤ 50 ms at 64 concurrent (${p.server}) — ${f(p.p99)} ms (load ${f(p.load, 2)}) ${mark(p.p99 <= 50)}`,
    );
  return out;
}
