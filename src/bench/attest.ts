/**
 * `npm run bench:attest`: the CAS's attestation path under load, beside a bare node:https server doing the same
 * transport work (bare-server.ts), both driven by one load client (attest-load.ts, `veil run`'s own
 * obtainConfig: a fresh key and TLS connection per attestation). The CAS is the real one (`veil cas serve`, with
 * the seed's Redis and Flask policies, the Flask service attested with simulation evidence), with 1 and 2 worker
 * processes. Printed first: server CPU per attestation (utime + stime of the server's whole process tree, from
 * /proc) and the ratio to the bare server; then throughput and p50/p99, which depend on what else the machine
 * runs — the load client shares its cores.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { hostId, simulationMeasurement } from '../attestation/index.js';
import { ephemeral } from '../cas/testing.js';
import type { LoadPlan, LoadResult } from './attest-load.js';
import { cpuSeconds, machineBusySeconds, percentile, processTree, spentBetween } from './proc-stat.js';
import { benchPolicy, goalLine, mergeRounds, type Row, table } from './attest-report.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5);
const WARMUP = Number(process.env['BENCH_WARMUP'] ?? 1);
const LEVELS = (process.env['BENCH_CONCURRENCY'] ?? '1,16,64,256').split(',').map(Number);
const WORKERS = (process.env['BENCH_WORKERS'] ?? '1,2').split(',').map(Number);
const ROUNDS = Math.max(1, Number(process.env['BENCH_ROUNDS'] ?? 1));

interface Server {
  name: string;
  url: string;
  trust: LoadPlan['trust'];
  child: ChildProcess;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
const killAll = () => {
  for (const c of children) c.kill('SIGKILL');
};
process.on('exit', killAll);
process.on('SIGINT', () => process.exit(130));

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await gone;
    clearTimeout(timer);
  };
}

async function lineMatching(child: ChildProcess, re: RegExp, what: string): Promise<RegExpExecArray> {
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start in 30 s: ${err}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = re.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}): ${err}`)));
  });
}

async function startCas(dir: string, workers: number): Promise<Server> {
  const args = [join(ROOT, 'bin', 'veil.js'), 'cas', 'serve', '--listen', '127.0.0.1:0', '--data', join(dir, 'data')];
  // All load comes from 127.0.0.1: the default 64 connections per address would refuse most of 256 at once.
  args.push('--max-connections-per-address', '1024', '--max-connections', '4096');
  if (workers > 1) args.push('--workers', String(workers));
  const env = { ...process.env, VEIL_HOME: join(dir, 'home'), VEIL_CAS_WORKERS: String(workers) };
  // BENCH_CAS_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR' profiles the CAS under this load.
  const node = (process.env['BENCH_CAS_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
  const child = track(spawn(process.execPath, [...node, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  const m = await lineMatching(child, /CAS listening at (\S+)[\s\S]*fingerprint \(SHA-256\): ([0-9a-f]{64})/, 'CAS');
  return { name: `CAS ×${workers}`, url: m[1]!, trust: { fingerprint: m[2]! }, child, stop: stopper(child) };
}

async function startBare(answerFile: string, framework?: 'fastify'): Promise<Server> {
  const script = join(ROOT, 'dist', 'bench', 'bare-server.js');
  // BENCH_BARE_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR' profiles the bare servers, to set beside the CAS's profile.
  const node = (process.env['BENCH_BARE_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
  const args = [...node, script, answerFile, ...(framework ? [framework] : [])];
  const child = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const m = await lineMatching(child, /PORT (\d+)/, 'bare server');
  const url = `https://127.0.0.1:${m[1]}`;
  const name = framework ? 'bare fastify' : 'bare https';
  return { name, url, trust: { trustAny: true }, child, stop: stopper(child) };
}

async function upload(url: string, texts: string[]): Promise<void> {
  const me = ephemeral();
  const agent = new Agent({ connect: { cert: me.certPem, key: me.keyPem, rejectUnauthorized: false } });
  try {
    for (const body of texts) {
      const res = await request(`${url}/v1/sessions`, { method: 'POST', body, dispatcher: agent });
      const text = await res.body.text();
      if (res.statusCode !== 201) throw new Error(`upload refused (${res.statusCode}): ${text}`);
    }
  } finally {
    await agent.close();
  }
}

/** One load phase against one server: its process tree's CPU between READY and DONE. */
async function drive(server: Server, plan: LoadPlan): Promise<Row> {
  const script = join(ROOT, 'dist', 'bench', 'attest-load.js');
  const env = { ...process.env, VEIL_BENCH_LOAD: JSON.stringify(plan) };
  const client = track(
    spawn(process.execPath, [...(process.env['BENCH_CLIENT_NODE_ARGS'] ?? '').split(' ').filter(Boolean), script], {
      env,
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  const lines = createInterface({ input: client.stdout! });
  let before: Map<number, number> | undefined;
  let pids: number[] = [];
  let load = '';
  let machineBefore = 0;
  const started = { t: 0 };
  for await (const line of lines) {
    if (line === 'READY') {
      pids = processTree(server.child.pid!);
      before = cpuSeconds(pids);
      machineBefore = machineBusySeconds();
      load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!;
      started.t = performance.now();
      client.stdin!.write('go\n');
    } else if (line.startsWith('DONE ')) {
      const wall = (performance.now() - started.t) / 1000;
      const spent = before ? spentBetween(before, cpuSeconds(pids)) : 0;
      const machine = machineBusySeconds() - machineBefore;
      const result = JSON.parse(line.slice(5)) as LoadResult;
      client.stdin!.end();
      if (result.count === 0) throw new Error(`${server.name}: no attestation succeeded: ${result.firstError}`);
      return {
        server: server.name,
        concurrency: plan.concurrency,
        count: result.count,
        errors: result.errors,
        ...(result.firstError === undefined ? {} : { firstError: result.firstError }),
        perSecond: result.count / result.seconds,
        p50: percentile(result.latencies, 50),
        p99: percentile(result.latencies, 99),
        cpuMs: (spent * 1000) / result.count,
        cores: spent / wall,
        clientCpuMs: (result.clientCpuSeconds * 1000) / result.count,
        load: Number(load),
        otherCores: Math.max(0, machine - spent - result.clientCpuSeconds) / wall,
        processes: pids.length,
      };
    }
  }
  throw new Error(`${server.name}: the load client ended without a result`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'veil-bench-attest-'));
  const servers: Server[] = [];
  try {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const host = { id: hostId(spki), pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
    const measurement = simulationMeasurement(Buffer.from('runtime'), Buffer.from('python3'));
    const vars = {
      MRENCLAVE: measurement,
      SCONE_FSPF_KEY: randomBytes(32).toString('hex'),
      SCONE_FSPF_TAG: randomBytes(16).toString('hex'),
      FLASK_SESSION: 'flask',
      REDIS_SESSION: 'redis',
    };
    const policies = (['redis', 'flask'] as const).map((w) => benchPolicy(ROOT, w, vars, host.id));
    for (const n of WORKERS) {
      const cas = await startCas(join(dir, `cas-${n}`), n);
      servers.push(cas);
      await upload(cas.url, policies);
    }
    const plan = (server: Server, concurrency: number, seconds = SECONDS): LoadPlan => ({
      url: server.url,
      configId: 'flask/flask_restapi',
      trust: server.trust,
      measurement,
      hostKeyPem: host.pem,
      concurrency,
      seconds,
      warmupSeconds: WARMUP,
    });
    // The CAS's own answer, byte for byte the size the bare server sends back.
    const { obtainConfig } = await import('../runtime/attest.js');
    const { signedSimulation } = await import('../attestation/testing.js');
    const { createPrivateKey } = await import('node:crypto');
    const key = createPrivateKey(host.pem);
    const sample = await obtainConfig({
      casAddr: servers[0]!.url,
      configId: 'flask/flask_restapi',
      trust: servers[0]!.trust,
      evidence: {
        kind: 'simulation',
        describe: 'bench',
        collect: async (b) => signedSimulation({ id: host.id, spki, privateKey: key }, measurement, b),
      },
      now: () => new Date(),
    });
    const answerFile = join(dir, 'answer.json');
    writeFileSync(answerFile, JSON.stringify(sample));
    // The bound, and (BENCH_FASTIFY=0 leaves it out) the same work in fastify: what the framework alone costs.
    if (process.env['BENCH_FASTIFY'] !== '0') servers.unshift(await startBare(answerFile, 'fastify'));
    servers.unshift(await startBare(answerFile));
    process.stdout.write(
      `bench:attest — ${SECONDS} s per phase after ${WARMUP} s warm-up; the CAS's answer is ${JSON.stringify(sample).length} bytes; ` +
        'the CAS runs with --max-connections-per-address 1024 --max-connections 4096 (one client address)\n',
    );
    const rounds: Row[][] = Array.from({ length: ROUNDS }, () => []);
    for (const concurrency of LEVELS) {
      for (const [i, round] of rounds.entries()) {
        for (const server of servers) {
          const row = await drive(server, plan(server, concurrency));
          round.push(row);
          process.stdout.write(
            `  ${server.name.padEnd(11)} c=${String(concurrency).padStart(3)}${ROUNDS > 1 ? ` round ${i + 1}` : ''}: ` +
              `${row.count} in ${SECONDS} s, ${row.cpuMs.toFixed(2)} ms CPU each\n`,
          );
        }
      }
    }
    const rows = mergeRounds(rounds);
    if (ROUNDS > 1) process.stdout.write(`\nmedians of ${ROUNDS} rounds, the servers taking turns in each\n`);
    process.stdout.write(`\n${table(rows)}\n`);
    for (const line of goalLine(rows, WORKERS)) process.stdout.write(`${line}\n`);
    const out = process.env['BENCH_JSON'];
    if (out) writeFileSync(out, `${JSON.stringify({ seconds: SECONDS, rows })}\n`);
  } finally {
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:attest failed: ${(err as Error).stack ?? String(err)}\n`);
  killAll();
  process.exit(1);
});
