import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { verifySimulation } from '../attestation/verify.js';
import { startCas, type RunningCas } from './server.js';
import { ephemeral, post, rawExchange, type Identity, type RawAnswer } from './testing.js';

/** Issue #10: every input gets the CAS's JSON error with a 4xx, checked before any handler runs. */
describe('CAS routes: input validated before the handlers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-routes-'));
  let cas: RunningCas;
  const owner = ephemeral();
  const long = `${'n'.repeat(120)}/${'s'.repeat(120)}`;
  const send = (who: Identity | undefined, head: string, body = '') =>
    rawExchange(
      cas,
      who,
      Buffer.from(`${head}\r\nHost: localhost\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`),
    );
  const get = (path: string, who: Identity | undefined = owner, headers = '') =>
    send(who, `GET ${path} HTTP/1.1${headers}`);

  before(async () => {
    cas = await startCas({ host: '127.0.0.1', port: 0, dataDir: dir });
    assert.equal((await post(cas, owner, '/v1/sessions', 'name: app\nversion: "0.3"\n')).status, 201);
    const ns = long.split('/')[0]!;
    const namespace = `name: ${ns}\nversion: "0.3"\naccess_policy: {create_sessions: [CREATOR]}\n`;
    assert.equal((await post(cas, owner, '/v1/sessions', namespace)).status, 201);
    assert.equal((await post(cas, owner, '/v1/sessions', `name: ${long}\nversion: "0.3"\n`)).status, 201);
  });
  after(async () => {
    await cas?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function casError(res: RawAnswer, status: number, code: string, message?: RegExp): void {
    assert.equal(res.status, status, res.body);
    assert.match(res.headers['content-type'] ?? '', /^application\/json/);
    const error = (JSON.parse(res.body) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, code, res.body);
    if (message) assert.match(error.message, message);
  }

  it('/v1/values/%25 is not decoded twice (was a URIError, 500)', async () => {
    casError(await get('/v1/values/%25'), 400, 'CAS_BAD_REQUEST', /names no session/);
    casError(await get('/v1/values/session=a%25b'), 404, 'CAS_NOT_PUBLIC', /'a%b'/);
  });

  it('a repeated ?hash= is refused naming the field (an array reached SQLite: 500)', async () => {
    casError(await get('/v1/sessions/app?hash=a&hash=b'), 400, 'CAS_BAD_REQUEST', /querystring\.hash/);
    const unknown = await get(`/v1/sessions/app?hash=${'0'.repeat(64)}&colour=blue`);
    casError(unknown, 400, 'CAS_BAD_REQUEST', /querystring\.colour: unknown field 'colour'/);
    casError(await get('/v1/attestation?nonce=a&nonce=b'), 400, 'CAS_BAD_REQUEST', /querystring\.nonce/);
  });

  it('evidence whose measurement or reportData is an array is refused by field', async () => {
    const nonce = (await post(cas, owner, '/v1/attest/nonce', '')).json.nonce as string;
    const evidence = { type: 'simulation', measurement: ['0'.repeat(64)], reportData: ['0'.repeat(64)] };
    const res = await post(cas, owner, '/v1/attest', JSON.stringify({ config_id: 'app/s', nonce, evidence }));
    assert.equal(res.status, 400);
    assert.equal(res.json.error.code, 'CAS_BAD_REQUEST');
    assert.match(res.json.error.message, /body\.evidence\.measurement: .*array.*body\.evidence\.reportData/);
    // The verifier itself, behind the schema: a regex test passes ['<64 hex>'] (it is stringified).
    const binding = { nonce: Buffer.alloc(32), spki: Buffer.alloc(10) };
    const judged = verifySimulation(evidence as never, binding, { mode: 'none' }, { name: 's', platforms: [] });
    await assert.rejects(judged, { code: 'ATTESTATION_MALFORMED' });
  });

  it('answers 431 (headers too large) in the CAS error format', async () => {
    casError(await get('/v1/version', owner, `\r\nX-Big: ${'a'.repeat(20_000)}`), 431, 'CAS_HEADERS_TOO_LARGE');
  });

  it('answers what the router and the HTTP parser refuse in the CAS error format', async () => {
    casError(await get('/v1/values/session=%E0%A4%A'), 400, 'CAS_BAD_REQUEST', /percent-encoding/);
    const garbled = await send(owner, 'GET /v1/version HTTP/1.1\r\nBad Header Line');
    casError(garbled, 400, 'CAS_BAD_REQUEST', /not valid HTTP/);
    casError(await get(`/v1/values/${'x'.repeat(5000)}`), 400, 'CAS_BAD_REQUEST', /path: Too big/);
  });

  it('reads sessions whose path is longer than the router default of 100 characters', async () => {
    const res = await get(`/v1/sessions/${long}`);
    assert.equal(res.status, 200, res.body);
    assert.equal(JSON.parse(res.body).hash.length, 64);
  });

  it('answers 405 with Allow for a known path and another method, 404 for unknown paths', async () => {
    const res = await send(owner, 'DELETE /v1/sessions/app HTTP/1.1');
    casError(res, 405, 'CAS_METHOD_NOT_ALLOWED');
    assert.match(res.headers['allow'] ?? '', /GET/);
    casError(await get('/v2/nothing'), 404, 'CAS_NOT_FOUND');
  });

  it('checks the client certificate before the body: unauthenticated garbage is a 401', async () => {
    casError(await send(undefined, 'POST /v1/attest HTTP/1.1', '{not json'), 401, 'CAS_UNAUTHENTICATED');
    const notJson = await send(owner, 'POST /v1/attest HTTP/1.1', '{not json');
    casError(notJson, 400, 'CAS_BAD_REQUEST', /^invalid request: body: is not JSON/);
    casError(await send(owner, 'POST /v1/attest/nonce HTTP/1.1', 'x'), 400, 'CAS_BAD_REQUEST', /body: must be empty/);
  });

  it('refuses bad session paths and empty uploads by field', async () => {
    casError(await get('/v1/sessions/a%00b'), 400, 'CAS_BAD_REQUEST', /^invalid request: path: must be a session name/);
    const empty = await send(owner, 'POST /v1/sessions HTTP/1.1', '  \n');
    casError(empty, 400, 'CAS_BAD_REQUEST', /body: must be the session/);
  });

  it('serializes answers from the contract', async () => {
    const res = await get('/v1/version');
    assert.deepEqual(Object.keys(JSON.parse(res.body)).sort(), ['api', 'implementation', 'version']);
  });
});
