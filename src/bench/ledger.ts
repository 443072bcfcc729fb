import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { IpcLedger, PrimaryLedger, processChannel } from '../cas/ledger.js';

/**
 * bench:ledger — what the cluster-wide ledger (README "The CAS on every core") costs per connection: a take and
 * a give between a worker and the primary over node's IPC channel, with IN_FLIGHT outstanding as connections
 * arrive together. Beside it, in the same run, the bound: a bare IPC ping-pong of the same shape (a message
 * and its answer, plus one more message), without the ledger. CPU per operation from process.cpuUsage() of
 * both processes first, wall-clock second.
 */

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 20_000);
const IN_FLIGHT = Number(process.env['BENCH_IN_FLIGHT'] ?? 64);
const CHILD = 'VEIL_BENCH_LEDGER_CHILD';

type Mode = 'ledger' | 'bare';
interface ChildResult {
  veil: 'bench-done';
  cpuUs: number;
  wallUs: number;
}

const cpuUs = (since: NodeJS.CpuUsage) => {
  const c = process.cpuUsage(since);
  return c.user + c.system;
};

/** Runs `one` ROUNDS times with IN_FLIGHT at once. */
async function drive(one: () => Promise<void>): Promise<void> {
  let started = 0;
  const lane = async () => {
    while (started < ROUNDS) {
      started++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
}

/** The worker's side: a take and a give per round (ledger), or a ping, its pong and one more message (bare). */
async function child(mode: Mode): Promise<void> {
  const channel = processChannel();
  let one: () => Promise<void>;
  if (mode === 'ledger') {
    const ledger = new IpcLedger(channel, (w) => process.stderr.write(`${w}\n`));
    one = async () => {
      if (await ledger.take('connection', '10.0.0.1', Number.MAX_SAFE_INTEGER)) ledger.give('connection', '10.0.0.1');
      else throw new Error('refused');
    };
  } else {
    const waiting = new Map<number, () => void>();
    let id = 0;
    process.on('message', (m: { id?: number }) => {
      const done = m.id === undefined ? undefined : waiting.get(m.id);
      if (done && m.id !== undefined) waiting.delete(m.id);
      done?.();
    });
    one = () =>
      new Promise<void>((resolve) => {
        const mine = ++id;
        waiting.set(mine, () => {
          process.send?.({ veil: 'bench-give', key: '10.0.0.1' });
          resolve();
        });
        process.send?.({ veil: 'bench-take', id: mine, key: '10.0.0.1' });
      });
  }
  const since = process.cpuUsage();
  const t0 = performance.now();
  await drive(one);
  const result: ChildResult = {
    veil: 'bench-done',
    cpuUs: cpuUs(since) / ROUNDS,
    wallUs: ((performance.now() - t0) * 1000) / ROUNDS,
  };
  process.send?.(result, undefined, {}, () => process.disconnect());
}

/** The primary's side of one run; answers the CPU of both processes per round. */
function run(mode: Mode): Promise<{ worker: number; primary: number; wall: number }> {
  const ledger = new PrimaryLedger();
  const holder = ledger.holder();
  const worker = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, [CHILD]: mode } });
  const since = process.cpuUsage();
  return new Promise((resolve, reject) => {
    worker.on('error', reject);
    worker.on('message', (m: { veil?: string; id?: number; cpuUs?: number; wallUs?: number }) => {
      if (mode === 'ledger' && ledger.handle(holder, m, (a) => worker.send(a))) return;
      if (m.veil === 'bench-take') worker.send({ veil: 'bench-answer', id: m.id, ok: true });
      if (m.veil === 'bench-give' || m.veil === 'bench-take') return;
      if (m.veil === 'bench-done') {
        const primary = cpuUs(since) / ROUNDS;
        if (mode === 'ledger' && ledger.held('connection', '10.0.0.1') !== 0) reject(new Error('slots left held'));
        resolve({ worker: m.cpuUs!, primary, wall: m.wallUs! });
      }
    });
    worker.on('exit', (code) => (code === 0 ? undefined : reject(new Error(`bench child exited ${code}`))));
  });
}

async function main(): Promise<void> {
  process.stdout.write(`bench:ledger — ${ROUNDS} rounds, ${IN_FLIGHT} in flight, one worker process and its primary\n`);
  // Alternated and each kept at its best: a shared machine's noise only ever adds.
  const best = {
    ledger: [] as Array<Awaited<ReturnType<typeof run>>>,
    bare: [] as Array<Awaited<ReturnType<typeof run>>>,
  };
  for (let i = 0; i < 3; i++) for (const mode of ['bare', 'ledger'] as const) best[mode].push(await run(mode));
  const pick = (mode: Mode) => best[mode].reduce((a, b) => (a.worker + a.primary <= b.worker + b.primary ? a : b));
  const bare = pick('bare');
  const ledger = pick('ledger');
  const total = (r: typeof bare) => r.worker + r.primary;
  const row = (name: string, r: typeof bare) =>
    `| ${name} | ${r.worker.toFixed(1)} | ${r.primary.toFixed(1)} | ${total(r).toFixed(1)} | ` +
    `${(total(r) / total(bare)).toFixed(2)} | ${r.wall.toFixed(1)} |\n`;
  process.stdout.write(
    '\n| per connection | worker CPU µs | primary CPU µs | CPU µs in all | ÷ bare IPC | wall µs (in flight) |\n' +
      '|---|---|---|---|---|---|\n' +
      row('bare IPC message, answer, message', bare) +
      row('ledger take + give', ledger),
  );
  // The figure for one attestation's CPU on the CAS (about 3.5 ms): the ledger's share of it.
  const share = total(ledger) / 3_500;
  process.stdout.write(
    `\nthe ledger per connection: ${(share * 100).toFixed(2)}% of an attestation's 3.5 ms CPU ` +
      `(no goal in the issue; this part's bound ≤ 2%: ${share <= 0.02 ? 'met' : 'NOT met'}); ${(total(ledger) / total(bare)).toFixed(2)}× a bare IPC exchange\n`,
  );
}

const mode = process.env[CHILD];
if (mode === 'ledger' || mode === 'bare') await child(mode);
else await main();
