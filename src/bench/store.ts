/**
 * `npm run bench:store`: the CAS with 100,000 sessions (BENCH_SESSIONS) beside the same CAS with 100, in one
 * run: the create rate through the CAS's HTTPS API, read latency (GET /v1/sessions/NAME), attestation latency,
 * restart time to /readyz with 1 and 2 worker processes (and the CPU the restart took), resident memory and
 * the database's size. How the stores are filled: store-fill.ts. `node dist/bench/store.js fill DIR FROM TO`
 * (the creator's certificate on stdin) is one child of the bulk fill.
 */
import { spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { simulationMeasurement } from '../attestation/index.js';
import { hostId } from '../attestation/evidence.js';
import { signedSimulation, testHost, type TestHost } from '../attestation/testing.js';
import { openAuditLog } from '../cas/audit-log.js';
import { identityFromPem } from '../cas/identity-of.js';
import { writeSession } from '../cas/sessions.js';
import { loadMasterKey, openSqliteStore } from '../cas/store/index.js';
import { ephemeral, type Identity } from '../cas/testing.js';
import { cpuSeconds, processTree } from './proc-stat.js';
import { bulkFill, createThroughApi, fillPart, sessionName, type BulkFigures } from './store-fill.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SESSIONS = Number(process.env['BENCH_SESSIONS'] ?? 100_000);
const SMALL = 100;
/** Sessions of the large store created through the API (the rest in bulk); all of the small one's are. */
const API_CREATES = Math.min(SESSIONS, Number(process.env['BENCH_API_CREATES'] ?? 300));
const SAMPLES = Number(process.env['BENCH_SAMPLES'] ?? 200);
const RESTARTS = Number(process.env['BENCH_RESTARTS'] ?? 3);
const PROGRAM = simulationMeasurement(Buffer.from('runtime'), Buffer.from('bench'));

interface Cas {
  url: string;
  pid: number;
  ready: number;
  /** CPU ms of the process tree (primary and workers) from spawn to ready: what the load on the machine hides. */
  readyCpu: number;
  stop(): Promise<void>;
}

/** `veil cas serve` on `dir` with `workers` processes, timed from spawn until /readyz answers 200. */
async function serve(dir: string, home: string, workers = 1): Promise<Cas> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin', 'veil.js'), 'cas', 'serve', '--listen', '127.0.0.1:0', '--data', dir, '--workers', `${workers}`],
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
        if (status === 200) {
          const ready = performance.now() - started;
          const cpu = [...cpuSeconds(processTree(child.pid!)).values()].reduce((a, b) => a + b, 0);
          return { url, pid: child.pid!, ready, readyCpu: cpu * 1000, stop };
        }
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
async function readLatency(cas: Cas, creator: Identity, n: number, prefix: string): Promise<number[]> {
  const agent = agentFor(creator);
  const ms: number[] = [];
  try {
    for (let s = 0; s < SAMPLES; s++) {
      const name = sessionName(Math.floor(Math.random() * n), prefix);
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

interface Restart {
  /** Medians of RESTARTS. */
  ms: number;
  cpuMs: number;
}

interface Figures {
  restart: Record<1 | 2, Restart>;
  metrics: number;
  read: { p50: number; p99: number };
  attest: { p50: number; p99: number };
  rss: number;
  fileMiB: number;
}

async function restarts(dir: string, home: string, workers: 1 | 2): Promise<Restart> {
  const ms: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < RESTARTS; r++) {
    const cas = await serve(dir, home, workers);
    ms.push(cas.ready);
    cpu.push(cas.readyCpu);
    await cas.stop();
  }
  return { ms: percentiles(ms).p50, cpuMs: percentiles(cpu).p50 };
}

/** Restarts with 1 and 2 workers, then reads, attestations and memory on one more restarted CAS. */
async function measure(root: string, n: number, creator: Identity, host: TestHost, prefix = 'team'): Promise<Figures> {
  const dir = join(root, 'data');
  const home = join(root, 'home');
  const restart = { 1: await restarts(dir, home, 1), 2: await restarts(dir, home, 2) };
  const cas = await serve(dir, home);
  try {
    const read = percentiles(await readLatency(cas, creator, n, prefix));
    const attest = percentiles(await attestLatency(cas, host));
    const metrics = await scrapeMs(cas, creator);
    const fileMiB = ['cas.db', 'cas.db-wal'].reduce((sum, f) => {
      try {
        return sum + statSync(join(dir, f)).size / 2 ** 20;
      } catch {
        return sum;
      }
    }, 0);
    return { restart, metrics, read, attest, rss: rssMiB(cas.pid), fileMiB };
  } finally {
    await cas.stop();
  }
}

const fmt = (x: number, digits = 1) => x.toLocaleString('en-US', { maximumFractionDigits: digits });
const goal = (met: boolean) => (met ? 'met' : 'NOT met');
const line = (what: string, a: string, b: string, tail = '') =>
  console.log(`  ${what.padEnd(40)} ${a.padStart(10)} ${b.padStart(12)}${tail}`);

interface Creates {
  small: number;
  large: number;
  bulk: BulkFigures;
  total: number;
}

function report(c: Creates, small: Figures, large: Figures): void {
  const n = fmt(c.total, 0);
  console.log(`veil store benchmark: ${n} sessions beside ${SMALL} (SQLite, node ${process.version})`);
  console.log(
    `  create rate through the API (POST /v1/sessions, one at a time, 1 worker): ${fmt(c.small, 0)}/s on the ` +
      `empty store, ${fmt(c.large, 0)}/s at ${n}`,
  );
  console.log(
    `  bulk: ${fmt(c.bulk.sessions, 0)} sessions through writeSession on 2 processes at ` +
      `${fmt(c.bulk.sessions / c.bulk.writeSeconds, 0)}/s (${fmt(c.bulk.writeSeconds)} s), ` +
      `Store.load of them and their audit chain ${c.bulk.loadSeconds === null ? '(not recorded)' : `${fmt(c.bulk.loadSeconds)} s`}`,
  );
  line('', `${SMALL}`, n);
  for (const w of [1, 2] as const) {
    const [a, b] = [small.restart[w], large.restart[w]];
    const restartGoal = `   goal ≤ 2,000 ms at ${n}: ${goal(b.ms <= 2000)}`;
    line(`CAS restart to /readyz 200, ${w} worker(s) (ms)`, fmt(a.ms, 0), fmt(b.ms, 0), restartGoal);
    line(`  CPU of its processes until then (ms)`, fmt(a.cpuMs, 0), fmt(b.cpuMs, 0));
  }
  line('GET /v1/sessions/NAME p50 (ms)', fmt(small.read.p50, 2), fmt(large.read.p50, 2));
  line('GET /v1/sessions/NAME p99 (ms)', fmt(small.read.p99, 2), fmt(large.read.p99, 2));
  const ratio = large.attest.p50 / small.attest.p50;
  const attestGoal = `   ratio ${fmt(ratio, 2)}×, goal ≤ 1.10×: ${goal(ratio <= 1.1)}`;
  line('attestation p50 (ms)', fmt(small.attest.p50, 2), fmt(large.attest.p50, 2), attestGoal);
  line('attestation p99 (ms)', fmt(small.attest.p99, 2), fmt(large.attest.p99, 2));
  line('first GET /metrics (ms)', fmt(small.metrics, 2), fmt(large.metrics, 2));
  line('resident memory, VmRSS (MiB)', fmt(small.rss), fmt(large.rss));
  line('database, cas.db + -wal (MiB)', fmt(small.fileMiB), fmt(large.fileMiB));
}

/** A first start (it makes the session-encryption key), `count` sessions through the API, stop: the rate. */
async function createOn(root: string, creator: Identity, count: number, prefix = 'api'): Promise<number> {
  const cas = await serve(join(root, 'data'), join(root, 'home'));
  try {
    return await createThroughApi(cas.url, creator, count, prefix);
  } finally {
    await cas.stop();
  }
}

/**
 * BENCH_KEEP_DIR=DIR keeps the large store there, and a later run with the same DIR measures it again without
 * filling it (the fill of 100,000 takes minutes; a restart figure after a change of the CAS takes seconds).
 */
const KEEP = process.env['BENCH_KEEP_DIR'];

/** The large store, filled by this run or (BENCH_KEEP_DIR) by an earlier one, with what its fill measured. */
/** What the large store's reads ask for: sessions the bench's creator may read. */
interface Reads {
  prefix: string;
  count: number;
}

async function largeStore(
  creator: Identity,
  host: TestHost,
): Promise<{ root: string; fill: Omit<Creates, 'small'>; reads: Reads }> {
  const root = KEEP ?? mkdtempSync(join(tmpdir(), 'veil-bench-store-'));
  const marker = join(root, 'filled.json');
  if (KEEP && existsSync(marker)) return { root, ...JSON.parse(readFileSync(marker, 'utf8')) };
  if (KEEP) mkdirSync(root, { recursive: true });
  const hostKey = host.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  // The bulk's figures (and its creator) are kept apart: a later step that fails does not cost the fill.
  const bulkMarker = join(root, 'bulk.json');
  const before = existsSync(bulkMarker) ? (JSON.parse(readFileSync(bulkMarker, 'utf8')) as Partial<Saved>) : undefined;
  const bulk: BulkFigures = before
    ? (before as unknown as BulkFigures)
    : await bulkFill(join(root, 'data'), creator, SESSIONS - API_CREATES, 2);
  if (KEEP && !before) writeFileSync(bulkMarker, JSON.stringify({ ...bulk, creator, hostKey }), { mode: 0o600 });
  // A prefix of its own per run: an earlier run that stopped half-way left some `api-…` sessions behind.
  const prefix = `api${Date.now().toString(36)}`;
  const large = await createOn(root, creator, API_CREATES, prefix);
  await addAttested(join(root, 'data'), creator, host);
  const fill = { large, bulk, total: bulk.sessions + API_CREATES };
  // A bulk whose creator was not kept (a store filled before it was) is read through the API's sessions.
  const reads = !before || before.creator ? { prefix: 'team', count: bulk.sessions } : { prefix, count: API_CREATES };
  writeFileSync(marker, JSON.stringify({ fill, reads, creator, hostKey }), { mode: 0o600 });
  return { root, fill, reads };
}

/** The kept store's creator and simulation host: its `bench` session lists that host's platform ID. */
interface Saved {
  creator: Identity;
  hostKey: string;
}

function hostOf(pem: string): TestHost {
  const privateKey = createPrivateKey(pem);
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  return { id: hostId(spki), spki, privateKey };
}

async function main(): Promise<void> {
  const savedIn = (file: string) =>
    KEEP && existsSync(join(KEEP, file)) ? (JSON.parse(readFileSync(join(KEEP, file), 'utf8')) as Partial<Saved>) : {};
  const found = [savedIn('filled.json'), savedIn('bulk.json')].find((x) => x.creator && x.hostKey);
  const saved = found as Saved | undefined;
  const creator = saved?.creator ?? ephemeral();
  const host = saved ? hostOf(saved.hostKey) : testHost();
  const small = mkdtempSync(join(tmpdir(), 'veil-bench-store-'));
  let large: string | undefined;
  try {
    const smallRate = await createOn(small, creator, SMALL);
    await addAttested(join(small, 'data'), creator, host);
    const filled = await largeStore(creator, host);
    large = filled.root;
    const figures = [
      await measure(small, SMALL, creator, host, 'api'),
      await measure(large, filled.reads.count, creator, host, filled.reads.prefix),
    ];
    report({ small: smallRate, ...filled.fill }, figures[0]!, figures[1]!);
  } finally {
    rmSync(small, { recursive: true, force: true });
    if (large && !KEEP) rmSync(large, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'fill') {
  const [dir = '', from = '0', to = '0'] = process.argv.slice(3);
  await fillPart(dir, readFileSync(0, 'utf8'), Number(from), Number(to));
} else {
  await main();
}
