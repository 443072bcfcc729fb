import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { simulationMeasurement } from '../attestation/index.js';
import { signedSimulation, testHost } from '../attestation/testing.js';
import { ephemeral, type Identity } from '../cas/testing.js';
import { ROOT, startCas, tempDir, waitFor, type CasProcess } from './harness.js';

/** The goal of issue #10: whatever one client sends within the limits, another is answered within this. */
const P99_GOAL_MS = 100;
const MEASURE_MS = 15_000;
const BASELINE_MS = 4_000;
const VICTIM_ADDRESS = '127.0.0.2';
const program = simulationMeasurement(Buffer.from('runtime'), Buffer.from('python3'));
const host = testHost();
const victimPolicy = [
  'name: victim',
  'services:',
  '  - name: api',
  `    mrenclaves: [${program}]`,
  `    platforms: [${host.id}]`,
  '    command: python3 /app/api.py --pw $$SCONE::pw$$',
  'secrets:',
  '  - {name: pw, kind: ascii, size: 16}',
  'security: {attestation: {mode: none}}',
  '',
].join('\n');

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function summary(name: string, samples: number[]): { p50: number; p99: number } {
  const sorted = [...samples].sort((x, y) => x - y);
  const [p50, p99] = [percentile(sorted, 50), percentile(sorted, 99)];
  const max = sorted.at(-1)!;
  const figures = `p50=${p50.toFixed(1)} p99=${p99.toFixed(1)} max=${max.toFixed(1)} ms`;
  process.stdout.write(`# ${name}: n=${samples.length} ${figures}\n`);
  return { p50, p99 };
}

describe('one client cannot stall the CAS or other clients (issue #10)', () => {
  const dir = tempDir('veil-stall-');
  let cas: CasProcess;
  let ca: string;
  let load: ChildProcess | undefined;
  const agentFor = (who: Identity) =>
    new Agent({ localAddress: VICTIM_ADDRESS, connect: { ca, cert: who.certPem, key: who.keyPem } });
  const post = async (agent: Agent, path: string, body: string) => {
    const res = await request(`${cas.url}${path}`, { method: 'POST', body, dispatcher: agent });
    return { status: res.statusCode, json: await res.body.json() };
  };

  /** What a runtime does at start: a new key and connection, a nonce, evidence bound to both. */
  async function attestOnce(runtime: Identity): Promise<number> {
    const started = performance.now();
    const agent = agentFor(runtime);
    try {
      const { nonce } = (await post(agent, '/v1/attest/nonce', '')).json as { nonce: string };
      const evidence = signedSimulation(host, program, { nonce: Buffer.from(nonce, 'hex'), spki: runtime.spki });
      const res = await post(agent, '/v1/attest', JSON.stringify({ config_id: 'victim/api', nonce, evidence }));
      assert.equal(res.status, 200, JSON.stringify(res.json));
      return performance.now() - started;
    } finally {
      await agent.destroy();
    }
  }

  /** The victim from its own address: version requests on one connection, every other one an attestation. */
  async function measure(ms: number): Promise<{ versionMs: number[]; attestMs: number[] }> {
    // Keys made beforehand: the client's own key generation is not the CAS's answer time.
    const runtimes = Array.from({ length: Math.ceil(ms / 40) }, () => ephemeral());
    const version = agentFor(ephemeral());
    const versionMs: number[] = [];
    const attestMs: number[] = [];
    const end = Date.now() + ms;
    while (Date.now() < end && runtimes.length > 0) {
      const started = performance.now();
      const res = await request(`${cas.url}/v1/version`, { dispatcher: version });
      assert.equal(res.statusCode, 200);
      await res.body.json();
      versionMs.push(performance.now() - started);
      if (versionMs.length % 2 === 0) attestMs.push(await attestOnce(runtimes.pop()!));
      await new Promise((r) => setTimeout(r, 20));
    }
    await version.close();
    return { versionMs, attestMs };
  }

  before(async () => {
    // The documented defaults, given as flags so that the flags are exercised too.
    const flags = ['--max-connections-per-address', '64', '--headers-timeout', '10000'];
    flags.push('--max-writes-per-address', '1');
    cas = await startCas(join(dir.path, 'data'), dir.path, flags);
    ca = readFileSync(cas.caFile, 'utf8');
    const owner = agentFor(ephemeral());
    assert.equal((await post(owner, '/v1/sessions', victimPolicy)).status, 201);
    await owner.close();
  });
  after(async () => {
    load?.kill('SIGKILL');
    await cas?.stop();
    dir.cleanup();
  });

  const title = `answers /v1/version and attestations within ${P99_GOAL_MS} ms p99 while another address floods`;
  it(title, { timeout: 120_000 }, async () => {
    const quiet = await measure(BASELINE_MS);
    const script = join(ROOT, 'dist', 'e2e', 'stall-load.js');
    const child = spawn(process.execPath, [script, cas.url, cas.caFile, '127.0.0.1'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    load = child;
    // The flooding client would have its own machine: here it shares two cores with the CAS and the measuring
    // client, so it runs at the lowest priority — what it costs the CAS is measured, not what it costs itself.
    setPriority(child.pid!, 19);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => child.once('exit', r));
    await waitFor(
      () => out.includes('load running'),
      10_000,
      () => 'the load did not start',
    );
    await new Promise((r) => setTimeout(r, 2000)); // let the slow connections and uploads fill up

    const { versionMs, attestMs } = await measure(MEASURE_MS);

    child.kill('SIGTERM');
    await exited;
    const counts = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, number>;
    process.stdout.write(`# load from 127.0.0.1 over the run: ${JSON.stringify(counts)}\n`);
    const v = summary('GET /v1/version (kept-alive connection)', versionMs);
    const a = summary('attestation (new key: handshake, nonce, attest)', attestMs);
    assert.ok((counts['upload 201'] ?? 0) > 0, 'the load uploaded sessions');
    const nonce429 = (counts['same-key nonce 429'] ?? 0) + (counts['same-key attest 429'] ?? 0);
    assert.ok(nonce429 > 0, 'one key hit its nonce cap');
    assert.ok((counts['slow connection closed by the CAS'] ?? 0) > 0, 'slow connections were cut off');
    // The goal can be judged only where the CAS answers within it when nobody loads it: on a machine shared with
    // other work the quiet p99 alone can exceed it, and the run then says so instead of blaming the CAS.
    const quietVersion = summary('without load: GET /v1/version', quiet.versionMs);
    const quietP99 = Math.max(quietVersion.p99, summary('without load: attestation', quiet.attestMs).p99);
    if (quietP99 < P99_GOAL_MS / 2) {
      assert.ok(v.p99 < P99_GOAL_MS, `version p99 ${v.p99.toFixed(1)} ms`);
      assert.ok(a.p99 < P99_GOAL_MS, `attestation p99 ${a.p99.toFixed(1)} ms`);
    } else {
      const why = `this machine answers in ${quietP99.toFixed(1)} ms p99 without load`;
      process.stdout.write(`# NOT JUDGED: ${why} (goal ${P99_GOAL_MS} ms)\n`);
    }
  });
});
