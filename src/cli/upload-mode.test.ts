import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startCas, type RunningCas } from '../cas/server.js';
import { readEnvelope } from '../encryption/index.js';
import { buildBundle, parseMeshManifest, parseServiceManifest, type ParsedMesh } from '../manifests/index.js';
import { CasClient } from './cas-client.js';
import type { CliError } from './errors.js';
import { loadIdentity } from './home.js';
import type { Io } from './io.js';
import { meshUpload, upEncryption } from './upload-mode.js';

const root = mkdtempSync(join(tmpdir(), 'veil-upload-mode-'));
const target = join(root, 'target');
const io: Io = {
  env: { VEIL_HOME: join(root, 'home') },
  out: () => {},
  err: () => {},
  readFile: () => '',
  untilSignal: () => new Promise(() => {}),
};

/** meshUpload against a CAS in this process, trusted by the mesh's cas_key as `veil apply` trusts it. */
describe('veil apply: cas[].mode decides how sessions reach the CAS', () => {
  let cas: RunningCas;
  let key = '';
  const mesh = (mode: string, extra = ''): ParsedMesh =>
    parseMeshManifest(
      `apiVersion: scone/5.8
kind: mesh
cas: [{name: cas, cas_url: "${cas.url}", cas_key: ${cas.identity.fingerprint}, mode: ${mode}${extra}}]
policy: {namespace: ns}
env: []
services: [{name: hello, image: repo/hello:1}]
`,
      'mesh.yaml',
      target,
    );
  const refused = (code: string, message: RegExp) => (err: CliError) => err.code === code && message.test(err.message);

  before(async () => {
    cas = await startCas({ host: '127.0.0.1', port: 0, dataDir: join(root, 'data'), logLevel: 'silent' });
    writeFileSync(join(root, 'app.py'), 'print("hello")\n');
    const service = `apiVersion: scone/5.8
kind: genservice
environment: {local: [{name: MODE, value: test}]}
build: {name: hello, kind: python, to: repo/hello:1, pwd: /python, command: python3 /python/app.py, copy: [app.py]}
`;
    buildBundle(parseServiceManifest(service, join(root, 'service.yaml'), root), {
      target,
      keysDir: join(root, 'keys'),
    });
  });
  after(async () => {
    await cas?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('EncryptedManifest: encrypts to the key the pinned CAS publishes', async () => {
    const upload = await meshUpload(mesh('EncryptedManifest'), { dryRun: false, cas: undefined }, io);
    try {
      assert.ok(upload.store && upload.encryption, 'an encrypted upload to the CAS');
      assert.equal(upload.encryption.only, false);
      const identity = await (upload.store as CasClient).identity();
      key = identity.session_encryption_key;
      const envelope = readEnvelope(await upload.encryption.encrypt('name: x\n'), 'envelope')!;
      assert.equal(envelope.recipient, identity.session_encryption_key_hash);
      assert.equal(envelope.cas_fingerprint, cas.identity.fingerprint);
    } finally {
      await upload.close();
    }
  });

  it('EncryptedManifest: a cas_encryption_key that is not the published one is refused, naming both', async () => {
    const wrong = 'ab'.repeat(32);
    await assert.rejects(
      meshUpload(mesh('EncryptedManifest', `, cas_encryption_key: "${wrong}"`), { dryRun: false, cas: undefined }, io),
      refused('CLI_ENCRYPTION_KEY_MISMATCH', new RegExp(`${wrong}.*${key}`)),
    );
    await assert.rejects(
      meshUpload(mesh('Upload', `, cas_encryption_key: "${wrong}"`), { dryRun: false, cas: undefined }, io),
      refused('CLI_ENCRYPTION_KEY_MISMATCH', new RegExp(wrong)),
      'a plain upload checks the key it is given too',
    );
    const right = await meshUpload(
      mesh('EncryptedOnly', `, cas_encryption_key: "${key}"`),
      { dryRun: false, cas: undefined },
      io,
    );
    assert.equal(right.encryption?.only, true);
    await right.close();
  });

  it('Upload is plain; NoUpload uploads nothing and says so', async () => {
    const plain = await meshUpload(mesh('Upload'), { dryRun: false, cas: undefined }, io);
    assert.ok(plain.store && !plain.encryption);
    await plain.close();
    const none = await meshUpload(mesh('NoUpload'), { dryRun: false, cas: undefined }, io);
    assert.ok(!none.store && !none.encryption);
    assert.match(none.note ?? '', /NoUpload: nothing was uploaded/);
  });

  it('--dry-run encrypts offline only with cas_encryption_key and cas_key; EncryptedOnly needs them', async () => {
    const offline = await meshUpload(
      mesh('EncryptedOnly', `, cas_encryption_key: "${key}"`),
      { dryRun: true, cas: undefined },
      io,
    );
    assert.ok(!offline.store && offline.encryption?.only);
    await assert.rejects(
      meshUpload(mesh('EncryptedOnly'), { dryRun: true, cas: undefined }, io),
      refused('CLI_USAGE', /EncryptedOnly with --dry-run needs cas_encryption_key and cas_key/),
    );
    const manifest = await meshUpload(mesh('EncryptedManifest'), { dryRun: true, cas: undefined }, io);
    assert.ok(!manifest.encryption);
    assert.match(manifest.note ?? '', /not encrypted/);
  });

  it('veil up: the same modes, NoUpload refused, an embedded CAS not held to cas_encryption_key', async () => {
    const published = async () => ({
      publicKey: Buffer.from(key, 'hex'),
      fingerprint: cas.identity.fingerprint,
      uploader: 'a'.repeat(64),
    });
    const wrong = `, cas_encryption_key: "${'ab'.repeat(32)}"`;
    assert.equal(await upEncryption(mesh('Upload'), published, true), undefined);
    assert.equal((await upEncryption(mesh('EncryptedOnly', wrong), published, false))?.only, true);
    await assert.rejects(upEncryption(mesh('EncryptedManifest', wrong), published, true), /CLI_ENCRYPTION|publishes/);
    await assert.rejects(upEncryption(mesh('NoUpload'), published, false), /NoUpload uploads nothing/);
  });

  it("takes the key only from a CAS whose GET /v1/identity names the pinned CA's fingerprint", async () => {
    const pin = { url: cas.url, caPem: cas.identity.caCertPem, fingerprint: 'e'.repeat(64) };
    const client = new CasClient(pin, loadIdentity(join(root, 'home')));
    try {
      await assert.rejects(client.identity(), refused('CLI_CAS_UNTRUSTED', /not the pinned e{64}/));
    } finally {
      await client.close();
    }
  });

  it("SignedManifest: each upload carries the CLI identity's signature, which a governed session demands", async () => {
    const signer = createPublicKey(loadIdentity(io.env['VEIL_HOME']!).keyPem).export({ type: 'spki', format: 'pem' });
    const name = `signed-${Date.now()}`;
    const governed = (n: number) =>
      `name: ${name}\nversion: "0.3"\naccess_policy:\n  read: [CREATOR]\n  update:\n    - signer: |\n` +
      `${String(signer).trimEnd().replace(/^/gm, '        ')}\nsecrets: [{name: s${n}, kind: ascii}]\n`;
    const signed = await meshUpload(mesh('SignedManifest'), { dryRun: false, cas: undefined }, io);
    const plain = await meshUpload(mesh('Upload'), { dryRun: false, cas: undefined }, io);
    try {
      const first = await signed.store!.postSession(governed(1));
      const update = (n: number) => `${governed(n)}predecessor: ${first.hash}\n`;
      await assert.rejects(plain.store!.postSession(update(2)), /CAS_SIGNATURES_MISSING/);
      assert.equal((await signed.store!.postSession(update(2))).status, 200);
    } finally {
      await signed.close();
      await plain.close();
    }
  });

  it('SignedManifest is refused by veil up, SignOnline by name', async () => {
    await assert.rejects(
      upEncryption(mesh('SignedManifest'), () => Promise.reject(new Error('not asked')), false),
      refused('CLI_UNSUPPORTED', /SignedManifest is not supported by veil up/),
    );
    await assert.rejects(
      meshUpload(mesh('SignOnline'), { dryRun: false, cas: undefined }, io),
      refused('CLI_UNSUPPORTED', /SignOnline is not supported by Veil/),
    );
  });
});
