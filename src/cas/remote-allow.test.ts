import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ExportRequest } from '../contract/index.js';
import type { CasError } from './errors.js';
import { parseRemoteCas, remoteCasList } from './remote-allow.js';
import { remoteFetcher } from './remote-import.js';
import { startCas, type RunningCas } from './server.js';
import { ephemeral, post } from './testing.js';

const session = (name: string, url: string, key: string) =>
  [
    `name: ${name}`,
    'secrets:',
    `  - {name: c, import: {cas_url: "${url}", cas_key: ${key}, session: redis, secret: client}}`,
    '',
  ].join('\n');

const ask = (importer: string): ExportRequest => ({
  session: 'redis',
  secret: 'client',
  importer: { session: importer, session_hash: '00'.repeat(32) },
});

const settle = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: CasError) => e.code,
  );

describe('the other CAS this CAS may fetch from (remoteCas, default deny)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-allow-'));
  let cas: RunningCas;
  let stall: Server;
  let stallUrl: string;
  const stalled: Socket[] = [];
  const listedKey = randomBytes(32).toString('hex');
  const owner = ephemeral();

  before(async () => {
    stall = createServer((socket) => stalled.push(socket));
    await new Promise<void>((resolve) => stall.listen(0, '127.0.0.1', resolve));
    stallUrl = `127.0.0.1:${(stall.address() as { port: number }).port}`;
    const remoteCas = [{ url: `https://${stallUrl}`, key: listedKey.toUpperCase() }];
    cas = await startCas({ host: '127.0.0.1', port: 0, dataDir: dir, remoteCas });
  });
  after(async () => {
    for (const s of stalled) s.destroy();
    stall?.close();
    await cas?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses at upload an import from a CAS not listed, naming it and the flag, and never dials it', async () => {
    const other = `127.0.0.1:${cas.port}`;
    for (const [name, url, key] of [
      ['unlisted', other, listedKey],
      ['wrong-key', stallUrl, randomBytes(32).toString('hex')],
    ] as const) {
      const res = await post(cas, owner, '/v1/sessions', session(name, url, key));
      assert.equal(res.status, 422, JSON.stringify(res.json));
      assert.equal(res.json.error.code, 'CAS_REMOTE_NOT_ALLOWED');
      assert.ok(res.json.error.message.includes(`the CAS at ${url} (cas_key ${key})`), res.json.error.message);
      assert.match(res.json.error.hint, /--remote-cas HOST:PORT=CAS_KEY/);
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(stalled.length, 0);
  });

  it('accepts at upload an import from a listed CAS, whatever the spelling of its address and key', async () => {
    const res = await post(cas, owner, '/v1/sessions', session('listed', stallUrl, listedKey));
    assert.equal(res.status, 201, JSON.stringify(res.json));
  });

  it('refuses to fetch from a CAS not listed (a session stored before the list changed) without dialling', async () => {
    const fetch = remoteFetcher(cas.identity, {}, remoteCasList([]));
    await assert.rejects(
      fetch({ url: stallUrl, key: listedKey }, ask('flask')),
      (e: CasError) => e.code === 'CAS_REMOTE_NOT_ALLOWED' && e.message.includes(stallUrl),
    );
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(stalled.length, 0);
  });

  it('gives up dialling after connectTimeoutMs, well before the whole-fetch deadline', async () => {
    const list = remoteCasList([{ url: stallUrl, key: listedKey }]);
    const fetch = remoteFetcher(cas.identity, { timeoutMs: 3000, connectTimeoutMs: 100 }, list);
    await assert.rejects(
      fetch({ url: stallUrl, key: listedKey }, ask('flask')),
      (e: CasError) => e.code === 'CAS_REMOTE_UNREACHABLE' && /no connection within 100 ms/.test(e.message),
    );
  });

  it('keeps slots for other sessions while one session holds its share of fetches (inFlightPerSession)', async () => {
    const list = remoteCasList([{ url: stallUrl, key: listedKey }]);
    const limits = { timeoutMs: 300, connectTimeoutMs: 300, inFlight: 10, inFlightPerSession: 2 };
    const fetch = remoteFetcher(cas.identity, limits, list);
    const from = { url: stallUrl, key: listedKey };
    const held = [fetch(from, ask('greedy')), fetch(from, ask('greedy'))].map(settle);
    const third = await settle(fetch(from, ask('greedy')));
    const other = settle(fetch(from, ask('other')));
    assert.equal(third, 'CAS_BUSY');
    assert.deepEqual(await Promise.all([...held, other]), Array(3).fill('CAS_REMOTE_UNREACHABLE'));
    // Released: the session may fetch again.
    assert.equal(await settle(fetch(from, ask('greedy'))), 'CAS_REMOTE_UNREACHABLE');
  });

  it('reads --remote-cas HOST[:PORT]=CAS_KEY, port 8081 by default', () => {
    const key = 'ab'.repeat(32);
    const list = remoteCasList([parseRemoteCas(`cas1.example=${key}`)]);
    assert.ok(list.has({ url: 'https://CAS1.example:8081', key: key.toUpperCase() }));
    assert.ok(!list.has({ url: 'cas1.example:8082', key }));
    assert.ok(!list.has({ url: 'cas1.example', key: 'cd'.repeat(32) }));
    for (const bad of ['cas1.example', `cas1.example/x=${key}`, 'cas1.example=abc', `=${key}`]) {
      assert.throws(
        () => parseRemoteCas(bad),
        (e: CasError) => e.code === 'CAS_REMOTE_NOT_ALLOWED',
        bad,
      );
    }
    assert.throws(() => remoteCasList([{ url: 'a b', key }]), /remoteCas\[0\]/);
  });
});
