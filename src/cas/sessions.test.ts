import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generatePrivateKey, issueCertificate, pemEncode } from '../secrets/index.js';
import { renderConfig } from './config.js';
import type { CasError } from './errors.js';
import { identityFromPem } from './identity-of.js';
import { readSession, writeSession } from './sessions.js';
import { resolveRelative } from './secret-view.js';
import { tempStore } from './test-store.js';

const { store, ctx } = tempStore('veil-sessions-');
const key = generatePrivateKey();
const me = identityFromPem(
  pemEncode(
    'CERTIFICATE',
    issueCertificate({
      subjectKey: key,
      commonName: 'me',
      isCa: false,
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 864e5),
    }),
  ),
);

const importer = (from: string) =>
  [
    'name: app',
    'services:',
    '  - name: s',
    '    image_name: i',
    '    command: run --pw=$$SCONE::pw$$',
    '    environment: {KEY: "$$SCONE::cert:privatekey$$"}',
    'images:',
    '  - name: i',
    '    injection_files:',
    '      - {path: /tls/ca.crt, content: "$$SCONE::cert:chain$$", permission: 0600}',
    'secrets:',
    `  - {name: pw, import: {session: ${from}, secret: pw}}`,
    `  - {name: cert, import: {session: ${from}, secret: cert}}`,
    '',
  ].join('\n');

describe('imports are resolved when used', () => {
  it('lets a session import from one that does not exist yet, and fails naming both when used', async () => {
    await writeSession(ctx, importer('lib'), me);
    await assert.rejects(
      () => renderConfig(store, 'app', 's'),
      (e: CasError) => e.code === 'CAS_IMPORT_DENIED' && /'app'/.test(e.message) && /'lib'/.test(e.message),
    );
  });

  it('fails naming both sessions when the exporter does not export to the importer, alike for a missing one', async () => {
    const messageOf = async () => {
      try {
        await renderConfig(store, 'app', 's');
      } catch (e) {
        return (e as CasError).message;
      }
      return '';
    };
    const missing = await messageOf();
    await writeSession(ctx, 'name: lib\nsecrets:\n  - {name: pw, kind: ascii, export: {session: someone-else}}\n', me);
    // An attesting service may not learn which sessions exist: one answer for "missing" and "not exported".
    assert.equal(await messageOf(), missing);
    assert.match(missing, /session 'app' cannot import secret 'pw' from session 'lib': it does not exist there/);
  });

  it('renders imported secrets, a certificate key only when the key is exported too', async () => {
    const hash = (await readSession(ctx, 'lib', undefined, me)).hash;
    const lib = (exportKey: boolean) =>
      [
        'name: lib',
        `predecessor: ${hash}`,
        'secrets:',
        '  - {name: pw, kind: ascii, value: "p@ss", export: [{session: app}]}',
        '  - {name: ca_key, kind: private-key}',
        '  - {name: ca, kind: x509-ca, private_key: ca_key}',
        `  - {name: cert_key, kind: private-key${exportKey ? ', export: [{session: app}]' : ''}}`,
        '  - {name: cert, kind: x509, private_key: cert_key, issuer: ca, export: [{session: app}]}',
        '',
      ].join('\n');
    const h2 = (await writeSession(ctx, lib(false), me)).hash;
    await assert.rejects(() => renderConfig(store, 'app', 's'), /cannot import secret 'cert_key' from session 'lib'/);
    await writeSession(ctx, lib(true).replace(hash, h2), me);
    const config = await renderConfig(store, 'app', 's');
    assert.deepEqual(config.command, ['run', '--pw=p@ss']);
    assert.match(config.environment['KEY']!, /BEGIN PRIVATE KEY/);
    assert.match(config.injectionFiles[0]!.content.toString(), /BEGIN CERTIFICATE/);
    assert.equal(config.injectionFiles[0]!.mode, 0o600);
  });

  it('signs with an imported CA only when its key is exported too', async () => {
    const ca = (exportKey: boolean, name: string) =>
      `name: ${name}\nsecrets:\n  - {name: ca_key, kind: private-key${exportKey ? ', export: [{session: leafy}]' : ''}}\n  - {name: ca, kind: x509-ca, private_key: ca_key, export: [{session: leafy}]}\n`;
    const leaf = (from: string) =>
      `name: leafy\nsecrets:\n  - {name: k, kind: private-key}\n  - {name: their_ca, import: {session: ${from}, secret: ca}}\n  - {name: mine, kind: x509, private_key: k, issuer: their_ca}\n`;
    await writeSession(ctx, ca(false, 'ca-closed'), me);
    await assert.rejects(
      writeSession(ctx, leaf('ca-closed'), me),
      (e: CasError) => e.code === 'CAS_IMPORT_DENIED' && /'ca-closed' does not export it to 'leafy'/.test(e.message),
    );
    await writeSession(ctx, ca(true, 'ca-open'), me);
    assert.equal((await writeSession(ctx, leaf('ca-open'), me)).created, true);
  });

  it('resolves namespace exports and relative session paths', async () => {
    assert.equal(resolveRelative('ns/a', '../b'), 'ns/b');
    assert.equal(resolveRelative('ns/a', './c'), 'ns/a/c');
    await writeSession(ctx, 'name: ns\n', me);
    await writeSession(
      ctx,
      'name: ns/lib\nsecrets:\n  - {name: pw, kind: ascii, export: [{namespace: ns}]}\n  - {name: cert, kind: x509, private_key: k}\n  - {name: k, kind: private-key}\n',
      me,
    );
    await writeSession(
      ctx,
      importer('../lib')
        .replace('name: app', 'name: ns/app')
        .replace(/cert:privatekey/, 'pw')
        .replace(/\$\$SCONE::cert:chain\$\$/, 'x'),
      me,
    );
    assert.deepEqual((await renderConfig(store, 'ns/app', 's')).command.length, 2);
  });
});

describe('concurrent writes', () => {
  it('two uploads create the same session while their secrets are generated: one lands, the other is stale', async () => {
    const text =
      'name: raced\nsecrets:\n  - {name: k, kind: private-key}\n  - {name: c, kind: x509-ca, private_key: k}\n';
    const results = await Promise.allSettled([writeSession(ctx, text, me), writeSession(ctx, text, me)]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal((refused.reason as CasError).code, 'CAS_STALE_PREDECESSOR');
  });
});
