import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { connect, createServer } from 'node:tls';
import { pemEncode } from './encodings.js';
import type { SecretsError } from './errors.js';
import { generateSecretSet } from './generate.js';
import { renderSecret } from './render.js';
import { openssl, scratch } from './testkit.js';
import type { SecretLookup, SecretSpec, StoredSecret } from './types.js';

const { file } = scratch();
const now = new Date();

describe('renderSecret: every suffix', async () => {
  const values = await generateSecretSet(
    [
      { name: 'ca_key', kind: 'private-key' },
      { name: 'ca', kind: 'x509-ca', private_key: 'ca_key' },
      { name: 'mid_key', kind: 'private-key' },
      { name: 'mid', kind: 'x509-ca', private_key: 'mid_key', issuer: 'ca' },
      { name: 'leaf_key', kind: 'private-key' },
      { name: 'leaf', kind: 'x509', private_key: 'leaf_key', issuer: 'mid' },
      { name: 'bin', kind: 'binary', value: '666f6f626172' },
      { name: 'pw', kind: 'ascii', value: 'foobar' },
    ],
    undefined,
    { now },
  );
  const lookup: SecretLookup = (n) => values.get(n);
  const der = (n: string) => Buffer.from(values.get(n)!.value, 'base64');
  const pem = (n: string) => pemEncode('CERTIFICATE', der(n));
  const keyPem = (n: string) => pemEncode('PRIVATE KEY', der(n));

  it('certificates: the certificate, its key, and both chains', () => {
    for (const s of ['', '.crt', ':crt', ':crt:pem']) assert.equal(renderSecret('leaf', s, lookup), pem('leaf'), s);
    assert.deepEqual(renderSecret('leaf', ':crt:der', lookup), der('leaf'));
    assert.equal(
      renderSecret('leaf', ':chain', lookup),
      pem('mid') + pem('ca'),
      'direct issuer up to the root, without itself',
    );
    assert.equal(
      renderSecret('leaf', '.chain', lookup),
      pem('ca') + pem('mid') + pem('leaf'),
      'legacy: root first, with itself',
    );
    assert.equal(renderSecret('ca', '.chain', lookup), pem('ca'), 'a self-signed CA is its own legacy chain');
    assert.equal(renderSecret('ca', ':chain', lookup), '');
    for (const s of ['.key', ':privatekey', ':privatekey:pem', ':privatekey:pkcs8:pem'])
      assert.equal(renderSecret('leaf', s, lookup), keyPem('leaf_key'), s);
    for (const s of [':privatekey:der', ':privatekey:pkcs8:der'])
      assert.deepEqual(renderSecret('leaf', s, lookup), der('leaf_key'), s);
  });

  it('the legacy chain is what openssl verify takes as CA file', () => {
    const chain = file('chain.pem', renderSecret('mid', '.chain', lookup) as string);
    assert.match(
      openssl('verify', '-CAfile', chain, file('leaf.pem', renderSecret('leaf', ':crt', lookup) as string)),
      /OK/,
    );
  });

  it('private keys: PEM and DER PKCS#8', () => {
    for (const s of ['', ':pem', ':pkcs8:pem'])
      assert.equal(renderSecret('leaf_key', s, lookup), keyPem('leaf_key'), s);
    for (const s of [':der', ':pkcs8:der']) assert.deepEqual(renderSecret('leaf_key', s, lookup), der('leaf_key'), s);
    openssl('pkey', '-in', file('k.pem', renderSecret('leaf_key', '', lookup) as string), '-noout');
  });

  it('binary and ascii: raw bytes and the RFC 4648 encodings', () => {
    assert.deepEqual(renderSecret('bin', '', lookup), Buffer.from('foobar'));
    assert.deepEqual(renderSecret('bin', ':bin', lookup), Buffer.from('foobar'));
    assert.equal(renderSecret('pw', '', lookup), 'foobar');
    assert.deepEqual(renderSecret('pw', ':bin', lookup), Buffer.from('foobar'));
    const forms: Array<[string, string]> = [
      [':hex', '666f6f626172'],
      ['.hex', '666f6f626172'],
      [':base64', 'Zm9vYmFy'],
      [':base64url', 'Zm9vYmFy'],
      [':base32', 'MZXW6YTBOI======'],
      [':base32nopad', 'MZXW6YTBOI'],
    ];
    for (const [suffix, out] of forms) {
      assert.equal(renderSecret('bin', suffix, lookup), out, `bin${suffix}`);
      assert.equal(renderSecret('pw', suffix, lookup), out, `pw${suffix}`);
    }
  });

  it('refuses forms a kind does not have, naming secret and suffix but not the value', () => {
    const cases: Array<[string, string]> = [
      ['pw', ':crt'],
      ['bin', ':pem'],
      ['leaf_key', ':chain'],
      ['leaf_key', ':hex'],
      ['leaf', ':hex'],
      ['leaf', ':pem'],
      ['ca', ':nonsense'],
    ];
    for (const [name, suffix] of cases) {
      assert.throws(
        () => renderSecret(name, suffix, lookup),
        (e: SecretsError) =>
          e.code === 'SECRET_RENDER' &&
          e.message.includes(`$$SCONE::${name}${suffix}$$`) &&
          !e.message.includes('foobar'),
        `${name}${suffix}`,
      );
    }
    assert.throws(() => renderSecret('missing', '', lookup), /'missing' is not available/);
    const keyless = new Map(values);
    keyless.delete('leaf_key');
    assert.throws(() => renderSecret('leaf', '.key', (n) => keyless.get(n)), /no private key available/);
    assert.throws(
      () => renderSecret('leaf', ':chain', (n) => (n === 'mid' ? undefined : values.get(n))),
      /issuer 'mid' that is not available/,
    );
  });
});

describe('the flask/redis policies (reference §2.3): imports across sessions, mutual TLS', async () => {
  const redis = await generateSecretSet(
    [
      { name: 'redis_key', kind: 'private-key' },
      { name: 'redis', kind: 'x509', private_key: 'redis_key', issuer: 'redis_ca_cert', dns: ['redis'] },
      { name: 'redis_client_key', kind: 'private-key' },
      { name: 'redis_client_cert', kind: 'x509', issuer: 'redis_ca_cert', private_key: 'redis_client_key' },
      { name: 'redis_ca_key', kind: 'private-key' },
      { name: 'redis_ca_cert', kind: 'x509-ca', private_key: 'redis_ca_key' },
    ],
    undefined,
    { now },
  );
  const imports = ['redis_client_key', 'redis_client_cert', 'redis_ca_cert'];
  const flaskSpecs: SecretSpec[] = [
    { name: 'api_ca_key', kind: 'private-key' },
    { name: 'api_ca_cert', kind: 'x509-ca', private_key: 'api_ca_key' },
    { name: 'flask_key', kind: 'private-key' },
    { name: 'flask', kind: 'x509', private_key: 'flask_key', issuer: 'api_ca_cert', dns: ['api'] },
    ...imports.map((name) => ({ name, import: { session: 'redis', secret: name } })),
  ];
  // As the CAS resolves imports: the exporter's value, with its key and issuer names qualified by its session.
  const qualified = (s: StoredSecret): StoredSecret =>
    s.kind === 'x509' || s.kind === 'x509-ca'
      ? {
          ...s,
          ...(s.privateKey ? { privateKey: `redis::${s.privateKey}` } : {}),
          ...(s.issuer ? { issuer: `redis::${s.issuer}` } : {}),
        }
      : s;
  const resolveImport = (name: string) => (imports.includes(name) ? qualified(redis.get(name)!) : undefined);
  const flask = await generateSecretSet(flaskSpecs, undefined, { now, resolveImport });
  const flaskLookup: SecretLookup = (n) =>
    n.startsWith('redis::') ? redis.get(n.slice(7)) : (resolveImport(n) ?? flask.get(n));
  const redisLookup: SecretLookup = (n) => redis.get(n);
  const render = (lookup: SecretLookup, placeholder: string) => {
    const [, name, suffix] = /^(.+?)((?:\.crt|\.key|\.chain)?)$/.exec(placeholder)!;
    return renderSecret(name!, suffix!, lookup) as string;
  };

  it('renders the injection files of both policies', () => {
    const files = [
      'flask.crt',
      'flask.key',
      'redis_ca_cert.chain',
      'redis_client_cert.crt',
      'redis_client_cert.key',
    ].map((p) => render(flaskLookup, p));
    assert.ok(files.every((f) => f.startsWith('-----BEGIN')));
    assert.equal(files[2], render(redisLookup, 'redis_ca_cert.chain'), "the imported CA's chain is the exporter's");
    assert.equal(
      files[4],
      render(redisLookup, 'redis_client_cert.key'),
      'an imported certificate brings its exported key',
    );
    assert.match(
      openssl(
        'verify',
        '-CAfile',
        file('api-ca.pem', render(flaskLookup, 'api_ca_cert.chain')),
        file('flask.pem', files[0]!),
      ),
      /OK/,
    );
  });

  it('the flask client and the redis server authenticate each other with the rendered files', async () => {
    const server = createServer(
      {
        cert: render(redisLookup, 'redis.crt'),
        key: render(redisLookup, 'redis.key'),
        ca: render(redisLookup, 'redis_ca_cert.chain'),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (socket) => socket.end(`hello ${socket.getPeerCertificate().subject.CN}`),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const socket = connect({
        host: '127.0.0.1',
        port: (server.address() as AddressInfo).port,
        servername: 'redis',
        ca: render(flaskLookup, 'redis_ca_cert.chain'),
        cert: render(flaskLookup, 'redis_client_cert.crt'),
        key: render(flaskLookup, 'redis_client_cert.key'),
      });
      let reply = '';
      socket.on('data', (d: Buffer) => (reply += d.toString()));
      await once(socket, 'end');
      assert.equal(reply, 'hello redis_client_cert');
    } finally {
      server.close();
    }
  });
});
