import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { generatePrivateKey, issueCertificate } from '../secrets/index.js';
import { fingerprintOf, loadIdentity } from './identity.js';
import { tempStore } from './test-store.js';

describe('CAS identity in the store', () => {
  it('is one CA for CAS processes starting at once on one store (replicas)', async () => {
    const { store } = tempStore('veil-identity-');
    const ids = await Promise.all([1, 2, 3].map(() => loadIdentity(store, ['127.0.0.1'], new Date())));
    assert.equal(new Set(ids.map((i) => i.fingerprint)).size, 1);
    for (const id of ids) {
      const leaf = new X509Certificate(id.tlsCertPem);
      assert.ok(leaf.verify(new X509Certificate(id.caCertPem).publicKey), 'TLS certificate issued by the shared CA');
    }
  });

  it('keeps the CA of a store that holds it as two blobs (an older CAS), joined into one', async () => {
    const { store } = tempStore('veil-identity-old-');
    const key = generatePrivateKey('P-256');
    const now = new Date();
    const cert = issueCertificate({ subjectKey: key, commonName: 'old', isCa: true, notBefore: now, notAfter: now });
    await store.putBlobIfAbsent('identity/ca.key', key.pkcs8);
    await store.putBlobIfAbsent('identity/ca.crt', cert);
    const id = await loadIdentity(store, ['127.0.0.1'], now);
    assert.equal(id.fingerprint, fingerprintOf(cert));
    assert.ok(await store.getBlob('identity/ca'));
    assert.equal((await loadIdentity(store, ['127.0.0.1'], now)).fingerprint, fingerprintOf(cert));
  });
});
