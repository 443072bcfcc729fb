import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseValidFor, subjectNames } from './cert-fields.js';
import { SecretsError } from './errors.js';
import {
  generatePrivateKey,
  generatePrivateKeyAsync,
  parsePrivateKeyPem,
  type KeyType,
  type PrivateKeyMaterial,
} from './keys.js';
import { openssl, scratch } from './testkit.js';
import { issueCertificate, issueCertificateAsync, type CertificateRequest } from './x509.js';

const { file, certFile } = scratch();
const now = new Date();
const later = new Date(now.getTime() + 30 * 864e5);
const EXTS = 'subjectAltName,extendedKeyUsage,basicConstraints,keyUsage';

type Authority = { certDer: Buffer; key: PrivateKeyMaterial };
function ca(key: PrivateKeyMaterial, commonName: string, issuer?: Authority): Authority {
  return {
    certDer: issueCertificate({ subjectKey: key, issuer, commonName, isCa: true, notBefore: now, notAfter: later }),
    key,
  };
}
function leaf(issuer: Authority | undefined, extra: Partial<CertificateRequest> = {}): Buffer {
  return issueCertificate({
    subjectKey: generatePrivateKey(),
    issuer,
    commonName: 'leaf',
    isCa: false,
    notBefore: now,
    notAfter: later,
    ...extra,
  });
}
const verify = (root: Buffer, cert: Buffer, untrusted?: Buffer) =>
  openssl(
    'verify',
    '-CAfile',
    certFile('root.pem', root),
    ...(untrusted ? ['-untrusted', certFile('mid.pem', untrusted)] : []),
    certFile('leaf.pem', cert),
  );
const extensions = (der: Buffer) => openssl('x509', '-in', certFile('x.pem', der), '-noout', '-ext', EXTS);

const root = ca(generatePrivateKey('P-256'), 'root');

describe('issueCertificate, checked with openssl', () => {
  it('a leaf signed by a CA verifies, with exactly the SANs, EKU, key usage and constraints asked for', () => {
    const cert = leaf(root, {
      commonName: 'api',
      dns: ['api', 'api.local'],
      ips: ['127.0.0.1', '::1', '2001:db8::ffff:10.0.0.1'],
      endpoint: 'server',
    });
    assert.match(verify(root.certDer, cert), /leaf\.pem: OK/);
    assert.equal(
      extensions(cert),
      'X509v3 Basic Constraints: critical\n    CA:FALSE\nX509v3 Key Usage: critical\n    Digital Signature\n' +
        'X509v3 Extended Key Usage: \n    TLS Web Server Authentication\nX509v3 Subject Alternative Name: \n' +
        '    DNS:api, DNS:api.local, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:2001:DB8:0:0:0:FFFF:A00:1\n',
    );
    const x = new X509Certificate(cert);
    assert.equal(x.subject, 'CN=api');
    assert.equal(x.issuer, 'CN=root');
    assert.ok(x.checkIssued(new X509Certificate(root.certDer)));
  });

  it('a CA is a critical CA:TRUE with keyCertSign and cRLSign, and no EKU or SAN', () => {
    assert.equal(
      extensions(root.certDer),
      'X509v3 Basic Constraints: critical\n    CA:TRUE\nX509v3 Key Usage: critical\n    Certificate Sign, CRL Sign\n',
    );
    assert.match(verify(root.certDer, root.certDer), /OK/, 'a self-signed CA verifies against itself');
  });

  it('a client certificate has clientAuth only; without endpoint or names there is neither EKU nor SAN', () => {
    assert.match(
      extensions(leaf(root, { endpoint: 'client' })),
      /Extended Key Usage: \n {4}TLS Web Client Authentication\n(?!.*Alternative)/,
    );
    assert.equal(
      extensions(leaf(root)),
      'X509v3 Basic Constraints: critical\n    CA:FALSE\nX509v3 Key Usage: critical\n    Digital Signature\n',
    );
  });

  it('a chain through an intermediate verifies, and only with the intermediate', () => {
    const mid = ca(generatePrivateKey('P-384'), 'mid', root);
    const cert = leaf(mid, { subjectKey: generatePrivateKey('Ed25519') });
    assert.match(verify(root.certDer, cert, mid.certDer), /leaf\.pem: OK/);
    assert.throws(() => verify(root.certDer, cert), /unable to get local issuer certificate/);
  });

  const rsa = 'sha256WithRSAEncryption';
  const pairs = [
    ['P-384', 'ecdsa-with-SHA384'],
    ['Ed25519', 'ED25519'],
    ['RSA-2048', rsa],
    ['RSA-3072', rsa],
  ];
  for (const [keyType, algorithm] of pairs as Array<[KeyType, string]>) {
    it(`a ${keyType} CA signs with ${algorithm} (sync and in the pool), and what it signs verifies`, async () => {
      const authority = ca(await generatePrivateKeyAsync(keyType), `${keyType} CA`);
      const subjectKey = keyType.startsWith('RSA') ? authority.key : generatePrivateKey(keyType);
      const request = {
        subjectKey,
        issuer: authority,
        commonName: 'pool',
        isCa: false,
        notBefore: now,
        notAfter: later,
      };
      const inPool = await issueCertificateAsync(request);
      assert.match(verify(authority.certDer, inPool), /OK/);
      const cert = leaf(authority, { subjectKey });
      assert.match(verify(authority.certDer, cert), /OK/);
      assert.equal(
        openssl('x509', '-in', certFile('x.pem', cert), '-noout', '-text').match(/Signature Algorithm: (\S+)/)![1],
        algorithm,
      );
      if (keyType.startsWith('RSA')) assert.match(extensions(cert), /Digital Signature, Key Encipherment/);
    });
  }

  it("repeats the issuer's own subjectKeyIdentifier as authorityKeyIdentifier (a CA made by openssl)", () => {
    const keyFile = file('ext-ca.key', '');
    const pem = openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      keyFile,
      '-subj',
      '/CN=elsewhere',
      '-days',
      '2',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
      '-addext',
      'subjectKeyIdentifier=0102030405',
      '-addext',
      'authorityKeyIdentifier=none',
    );
    const external = { certDer: new X509Certificate(pem).raw, key: parsePrivateKeyPem(readFileSync(keyFile, 'utf8')) };
    const cert = leaf(external, { dns: ['x'] });
    assert.match(verify(external.certDer, cert), /OK/);
    assert.match(
      openssl('x509', '-in', certFile('x.pem', cert), '-noout', '-ext', 'authorityKeyIdentifier'),
      /01:02:03:04:05/,
    );
  });

  it('serials are 16 bytes and positive; validity past 2049 is a GeneralizedTime openssl reads', () => {
    const cert = leaf(root, { notAfter: new Date('2051-03-04T05:06:07Z') });
    const out = openssl('x509', '-in', certFile('x.pem', cert), '-noout', '-serial', '-enddate');
    assert.match(out, /serial=[0-7][0-9A-F]{31}\n/);
    assert.match(out, /notAfter=Mar {2}4 05:06:07 2051 GMT/);
    assert.notEqual(new X509Certificate(leaf(root)).serialNumber, new X509Certificate(leaf(root)).serialNumber);
  });
});

describe('issueCertificate refuses', () => {
  const code = (c: string) => (e: unknown) => e instanceof SecretsError && e.code === c;
  it('an issuer key that is not the issuer certificate’s', () => {
    assert.throws(() => leaf({ certDer: root.certDer, key: generatePrivateKey() }), code('SECRET_DEPENDENCY'));
  });
  it('bad addresses, non-ASCII DNS names and backwards validity', () => {
    assert.throws(() => leaf(root, { ips: ['300.1.1.1'] }), code('SECRET_INVALID_VALUE'));
    assert.throws(() => leaf(root, { ips: ['fe80::1%eth0'] }), code('SECRET_INVALID_VALUE'));
    assert.throws(
      () => leaf(root, { dns: ['bücher.example'] }),
      (e: SecretsError) => code('SECRET_INVALID_VALUE')(e) && /punycode/.test(e.hint!),
    );
    assert.throws(() => leaf(root, { notBefore: later, notAfter: now }), code('SECRET_INVALID_VALUE'));
  });
});

describe('certificate fields of a policy', () => {
  it('parses valid_for, defaulting to one year', () => {
    const cases: Array<[string | undefined, number]> = [
      [undefined, 365 * 86400],
      ['1 year', 365 * 86400],
      ['59d', 59 * 86400],
      ['12 hours', 12 * 3600],
      ['30 minutes', 1800],
      ['2 weeks', 14 * 86400],
      ['90s', 90],
      ['1y 6months', 365 * 86400 + 180 * 86400],
      ['3M', 90 * 86400],
      ['5m', 300],
      ['1 Day', 86400],
      ['20s', 20],
      ['10 seconds', 10],
    ];
    for (const [text, seconds] of cases) assert.equal(parseValidFor(text), seconds, String(text));
    for (const bad of ['', 'forever', '1 fortnight', '0d', 'd', '1 year and', '-1d', '9s', '1s']) {
      assert.throws(
        () => parseValidFor(bad),
        (e: SecretsError) => e.code === 'SECRET_INVALID_VALUE',
        bad,
      );
    }
  });

  it('takes dns and san entries in order, and refuses malformed san entries', () => {
    assert.deepEqual(subjectNames('c', ['a'], ['dns:b', 'ip:10.0.0.1', 'DNS:c', 'ip:::1']), {
      dns: ['a', 'b', 'c'],
      ips: ['10.0.0.1', '::1'],
    });
    for (const bad of ['b', 'ip:not-an-ip', 'uri:https://x', 'dns:']) {
      assert.throws(
        () => subjectNames('c', [], [bad]),
        (e: SecretsError) => e.code === 'SECRET_INVALID_VALUE' && e.message.includes("certificate 'c'"),
        bad,
      );
    }
  });
});
