import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuditEntry, AuditEvent } from '../contract/index.js';
import { VEIL_BIN, curl, simulationHost, startCas, tempDir, veil, waitFor, type CasProcess } from './harness.js';

/**
 * The audit log through one journey with real processes: sessions written and read with curl, services started
 * with `veil run` (one released, one refused), a public value read, the CAS restarted; then an owner's follower,
 * an administrator's export and a webhook. Every operation must have its entry, and the owner sees only his.
 */
describe('audit log: the journey', () => {
  const dir = tempDir('veil-audit-e2e-');
  const data = join(dir.path, 'data');
  const homes = { owner: join(dir.path, 'owner'), other: join(dir.path, 'other'), admin: join(dir.path, 'admin') };
  const tls = (home: string) => ({ cert: join(home, 'identity.crt'), key: join(home, 'identity.key') });
  let cas: CasProcess;
  let runEnv: NodeJS.ProcessEnv;
  let adminHash: string;
  let ownerHash: string;
  let webhook: { server: Server; batches: AuditEntry[][]; refusals: number };

  const session = (measurement: string, hostId: string, predecessor = '') =>
    [
      'name: clinic',
      predecessor ? `predecessor: ${predecessor}` : '',
      'services:',
      `  - {name: api, mrenclaves: [${measurement}], platforms: [${hostId}], command: [sh, -c, "exit 0"],`,
      '     environment: {PW: "$$SCONE::pw$$"}}',
      `  - {name: bad, mrenclaves: ["${'ab'.repeat(32)}"], platforms: [${hostId}], command: [sh, -c, "exit 0"]}`,
      'secrets:',
      '  - {name: pw, kind: ascii, size: 20}',
      '  - {name: greeting, kind: ascii, value: hello, export_public: true}',
      'security: {attestation: {mode: none, tolerate: [debug-mode]}}',
      '',
    ]
      .filter((l) => l !== '')
      .join('\n');
  const asUser = (home: string) => ({ VEIL_HOME: home });
  const attestTo = async (home: string) =>
    assert.equal((await veil(['cas', 'attest', cas.url, '-c', cas.fingerprint], asUser(home))).code, 0);
  const restart = async () => {
    await cas.stop();
    cas = await startCas(data, dir.path, ['--audit-admin', adminHash]);
    for (const home of Object.values(homes)) await attestTo(home);
  };

  before(async () => {
    for (const home of Object.values(homes)) assert.equal((await veil(['self', 'show'], asUser(home))).code, 0);
    adminHash = (await veil(['self', 'show-key-hash'], asUser(homes.admin))).stdout.trim();
    ownerHash = (await veil(['self', 'show-key-hash'], asUser(homes.owner))).stdout.trim();
    cas = await startCas(data, dir.path, ['--audit-admin', adminHash]);
    for (const home of Object.values(homes)) await attestTo(home);
    const host = await simulationHost(dir.path);
    runEnv = { SCONE_CAS_ADDR: new URL(cas.url).host, VEIL_CAS_FINGERPRINT: cas.fingerprint, ...host.env };
    const measurement = (await veil(['measure', 'sh'], {})).stdout.trim();
    await journey(measurement, host.id);
    webhook = await startWebhook();
  });
  after(async () => {
    await cas?.stop();
    await new Promise((r) => webhook?.server.close(r));
    dir.cleanup();
  });

  async function journey(measurement: string, hostId: string): Promise<void> {
    const owner = tls(homes.owner);
    const created = await curl(cas, `${cas.url}/v1/sessions`, { identity: owner, data: session(measurement, hostId) });
    assert.equal(created.status, 201, created.body);
    const update = session(measurement, hostId, created.json().hash);
    assert.equal((await curl(cas, `${cas.url}/v1/sessions`, { identity: owner, data: update })).status, 200);
    assert.equal((await curl(cas, `${cas.url}/v1/sessions/clinic`, { identity: owner })).status, 200);
    const other = await curl(cas, `${cas.url}/v1/sessions`, { identity: tls(homes.other), data: 'name: elsewhere\n' });
    assert.equal(other.status, 201);
    const run = (id: string) => veil(['run', '--mode', 'debug', '--', 'sh'], { ...runEnv, SCONE_CONFIG_ID: id });
    assert.equal((await run('clinic/api')).code, 0);
    assert.notEqual((await run('clinic/bad')).code, 0);
    assert.equal((await curl(cas, `${cas.url}/v1/values/session=clinic,secret=greeting`)).status, 200);
    await restart();
  }

  it('the administrator exports the whole chain (0600), and every operation has its entry', async (t) => {
    const out = join(dir.path, 'export.jsonl');
    const r = await veil(['audit', 'export', '--out', out], asUser(homes.admin));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    const verified = await veil(['audit', 'verify', out, '--ca', cas.caFile], asUser(homes.admin));
    assert.equal(verified.code, 0, verified.stderr);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    const entries = lines.slice(1, -1).map((l) => JSON.parse(l) as AuditEntry);
    assert.match(verified.stdout, new RegExp(`${entries.length}`));
    const events = entries.map((e) => e.event);
    const kinds = events.map((e) => e.type);
    t.diagnostic(`exported ${entries.length} entries: ${kinds.join(', ')}`);
    assert.deepEqual(kinds.slice(0, 4), ['key.created', 'key.created', 'key.created', 'cas.started']);
    for (const kind of ['session.created', 'session.updated', 'session.read', 'value.read', 'cas.stopped'] as const)
      assert.ok(kinds.includes(kind), kind);
    assert.equal(kinds.at(-1), 'cas.started', 'the restart is the last thing that happened');
    const released = events.find((e) => e.type === 'attestation.released');
    assert.ok(released?.type === 'attestation.released');
    assert.deepEqual([released.config_id, released.evidence, released.secrets], ['clinic/api', 'simulation', ['pw']]);
    const refused = events.find((e) => e.type === 'attestation.refused');
    assert.ok(refused?.type === 'attestation.refused');
    assert.deepEqual([refused.config_id, refused.code], ['clinic/bad', 'ATTESTATION_MEASUREMENT']);
    const updated = events.find((e) => e.type === 'session.updated');
    assert.equal(updated?.type === 'session.updated' && updated.actor, ownerHash);
  });

  it("an owner's follower ships his sessions' entries only, and stops on Ctrl-C", async (t) => {
    const out = join(dir.path, 'owner.jsonl');
    const follower = spawn(process.execPath, [VEIL_BIN, 'audit', 'follow', '--out', out], {
      env: { ...process.env, ...asUser(homes.owner) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    follower.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => follower.once('exit', (code) => resolve(code)));
    t.after(() => follower.kill('SIGKILL'));
    const lines = () => (existsSync(out) ? readFileSync(out, 'utf8').trimEnd().split('\n').filter(Boolean) : []);
    await waitFor(
      () => lines().length >= 6,
      20_000,
      () => `owner saw ${lines().length} entries`,
    );
    follower.kill('SIGINT');
    assert.equal(await exited, 0);
    const events = lines().map((l) => (JSON.parse(l) as AuditEntry).event);
    t.diagnostic(`owner followed ${events.length} entries`);
    assert.ok(
      events.every((e) => 'session' in e && e.session === 'clinic'),
      JSON.stringify(events),
    );
    const want: AuditEvent['type'][] = ['session.created', 'session.updated', 'session.read'];
    assert.deepEqual(
      events.slice(0, 3).map((e) => e.type),
      want,
    );
    assert.deepEqual(new Set(events.map((e) => e.type)).size, 6);
    assert.match(stdout, /# shipped \d+ entries, resume after seq \d+/);
  });

  it('a webhook receives every entry in order, after its refusals are retried', async (t) => {
    const follower = spawn(process.execPath, [VEIL_BIN, 'audit', 'follow', '--webhook', webhookUrl(webhook.server)], {
      env: { ...process.env, ...asUser(homes.admin) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => follower.once('exit', (code) => resolve(code)));
    t.after(() => follower.kill('SIGKILL'));
    const received = () => webhook.batches.flat();
    await waitFor(
      () => received().some((e) => e.event.type === 'cas.stopped'),
      20_000,
      () => 'no batch',
    );
    follower.kill('SIGINT');
    assert.equal(await exited, 0);
    t.diagnostic(`webhook: ${webhook.refusals} refusals retried, ${received().length} entries received`);
    assert.ok(webhook.refusals >= 1);
    assert.deepEqual(
      received().map((e) => e.seq),
      received().map((_, i) => i + 1),
    );
  });
});

/** A webhook that refuses its first POST (503), then takes batches. */
async function startWebhook(): Promise<{ server: Server; batches: AuditEntry[][]; refusals: number }> {
  const state = { batches: [] as AuditEntry[][], refusals: 0 };
  const server = createServer(async (req: IncomingMessage, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    if (state.refusals === 0) {
      state.refusals++;
      res.writeHead(503).end();
      return;
    }
    state.batches.push((JSON.parse(body) as { entries: AuditEntry[] }).entries);
    res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(state, { server });
}

function webhookUrl(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/ingest`;
}
