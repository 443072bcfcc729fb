import assert from 'node:assert/strict';
import { type KeyObject, X509Certificate, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { parsePrivateKeyPem, publicKeySpki, spkiOfPublicKey } from './keys.js';
import { openssl, opensslBytes, scratch } from './testkit.js';

const { file } = scratch();

/**
 * A generated key as the CAS meets keys: parsed from its DER. On Node 20 exporting the JWK of a KeyObject
 * straight from generateKeyPairSync can deadlock the process when a garbage collection meanwhile destroys the
 * job that made it (both take that key's lock); parsed keys share nothing with a job.
 */
function parsedPublicKey(generated: { publicKey: KeyObject }): KeyObject {
  const der = generated.publicKey.export({ type: 'spki', format: 'der' });
  return createPublicKey({ key: der, format: 'der', type: 'spki' });
}

describe('spkiOfPublicKey: one DER SubjectPublicKeyInfo per key', () => {
  // 200 keys per curve: a coordinate with a leading zero byte (1 in 128 per key) must still encode at full width.
  for (const namedCurve of ['P-256', 'P-384', 'P-521', 'secp256k1'] as const) {
    it(`${namedCurve}: the bytes OpenSSL's encoder writes, for 200 keys`, () => {
      for (let i = 0; i < 200; i++) {
        const publicKey = parsedPublicKey(generateKeyPairSync('ec', { namedCurve }));
        assert.deepEqual(spkiOfPublicKey(publicKey), publicKey.export({ type: 'spki', format: 'der' }));
      }
    });
  }

  for (const type of ['ed25519', 'ed448', 'x25519'] as const) {
    it(`${type}: the bytes OpenSSL's encoder writes`, () => {
      for (let i = 0; i < 50; i++) {
        const publicKey = parsedPublicKey(generateKeyPairSync(type as 'ed25519'));
        assert.deepEqual(spkiOfPublicKey(publicKey), publicKey.export({ type: 'spki', format: 'der' }));
      }
    });
  }

  it('RSA and RSA-PSS: OpenSSL export', () => {
    for (const type of ['rsa', 'rsa-pss'] as const) {
      const publicKey = parsedPublicKey(generateKeyPairSync(type as 'rsa', { modulusLength: 2048 }));
      assert.deepEqual(spkiOfPublicKey(publicKey), publicKey.export({ type: 'spki', format: 'der' }));
    }
  });

  it("a certificate's key: what the openssl tool writes for it", () => {
    const key = file('p256.key', openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'));
    const certPem = openssl('req', '-x509', '-new', '-key', key, '-subj', '/CN=spki', '-days', '1');
    const cert = file('p256.crt', certPem);
    const fromTool = opensslBytes('x509', '-in', cert, '-noout', '-pubkey').toString();
    const der = createPublicKey(fromTool).export({ type: 'spki', format: 'der' });
    assert.deepEqual(spkiOfPublicKey(new X509Certificate(certPem).publicKey), der);
    assert.deepEqual(
      spkiOfPublicKey(new X509Certificate(certPem).publicKey),
      opensslBytes('pkey', '-in', key, '-pubout', '-outform', 'DER'),
    );
  });

  // One key, two encodings of its point: OpenSSL re-exports each as it came, so the key would have two key hashes.
  it('a compressed EC point: the uncompressed encoding, the same as the uncompressed key', () => {
    for (const curve of ['P-256', 'P-384']) {
      const key = file(
        `${curve}.key`,
        openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${curve}`),
      );
      const plain = opensslBytes('pkey', '-in', key, '-pubout', '-outform', 'DER');
      const packed = opensslBytes('ec', '-in', key, '-pubout', '-outform', 'DER', '-conv_form', 'compressed');
      assert.ok(packed.length < plain.length, 'openssl wrote a compressed point');
      const packedKey = createPublicKey({ key: packed, format: 'der', type: 'spki' });
      assert.notDeepEqual(packedKey.export({ type: 'spki', format: 'der' }), plain, 'OpenSSL keeps the compression');
      assert.deepEqual(spkiOfPublicKey(packedKey), plain);
    }
  });

  // A certificate's key, as the CAS reads a client's (identity-of.ts).
  const ALGORITHMS: Array<[string, string[]]> = [
    ['P-256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']],
    ['P-384', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384']],
    ['P-521', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521']],
    ['Ed25519', ['-algorithm', 'ED25519']],
    ['Ed448', ['-algorithm', 'ED448']],
    ['RSA', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']],
  ];
  for (const [name, args] of ALGORITHMS) {
    it(`${name} in a certificate: what the openssl tool writes for the certificate's key`, () => {
      const key = file(`cert-${name}.key`, openssl('genpkey', ...args));
      const pem = openssl('req', '-x509', '-new', '-key', key, '-subj', `/CN=${name}`, '-days', '1');
      const cert = new X509Certificate(pem);
      const fromTool = opensslBytes('pkey', '-in', key, '-pubout', '-outform', 'DER');
      assert.deepEqual(spkiOfPublicKey(cert.publicKey), fromTool);
    });
  }

  it('a curve without a JWK name (brainpool): OpenSSL export, as before', () => {
    const publicKey = parsedPublicKey(generateKeyPairSync('ec', { namedCurve: 'brainpoolP256r1' }));
    assert.deepEqual(spkiOfPublicKey(publicKey), publicKey.export({ type: 'spki', format: 'der' }));
  });

  // The CLI names its own identity by publicKeySpki of its private key: the same hash as the CAS's for its certificate.
  it('publicKeySpki of a PKCS#8 key holding a compressed point: the uncompressed key', () => {
    const key = file('packed-pk.key', openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'));
    const packed = openssl(
      'pkcs8',
      '-topk8',
      '-nocrypt',
      '-in',
      file('packed-pk-c.key', openssl('ec', '-in', key, '-conv_form', 'compressed')),
    );
    const uncompressed = opensslBytes('pkey', '-in', key, '-pubout', '-outform', 'DER');
    const parsed = parsePrivateKeyPem(packed);
    assert.deepEqual(publicKeySpki(parsed.pkcs8), uncompressed);
  });
});
