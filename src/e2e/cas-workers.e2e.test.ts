import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { selfSignedIdentity, type SelfSignedIdentity } from '../secrets/index.js';
import { connectCas } from '../runtime/cas-identity.js';
import { simulationSource } from '../runtime/evidence-source.js';
import { loadHostKey, type HostKey } from '../runtime/host-key.js';
import type { TestJson } from '../cas/testing.js';
import { alive, simulationHost, startCas, tempDir, veil, waitFor, type CasProcess } from './harness.js';

/** `veil cas serve --workers 2`: one port, one store, two CAS processes; a connection reaches one of them. */

interface Conn {
  worker: number;
  send(method: 'GET' | 'POST', path: string, body?: string): Promise<{ status: number; json: TestJson }>;
  close(): void;
}

async function connect(url: string, caPem: string, me: SelfSignedIdentity): Promise<Conn> {
  const { socket } = await connectCas(url, { caPem }, me);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  agent.createConnection = () => socket;
  const send: Conn['send'] = (method, path, body) => onSocket(agent, `${url}${path}`, method, body);
  const health = await send('GET', '/healthz');
  assert.equal(health.status, 200);
  const close = () => {
    agent.destroy();
    socket.destroy();
  };
  return { worker: health.json.worker, send, close };
}

function onSocket(agent: Agent, url: string, method: string, body?: string) {
  return new Promise<{ status: number; json: TestJson }>((resolve, reject) => {
    const req = request(url, { method, agent }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A connection with `me` that reached a worker other than `not` (round robin: the next one, usually). */
async function connectElsewhere(url: string, caPem: string, me: SelfSignedIdentity, not: number): Promise<Conn> {
  for (let i = 0; i < 50; i++) {
    const conn = await connect(url, caPem, me);
    if (conn.worker !== not) return conn;
    conn.close();
  }
  throw new Error(`50 connections all reached worker ${not}`);
}

const identity = () =>
  selfSignedIdentity({
    commonName: 'test',
    endpoint: 'client',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
  });

function pidsOf(cas: CasProcess): number[] {
  const m = /2 worker processes \(pids (\d+), (\d+)\)/.exec(cas.log());
  assert.ok(m, cas.log());
  return [Number(m[1]), Number(m[2])];
}

describe('the CAS on two worker processes', () => {
  const dir = tempDir('veil-workers-');
  const data = join(dir.path, 'data');
  const adminHome = join(dir.path, 'admin');
  let cas: CasProcess;
  let caPem: string;
  let host: HostKey;
  let hostId: string;
  let measurement: string;
  const owner = identity();

  const policy = (name: string, value: string, predecessor?: string) =>
    [
      `name: ${name}`,
      ...(predecessor ? [`predecessor: ${predecessor}`] : []),
      'services:',
      `  - {name: sh, mrenclaves: [${measurement}], platforms: [${hostId}], command: [sh],`,
      '     environment: {V: "$$SCONE::v$$"}}',
      'secrets:',
      `  - {name: v, kind: ascii, value: "${value}"}`,
      'security: {attestation: {mode: none, tolerate: [debug-mode]}}',
      '',
    ].join('\n');

  async function attest(conn: Conn, me: SelfSignedIdentity, configId: string, given?: string) {
    const nonce = given ?? ((await conn.send('POST', '/v1/attest/nonce', '')).json.nonce as string);
    const evidence = await simulationSource(measurement, host).collect({
      nonce: Buffer.from(nonce, 'hex'),
      spki: me.spki,
    });
    return conn.send('POST', '/v1/attest', JSON.stringify({ config_id: configId, nonce, evidence }));
  }

  before(async () => {
    assert.equal((await veil(['self', 'show'], { VEIL_HOME: adminHome })).code, 0);
    const adminHash = (await veil(['self', 'show-key-hash'], { VEIL_HOME: adminHome })).stdout.trim();
    cas = await startCas(data, dir.path, ['--workers', '2', '--audit-admin', adminHash]);
    caPem = readFileSync(cas.caFile, 'utf8');
    const sim = await simulationHost(dir.path);
    host = await loadHostKey(sim.env.VEIL_HOST_KEY);
    hostId = sim.id;
    measurement = (await veil(['measure', 'sh'], {})).stdout.trim();
  });
  after(async () => {
    await cas?.stop();
    dir.cleanup();
  });

  it('prints the URL and fingerprint once and how many workers serve it', () => {
    assert.equal(cas.log().match(/CAS listening at/g)?.length, 1);
    assert.equal(new Set(pidsOf(cas)).size, 2);
  });

  it('attests through one worker a session created through another, and renders an update at once', async () => {
    const a = await connect(cas.url, caPem, owner);
    const created = await a.send('POST', '/v1/sessions', policy('shared', 'from-a'));
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const me = identity();
    const b = await connectElsewhere(cas.url, caPem, me, a.worker);
    const first = await attest(b, me, 'shared/sh');
    assert.equal(first.status, 200, JSON.stringify(first.json));
    assert.match(JSON.stringify(first.json), /from-a/);
    const updated = await a.send('POST', '/v1/sessions', policy('shared', 'updated-on-a', created.json.hash));
    assert.equal(updated.status, 200, JSON.stringify(updated.json));
    const second = await attest(b, me, 'shared/sh');
    assert.equal(second.status, 200, JSON.stringify(second.json));
    assert.match(JSON.stringify(second.json), /updated-on-a/);
    assert.doesNotMatch(JSON.stringify(second.json), /from-a/);
    a.close();
    b.close();
  });

  it('refuses on one worker a nonce another worker issued to the same key', async () => {
    const me = identity();
    const a = await connect(cas.url, caPem, me);
    const b = await connectElsewhere(cas.url, caPem, me, a.worker);
    const nonce = (await a.send('POST', '/v1/attest/nonce', '')).json.nonce as string;
    const moved = await attest(b, me, 'shared/sh', nonce);
    assert.equal(moved.status, 403, JSON.stringify(moved.json));
    assert.match(moved.json.error.message, /nonce is unknown/);
    const atHome = await attest(a, me, 'shared/sh', nonce);
    assert.equal(atHome.status, 200, 'the nonce is good on the worker that issued it');
    a.close();
    b.close();
  });

  it('replaces a killed worker and loses nothing acknowledged; the audit chain verifies', async () => {
    const acknowledged: string[] = [];
    const writer = await connect(cas.url, caPem, owner);
    for (let i = 0; i < 5; i++) {
      const r = await writer.send('POST', '/v1/sessions', policy(`before-${i}`, `v${i}`));
      assert.equal(r.status, 201, JSON.stringify(r.json));
      acknowledged.push(`before-${i}`);
    }
    writer.close();
    const victim = pidsOf(cas)[1]!;
    process.kill(victim, 'SIGKILL');
    await waitFor(
      () => !alive(victim),
      10_000,
      () => `worker ${victim} still runs`,
    );
    await waitFor(
      () => /"msg":"CAS worker exited; replaced"/.test(cas.log()),
      10_000,
      () => cas.log(),
    );
    const line = cas
      .log()
      .split('\n')
      .find((l) => l.includes('CAS worker exited; replaced'))!;
    const replaced = JSON.parse(line);
    assert.deepEqual([replaced.pid, replaced.signal, replaced.worker], [victim, 'SIGKILL', 2]);
    // Until the replacement listens, cluster hands every connection to worker 1: keep writing (each 201 is
    // acknowledged, hence must survive) until a connection reaches the new worker 2, bounded.
    const workers = new Set<number>();
    const end = Date.now() + 30_000;
    for (let i = 0; workers.size < 2 && Date.now() < end; i++) {
      try {
        const c = await connect(cas.url, caPem, owner);
        workers.add(c.worker);
        const read = await c.send('POST', '/v1/sessions', policy(`after-${i}`, 'x'));
        if (read.status === 201) acknowledged.push(`after-${i}`);
        c.close();
      } catch {
        // a connection handed to the dying worker fails: try again
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual([...workers].sort(), [1, 2], 'the new worker 2 answers');
    for (const name of acknowledged) {
      const c = await connect(cas.url, caPem, owner);
      assert.equal((await c.send('GET', `/v1/sessions/${name}`)).status, 200, name);
      c.close();
    }
    assert.equal((await veil(['cas', 'attest', cas.url, '-c', cas.fingerprint], { VEIL_HOME: adminHome })).code, 0);
    const out = join(dir.path, 'audit.jsonl');
    const exported = await veil(['audit', 'export', '--out', out], { VEIL_HOME: adminHome });
    assert.equal(exported.code, 0, exported.stderr);
    const verified = await veil(['audit', 'verify', out, '--ca', cas.caFile], {});
    assert.equal(verified.code, 0, verified.stderr);
    const events = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .slice(1, -1)
      .map((l) => JSON.parse(l).event as { type: string; session?: string });
    const createdNames = new Set(events.filter((e) => e.type === 'session.created').map((e) => e.session));
    for (const name of acknowledged) assert.ok(createdNames.has(name), `${name} has its audit entry`);
    assert.equal(events.filter((e) => e.type === 'cas.started').length, 3, 'two workers and the replacement');
  });

  it('stops every process on SIGTERM', async () => {
    const pids = [cas.process.pid!, ...currentWorkers(cas)];
    await cas.stop('SIGTERM');
    assert.equal(cas.process.exitCode, 0, cas.log());
    for (const pid of pids)
      await waitFor(
        () => !alive(pid),
        15_000,
        () => `pid ${pid} still runs`,
      );
  });
});

/** The primary's worker children, from /proc (the replacement's pid is not in the startup line). */
function currentWorkers(cas: CasProcess): number[] {
  const parent = cas.process.pid!;
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent;
      } catch {
        return false;
      }
    });
}

describe('the CAS workers when their primary dies', () => {
  it('exit by themselves (no orphans)', async () => {
    const dir = tempDir('veil-workers-orphan-');
    const cas = await startCas(join(dir.path, 'data'), dir.path, ['--workers', '2']);
    try {
      const workers = currentWorkers(cas);
      assert.equal(workers.length, 2);
      await cas.stop('SIGKILL');
      for (const pid of workers)
        await waitFor(
          () => !alive(pid),
          15_000,
          () => `worker ${pid} outlived its primary`,
        );
    } finally {
      dir.cleanup();
    }
  });

  it('the primary exits non-zero with the first worker error when it cannot start', async () => {
    const dir = tempDir('veil-workers-bad-');
    try {
      const bad = join(dir.path, 'bad.key');
      writeFileSync(bad, 'not a key\n', { mode: 0o600 });
      const args = ['--workers', '2', '--listen', '127.0.0.1:0', '--data', join(dir.path, 'd')];
      const r = await veil(['cas', 'serve', ...args, '--master-key-file', bad], { VEIL_HOME: join(dir.path, 'home') });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /master key/i);
      assert.match(r.stderr, /first CAS worker \(pid \d+\) exited \(code \d+\) before it listened/);
    } finally {
      dir.cleanup();
    }
  });
});
