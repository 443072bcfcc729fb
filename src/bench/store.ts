/**
 * `npm run bench:store`: the CAS with 100,000 sessions (BENCH_SESSIONS) beside the same CAS with 100, in one
 * run: the create rate through the CAS's session layer (at the start and near the end of the fill), read latency
 * (GET /v1/sessions/NAME), attestation latency, restart time to /readyz and resident memory of a real
 * `veil cas serve` process on each store.
 *
 * The fill runs in two child processes writing to the one SQLite store (WAL), as two CAS processes would: the
 * CPU work of a write (parse, validate, keys and certificates, sealing) runs on both cores, only the commit is
 * serialized. `node dist/bench/store.js fill DIR FROM TO` is one such child.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { simulationMeasurement } from '../attestation/index.js';
import { signedSimulation, testHost, type TestHost } from '../attestation/testing.js';
import { openAuditLog } from '../cas/audit-log.js';
import { identityFromPem } from '../cas/identity-of.js';
import { writeSession, type CasContext } from '../cas/sessions.js';
import { loadMasterKey, openSqliteStore } from '../cas/store/index.js';
import { ephemeral, type Identity } from '../cas/testing.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SESSIONS = Number(process.env['BENCH_SESSIONS'] ?? 100_000);
const SMALL = 100;
const FILL_SECONDS = Number(process.env['BENCH_FILL_SECONDS'] ?? 600);
const SAMPLES = Number(process.env['BENCH_SAMPLES'] ?? 200);
const RESTARTS = 3;
/**
 * Sessions per team (names `team-N-…`, not a namespace: a namespace needs its parent session and a
 * create_sessions policy first): the first a Redis session, the others Flask sessions importing from it.
 */
const TEAM = 10;
/** Every this many Flask sessions, one gets a second version (an update with its predecessor). */
const UPDATE_EVERY = 20;
const PROGRAM = simulationMeasurement(Buffer.from('runtime'), Buffer.from('bench'));

function template(which: 'flask' | 'redis'): string {
  return readFileSync(join(ROOT, 'examples', 'flask-redis', 'policies', `${which}-session.yaml`), 'utf8');
}

function filled(text: string, vars: Record<string, string>): string {
  return text.replace(/(?<!\$)\$([A-Z_][A-Z0-9_]*)/g, (m, name: string) => vars[name] ?? m);
}

const teamOf = (i: number) => Math.floor(i / TEAM);
const sessionName = (i: number) => (i % TEAM === 0 ? `team-${teamOf(i)}-redis` : `team-${teamOf(i)}-flask-${i % TEAM}`);

/** One child of the fill: sessions [from, to) of the store in `dir`, progress on stdout every 250 sessions. */
async function fillPart(dir: string, from: number, to: number): Promise<void> {
  const store = openSqliteStore({ dataDir: dir, masterKey: loadMasterKey({ dataDir: dir }) });
  // The CAS's own audit log: every version is committed with its signed entry, as `veil cas serve` does.
  const audit = await openAuditLog(store, () => new Date());
  const ctx: CasContext = { store, now: () => new Date(), audit };
  const me = identityFromPem(readFileSync(join(dir, '..', 'creator.pem'), 'utf8'));
  const [flask, redis] = [template('flask'), template('redis')];
  const deadline = Date.now() + FILL_SECONDS * 1000;
  let done = 0;
  for (let i = from; i < to && Date.now() < deadline; i++) {
    // Different secrets and measurements in every session: nothing is shared but the team's Redis.
    const vars = {
      MRENCLAVE: randomBytes(32).toString('hex'),
      SCONE_FSPF_KEY: randomBytes(32).toString('hex'),
      SCONE_FSPF_TAG: randomBytes(16).toString('hex'),
      FLASK_SESSION: sessionName(i % TEAM === 0 ? i + 1 : i),
      REDIS_SESSION: sessionName(teamOf(i) * TEAM),
    };
    const written = await writeSession(ctx, filled(i % TEAM === 0 ? redis : flask, vars), me);
    if (i % TEAM !== 0 && i % UPDATE_EVERY === 1) {
      const next = { ...vars, MRENCLAVE: randomBytes(32).toString('hex') };
      await writeSession(ctx, `${filled(flask, next)}\npredecessor: ${written.hash}\n`, me);
    }
    if (++done % 250 === 0) process.stdout.write(`${JSON.stringify({ done: 250, at: Date.now() })}\n`);
  }
  process.stdout.write(`${JSON.stringify({ done: done % 250, at: Date.now() })}\n`);
  await audit.close();
  await store.close();
}

/** Fills `dir` with `n` sessions from `parts` children; returns the progress timeline (ms, sessions so far). */
async function fill(dir: string, n: number, parts: number): Promise<Array<[number, number]>> {
  // Made here, once: two children opening a new directory at once would each make a master key of their own
  // (the CA and audit key would be agreed on, as replicas do, but one would be made for nothing).
  const store = openSqliteStore({ dataDir: dir, masterKey: loadMasterKey({ dataDir: dir }) });
  await (await openAuditLog(store, () => new Date())).close();
  await store.close();
  const started = Date.now();
  let total = 0;
  const timeline: Array<[number, number]> = [[0, 0]];
  const children: ChildProcess[] = [];
  const per = Math.ceil(n / parts / TEAM) * TEAM;
  for (let p = 0; p < parts; p++) {
    const [from, to] = [p * per, Math.min(n, (p + 1) * per)];
    if (from >= to) continue;
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'fill', dir, String(from), String(to)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let rest = '';
    child.stdout!.on('data', (d: Buffer) => {
      const lines = (rest + d.toString()).split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        const { done, at } = JSON.parse(line) as { done: number; at: number };
        total += done;
        timeline.push([at - started, total]);
      }
    });
    children.push(child);
  }
  const codes = await Promise.all(children.map((c) => new Promise<number | null>((r) => c.once('exit', r))));
  if (codes.some((c) => c !== 0)) throw new Error(`a fill process failed (exit codes ${codes.join(', ')})`);
  // In the order the parent heard of them: the running total only grows.
  return timeline;
}

/** Sessions/s over the first and the last `span` sessions of the timeline. */
function rates(timeline: Array<[number, number]>, span: number): { start: number; end: number; total: number } {
  const last = timeline.at(-1)!;
  const at = (count: number) => timeline.find(([, c]) => c >= count) ?? last;
  const first = at(span);
  // Progress comes in steps of 250 per child: the last point at or before total - span, never the final one.
  const late = timeline.findLast(([, c]) => c <= Math.max(0, last[1] - span)) ?? timeline[0]!;
  return {
    start: (first[1] / first[0]) * 1000,
    end: ((last[1] - late[1]) / (last[0] - late[0])) * 1000,
    total: last[1],
  };
}

interface Cas {
  url: string;
  pid: number;
  ready: number;
  stop(): Promise<void>;
}

/** `veil cas serve` on `dir`, timed from spawn until /readyz answers 200. */
async function serve(dir: string, home: string): Promise<Cas> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin', 'veil.js'), 'cas', 'serve', '--listen', '127.0.0.1:0', '--data', dir],
    { env: { ...process.env, VEIL_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  // Readiness only: the CA is not known before the first start, and nothing secret goes over this agent.
  const probe = new Agent({ connect: { rejectUnauthorized: false } });
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the CAS exited: ${out}`);
      const url = /CAS listening at (\S+)/.exec(out)?.[1];
      if (url) {
        const status = await request(`${url}/readyz`, { dispatcher: probe }).then(
          async (res) => {
            await res.body.text();
            return res.statusCode;
          },
          () => 0,
        );
        if (status === 200) return { url, pid: child.pid!, ready: performance.now() - started, stop };
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  } catch (err) {
    await stop();
    throw err;
  } finally {
    await probe.close();
  }
}

function rssMiB(pid: number): number {
  const line = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(line?.[1] ?? Number.NaN) / 1024;
}

function percentiles(samples: number[]): { p50: number; p99: number } {
  const sorted = [...samples].sort((x, y) => x - y);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
  return { p50: at(0.5), p99: at(0.99) };
}

// The bench reads what it wrote over loopback; trust is the tests' concern, the CA is not pinned here.
const agentFor = (who: Identity, connections = 1) =>
  new Agent({ connections, connect: { rejectUnauthorized: false, cert: who.certPem, key: who.keyPem } });

/** GET /v1/sessions/NAME of random sessions of the store, as their creator, on one kept-alive connection. */
async function readLatency(cas: Cas, creator: Identity, n: number): Promise<number[]> {
  const agent = agentFor(creator);
  const ms: number[] = [];
  try {
    for (let s = 0; s < SAMPLES; s++) {
      const name = sessionName(Math.floor(Math.random() * n));
      const started = performance.now();
      const res = await request(`${cas.url}/v1/sessions/${name}`, { dispatcher: agent });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`GET /v1/sessions/${name} answered ${res.statusCode}`);
      ms.push(performance.now() - started);
    }
  } finally {
    await agent.close();
  }
  return ms;
}

/** What a runtime does at start, SAMPLES times: a fresh key and connection, a nonce, evidence, the config. */
async function attestLatency(cas: Cas, host: TestHost): Promise<number[]> {
  const runtimes = Array.from({ length: SAMPLES }, () => ephemeral());
  const ms: number[] = [];
  for (const runtime of runtimes) {
    const agent = agentFor(runtime);
    const post = async (path: string, body: string) => {
      const res = await request(`${cas.url}${path}`, { method: 'POST', body, dispatcher: agent });
      const json = (await res.body.json()) as { nonce?: string };
      if (res.statusCode !== 200) throw new Error(`${path} answered ${res.statusCode}: ${JSON.stringify(json)}`);
      return json;
    };
    const started = performance.now();
    const { nonce } = await post('/v1/attest/nonce', '');
    const evidence = signedSimulation(host, PROGRAM, { nonce: Buffer.from(nonce!, 'hex'), spki: runtime.spki });
    await post('/v1/attest', JSON.stringify({ config_id: 'bench/api', nonce, evidence }));
    ms.push(performance.now() - started);
    await agent.destroy();
  }
  return ms;
}

/** One GET /metrics: its sessions gauge counts the store's heads. */
async function scrapeMs(cas: Cas, who: Identity): Promise<number> {
  const agent = agentFor(who);
  try {
    const started = performance.now();
    const res = await request(`${cas.url}/metrics`, { dispatcher: agent });
    await res.body.text();
    if (res.statusCode !== 200) throw new Error(`GET /metrics answered ${res.statusCode}`);
    return performance.now() - started;
  } finally {
    await agent.close();
  }
}

/** The session attested in both stores: the same policy, so that only the store's size differs. */
async function addAttested(dir: string, creator: Identity, host: TestHost): Promise<void> {
  const store = openSqliteStore({ dataDir: dir, masterKey: loadMasterKey({ dataDir: dir }) });
  const policy = [
    'name: bench',
    'services:',
    '  - name: api',
    `    mrenclaves: [${PROGRAM}]`,
    `    platforms: [${host.id}]`,
    '    command: python3 /app/api.py --pw $$SCONE::pw$$',
    'secrets:',
    '  - {name: pw, kind: ascii, size: 16}',
    'security: {attestation: {mode: none}}',
    '',
  ].join('\n');
  const audit = await openAuditLog(store, () => new Date());
  await writeSession({ store, now: () => new Date(), audit }, policy, identityFromPem(creator.certPem));
  await audit.close();
  await store.close();
}

interface Figures {
  firstStart: number;
  /** Median of RESTARTS. */
  restart: number;
  metrics: number;
  read: { p50: number; p99: number };
  attest: { p50: number; p99: number };
  rss: number;
}

/** First start (makes the CA and keys), restart, then reads, attestations and memory on the restarted CAS. */
async function measure(root: string, n: number, creator: Identity, host: TestHost): Promise<Figures> {
  const dir = join(root, 'data');
  const first = await serve(dir, join(root, 'home'));
  await first.stop();
  const restarts: number[] = [];
  for (let r = 1; r < RESTARTS; r++) {
    const again = await serve(dir, join(root, 'home'));
    restarts.push(again.ready);
    await again.stop();
  }
  const cas = await serve(dir, join(root, 'home'));
  restarts.push(cas.ready);
  try {
    const read = percentiles(await readLatency(cas, creator, n));
    const attest = percentiles(await attestLatency(cas, host));
    const metrics = await scrapeMs(cas, creator);
    const restart = percentiles(restarts).p50;
    const figures: Figures = { firstStart: first.ready, restart, metrics, read, attest, rss: rssMiB(cas.pid) };
    return figures;
  } finally {
    await cas.stop();
  }
}

const fmt = (x: number, digits = 1) => x.toLocaleString('en-US', { maximumFractionDigits: digits });
const goal = (met: boolean) => (met ? 'met' : 'NOT met');
const line = (what: string, a: string, b: string, tail = '') =>
  console.log(`  ${what.padEnd(34)} ${a.padStart(10)} ${b.padStart(12)}${tail}`);

function report(created: ReturnType<typeof rates>, seconds: number, small: Figures, large: Figures): void {
  const n = fmt(created.total, 0);
  const stopped = created.total < SESSIONS ? `; stopped at BENCH_FILL_SECONDS=${FILL_SECONDS}` : '';
  console.log(`veil store benchmark: ${n} sessions beside ${SMALL} (SQLite, node ${process.version})`);
  console.log(
    `  create rate (2 processes, full write path): ${fmt(created.start, 0)}/s at the start, ` +
      `${fmt(created.end, 0)}/s near ${n} (${fmt(seconds)} s in all${stopped})`,
  );
  line('', `${SMALL}`, n);
  const restartGoal = `   goal ≤ 2,000 ms at ${n}: ${goal(large.restart <= 2000)}`;
  line('CAS restart to /readyz 200 (ms)', fmt(small.restart), fmt(large.restart), restartGoal);
  line('CAS first start to ready (ms)', fmt(small.firstStart), fmt(large.firstStart));
  line('GET /v1/sessions/NAME p50 (ms)', fmt(small.read.p50, 2), fmt(large.read.p50, 2));
  line('GET /v1/sessions/NAME p99 (ms)', fmt(small.read.p99, 2), fmt(large.read.p99, 2));
  const ratio = large.attest.p50 / small.attest.p50;
  const attestGoal = `   ratio ${fmt(ratio, 2)}×, goal ≤ 1.10×: ${goal(ratio <= 1.1)}`;
  line('attestation p50 (ms)', fmt(small.attest.p50, 2), fmt(large.attest.p50, 2), attestGoal);
  line('attestation p99 (ms)', fmt(small.attest.p99, 2), fmt(large.attest.p99, 2));
  line('first GET /metrics (ms)', fmt(small.metrics, 2), fmt(large.metrics, 2));
  line('resident memory, VmRSS (MiB)', fmt(small.rss), fmt(large.rss));
}

async function main(): Promise<void> {
  const host = testHost();
  const creator = ephemeral();
  const small = mkdtempSync(join(tmpdir(), 'veil-bench-store-'));
  const large = mkdtempSync(join(tmpdir(), 'veil-bench-store-'));
  try {
    for (const root of [small, large]) writeFileSync(join(root, 'creator.pem'), creator.certPem);
    await fill(join(small, 'data'), SMALL, 1);
    const timeline = await fill(join(large, 'data'), SESSIONS, 2);
    const created = rates(timeline, Math.min(2_000, Math.floor(SESSIONS / 10)));
    for (const root of [small, large]) await addAttested(join(root, 'data'), creator, host);
    const figures = [await measure(small, SMALL, creator, host), await measure(large, created.total, creator, host)];
    report(created, timeline.at(-1)![0] / 1000, figures[0]!, figures[1]!);
  } finally {
    for (const root of [small, large]) rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'fill') {
  const [dir = '', from = '0', to = '0'] = process.argv.slice(3);
  await fillPart(dir, Number(from), Number(to));
} else {
  await main();
}
