import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { pemEncode } from './encodings.js';
import { SecretsError, type SecretsErrorCode } from './errors.js';
import { generateSecretSet, type GenerateOptions } from './generate.js';
import { generatePrivateKey, publicKeySpki } from './keys.js';
import { openssl, scratch } from './testkit.js';
import type { SecretSpec, StoredSecret, StoredSecretWithKey } from './types.js';
import { randomAscii } from './values.js';
import { issueCertificate } from './x509.js';

const { certFile } = scratch();
const now = new Date();
const opts: GenerateOptions = { now };
const value = (m: Map<string, StoredSecret>, name: string) => m.get(name)!.value;
const der = (m: Map<string, StoredSecret>, name: string) => Buffer.from(value(m, name), 'base64');
const x509 = (m: Map<string, StoredSecret>, name: string) => new X509Certificate(der(m, name));
const fails =
  (code: SecretsErrorCode, ...names: string[]) =>
  (e: unknown) =>
    e instanceof SecretsError && e.code === code && names.every((n) => e.message.includes(`'${n}'`));

describe('generateSecretSet: generation', () => {
  const specs: SecretSpec[] = [
    {
      name: 'leaf',
      kind: 'x509',
      private_key: 'leaf_key',
      issuer: 'mid',
      dns: ['api'],
      san: ['ip:10.1.2.3'],
      endpoint: 'server',
      valid_for: '59d',
    },
    { name: 'mid', kind: 'x509-ca', private_key: 'mid_key', issuer: 'root' },
    { name: 'root', kind: 'x509-ca', private_key: 'root_key', common_name: 'Root CA' },
    { name: 'root_key', kind: 'private-key' },
    { name: 'mid_key', kind: 'private-key', key_type: 'P-384' },
    { name: 'leaf_key', kind: 'private-key', key_type: 'Ed25519' },
    { name: 'pw', kind: 'ascii' },
    { name: 'bin', kind: 'binary', size: 32 },
    { name: 'self', kind: 'x509', private_key: 'leaf_key', san: ['dns:self.local'] },
    { name: 'nameless', kind: 'x509', private_key: 'leaf_key', endpoint: 'client' },
  ];
  let set: Map<string, StoredSecret>;
  before(async () => {
    set = await generateSecretSet(specs, undefined, opts);
  });

  it('generates keys first, then CAs (issuers before what they sign), then certificates', () => {
    const order = [...set.keys()];
    assert.deepEqual(order.slice(0, 5).sort(), ['bin', 'leaf_key', 'mid_key', 'pw', 'root_key']);
    assert.ok(order.indexOf('root') < order.indexOf('mid') && order.indexOf('mid') < order.indexOf('leaf'));
    assert.equal(set.size, specs.length);
  });

  it('issues a chain openssl verifies, with the names, usage and lifetime asked for', () => {
    assert.match(
      openssl(
        'verify',
        '-CAfile',
        certFile('r.pem', der(set, 'root')),
        '-untrusted',
        certFile('m.pem', der(set, 'mid')),
        certFile('l.pem', der(set, 'leaf')),
      ),
      /OK/,
    );
    const leaf = x509(set, 'leaf');
    assert.equal(leaf.subject, 'CN=api', 'common_name defaults to the first dns name');
    assert.equal(leaf.subjectAltName, 'DNS:api, IP Address:10.1.2.3');
    assert.equal(Math.round((Date.parse(leaf.validTo) - now.getTime()) / 864e5), 59);
    assert.equal(x509(set, 'root').subject, 'CN=Root CA');
    assert.equal(x509(set, 'mid').subject, 'CN=mid', 'else the secret name');
    assert.equal(x509(set, 'self').subject, 'CN=self.local', 'san dns names count too');
    assert.ok(x509(set, 'self').verify(x509(set, 'self').publicKey), 'no issuer: self-signed');
    assert.equal(
      Math.round((Date.parse(x509(set, 'nameless').validTo) - now.getTime()) / 864e5),
      365,
      'one year by default',
    );
  });

  it('stores each certificate with its key and issuer names', () => {
    assert.deepEqual(
      { ...set.get('leaf'), value: '' },
      { kind: 'x509', value: '', privateKey: 'leaf_key', issuer: 'mid' },
    );
    assert.deepEqual({ ...set.get('root'), value: '' }, { kind: 'x509-ca', value: '', privateKey: 'root_key' });
    const key = set.get('mid_key');
    assert.ok(key?.kind === 'private-key' && key.keyType === 'P-384');
    assert.deepEqual(
      x509(set, 'leaf').publicKey.export({ type: 'spki', format: 'der' }),
      publicKeySpki(der(set, 'leaf_key')),
    );
  });

  it('ascii: size (default 20) printable characters without space; binary: size (default 20) bytes', async () => {
    assert.match(value(set, 'pw'), /^[\x21-\x7e]{20}$/);
    assert.match(value(set, 'bin'), /^[0-9a-f]{64}$/);
    assert.match(
      value(await generateSecretSet([{ name: 'b', kind: 'binary' }], undefined, opts), 'b'),
      /^[0-9a-f]{40}$/,
    );
    assert.equal(
      value(await generateSecretSet([{ name: 'a', kind: 'ascii', size: 7 }], undefined, opts), 'a').length,
      7,
    );
  });

  it('random ascii covers all 94 characters evenly', () => {
    const counts = new Map<string, number>();
    for (const ch of randomAscii(94 * 200)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    assert.equal(counts.size, 94);
    for (const [ch, n] of counts) assert.ok(ch >= '!' && ch <= '~' && n > 120 && n < 290, `${ch}: ${n}`);
  });
});

describe('generateSecretSet: explicit values', () => {
  const caKey = generatePrivateKey();
  const caPem = pemEncode(
    'CERTIFICATE',
    issueCertificate({
      subjectKey: caKey,
      commonName: 'theirs',
      isCa: true,
      notBefore: now,
      notAfter: new Date(now.getTime() + 864e5),
    }),
  );
  const sec1 = createPrivateKey({ key: caKey.pkcs8, format: 'der', type: 'pkcs8' })
    .export({ type: 'sec1', format: 'pem' })
    .toString();

  it('takes ascii as is, binary as hex, a key as PEM, a certificate as PEM that fits its key', async () => {
    const set = await generateSecretSet(
      [
        { name: 'a', kind: 'ascii', value: ' p@ss word ' },
        { name: 'b', kind: 'binary', value: 'DEADbeef' },
        { name: 'k', kind: 'private-key', value: sec1 },
        { name: 'ca', kind: 'x509-ca', value: caPem, private_key: 'k' },
        { name: 'leaf_key', kind: 'private-key' },
        { name: 'leaf', kind: 'x509', private_key: 'leaf_key', issuer: 'ca' },
      ],
      undefined,
      opts,
    );
    assert.equal(value(set, 'a'), ' p@ss word ');
    assert.equal(value(set, 'b'), 'deadbeef');
    assert.deepEqual(der(set, 'k'), caKey.pkcs8);
    assert.equal(pemEncode('CERTIFICATE', der(set, 'ca')), caPem);
    assert.ok(x509(set, 'leaf').verify(x509(set, 'ca').publicKey), 'an explicit CA with its key signs');
  });

  it('refuses values that are not what the kind needs, without echoing them', async () => {
    const cases: Array<[SecretSpec[], SecretsErrorCode]> = [
      [[{ name: 'b', kind: 'binary', value: 'c0ffee-secret' }], 'SECRET_INVALID_VALUE'],
      [[{ name: 'k', kind: 'private-key', value: 'c0ffee-secret' }], 'SECRET_INVALID_VALUE'],
      [[{ name: 'k', kind: 'private-key', value: sec1, key_type: 'Ed25519' }], 'SECRET_INVALID_VALUE'],
      [[{ name: 'c', kind: 'x509', value: 'c0ffee-secret' }], 'SECRET_INVALID_VALUE'],
      [
        [
          { name: 'k', kind: 'private-key' },
          { name: 'c', kind: 'x509', value: caPem, private_key: 'k' },
        ],
        'SECRET_INVALID_VALUE',
      ],
    ];
    for (const [specs, code] of cases) {
      const name = specs[specs.length - 1]!.name;
      const leaked = (e: SecretsError) =>
        ['c0ffee', caPem.split('\n')[1]!, sec1.split('\n')[1]!].some((v) => `${e.message} ${e.hint}`.includes(v));
      await assert.rejects(
        generateSecretSet(specs, undefined, opts),
        (e: SecretsError) => fails(code, name)(e) && !leaked(e),
        name,
      );
    }
  });

  it('refuses a non-CA certificate as x509-ca, and a certificate its issuer did not sign', async () => {
    const k = generatePrivateKey();
    const leafPem = pemEncode(
      'CERTIFICATE',
      issueCertificate({
        subjectKey: k,
        commonName: 'l',
        isCa: false,
        notBefore: now,
        notAfter: new Date(now.getTime() + 864e5),
      }),
    );
    await assert.rejects(
      generateSecretSet([{ name: 'c', kind: 'x509-ca', value: leafPem }], undefined, opts),
      /not a CA certificate/,
    );
    const specs: SecretSpec[] = [
      { name: 'ca_key', kind: 'private-key' },
      { name: 'ca', kind: 'x509-ca', private_key: 'ca_key' },
      { name: 'c', kind: 'x509', value: leafPem, issuer: 'ca' },
    ];
    await assert.rejects(generateSecretSet(specs, undefined, opts), /not signed by issuer 'ca'/);
  });
});

describe('generateSecretSet: update rules', () => {
  const v1: SecretSpec[] = [
    { name: 'pw', kind: 'ascii', size: 32 },
    { name: 'bin', kind: 'binary' },
    { name: 'kept_key', kind: 'private-key', migrate: true },
    { name: 'fresh_key', kind: 'private-key' },
    { name: 'ca', kind: 'x509-ca', private_key: 'fresh_key' },
    { name: 'cert', kind: 'x509', private_key: 'kept_key', issuer: 'ca' },
  ];
  let first: Map<string, StoredSecret>;
  before(async () => {
    first = await generateSecretSet(v1, undefined, opts);
  });
  const update = (v2: SecretSpec[]) => generateSecretSet(v2, { specs: v1, values: first }, opts);
  const change = (name: string, patch: Partial<SecretSpec>) =>
    v1.map((s) => (s.name === name ? { ...s, ...patch } : s));

  it('keeps ascii, binary and migrated keys; regenerates other keys and every certificate, consistently', async () => {
    const next = await update(v1);
    for (const name of ['pw', 'bin', 'kept_key']) assert.deepEqual(next.get(name), first.get(name), name);
    for (const name of ['fresh_key', 'ca', 'cert']) assert.notEqual(value(next, name), value(first, name), name);
    assert.ok(x509(next, 'cert').verify(x509(next, 'ca').publicKey), 're-signed by the new CA');
    assert.ok(!x509(next, 'cert').verify(x509(first, 'ca').publicKey));
    assert.deepEqual(
      x509(next, 'cert').publicKey.export({ type: 'spki', format: 'der' }),
      publicKeySpki(der(first, 'kept_key')),
      'for the kept key',
    );
  });

  it('regenerates ascii and binary when size or kind change', async () => {
    assert.equal(value(await update(change('pw', { size: 10 })), 'pw').length, 10);
    assert.notEqual(value(await update(change('bin', { size: 21 })), 'bin'), value(first, 'bin'));
    assert.notEqual(value(await update(change('bin', { kind: 'ascii' })), 'bin'), value(first, 'bin'));
    assert.deepEqual(
      (await update(change('bin', { size: 20 }))).get('bin'),
      first.get('bin'),
      'the default size is 20',
    );
  });

  it('keeps a private key only with migrate on both versions and the same key type', async () => {
    assert.notEqual(value(await update(change('kept_key', { migrate: false })), 'kept_key'), value(first, 'kept_key'));
    assert.notEqual(
      value(await update(change('kept_key', { key_type: 'P-384' })), 'kept_key'),
      value(first, 'kept_key'),
    );
    assert.notEqual(
      value(await update(change('fresh_key', { migrate: true })), 'fresh_key'),
      value(first, 'fresh_key'),
      'migrate on the new version only',
    );
  });

  it('an explicit value replaces a kept one', async () => {
    assert.equal(value(await update(change('pw', { value: 'given' })), 'pw'), 'given');
  });
});

describe('generateSecretSet: imports and dependencies', () => {
  let theirs: Map<string, StoredSecret>;
  let importedCa: StoredSecretWithKey;
  before(async () => {
    theirs = await generateSecretSet(
      [
        { name: 'ca_key', kind: 'private-key' },
        { name: 'ca', kind: 'x509-ca', private_key: 'ca_key' },
      ],
      undefined,
      opts,
    );
    importedCa = { ...theirs.get('ca')!, privateKey: 'other::ca_key' } as StoredSecretWithKey;
  });
  const specs: SecretSpec[] = [
    { name: 'k', kind: 'private-key' },
    { name: 'c', kind: 'x509', private_key: 'k', issuer: 'their_ca' },
    { name: 'their_ca', import: { session: 'other', secret: 'ca' } },
  ];

  it('signs with an imported CA whose key the resolver attaches, and does not store imports', async () => {
    const key = theirs.get('ca_key') as StoredSecretWithKey['key'];
    const set = await generateSecretSet(specs, undefined, {
      now,
      resolveImport: (n) => (n === 'their_ca' ? { ...importedCa, key } : undefined),
    });
    assert.ok(x509(set, 'c').verify(x509(theirs, 'ca').publicKey));
    const cert = set.get('c')!;
    assert.equal(cert.kind === 'x509' && cert.issuer, 'their_ca');
    assert.deepEqual([...set.keys()].sort(), ['c', 'k']);
  });

  it("or whose key the resolver finds under the CA's own key name", async () => {
    const resolve = (n: string) =>
      n === 'their_ca' ? importedCa : n === 'other::ca_key' ? theirs.get('ca_key') : undefined;
    assert.ok(
      x509(await generateSecretSet(specs, undefined, { now, resolveImport: resolve }), 'c').verify(
        x509(theirs, 'ca').publicKey,
      ),
    );
  });

  it('names the secret when an import cannot be had, or comes without the key it needs', async () => {
    await assert.rejects(generateSecretSet(specs, undefined, opts), fails('SECRET_IMPORT_MISSING', 'their_ca', 'c'));
    const withoutKey = (n: string) => (n === 'their_ca' ? importedCa : undefined);
    await assert.rejects(
      generateSecretSet(specs, undefined, { now, resolveImport: withoutKey }),
      fails('SECRET_IMPORT_MISSING', 'their_ca', 'c'),
    );
    const keyImported: SecretSpec[] = [
      { name: 'k', import: { session: 'other', secret: 'k' } },
      { name: 'c', kind: 'x509', private_key: 'k' },
    ];
    await assert.rejects(generateSecretSet(keyImported, undefined, opts), fails('SECRET_IMPORT_MISSING', 'k', 'c'));
    const resolved = await generateSecretSet(keyImported, undefined, {
      now,
      resolveImport: () => theirs.get('ca_key'),
    });
    assert.deepEqual(
      x509(resolved, 'c').publicKey.export({ type: 'spki', format: 'der' }),
      publicKeySpki(der(theirs, 'ca_key')),
    );
  });

  it('refuses missing, mistyped and circular references', async () => {
    const cases: Array<[SecretSpec[], SecretsErrorCode, string[]]> = [
      [[{ name: 'c', kind: 'x509' }], 'SECRET_DEPENDENCY', ['c']],
      [[{ name: 'c', kind: 'x509', private_key: 'nope' }], 'SECRET_DEPENDENCY', ['c', 'nope']],
      [
        [
          { name: 'pw', kind: 'ascii' },
          { name: 'c', kind: 'x509', private_key: 'pw' },
        ],
        'SECRET_DEPENDENCY',
        ['c', 'pw'],
      ],
      [
        [
          { name: 'k', kind: 'private-key' },
          { name: 'l', kind: 'x509', private_key: 'k' },
          { name: 'c', kind: 'x509', private_key: 'k', issuer: 'l' },
        ],
        'SECRET_DEPENDENCY',
        ['l', 'c'],
      ],
      [
        [
          { name: 'k', kind: 'private-key' },
          { name: 'a', kind: 'x509-ca', private_key: 'k', issuer: 'b' },
          { name: 'b', kind: 'x509-ca', private_key: 'k', issuer: 'a' },
        ],
        'SECRET_DEPENDENCY',
        ['a'],
      ],
      [
        [
          { name: 'x', kind: 'ascii' },
          { name: 'x', kind: 'binary' },
        ],
        'SECRET_DEPENDENCY',
        ['x'],
      ],
      [[{ name: 'x' }], 'SECRET_UNSUPPORTED', ['x']],
      [[{ name: 'x', kind: 'ascii', size: 0 }], 'SECRET_INVALID_VALUE', ['x']],
    ];
    for (const [specs, code, names] of cases)
      await assert.rejects(generateSecretSet(specs, undefined, opts), fails(code, ...names), JSON.stringify(specs));
  });

  it('leaves no unhandled rejection when a key fails after an earlier secret failed (keys start first)', async () => {
    const badKey: SecretSpec = { name: 'k', kind: 'private-key', key_type: 'P-521' as 'P-256' };
    const specs: SecretSpec[] = [{ name: 'a', kind: 'ascii', size: 0 }, badKey];
    await assert.rejects(generateSecretSet(specs, undefined, opts), fails('SECRET_INVALID_VALUE', 'a'));
    await new Promise((resolve) => setImmediate(resolve));
  });
});
