import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { simulationMeasurement } from '../attestation/index.js';
import { signedSimulation, testHost } from '../attestation/testing.js';
import type { ExportRequest } from '../contract/index.js';
import type { CasError } from './errors.js';
import { remoteFetcher } from './remote-import.js';
import { remoteCasList } from './remote-allow.js';
import { startCas, type RunningCas } from './server.js';
import { ephemeral, post, type Identity } from './testing.js';
import { Agent, request } from 'undici';

async function waitUntil(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 10));
}

const program = simulationMeasurement(Buffer.from('runtime'), Buffer.from('python3'));
const host = testHost();

const redis = (flaskKey: string) =>
  [
    'name: redis',
    'secrets:',
    `  - {name: client_key, kind: private-key, export: ["cas2.example/cas_key=${flaskKey},session=flask"]}`,
    '  - {name: ca_key, kind: private-key}',
    `  - {name: ca, kind: x509-ca, private_key: ca_key, export: [{session: flask, cas_key: ${flaskKey}}]}`,
    '  - name: client',
    '    kind: x509',
    '    issuer: ca',
    '    private_key: client_key',
    '    endpoint: client',
    `    export: [{session: flask, cas_url: cas2.example, cas_key: ${flaskKey}}]`,
    '',
  ].join('\n');

/** The Flask side on the importing CAS; `imports` are its secrets fetched from elsewhere. */
const flask = (name: string, imports: string[], files: string[]) =>
  [
    `name: ${name}`,
    'services:',
    '  - name: api',
    `    mrenclaves: [${program}]`,
    `    platforms: [${host.id}]`,
    '    command: python3 api.py',
    '    image_name: img',
    'images:',
    '  - name: img',
    '    injection_files:',
    ...files.map((f, i) => `      - {path: /tls/${i}, content: "${f}"}`),
    'secrets:',
    ...imports,
    'security: {attestation: {mode: none}}',
    '',
  ].join('\n');

const imp = (local: string, url: string, key: string, secret = local) =>
  `  - {name: ${local}, import: {cas_url: "${url}", cas_key: ${key}, session: redis, secret: ${secret}}}`;

describe('imports across two CAS', () => {
  const dirs = [1, 2].map(() => mkdtempSync(join(tmpdir(), 'veil-remote-')));
  let cas1: RunningCas;
  let cas2: RunningCas;
  let stall: Server;
  let stallUrl: string;
  const stalled: Socket[] = [];
  const owner = ephemeral();

  const attest = async (configId: string) => {
    const rt = ephemeral();
    const nonce = (await post(cas2, rt, '/v1/attest/nonce', '')).json.nonce as string;
    const evidence = signedSimulation(host, program, { nonce: Buffer.from(nonce, 'hex'), spki: rt.spki });
    return post(cas2, rt, '/v1/attest', JSON.stringify({ config_id: configId, nonce, evidence }));
  };
  const create = async (cas: RunningCas, text: string) => {
    const res = await post(cas, owner, '/v1/sessions', text);
    assert.equal(res.status, 201, JSON.stringify(res.json));
  };
  const url1 = () => `127.0.0.1:${cas1.port}`;
  const closed = () => `127.0.0.1:${cas1.port === 1 ? 2 : 1}`;
  const wrongKey = 'e0'.repeat(32);

  before(async () => {
    cas1 = await startCas({ host: '127.0.0.1', port: 0, dataDir: dirs[0]! });
    stall = createServer((socket) => stalled.push(socket));
    await new Promise<void>((resolve) => stall.listen(0, '127.0.0.1', resolve));
    stallUrl = `127.0.0.1:${(stall.address() as { port: number }).port}`;
    const key = cas1.identity.fingerprint;
    const remoteCas = [url1(), stallUrl, closed()].map((url) => ({ url, key }));
    remoteCas.push({ url: url1(), key: wrongKey });
    const remoteLimits = { timeoutMs: 1500 };
    cas2 = await startCas({ host: '127.0.0.1', port: 0, dataDir: dirs[1]!, remoteLimits, remoteCas });
    await create(cas1, redis(cas2.identity.fingerprint));
  });
  after(async () => {
    for (const s of stalled) s.destroy();
    stall?.close();
    await cas1?.close();
    await cas2?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("gives an attested service the other CAS's certificate, its exported key and its CA", async () => {
    const files = ['$$SCONE::client:crt$$', '$$SCONE::client.key$$', '$$SCONE::ca:crt$$', '$$SCONE::client:chain$$'];
    const key = cas1.identity.fingerprint;
    await create(cas2, flask('flask', [imp('client', url1(), key), imp('ca', url1(), key)], files));
    const res = await attest('flask/api');
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const [crt, clientKey, ca, chain] = res.json.injectionFiles.map((f: { content: string }) =>
      Buffer.from(f.content, 'base64').toString(),
    );
    assert.ok(new X509Certificate(crt).verify(new X509Certificate(ca).publicKey));
    assert.equal(chain, ca);
    assert.match(clientKey, /BEGIN PRIVATE KEY/);
  });

  it('refuses a wrong cas_key, naming the remote CAS and its key', async () => {
    const wrong = wrongKey;
    await create(cas2, flask('flask-wrongkey', [imp('client', url1(), wrong)], ['$$SCONE::client:crt$$']));
    const res = await attest('flask-wrongkey/api');
    assert.equal(res.status, 424);
    assert.equal(res.json.error.code, 'CAS_REMOTE_UNTRUSTED');
    assert.ok(res.json.error.message.includes(`the CAS at ${url1()} (cas_key ${wrong})`), res.json.error.message);
    assert.match(res.json.error.hint, /cas_key/);
    // What it presents instead would tell the session's writer which service answers there.
    assert.ok(!JSON.stringify(res.json).includes(cas1.identity.fingerprint), res.json.error.message);
  });

  it('refuses a secret not exported to this CAS and session, with what the exporter says', async () => {
    const key = cas1.identity.fingerprint;
    await create(cas2, flask('flask-unexported', [imp('k', url1(), key, 'ca_key')], ['$$SCONE::k$$']));
    const res = await attest('flask-unexported/api');
    assert.equal(res.status, 424);
    assert.equal(res.json.error.code, 'CAS_REMOTE_REFUSED');
    assert.match(res.json.error.message, /refused secret 'ca_key': .*not exported to it/);
    assert.ok(res.json.error.message.includes(url1()));
    // Exported to session 'flask' only: another session of the same CAS is refused too.
    await create(cas2, flask('flask-other', [imp('c', url1(), key, 'client')], ['$$SCONE::c:crt$$']));
    assert.equal((await attest('flask-other/api')).json.error.code, 'CAS_REMOTE_REFUSED');
  });

  it('refuses an unreachable CAS, naming it', async () => {
    const key = cas1.identity.fingerprint;
    await create(cas2, flask('flask-closed', [imp('c', closed(), key, 'client')], ['$$SCONE::c:crt$$']));
    const res = await attest('flask-closed/api');
    assert.equal(res.status, 424);
    assert.equal(res.json.error.code, 'CAS_REMOTE_UNREACHABLE');
    assert.ok(res.json.error.message.includes(`the CAS at ${closed()} (cas_key ${key}): it could not be reached`));
    assert.doesNotMatch(JSON.stringify(res.json), /ECONNREFUSED|connect /);
  });

  it('dials no other CAS for evidence it refuses', async () => {
    const key = cas1.identity.fingerprint;
    await create(cas2, flask('flask-stall', [imp('c', stallUrl, key, 'client')], ['$$SCONE::c:crt$$']));
    const before = stalled.length;
    const rt = ephemeral();
    const nonce = (await post(cas2, rt, '/v1/attest/nonce', '')).json.nonce as string;
    const other = simulationMeasurement(Buffer.from('runtime'), Buffer.from('perl'));
    const evidence = signedSimulation(host, other, { nonce: Buffer.from(nonce, 'hex'), spki: rt.spki });
    const res = await post(cas2, rt, '/v1/attest', JSON.stringify({ config_id: 'flask-stall/api', nonce, evidence }));
    assert.equal(res.json.error.code, 'CAS_ATTESTATION_FAILED');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(stalled.length, before);
  });

  it('keeps answering others while a remote CAS stalls an attestation, which then fails naming it', async () => {
    const key = cas1.identity.fingerprint;
    await create(cas2, flask('flask-slow', [imp('c', stallUrl, key, 'client')], ['$$SCONE::c:crt$$']));
    const pending = attest('flask-slow/api');
    await waitUntil(() => stalled.length > 0);
    const agent = new Agent({ connect: { ca: cas2.identity.caCertPem } });
    try {
      const version = await request(`${cas2.url}/v1/version`, { dispatcher: agent });
      assert.equal(version.statusCode, 200);
      await version.body.dump();
    } finally {
      await agent.close();
    }
    const res = await pending;
    assert.equal(res.json.error.code, 'CAS_REMOTE_UNREACHABLE');
    assert.ok(res.json.error.message.includes(`the CAS at ${stallUrl} (cas_key ${key}): no answer within 1500 ms`));
  });

  const ask: ExportRequest = {
    session: 'redis',
    secret: 'client',
    importer: { session: 'flask', session_hash: '00'.repeat(32) },
  };

  it('gives up on a CAS that does not answer within timeoutMs, and on an answer past answerBytes', async () => {
    const listed = remoteCasList([stallUrl, url1()].map((url) => ({ url, key: cas1.identity.fingerprint })));
    const fetch = remoteFetcher(cas2.identity, { timeoutMs: 300 }, listed);
    await assert.rejects(
      fetch({ url: stallUrl, key: cas1.identity.fingerprint }, ask),
      (e: CasError) => e.code === 'CAS_REMOTE_UNREACHABLE' && /no answer within 300 ms/.test(e.message),
    );
    const small = remoteFetcher(cas2.identity, { answerBytes: 200 }, listed);
    await assert.rejects(
      small({ url: url1(), key: cas1.identity.fingerprint }, ask),
      (e: CasError) => e.code === 'CAS_REMOTE_UNREACHABLE' && /more than 200 bytes/.test(e.message),
    );
  });

  it('answers /v1/exports only to a caller presenting a CA chain', async () => {
    const stranger: Identity = ephemeral();
    const res = await post(cas1, stranger, '/v1/exports', JSON.stringify(ask));
    assert.equal(res.status, 401);
    assert.equal(res.json.error.code, 'CAS_UNAUTHENTICATED');
    assert.doesNotMatch(JSON.stringify(res.json), /PRIVATE KEY|BEGIN CERT/);
  });
});
