import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { startCas, type RunningCas } from './server.js';
import { ephemeral, type Identity } from './testing.js';

const SECRET = 'Zq8-log-secret-value-4711';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('the CAS log', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-logging-'));
  const lines: string[] = [];
  let cas: RunningCas;
  const owner = ephemeral();
  const call = async (path: string, opts: { body?: string; who?: Identity; headers?: Record<string, string> }) => {
    const who = opts.who ? { cert: opts.who.certPem, key: opts.who.keyPem } : {};
    const agent = new Agent({ connect: { ca: cas.identity.caCertPem, ...who } });
    try {
      const method = opts.body === undefined ? 'GET' : 'POST';
      const res = await request(`${cas.url}${path}`, {
        method,
        body: opts.body,
        headers: opts.headers ?? {},
        dispatcher: agent,
      });
      await res.body.text();
      return { status: res.statusCode, id: String(res.headers['x-request-id']) };
    } finally {
      await agent.close();
    }
  };
  const parsed = () => lines.map((line) => JSON.parse(line));

  before(async () => {
    cas = await startCas({
      host: '127.0.0.1',
      port: 0,
      dataDir: dir,
      logLevel: 'debug',
      logStream: { write: (line: string) => void lines.push(line) },
    });
    const session = `name: logged\nsecrets:\n  - {name: pw, kind: ascii, value: ${SECRET}}\n`;
    assert.equal((await call('/v1/sessions', { body: session, who: owner })).status, 201);
    const refused = `name: logged\nsecrets:\n  - {name: pw, kind: ascii, value: ${SECRET}, bogus: ${SECRET}}\n`;
    assert.equal((await call('/v1/sessions', { body: refused, who: owner })).status, 400);
    assert.equal((await call(`/v1/version?token=${SECRET}`, {})).status, 400);
    assert.equal((await call('/v1/version', { headers: { authorization: `Bearer ${SECRET}` } })).status, 200);
    assert.equal((await call('/v1/attest', { body: `{"nonce": "${SECRET}"}`, who: ephemeral() })).status, 400);
  });
  after(async () => {
    await cas?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is JSON lines, each request line carrying its reqId, at the level asked for', (t) => {
    const entries = parsed();
    const requestLines = entries.filter((e) => e.req || e.res);
    assert.ok(requestLines.length >= 10, `${requestLines.length} request lines`);
    for (const entry of requestLines) assert.match(entry.reqId, /^[A-Za-z0-9._-]{8,64}$/, JSON.stringify(entry));
    assert.ok(entries.some((e) => e.msg === 'routed' && e.level === 20 && e.route === '/v1/sessions'));
    for (const entry of entries.filter((e) => e.req)) {
      assert.deepEqual(Object.keys(entry.req).sort(), ['host', 'method', 'remoteAddress', 'remotePort', 'url']);
    }
    t.diagnostic(`${entries.length} log lines, ${requestLines.length} about requests`);
  });

  it('never holds a body, a query or a header value', () => {
    const leaking = lines.filter((line) => line.includes(SECRET));
    assert.deepEqual(leaking, []);
    const query = parsed().find((e) => e.req?.url?.startsWith('/v1/version') && e.req.url !== '/v1/version');
    assert.equal(query, undefined, 'the query is cut from the logged URL');
  });

  it("answers with x-request-id: the caller's when it is a plain token, else a fresh one", async () => {
    const given = await call('/v1/version', { headers: { 'x-request-id': 'trace-0123456789abcdef' } });
    assert.equal(given.id, 'trace-0123456789abcdef');
    assert.ok(parsed().some((e) => e.reqId === 'trace-0123456789abcdef'));
    for (const bad of ['short', 'has space inside it', 'a'.repeat(65), '"quoted"-id-1234', `${SECRET}{}`]) {
      const res = await call('/v1/version', { headers: { 'x-request-id': bad } });
      assert.match(res.id, UUID, bad);
      assert.ok(!lines.some((line) => line.includes(bad)), `${bad} is not logged`);
    }
    const fresh = await call('/v1/version', {});
    assert.match(fresh.id, UUID);
  });
});
