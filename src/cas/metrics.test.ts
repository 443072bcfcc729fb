import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import parse, { type Family } from 'parse-prometheus-text-format';
import { Agent, request } from 'undici';
import { simulationMeasurement } from '../attestation/index.js';
import { signedSimulation, testHost } from '../attestation/testing.js';
import { startCas, type RunningCas } from './server.js';
import { ephemeral, post, rawExchange, type Identity } from './testing.js';

const program = simulationMeasurement(Buffer.from('runtime'), Buffer.from('python3'));
const host = testHost();
const SESSION = 'metrics-private-name';
const policy = [
  `name: ${SESSION}`,
  'services:',
  '  - name: api',
  `    mrenclaves: [${program}]`,
  `    platforms: [${host.id}]`,
  '    command: python3 /app/api.py',
  '    image_name: img',
  'images: [{name: img}]',
  'secrets: [{name: pw, kind: ascii, size: 12}]',
  'security: {attestation: {mode: none}}',
  '',
].join('\n');

/** One sample's value (a counter or gauge), 0 when the series does not exist yet. */
function sample(families: Family[], name: string, labels: Record<string, string> = {}): number {
  const family = families.find((f) => f.name === name);
  const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return Number(sample?.value ?? sample?.count ?? 0);
}

/**
 * A histogram's observation count: the JS parser keeps a labelled histogram's buckets without their labels,
 * so its `_count` series is read from the text (promtool has checked its syntax).
 */
function countOf(text: string, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => l.startsWith(`${name}_count{`) && wanted.every((w) => l.includes(w)));
  return Number(line?.split(' ').pop() ?? 0);
}

describe('GET /metrics of a real CAS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-metrics-'));
  let cas: RunningCas;
  const owner = ephemeral();
  const get = async (path: string, who?: Identity) => {
    const cert = who ? { cert: who.certPem, key: who.keyPem } : {};
    const agent = new Agent({ connect: { ca: cas.identity.caCertPem, ...cert } });
    try {
      const res = await request(`${cas.url}${path}`, { dispatcher: agent });
      return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
    } finally {
      await agent.close();
    }
  };
  const scrape = async () => {
    const res = await get('/metrics');
    assert.equal(res.status, 200, res.text);
    return { text: res.text, families: parse(res.text), type: String(res.headers['content-type']) };
  };
  const attest = async (measurement: string) => {
    const rt = ephemeral();
    const { json } = await post(cas, rt, '/v1/attest/nonce', '');
    const evidence = signedSimulation(host, measurement, { nonce: Buffer.from(json.nonce, 'hex'), spki: rt.spki });
    const body = JSON.stringify({ config_id: `${SESSION}/api`, nonce: json.nonce, evidence });
    return (await post(cas, rt, '/v1/attest', body)).status;
  };
  let first: Awaited<ReturnType<typeof scrape>>;

  before(async () => {
    cas = await startCas({ host: '127.0.0.1', port: 0, dataDir: dir });
    assert.equal((await post(cas, owner, '/v1/sessions', policy)).status, 201);
    for (let i = 0; i < 3; i++) assert.equal((await get('/v1/version')).status, 200);
    assert.equal((await get(`/v1/no/${SESSION}`)).status, 404);
    assert.equal((await get(`/v1/sessions/${SESSION}`, owner)).status, 200);
    assert.equal(await attest(program), 200);
    assert.equal(await attest('cd'.repeat(32)), 403);
    assert.equal((await post(cas, ephemeral(), '/v1/attest', '{"config_id": 1}')).status, 400);
    const big = `GET /v1/version HTTP/1.1\r\nHost: cas\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`;
    assert.equal((await rawExchange(cas, undefined, Buffer.from(big))).status, 431);
    first = await scrape();
  });
  after(async () => {
    await cas?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers without a client certificate, in the Prometheus text format promtool accepts', (t) => {
    assert.match(first.type, /^text\/plain; version=0\.0\.4/);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: first.text, encoding: 'utf8' });
    assert.equal(check.error, undefined, 'promtool is installed by the Makefile (Debian package prometheus)');
    assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
    t.diagnostic(`promtool accepted ${first.families.length} metric families`);
  });

  it('counts requests by route pattern and status, never by path', () => {
    const requests = 'veil_cas_http_requests_total';
    assert.equal(sample(first.families, requests, { route: '/v1/version', method: 'GET', status: '200' }), 3);
    assert.equal(sample(first.families, requests, { route: 'unmatched', status: '404' }), 1);
    assert.equal(sample(first.families, requests, { route: '/v1/sessions/*', status: '200' }), 1);
    assert.equal(sample(first.families, requests, { route: '/v1/sessions', method: 'POST', status: '201' }), 1);
    assert.equal(countOf(first.text, 'veil_cas_http_request_duration_seconds', { route: '/v1/version' }), 3);
    assert.ok(!first.text.includes(SESSION), 'no session name in any label');
    assert.equal(sample(first.families, 'veil_cas_http_client_errors_total', { code: 'CAS_HEADERS_TOO_LARGE' }), 1);
  });

  it('counts attestations by result, refusal reason and evidence type', () => {
    const name = 'veil_cas_attestations_total';
    const accepted = { result: 'accepted', reason: 'none', evidence_type: 'simulation' };
    assert.equal(sample(first.families, name, accepted), 1);
    const wrong = { result: 'refused', reason: 'ATTESTATION_MEASUREMENT', evidence_type: 'simulation' };
    assert.equal(sample(first.families, name, wrong), 1);
    assert.equal(sample(first.families, name, { reason: 'CAS_BAD_REQUEST', evidence_type: 'none' }), 1);
    assert.equal(sample(first.families, 'veil_cas_attestation_nonces_issued_total'), 2);
    assert.equal(sample(first.families, 'veil_cas_attestation_nonces_remembered', { kind: 'spent' }), 2);
  });

  it('reports sessions, store latency by operation, the event loop and the process', () => {
    assert.equal(sample(first.families, 'veil_cas_sessions'), 1);
    const store = 'veil_cas_store_operation_duration_seconds';
    assert.ok(countOf(first.text, store, { operation: 'append', outcome: 'ok' }) >= 1);
    assert.ok(countOf(first.text, store, { operation: 'current', outcome: 'ok' }) >= 1);
    for (const name of ['nodejs_eventloop_lag_seconds', 'process_cpu_seconds_total', 'process_resident_memory_bytes'])
      assert.ok(
        first.families.some((f) => f.name === name),
        name,
      );
  });

  it('moves counters by exactly the requests made between two scrapes', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await get('/v1/version')).status, 200);
    const second = await scrape();
    const version = { route: '/v1/version', method: 'GET', status: '200' };
    const total = 'veil_cas_http_requests_total';
    assert.equal(sample(second.families, total, version) - sample(first.families, total, version), 2);
    const scrapes = { route: '/metrics', method: 'GET', status: '200' };
    assert.equal(sample(second.families, total, scrapes) - sample(first.families, total, scrapes), 1);
  });

  it('keeps each CAS in a registry of its own', async () => {
    const other = await startCas({ host: '127.0.0.1', port: 0, dataDir: join(dir, 'other') });
    try {
      const agent = new Agent({ connect: { ca: other.identity.caCertPem } });
      const res = await request(`${other.url}/metrics`, { dispatcher: agent });
      const families = parse(await res.body.text());
      await agent.close();
      assert.equal(sample(families, 'veil_cas_http_requests_total', { route: '/v1/version' }), 0);
      assert.equal(sample(families, 'veil_cas_sessions'), 0);
    } finally {
      await other.close();
    }
  });
});
