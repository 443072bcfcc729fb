import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { verifyAuditExport } from '../audit/verify.js';
import { auditEntrySchema, type AuditEntry } from '../contract/index.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { closedSignal } from './audit-route.js';
import { identityFromPem } from './identity-of.js';
import { startCas, type RunningCas } from './server.js';
import { ephemeral, post, type Identity, type TestJson } from './testing.js';

/** GET /v1/audit on a real CAS: who sees what, the query's limits, export, and following. */
const dir = mkdtempSync(join(tmpdir(), 'veil-audit-route-'));
const [alice, bob, admin] = [ephemeral(), ephemeral(), ephemeral()];
const keyHash = (who: Identity) => identityFromPem(who.certPem).keyHash;
let cas: RunningCas;

async function get(who: Identity | undefined, path: string): Promise<{ status: number; text: string; json: TestJson }> {
  const cert = who ? { cert: who.certPem, key: who.keyPem } : {};
  const agent = new Agent({ connect: { ca: cas.identity.caCertPem, ...cert } });
  try {
    const res = await request(`${cas.url}${path}`, { dispatcher: agent });
    const text = await res.body.text();
    return {
      status: res.statusCode,
      text,
      json: text.startsWith('{') && !text.includes('\n{') ? JSON.parse(text) : {},
    };
  } finally {
    await agent.close();
  }
}

const entriesOf = async (who: Identity, query = ''): Promise<AuditEntry[]> => {
  const res = await get(who, `/v1/audit?limit=1000${query}`);
  assert.equal(res.status, 200, res.text);
  return res.json.entries as AuditEntry[];
};
const types = (entries: AuditEntry[]) => entries.map((e) => e.event.type);
const sessionsIn = (entries: AuditEntry[]) =>
  new Set(entries.map((e) => ('session' in e.event ? e.event.session : '')));

before(async () => {
  cas = await startCas({
    host: '127.0.0.1',
    port: 0,
    dataDir: dir,
    logLevel: 'silent',
    auditAdmins: [keyHash(admin).toUpperCase()],
    followLimits: { waitersPerClient: 1, pollMs: 50 },
  });
  assert.equal((await post(cas, alice, '/v1/sessions', 'name: a1\n')).status, 201);
  assert.equal((await post(cas, bob, '/v1/sessions', 'name: b1\n')).status, 201);
});
after(async () => {
  await cas?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('GET /v1/audit: who sees what', () => {
  it('needs a client certificate (401)', async () => {
    const res = await get(undefined, '/v1/audit');
    assert.equal(res.status, 401);
    assert.equal(res.json.error.code, 'CAS_UNAUTHENTICATED');
  });

  it("an owner sees his sessions' entries only: no other session, nothing CAS-wide", async () => {
    const mine = await entriesOf(alice);
    assert.deepEqual(types(mine), ['session.created']);
    assert.deepEqual([...sessionsIn(mine)], ['a1']);
    assert.deepEqual([...sessionsIn(await entriesOf(bob))], ['b1']);
  });

  it('an administrator sees every entry, CAS start and keys included, each as the contract defines', async () => {
    const all = await entriesOf(admin);
    assert.deepEqual(types(all).slice(0, 4), ['key.created', 'key.created', 'key.created', 'cas.started']);
    const keys = all.flatMap((e) => (e.event.type === 'key.created' ? [e.event.key] : []));
    assert.deepEqual(keys, ['ca', 'audit', 'session-encryption']);
    assert.ok(types(all).includes('session.created'));
    for (const entry of all) auditEntrySchema.parse(entry);
    assert.deepEqual(
      all.map((e) => e.seq),
      all.map((_, i) => i + 1),
    );
  });

  it('pages with after and limit; next moves past entries the client may not see', async () => {
    const all = await entriesOf(admin);
    const page = await get(admin, '/v1/audit?after=1&limit=2');
    assert.deepEqual(
      page.json.entries.map((e: AuditEntry) => e.seq),
      [2, 3],
    );
    assert.equal(page.json.next, 3);
    const mine = await get(bob, '/v1/audit?limit=1000');
    assert.equal(mine.json.next, all.at(-1)?.seq);
  });

  it('refuses a limit over 1000, a wait over 25 s and unknown query fields (400)', async () => {
    for (const query of ['limit=1001', 'limit=0', 'wait=26', 'after=-1', 'format=csv', 'owner=x']) {
      const res = await get(alice, `/v1/audit?${query}`);
      assert.equal(res.status, 400, query);
      assert.equal(res.json.error.code, 'CAS_BAD_REQUEST', query);
    }
  });
});

describe('GET /v1/audit?format=export', () => {
  it('is for administrators only (403)', async () => {
    const res = await get(alice, '/v1/audit?format=export');
    assert.equal(res.status, 403);
    assert.equal(res.json.error.code, 'CAS_FORBIDDEN');
  });

  it('is a header, every entry chained and signed, and a signed trailer naming the head: it verifies', async () => {
    const res = await get(admin, '/v1/audit?format=export');
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.text.split('\n')[0] ?? '').ca_fingerprint, cas.identity.fingerprint);
    const verified = await verifyAuditExport(res.text, { caPem: cas.identity.caCertPem });
    const lines = res.text.trim().split('\n');
    const entries = lines.slice(1, -1).map((l) => JSON.parse(l) as AuditEntry);
    assert.equal(verified.entries, entries.length);
    assert.ok(entries.length > 0);
    assert.deepEqual(entries, (await entriesOf(admin)).slice(0, entries.length));
    const edited = res.text.replace(/"prev":"[0-9a-f]{64}"(?![\s\S]*"prev":)/, `"prev":"${'1'.repeat(64)}"`);
    await assert.rejects(verifyAuditExport(edited, { caPem: cas.identity.caCertPem }), { name: 'AuditError' });
  });
});

describe('GET /v1/audit?wait: following', () => {
  it('answers as soon as a visible entry is written, not at the deadline', async () => {
    const { next } = (await get(alice, '/v1/audit?limit=1000')).json;
    const waiting = get(alice, `/v1/audit?after=${next}&wait=20`);
    await post(cas, bob, '/v1/sessions', 'name: b2\n');
    await post(cas, alice, '/v1/sessions', 'name: a2\n');
    const started = Date.now();
    const res = await waiting;
    assert.equal(res.status, 200);
    assert.deepEqual([...sessionsIn(res.json.entries)], ['a2']);
    assert.ok(Date.now() - started < 10_000, 'answered well before its 20 s');
  });

  it('answers with no entry and next moved on at the deadline', async () => {
    const { next } = (await get(admin, '/v1/audit?limit=1000')).json;
    const res = await get(bob, `/v1/audit?after=${next}&wait=1`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { entries: [], next });
  });

  it('caps the followers of one client (429 CAS_BUSY), not of others', async () => {
    const { next } = (await get(admin, '/v1/audit?limit=1000')).json;
    const first = get(bob, `/v1/audit?after=${next}&wait=3`);
    await new Promise((r) => setTimeout(r, 300));
    const second = await get(bob, `/v1/audit?after=${next}&wait=3`);
    assert.equal(second.status, 429);
    assert.equal(second.json.error.code, 'CAS_BUSY');
    const other = get(alice, `/v1/audit?after=${next}&wait=1`);
    assert.equal((await other).status, 200);
    assert.equal((await first).status, 200);
  });
});

describe("a follower's connection closing", () => {
  const fake = (destroyed: boolean) => {
    const socket = new EventEmitter() as EventEmitter & { destroyed: boolean };
    socket.destroyed = destroyed;
    const raw = new EventEmitter();
    return {
      request: { raw: { socket } } as unknown as FastifyRequest,
      reply: { raw } as unknown as FastifyReply,
      socket,
    };
  };

  it('aborts the follow when the client hung up before the route got to it (an await before the slot)', () => {
    const { request, reply } = fake(true);
    assert.equal(closedSignal(request, reply).aborted, true);
  });

  it('aborts on close later, and not once the answer went out', () => {
    const open = fake(false);
    const signal = closedSignal(open.request, open.reply);
    assert.equal(signal.aborted, false);
    open.socket.emit('close');
    assert.equal(signal.aborted, true);
    const answered = fake(false);
    const kept = closedSignal(answered.request, answered.reply);
    (answered.reply.raw as EventEmitter).emit('finish');
    answered.socket.emit('close');
    assert.equal(kept.aborted, false);
  });
});
