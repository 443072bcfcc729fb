import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { simulationMeasurement, type Evidence } from '../attestation/index.js';
import { signedSimulation, testHost } from '../attestation/testing.js';
import { startCas, type RunningCas } from './server.js';
import { ephemeral, post, type Identity } from './testing.js';

const program = simulationMeasurement(Buffer.from('runtime'), Buffer.from('python3'));
const host = testHost();
const policy = (name: string, security: string, platforms: string[] = [host.id]) =>
  [
    `name: ${name}`,
    'services:',
    '  - name: api',
    `    mrenclaves: [${program}]`,
    `    platforms: [${platforms.join(', ')}]`,
    '    command: python3 /app/api.py --pw $$SCONE::pw$$',
    '    environment: {GREETING: hello}',
    '    pwd: /app',
    '    image_name: img',
    'images:',
    '  - name: img',
    '    injection_files:',
    '      - {path: /tls/ca.crt, content: "$$SCONE::ca.chain$$", permission: 0600}',
    'secrets:',
    '  - {name: pw, kind: ascii, size: 12}',
    '  - {name: ca_key, kind: private-key}',
    '  - {name: ca, kind: x509-ca, private_key: ca_key}',
    security,
    '',
  ].join('\n');

describe('CAS attestation endpoint', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-attest-'));
  let cas: RunningCas;
  const owner = ephemeral();
  const call = (who: Identity, path: string, body: string) => post(cas, who, path, body);
  const nonceFor = async (who: Identity) => (await call(who, '/v1/attest/nonce', '')).json.nonce as string;
  const evidenceFor = (
    nonce: string,
    spki: Buffer,
    measurement = program,
    by = host,
  ): Extract<Evidence, { type: 'simulation' }> =>
    signedSimulation(by, measurement, { nonce: Buffer.from(nonce, 'hex'), spki });
  const attestAs = (who: Identity, configId: string, nonce: string, evidence: Evidence) =>
    call(who, '/v1/attest', JSON.stringify({ config_id: configId, nonce, evidence }));

  before(async () => {
    cas = await startCas({ host: '127.0.0.1', port: 0, dataDir: dir });
    assert.equal(
      (await call(owner, '/v1/sessions', policy('sim', 'security: {attestation: {mode: none}}'))).status,
      201,
    );
    assert.equal(
      (await call(owner, '/v1/sessions', policy('hw', 'security: {attestation: {tolerate: [outdated-tcb]}}'))).status,
      201,
    );
    const debugHw = 'security: {attestation: {mode: hardware, tolerate: [debug-mode, outdated-tcb]}}';
    assert.equal((await call(owner, '/v1/sessions', policy('hwdebug', debugHw))).status, 201);
    assert.equal(
      (await call(owner, '/v1/sessions', policy('debugonly', 'security: {attestation: {tolerate: [debug-mode]}}')))
        .status,
      201,
    );
    assert.equal(
      (await call(owner, '/v1/sessions', policy('nohosts', 'security: {attestation: {mode: none}}', []))).status,
      201,
    );
  });
  after(async () => {
    await cas?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('releases the rendered configuration to matching, bound evidence', async () => {
    const rt = ephemeral();
    const nonce = await nonceFor(rt);
    const res = await attestAs(rt, 'sim/api', nonce, evidenceFor(nonce, rt.spki));
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(res.json.command.length, 4);
    assert.match(res.json.command[3], /^[\x21-\x7e]{12}$/);
    assert.deepEqual(res.json.environment, { GREETING: 'hello' });
    assert.equal(res.json.pwd, '/app');
    assert.equal(res.json.injectionFiles[0].mode, 0o600);
    assert.match(Buffer.from(res.json.injectionFiles[0].content, 'base64').toString(), /BEGIN CERTIFICATE/);
  });

  it('refuses a reused nonce', async () => {
    const rt = ephemeral();
    const nonce = await nonceFor(rt);
    assert.equal((await attestAs(rt, 'sim/api', nonce, evidenceFor(nonce, rt.spki))).status, 200);
    const again = await attestAs(rt, 'sim/api', nonce, evidenceFor(nonce, rt.spki));
    assert.equal(again.status, 403);
    assert.match(again.json.error.message, /nonce was already used/);
  });

  it('refuses a wrong measurement with the SCONE diagnostic', async () => {
    const rt = ephemeral();
    const nonce = await nonceFor(rt);
    const other = 'cd'.repeat(32);
    const res = await attestAs(rt, 'sim/api', nonce, evidenceFor(nonce, rt.spki, other));
    assert.equal(res.status, 403);
    assert.equal(res.json.error.code, 'CAS_ATTESTATION_FAILED');
    assert.equal(
      res.json.error.message,
      `Attestation failed: Unexpected enclave measurement (MRENCLAVE, ${other}) - Expected ${program}`,
    );
  });

  it('refuses simulation evidence when the session does not allow it', async () => {
    const rt = ephemeral();
    const nonce = await nonceFor(rt);
    const res = await attestAs(rt, 'hw/api', nonce, evidenceFor(nonce, rt.spki));
    assert.equal(res.status, 403);
    assert.match(res.json.error.message, /does not accept simulation evidence/);
  });

  it('never accepts simulation in hardware mode, whatever the session tolerates', async () => {
    for (const session of ['hwdebug', 'debugonly']) {
      const rt = ephemeral();
      const nonce = await nonceFor(rt);
      const res = await attestAs(rt, `${session}/api`, nonce, evidenceFor(nonce, rt.spki));
      assert.equal(res.status, 403, session);
      assert.match(res.json.error.message, /does not accept simulation evidence/);
      assert.match(res.json.error.hint, /debug-mode tolerates debug enclaves, not simulation/);
    }
  });

  it('refuses simulation from a host the service does not list, naming the host and how to list it', async () => {
    const stranger = testHost();
    for (const [session, by] of [
      ['sim', stranger],
      ['nohosts', host],
    ] as const) {
      const rt = ephemeral();
      const nonce = await nonceFor(rt);
      const res = await attestAs(rt, `${session}/api`, nonce, evidenceFor(nonce, rt.spki, program, by));
      assert.equal(res.status, 403, session);
      assert.equal(res.json.error.code, 'CAS_ATTESTATION_FAILED');
      assert.match(
        res.json.error.message,
        new RegExp(`platform: simulation evidence from host ${by.id}, which service 'api'`),
      );
      assert.match(res.json.error.hint, new RegExp(`platforms: \\[${by.id}\\]; 'veil host id' on that host prints it`));
    }
    // The platform is judged before the identity: an unlisted host learns nothing about the measurement.
    const rt = ephemeral();
    const nonce = await nonceFor(rt);
    const res = await attestAs(rt, 'sim/api', nonce, evidenceFor(nonce, rt.spki, 'cd'.repeat(32), stranger));
    assert.match(res.json.error.message, /platform: simulation evidence from host/);
    assert.doesNotMatch(res.json.error.message, new RegExp(program));
  });

  it('refuses evidence under a listed host key that this key did not sign, naming the check', async () => {
    const rt = ephemeral();
    const nonce = await nonceFor(rt);
    const forged = signedSimulation(
      testHost(),
      program,
      { nonce: Buffer.from(nonce, 'hex'), spki: rt.spki },
      { as: host.spki },
    );
    const res = await attestAs(rt, 'sim/api', nonce, forged);
    assert.equal(res.status, 403);
    assert.match(res.json.error.message, /host signature: the host key signature .* does not verify/);
  });

  it('refuses a policy whose platforms are not host IDs', async () => {
    const res = await call(
      owner,
      '/v1/sessions',
      policy('badhosts', 'security: {attestation: {mode: none}}', ['not-an-id']),
    );
    assert.equal(res.status, 400, JSON.stringify(res.json));
    assert.match(JSON.stringify(res.json), /platforms/);
  });

  it('refuses malformed evidence with 400 before any work', async () => {
    const rt = ephemeral();
    const nonce = await nonceFor(rt);
    const good = evidenceFor(nonce, rt.spki);
    const unsigned = { type: 'simulation', measurement: good.measurement, reportData: good.reportData };
    const oversized = { ...good, hostSpki: 'A'.repeat(200) };
    const { signature: _signature, ...noSignature } = good;
    const malformed = [
      { type: 'simulation', measurement: ['x'], reportData: 'y' },
      { type: 'tdx', quote: 'not base64!' },
      { type: 'magic' },
      unsigned,
      noSignature,
      oversized,
      { ...good, signature: 'not base64!' },
    ];
    for (const evidence of malformed) {
      const res = await call(rt, '/v1/attest', JSON.stringify({ config_id: 'sim/api', nonce, evidence }));
      assert.equal(res.status, 400, JSON.stringify(evidence));
      assert.equal(res.json.error.code, 'CAS_BAD_REQUEST');
    }
  });

  it('refuses hardware evidence it cannot verify, naming the check', async () => {
    const rt = ephemeral();
    const nonce = await nonceFor(rt);
    const res = await attestAs(rt, 'hw/api', nonce, {
      type: 'tdx',
      quote: Buffer.from('not a quote').toString('base64'),
    });
    assert.equal(res.status, 403);
    assert.equal(res.json.error.code, 'CAS_ATTESTATION_FAILED');
  });

  it('refuses evidence moved to another connection, and a nonce issued to another key', async () => {
    const rt = ephemeral();
    const thief = ephemeral();
    const nonce = await nonceFor(rt);
    const stolen = await attestAs(thief, 'sim/api', nonce, evidenceFor(nonce, rt.spki));
    assert.equal(stolen.status, 403);
    assert.match(stolen.json.error.message, /issued to another connection/);
    const after = await attestAs(rt, 'sim/api', nonce, evidenceFor(nonce, rt.spki));
    assert.match(after.json.error.message, /already used/, 'presenting it from another key spent it');
    const own = await nonceFor(thief);
    const moved = await attestAs(thief, 'sim/api', own, evidenceFor(own, rt.spki));
    assert.equal(moved.status, 403);
    assert.match(moved.json.error.message, /not bound to this nonce and this connection key/);
  });
});
