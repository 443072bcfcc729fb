import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { describe, it } from 'node:test';
import { int, oid, seq, time, tlv, uint } from './der.js';
import { pemEncode } from './encodings.js';
import { SecretsError } from './errors.js';
import {
  generatePrivateKey,
  generatePrivateKeyAsync,
  keyHash,
  parsePrivateKeyPem,
  privateKeyObject,
  publicKeySpki,
  type KeyType,
} from './keys.js';
import { openssl, scratch } from './testkit.js';

const { file } = scratch();
const refused =
  (code: string, ...mustNotContain: string[]) =>
  (e: unknown) =>
    e instanceof SecretsError &&
    e.code === code &&
    mustNotContain.every((s) => !e.message.includes(s) && !(e.hint ?? '').includes(s));

describe('generated keys, checked with openssl and Node', () => {
  for (const keyType of ['P-256', 'P-384', 'Ed25519', 'RSA-2048', 'RSA-3072'] as KeyType[]) {
    it(`${keyType}: a PKCS#8 both accept, with the public key openssl derives`, async () => {
      const key = await generatePrivateKeyAsync(keyType);
      const pem = file(`${keyType}.key`, pemEncode('PRIVATE KEY', key.pkcs8));
      openssl('pkey', '-in', pem, '-noout');
      assert.equal(openssl('pkey', '-in', pem, '-pubout'), pemEncode('PUBLIC KEY', publicKeySpki(key.pkcs8)));
      const node = createPrivateKey({ key: key.pkcs8, format: 'der', type: 'pkcs8' });
      assert.deepEqual(createPublicKey(node).export({ type: 'spki', format: 'der' }), publicKeySpki(key.pkcs8));
      assert.deepEqual(
        parsePrivateKeyPem(pemEncode('PRIVATE KEY', key.pkcs8)),
        key,
        'PKCS#8 PEM round-trips unchanged',
      );
      const data = Buffer.from('tbs');
      const hash = keyType === 'Ed25519' ? null : 'sha256';
      assert.ok(
        verify(hash, data, createPublicKey(node), sign(hash, data, privateKeyObject(key.pkcs8))),
        'the cached signing key is the same key',
      );
    });
  }

  it('every key is fresh', () => {
    const keys = new Set(Array.from({ length: 50 }, () => generatePrivateKey().pkcs8.toString('hex')));
    assert.equal(keys.size, 50);
  });

  it('keyHash is the hex SHA-256 of the DER SPKI, as `openssl dgst` computes it', () => {
    const spki = publicKeySpki(generatePrivateKey().pkcs8);
    const expected = openssl('dgst', '-sha256', '-r', file('spki.der', spki)).split(' ')[0];
    assert.equal(keyHash(spki), expected);
  });

  it('refuses an unknown key type', async () => {
    assert.throws(() => generatePrivateKey('P-521' as KeyType), refused('SECRET_UNSUPPORTED'));
    await assert.rejects(generatePrivateKeyAsync('P-521' as KeyType), refused('SECRET_UNSUPPORTED'));
  });

  it('generates RSA only in the thread pool: the synchronous call refuses it', () => {
    for (const keyType of ['RSA-2048', 'RSA-3072'] as KeyType[]) {
      const inPool = (e: SecretsError) => refused('SECRET_UNSUPPORTED')(e) && /generatePrivateKeyAsync/.test(e.hint!);
      assert.throws(() => generatePrivateKey(keyType), inPool);
    }
  });
});

describe('explicit private keys (parsePrivateKeyPem)', () => {
  it('reads SEC1 EC PEM, with the EC PARAMETERS block openssl ecparam writes before it', () => {
    const pem = openssl('ecparam', '-name', 'secp384r1', '-genkey');
    assert.match(pem, /BEGIN EC PARAMETERS[\s\S]*BEGIN EC PRIVATE KEY/);
    const key = parsePrivateKeyPem(pem);
    assert.equal(key.keyType, 'P-384');
    assert.equal(
      pemEncode('PUBLIC KEY', publicKeySpki(key.pkcs8)),
      openssl('pkey', '-in', file('sec1.pem', pem), '-pubout'),
    );
  });

  it('reads PKCS#8 written by openssl', () => {
    const pem = openssl('genpkey', '-algorithm', 'ed25519');
    const key = parsePrivateKeyPem(pem);
    assert.equal(key.keyType, 'Ed25519');
    assert.equal(
      pemEncode('PUBLIC KEY', publicKeySpki(key.pkcs8)),
      openssl('pkey', '-in', file('ed.pem', pem), '-pubout'),
    );
  });

  it('refuses other formats and types clearly, never echoing the key', () => {
    const ec = createPrivateKey(pemEncode('PRIVATE KEY', generatePrivateKey('P-256').pkcs8));
    const sec1 = ec.export({ type: 'sec1', format: 'pem' }).toString();
    const body = sec1.split('\n')[1]!;
    assert.throws(
      () => parsePrivateKeyPem(sec1.replace(/EC PRIVATE KEY/g, 'RSA PRIVATE KEY'), "secret 'k'"),
      refused('SECRET_UNSUPPORTED', body),
    );
    assert.throws(
      () => parsePrivateKeyPem(sec1.replace(/EC PRIVATE KEY/g, 'ENCRYPTED PRIVATE KEY')),
      refused('SECRET_UNSUPPORTED', body),
    );
    assert.throws(() => parsePrivateKeyPem('hunter2 is not a key'), refused('SECRET_INVALID_VALUE', 'hunter2'));
    assert.throws(
      () => parsePrivateKeyPem(sec1.replace(/EC PRIVATE KEY/g, 'PRIVATE KEY')),
      refused('SECRET_INVALID_VALUE', body),
    );
    assert.throws(() => parsePrivateKeyPem(openssl('genpkey', '-algorithm', 'ed448')), refused('SECRET_UNSUPPORTED'));
    assert.throws(
      () => parsePrivateKeyPem(openssl('ecparam', '-name', 'secp256k1', '-genkey', '-noout')),
      /secp256k1 key/,
    );
  });

  it('names the secret in the message', () => {
    assert.throws(() => parsePrivateKeyPem('x', "secret 'db_key'"), /secret 'db_key'/);
  });
});

describe('DER writer', () => {
  it('encodes short and long lengths', () => {
    for (const n of [0, 127, 128, 255, 256, 65535, 65536]) {
      const der = tlv(0x04, Buffer.alloc(n, 1));
      assert.match(
        openssl('asn1parse', '-inform', 'DER', '-in', file('len.der', der)),
        new RegExp(`l= *${n} prim: OCTET STRING`),
        String(n),
      );
    }
  });

  it('encodes integers minimally and non-negative', () => {
    assert.deepEqual(uint(Buffer.from([0, 0, 0x7f])), Buffer.from([2, 1, 0x7f]));
    assert.deepEqual(uint(Buffer.from([0x80])), Buffer.from([2, 2, 0, 0x80]));
    assert.deepEqual(int(0), Buffer.from([2, 1, 0]));
    assert.deepEqual(oid('1.2.840.10045.2.1'), Buffer.from('06072a8648ce3d0201', 'hex'));
    assert.deepEqual(seq(), Buffer.from([0x30, 0]));
  });

  it('writes UTCTime through 2049 and GeneralizedTime from 2050 (RFC 5280)', () => {
    assert.equal(time(new Date('2049-12-31T23:59:59.999Z')).toString('latin1'), '\x17\x0d491231235959Z');
    assert.equal(time(new Date('2050-01-01T00:00:00Z')).toString('latin1'), '\x18\x0f20500101000000Z');
    assert.equal(time(new Date('1949-06-01T08:09:10Z')).toString('latin1'), '\x18\x0f19490601080910Z');
  });
});
