import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  base32, generatePrivateKey, generateSecretSet, issueCertificate, parsePrivateKeyPem, pemEncode, publicKeySpki, renderSecret,
  SecretsError, type KeyType, type SecretSpec, type StoredSecret,
} from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'veil-secrets-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, data: string | Buffer) => {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
};
const openssl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const now = new Date();
const later = new Date(now.getTime() + 30 * 864e5);

describe('keys', () => {
  for (const keyType of ['P-256', 'P-384', 'Ed25519', 'RSA-2048'] as KeyType[]) {
    it(`${keyType}: openssl accepts the PKCS#8 and derives the same public key`, () => {
      const key = generatePrivateKey(keyType);
      const pem = file(`${keyType}.key`, pemEncode('PRIVATE KEY', key.pkcs8));
      const pub = openssl('pkey', '-in', pem, '-pubout', '-outform', 'PEM');
      assert.equal(pub, pemEncode('PUBLIC KEY', publicKeySpki(key.pkcs8)));
      assert.equal(parsePrivateKeyPem(pemEncode('PRIVATE KEY', key.pkcs8)).keyType, keyType);
    });
  }

  it('accepts an explicit SEC1 EC key and refuses what is not a key', () => {
    const sec1 = createPrivateKey(pemEncode('PRIVATE KEY', generatePrivateKey().pkcs8)).export({ type: 'sec1', format: 'pem' }).toString();
    assert.equal(parsePrivateKeyPem(sec1).keyType, 'P-256');
    assert.throws(() => parsePrivateKeyPem('not a key', "secret 'k'"), (e: SecretsError) => e.code === 'SECRET_INVALID_VALUE' && !e.message.includes('not a key'));
  });
});

describe('certificates, checked with openssl', () => {
  const rootKey = generatePrivateKey();
  const root = issueCertificate({ subjectKey: rootKey, commonName: 'root', isCa: true, notBefore: now, notAfter: later });
  const midKey = generatePrivateKey('P-384');
  const mid = issueCertificate({ subjectKey: midKey, issuer: { certDer: root, key: rootKey }, commonName: 'mid', isCa: true, notBefore: now, notAfter: later });

  it('a leaf under an intermediate verifies, with exactly the SANs and EKU asked for', () => {
    const leaf = issueCertificate({
      subjectKey: generatePrivateKey('Ed25519'), issuer: { certDer: mid, key: midKey }, commonName: 'api',
      dns: ['api', 'api.local'], ips: ['127.0.0.1', '::1'], isCa: false, endpoint: 'server', notBefore: now, notAfter: later,
    });
    const rootFile = file('root.pem', pemEncode('CERTIFICATE', root));
    const midFile = file('mid.pem', pemEncode('CERTIFICATE', mid));
    const leafFile = file('leaf.pem', pemEncode('CERTIFICATE', leaf));
    assert.match(openssl('verify', '-CAfile', rootFile, '-untrusted', midFile, leafFile), /OK/);
    const ext = openssl('x509', '-in', leafFile, '-noout', '-ext', 'subjectAltName,extendedKeyUsage,basicConstraints');
    assert.match(ext, /DNS:api, DNS:api\.local, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1\n/);
    assert.match(ext, /TLS Web Server Authentication\n/);
    assert.doesNotMatch(ext, /Client Authentication/);
    assert.match(ext, /CA:FALSE/);
  });

  it('a client certificate carries clientAuth, and a CA is a CA', () => {
    const client = issueCertificate({ subjectKey: generatePrivateKey('RSA-2048'), issuer: { certDer: root, key: rootKey }, commonName: 'c', isCa: false, endpoint: 'client', notBefore: now, notAfter: later });
    assert.match(openssl('x509', '-in', file('client.pem', pemEncode('CERTIFICATE', client)), '-noout', '-ext', 'extendedKeyUsage'), /TLS Web Client Authentication/);
    assert.ok(new X509Certificate(root).ca);
    assert.ok(!new X509Certificate(client).ca);
  });
});

describe('generateSecretSet and the update rules', () => {
  const specs: SecretSpec[] = [
    { name: 'leaf', kind: 'x509', private_key: 'leaf_key', issuer: 'ca', dns: ['api'], endpoint: 'server' },
    { name: 'ca', kind: 'x509-ca', private_key: 'ca_key' },
    { name: 'ca_key', kind: 'private-key' },
    { name: 'leaf_key', kind: 'private-key', migrate: true },
    { name: 'pw', kind: 'ascii', size: 32 },
    { name: 'bin', kind: 'binary' },
    { name: 'given', kind: 'ascii', value: '#NOPE!$x' },
  ];
  const first = generateSecretSet(specs, undefined, { now });

  it('generates every kind in dependency order', () => {
    const pw = first.get('pw') as { value: string };
    assert.equal(pw.value.length, 32);
    assert.match(pw.value, /^[\x21-\x7e]+$/);
    assert.equal((first.get('bin') as { value: string }).value.length, 40);
    assert.equal((first.get('given') as { value: string }).value, '#NOPE!$x');
    const leaf = new X509Certificate(Buffer.from((first.get('leaf') as { value: string }).value, 'base64'));
    const ca = new X509Certificate(Buffer.from((first.get('ca') as { value: string }).value, 'base64'));
    assert.ok(leaf.verify(ca.publicKey));
    assert.equal(leaf.subject, 'CN=api', 'common_name defaults to the first dns name');
    assert.equal(ca.subject, 'CN=ca', 'else to the secret name');
  });

  it('keeps ascii and binary, keeps migrated keys, regenerates the rest', () => {
    const next = generateSecretSet(specs, { specs, values: first }, { now });
    for (const kept of ['pw', 'bin', 'leaf_key']) assert.deepEqual(next.get(kept), first.get(kept), kept);
    for (const fresh of ['ca_key', 'ca', 'leaf']) assert.notDeepEqual(next.get(fresh), first.get(fresh), fresh);
    const resized = specs.map((s) => (s.name === 'pw' ? { ...s, size: 10 } : s));
    assert.equal((generateSecretSet(resized, { specs, values: first }, { now }).get('pw') as { value: string }).value.length, 10);
  });

  it('signs with an imported issuer, and names a missing one', () => {
    const withImport: SecretSpec[] = [
      { name: 'k', kind: 'private-key' },
      { name: 'c', kind: 'x509', private_key: 'k', issuer: 'theirs' },
      { name: 'theirs', import: { session: 'other', secret: 'ca' } },
    ];
    const lookup = (name: string) => (name === 'ca_key' ? first.get('ca_key') : undefined);
    const ca = first.get('ca') as StoredSecret;
    const imported = { ...ca, privateKey: 'ca_key' } as StoredSecret;
    const keyed = generateSecretSet([...withImport, { name: 'ca_key', kind: 'private-key', value: pemEncode('PRIVATE KEY', Buffer.from((first.get('ca_key') as { value: string }).value, 'base64')) }], undefined, {
      now, resolveImport: (name) => (name === 'theirs' ? imported : lookup(name)),
    });
    const cert = new X509Certificate(Buffer.from((keyed.get('c') as { value: string }).value, 'base64'));
    assert.ok(cert.verify(new X509Certificate(Buffer.from((ca as { value: string }).value, 'base64')).publicKey));
    assert.throws(() => generateSecretSet(withImport, undefined, { now }), (e: SecretsError) => e.code === 'SECRET_IMPORT_MISSING' && /'theirs'/.test(e.message));
  });
});

describe('renderSecret: every suffix', () => {
  const values = generateSecretSet(
    [
      { name: 'ca_key', kind: 'private-key' }, { name: 'ca', kind: 'x509-ca', private_key: 'ca_key' },
      { name: 'mid_key', kind: 'private-key' }, { name: 'mid', kind: 'x509-ca', private_key: 'mid_key', issuer: 'ca' },
      { name: 'leaf_key', kind: 'private-key' }, { name: 'leaf', kind: 'x509', private_key: 'leaf_key', issuer: 'mid' },
      { name: 'bin', kind: 'binary', value: '666f6f626172' }, { name: 'pw', kind: 'ascii', value: 'foobar' },
    ],
    undefined, { now },
  );
  const lookup = (n: string) => values.get(n);
  const der = (n: string) => Buffer.from((values.get(n) as { value: string }).value, 'base64');
  const pem = (n: string) => pemEncode('CERTIFICATE', der(n));
  const keyPem = (n: string) => pemEncode('PRIVATE KEY', der(n));

  it('certificates', () => {
    for (const s of ['', '.crt', ':crt', ':crt:pem']) assert.equal(renderSecret('leaf', s, lookup), pem('leaf'), s);
    assert.deepEqual(renderSecret('leaf', ':crt:der', lookup), der('leaf'));
    assert.equal(renderSecret('leaf', ':chain', lookup), pem('mid') + pem('ca'));
    assert.equal(renderSecret('leaf', '.chain', lookup), pem('ca') + pem('mid') + pem('leaf'));
    assert.equal(renderSecret('ca', '.chain', lookup), pem('ca'), 'a self-signed CA is its own legacy chain');
    assert.equal(renderSecret('ca', ':chain', lookup), '');
    for (const s of ['.key', ':privatekey', ':privatekey:pem', ':privatekey:pkcs8:pem']) assert.equal(renderSecret('leaf', s, lookup), keyPem('leaf_key'), s);
    for (const s of [':privatekey:der', ':privatekey:pkcs8:der']) assert.deepEqual(renderSecret('leaf', s, lookup), der('leaf_key'), s);
  });

  it('private keys', () => {
    for (const s of ['', ':pem', ':pkcs8:pem']) assert.equal(renderSecret('leaf_key', s, lookup), keyPem('leaf_key'), s);
    for (const s of [':der', ':pkcs8:der']) assert.deepEqual(renderSecret('leaf_key', s, lookup), der('leaf_key'), s);
  });

  it('binary and ascii encodings (RFC 4648 vectors)', () => {
    assert.deepEqual(renderSecret('bin', '', lookup), Buffer.from('foobar'));
    assert.deepEqual(renderSecret('bin', ':bin', lookup), Buffer.from('foobar'));
    assert.equal(renderSecret('bin', ':hex', lookup), '666f6f626172');
    assert.equal(renderSecret('bin', '.hex', lookup), '666f6f626172');
    assert.equal(renderSecret('pw', ':base64', lookup), 'Zm9vYmFy');
    assert.equal(renderSecret('pw', ':base64url', lookup), 'Zm9vYmFy');
    assert.equal(renderSecret('pw', ':base32', lookup), 'MZXW6YTBOI======');
    assert.equal(renderSecret('pw', ':base32nopad', lookup), 'MZXW6YTBOI');
    assert.equal(renderSecret('pw', '', lookup), 'foobar');
    for (const [input, out] of [['', ''], ['f', 'MY======'], ['fo', 'MZXQ===='], ['foo', 'MZXW6==='], ['foob', 'MZXW6YQ='], ['fooba', 'MZXW6YTB']]) {
      assert.equal(base32(Buffer.from(input!)), out);
    }
  });

  it('refuses forms a kind does not have, without showing the value', () => {
    assert.throws(() => renderSecret('pw', ':crt', lookup), (e: SecretsError) => e.code === 'SECRET_RENDER' && !e.message.includes('foobar'));
    assert.throws(() => renderSecret('leaf_key', ':chain', lookup), /SCONE::leaf_key:chain/);
    assert.throws(() => renderSecret('missing', '', lookup), /not available/);
  });
});
