/**
 * The load client of `npm run bench:attest`, one code path for the CAS and for the bare server: every
 * attestation is `veil run`'s own `obtainConfig` — a fresh P-256 key and certificate, a new TLS connection, a
 * nonce, simulation evidence bound to both, the configuration checked against the contract.
 * Its own process, so that its CPU is counted for neither server. Protocol on stdio: it warms up, drains, prints
 * `READY`, waits for a line on stdin, runs for the given seconds, drains, prints `DONE <json>`.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { createInterface } from 'node:readline';
import { hostId } from '../attestation/index.js';
import { signedSimulation } from '../attestation/testing.js';
import { obtainConfig, type CasTrust } from '../runtime/attest.js';
import type { EvidenceSource } from '../runtime/evidence-source.js';

export interface LoadPlan {
  url: string;
  configId: string;
  trust: CasTrust;
  measurement: string;
  /** PKCS#8 PEM of the simulation host's Ed25519 key (a throw-away key made by the bench). */
  hostKeyPem: string;
  concurrency: number;
  seconds: number;
  warmupSeconds: number;
}

export interface LoadResult {
  count: number;
  errors: number;
  firstError?: string;
  seconds: number;
  /** Milliseconds per attestation, ascending. */
  latencies: number[];
  clientCpuSeconds: number;
}

function evidenceFrom(plan: LoadPlan): EvidenceSource {
  const privateKey = createPrivateKey(plan.hostKeyPem);
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const host = { id: hostId(spki), spki, privateKey };
  return {
    kind: 'simulation',
    describe: 'bench simulation evidence',
    collect: async (binding) => signedSimulation(host, plan.measurement, binding),
  };
}

async function phase(plan: LoadPlan, evidence: EvidenceSource, seconds: number): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const cpu = process.cpuUsage();
  const started = performance.now();
  const end = started + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const t = performance.now();
      try {
        const config = await obtainConfig({
          casAddr: plan.url,
          configId: plan.configId,
          trust: plan.trust,
          evidence,
          now: () => new Date(),
        });
        if (!config.command) throw new Error('the answer holds no command');
        latencies.push(performance.now() - t);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: plan.concurrency }, worker));
  const used = process.cpuUsage(cpu);
  return {
    count: latencies.length,
    errors,
    ...(firstError === undefined ? {} : { firstError }),
    seconds: (performance.now() - started) / 1000,
    latencies: latencies.sort((a, b) => a - b),
    clientCpuSeconds: (used.user + used.system) / 1e6,
  };
}

async function main(): Promise<void> {
  const plan = JSON.parse(process.env['VEIL_BENCH_LOAD'] ?? '') as LoadPlan;
  const evidence = evidenceFrom(plan);
  const warm = await phase(plan, evidence, plan.warmupSeconds);
  if (warm.count === 0) {
    process.stdout.write(`DONE ${JSON.stringify(warm)}\n`);
    return;
  }
  process.stdout.write('READY\n');
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once('line', () => resolve()));
  lines.close();
  const result = await phase(plan, evidence, plan.seconds);
  process.stdout.write(`DONE ${JSON.stringify(result)}\n`);
}

if (process.env['VEIL_BENCH_LOAD']) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
