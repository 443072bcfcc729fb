import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startCas } from '../cas/server.js';
import { selfSignedIdentity } from '../secrets/index.js';
import { obtainConfig, pinnedAttestation } from './attest.js';
import type { EvidenceSource } from './evidence-source.js';

const SECRET = 'S3CRET-do-not-print';
const good = {
  command: ['prog'],
  environment: { A: 'b' },
  pwd: '/',
  injectionFiles: [],
  session: 's',
  service: 'x',
  attestation: { evidence: 'simulation', simulated: true },
};

/** A server with a real CAS identity that answers whatever the test says: `veil run` must judge the answers. */
describe('veil run parses the CAS answers against the wire contract', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-rt-attest-'));
  let server: Server;
  let caFile: string;
  let answers: { nonce: [number, unknown]; attest: [number, unknown] };
  const evidence: EvidenceSource = {
    kind: 'simulation',
    describe: 'test',
    collect: async () => ({
      type: 'simulation',
      measurement: '0'.repeat(64),
      reportData: '0'.repeat(64),
      hostSpki: 'AA==',
      signature: 'AA==',
    }),
  };
  const run = () => {
    const casAddr = `127.0.0.1:${(server.address() as { port: number }).port}`;
    return obtainConfig({ casAddr, configId: 's/x', trust: { caFile }, evidence, now: () => new Date() });
  };

  before(async () => {
    const cas = await startCas({ host: '127.0.0.1', port: 0, dataDir: join(dir, 'data') });
    const { identity } = cas;
    await cas.close();
    caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, identity.caCertPem);
    server = createServer({ key: identity.tlsKeyPem, cert: identity.tlsCertPem }, (req, res) => {
      req.resume();
      const [status, body] = req.url === '/v1/attest/nonce' ? answers.nonce : answers.attest;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    await new Promise((resolve) => server?.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts an answer that fits the contract', async () => {
    answers = { nonce: [200, { nonce: 'a'.repeat(64) }], attest: [200, good] };
    assert.deepEqual((await run()).environment, { A: 'b' });
  });

  it('names the fields of an answer that does not fit, never their values', async () => {
    const environment = { DB_PASSWORD: 42, OK: SECRET };
    const bad = { ...good, environment, command: ['prog', `${SECRET}\0`], extra: SECRET };
    answers = { nonce: [200, { nonce: 'a'.repeat(64) }], attest: [200, bad] };
    await assert.rejects(run(), (err: Error & { code: string }) => {
      assert.equal(err.code, 'RUNTIME_ATTESTATION');
      assert.match(err.message, /answer\.environment\.DB_PASSWORD/);
      assert.match(err.message, /answer\.command\.1: must match/);
      assert.match(err.message, /answer\.extra: is not a field of this answer/);
      assert.doesNotMatch(err.message, new RegExp(SECRET));
      return true;
    });
  });

  it('refuses a nonce answer of another shape before collecting evidence', async () => {
    answers = { nonce: [200, { nonce: ['a'.repeat(64)] }], attest: [200, good] };
    await assert.rejects(run(), /answer\.nonce: must be string, not array/);
  });

  it("passes the CAS's error on, and says when an error is not in its format", async () => {
    const refused = { error: { code: 'CAS_ATTESTATION_FAILED', message: 'Attestation failed: no', hint: 'h' } };
    answers = { nonce: [200, { nonce: 'a'.repeat(64) }], attest: [403, refused] };
    await assert.rejects(run(), { code: 'RUNTIME_ATTESTATION', message: 'Attestation failed: no', hint: 'h' });
    answers = { nonce: [200, { nonce: 'a'.repeat(64) }], attest: [400, { error: 'Bad Request', statusCode: 400 }] };
    await assert.rejects(run(), /HTTP 400 and no error in its format/);
  });

  it('re-attestation keeps the CA read at the first attestation: a CA file swapped later is not read', async () => {
    answers = { nonce: [200, { nonce: 'a'.repeat(64) }], attest: [200, good] };
    const casAddr = `127.0.0.1:${(server.address() as { port: number }).port}`;
    const swapped = join(dir, 'swapped-ca.pem');
    writeFileSync(swapped, readFileSync(caFile));
    const again = pinnedAttestation({
      casAddr,
      configId: 's/x',
      trust: { caFile: swapped },
      evidence,
      now: () => new Date(),
    });
    await again();
    const hour = 3_600_000;
    const other = selfSignedIdentity({
      commonName: 'another CAS',
      endpoint: 'server',
      notBefore: new Date(Date.now() - hour),
      notAfter: new Date(Date.now() + hour),
    });
    writeFileSync(swapped, other.certPem);
    // The swapped file alone would not verify this server: the pin is what makes the second attestation pass.
    await assert.rejects(
      obtainConfig({ casAddr, configId: 's/x', trust: { caFile: swapped }, evidence, now: () => new Date() }),
    );
    assert.deepEqual((await again()).environment, { A: 'b' });
  });
});
