import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { simulationMeasurement } from '../attestation/index.js';
import { signedSimulation, testHost } from '../attestation/testing.js';
import { prng } from '../attestation/testing.js';
import { casErrorBodySchema } from '../contract/index.js';
import { fuzzRequest, wireBytes, type FuzzRequest, type FuzzSeeds } from './fuzzing.js';
import { startCas, type RunningCas } from './server.js';
import { ephemeral, post, rawExchange, type RawAnswer } from './testing.js';

/**
 * Issue #10, "no input gives a 500": random and grammar-aware requests against every route, with and without
 * client certificates. Bounded by a request count (not by time) so that a seed replays exactly:
 * VEIL_FUZZ_SEED=<n> VEIL_FUZZ_REQUESTS=<n> node --test dist/cas/fuzz.test.js
 */
const SEED = Number(process.env['VEIL_FUZZ_SEED'] ?? 20261201);
const REQUESTS = Number(process.env['VEIL_FUZZ_REQUESTS'] ?? 250);
const PARALLEL = 4;

const program = simulationMeasurement(Buffer.from('runtime'), Buffer.from('program'));
const host = testHost();
const SIMULATED = [
  'name: sim',
  'version: "0.3"',
  'services:',
  '  - name: api',
  `    mrenclaves: [${program}]`,
  `    platforms: [${host.id}]`,
  '    command: prog --pw $$SCONE::pw$$',
  '    image_name: img',
  'images:',
  '  - name: img',
  '    injection_files:',
  '      - {path: /tls/ca.crt, content: "$$SCONE::ca.crt$$", permission: 0600}',
  'secrets:',
  '  - {name: pw, kind: ascii, size: 12}',
  '  - {name: ca_key, kind: private-key}',
  '  - {name: ca, kind: x509-ca, private_key: ca_key, export_public: true}',
  'security: {attestation: {mode: none}}',
  '',
].join('\n');

/** The example's policies with their `$VARIABLES` filled, as `veil session create -e` would. */
function examplePolicies(): string[] {
  const dir = new URL('../../examples/flask-redis/policies/', import.meta.url);
  const files = ['flask-session.yaml', 'redis-session.yaml'].map((f) => new URL(f, dir));
  const values: Record<string, string> = {
    MRENCLAVE: program,
    SCONE_FSPF_KEY: 'a'.repeat(64),
    SCONE_FSPF_TAG: 'b'.repeat(32),
  };
  const fill = (_: string, name: string) => values[name] ?? name.toLowerCase();
  return files.map((f) => readFileSync(f, 'utf8').replace(/\$([A-Z][A-Z0-9_]*)/g, fill));
}

describe(`CAS fuzz: no input gives a 5xx or an error outside the JSON format (seed ${SEED})`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-fuzz-'));
  let cas: RunningCas;
  const owner = ephemeral();
  const stranger = ephemeral();
  const policies = [SIMULATED, ...examplePolicies()];

  let agent: Agent;

  before(async () => {
    cas = await startCas({ host: '127.0.0.1', port: 0, dataDir: dir, bodyLimit: 64 * 1024 });
    agent = new Agent({ connect: { ca: cas.identity.caCertPem, cert: owner.certPem, key: owner.keyPem } });
    for (const text of policies) {
      assert.ok([200, 201].includes((await post(cas, owner, '/v1/sessions', text)).status), text.slice(0, 80));
    }
  });
  after(async () => {
    await agent?.close();
    await cas?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const seeds: FuzzSeeds = {
    policies,
    sessions: ['sim', 'flask_session', 'redis_session', 'nothing', 'a/b'],
    attest: async () => {
      const res = await request(`${cas.url}/v1/attest/nonce`, { method: 'POST', dispatcher: agent });
      const nonce = ((await res.body.json()) as { nonce: string }).nonce;
      const evidence = signedSimulation(host, program, { nonce: Buffer.from(nonce, 'hex'), spki: owner.spki });
      return { config_id: 'sim/api', nonce, evidence };
    },
  };

  function judge(req: FuzzRequest, res: RawAnswer): string | undefined {
    const chunked = req.chunked ? `, chunked ${req.chunked}` : '';
    const what = `${req.who} ${req.method} ${req.target.slice(0, 120)} (${req.body.length} bytes${chunked})`;
    if (res.status === 0) return `${what}: no HTTP answer`;
    if (res.status >= 500) return `${what}: ${res.status} ${res.body.slice(0, 200)}`;
    if (res.status < 400 || req.method === 'HEAD') return undefined;
    const type = res.headers['content-type'];
    if (!/^application\/json/.test(type ?? '')) return `${what}: ${res.status} with content-type ${type}`;
    let json: unknown;
    try {
      json = JSON.parse(res.body);
    } catch {
      return `${what}: ${res.status} with a body that is not JSON: ${res.body.slice(0, 200)}`;
    }
    if (casErrorBodySchema.safeParse(json).success) return undefined;
    return `${what}: ${res.status} not in the CAS error format: ${res.body.slice(0, 200)}`;
  }

  it(`${REQUESTS} requests`, async (t) => {
    t.diagnostic(`seed ${SEED}, ${REQUESTS} requests (VEIL_FUZZ_SEED / VEIL_FUZZ_REQUESTS replay or extend)`);
    const rng = prng(SEED);
    // Requests are generated in order from one generator, so a seed gives the same requests whatever the timing.
    const requests: FuzzRequest[] = [];
    for (let i = 0; i < REQUESTS; i++) requests.push(await fuzzRequest(rng, seeds));
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    let next = 0;
    const worker = async () => {
      while (next < requests.length) {
        const req = requests[next++]!;
        const who = req.who === 'owner' ? owner : req.who === 'stranger' ? stranger : undefined;
        const res = await rawExchange(cas, who, wireBytes(req));
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const failure = judge(req, res);
        if (failure) failures.push(failure);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    t.diagnostic(
      `statuses: ${[...statuses]
        .sort(([a], [b]) => a - b)
        .map(([s, n]) => `${s}×${n}`)
        .join(' ')}`,
    );
    assert.deepEqual(failures.slice(0, 20), [], `seed ${SEED}: ${failures.length} bad answers`);
    // The generator must reach the handlers, not only the validators: some requests succeed.
    assert.ok((statuses.get(200) ?? 0) + (statuses.get(201) ?? 0) > 10, 'too few requests got through');
  });

  it('still works after the fuzzing: a valid attestation gets its configuration', async () => {
    const res = await post(cas, owner, '/v1/attest', JSON.stringify(await seeds.attest()));
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(res.json.attestation.simulated, true);
  });
});
