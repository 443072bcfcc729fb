import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { casReportData } from '../attestation/index.js';
import { selfSignedIdentity } from '../secrets/index.js';
import type { CasError } from './errors.js';
import { MAX_PENDING_SELF_ATTESTATIONS, selfAttestation } from './self-attestation.js';

const ca = selfSignedIdentity({
  commonName: 'ca',
  endpoint: 'server',
  notBefore: new Date(0),
  notAfter: new Date(4e12),
});
const identity = { caCertPem: ca.certPem, fingerprint: 'f'.repeat(64) };
const nonce = 'ab'.repeat(32);

describe('GET /v1/attestation', () => {
  it('without a TEE says so, and carries no evidence', async () => {
    const answer = await selfAttestation(identity, undefined)(nonce);
    assert.equal(answer.evidence, null);
    assert.match(answer.note ?? '', /trusted only by its CA fingerprint/);
  });

  it('asks the TEE to bind the nonce and the CA key', async () => {
    let asked: Buffer | undefined;
    const answer = await selfAttestation(identity, async (rd) => {
      asked = rd;
      return { type: 'tdx', quote: 'AA==' };
    })(nonce);
    assert.deepEqual(answer.evidence, { type: 'tdx', quote: 'AA==' });
    const spki = new X509Certificate(ca.certPem).publicKey.export({ type: 'spki', format: 'der' });
    assert.ok(asked?.equals(casReportData(Buffer.from(nonce, 'hex'), spki)));
  });

  it('refuses a malformed nonce, too many reports at once (429), and reports a failing TEE as unavailable (503)', async () => {
    const self = selfAttestation(identity, () => new Promise(() => undefined));
    await assert.rejects(self('xyz'), (e: CasError) => e.code === 'CAS_BAD_REQUEST');
    for (let i = 0; i < MAX_PENDING_SELF_ATTESTATIONS; i++) void self(nonce);
    await assert.rejects(self(nonce), (e: CasError) => e.code === 'CAS_BUSY' && e.status === 429);
    const failing = selfAttestation(identity, async () => {
      throw new Error('QGS unreachable');
    });
    for (let i = 0; i < MAX_PENDING_SELF_ATTESTATIONS + 2; i++) {
      await assert.rejects(
        failing(nonce),
        (e: CasError) => e.code === 'CAS_TEE_UNAVAILABLE',
        'a settled call frees its slot',
      );
    }
    await assert.rejects(
      failing(nonce),
      (e: CasError) => e.code === 'CAS_TEE_UNAVAILABLE' && e.status === 503 && /QGS unreachable/.test(e.message),
    );
  });
});
