import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, startCas, tempDir, veil, type CasProcess } from './harness.js';

const SECRET = `explicit-${randomBytes(6).toString('hex')}`;
const service = (name: string, image: string, secrets = '') => `apiVersion: scone/5.8
kind: genservice
environment: {local: [{name: MODE, value: test}]}
${secrets}build: {name: ${name}, kind: python, to: ${image}, pwd: /python, command: python3 /python/app.py,
  copy: [app.py]}
`;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)],
  );
}

/**
 * The tutorial's mesh (testdata/scone/upload/mesh.yaml, mode EncryptedManifest with cas_encryption_key) applied
 * with `veil apply` against a real `veil cas serve`: its request log (method and URL only) shows on which route
 * each upload arrived; the other modes change what is uploaded and what is written under target/.
 */
describe('veil apply -f mesh.yaml: cas[].mode', () => {
  const dir = tempDir('veil-upload-modes-');
  const env = { VEIL_HOME: join(dir.path, 'home') };
  let cas: CasProcess;
  let key = '';

  const mesh = (namespace: string, mode: string, encryptionKey = key) => {
    const vars: Record<string, string> = {
      CAS_URL: cas.url,
      CAS_KEY: cas.fingerprint,
      CAS_SESSION_ENCRYPTION_KEY: encryptionKey,
      APP_NAMESPACE: namespace,
      RELEASE: 'pythonapp',
      NAMESPACE: 'default',
      APP_IMAGE_REPO: 'veil-test',
      SCONECTL_REPO: 'veil-test',
      VERSION: 'latest',
    };
    const fixture = readFileSync(join(ROOT, 'testdata', 'scone', 'upload', 'mesh.yaml'), 'utf8');
    const text = fixture
      .replace(/\$\{(\w+)\}|\$(\w+)/g, (m, braced?: string, bare?: string) => vars[(braced ?? bare)!] ?? m)
      .replace('mode: EncryptedManifest', `mode: ${mode}`);
    const file = join(dir.path, `mesh-${namespace}.yaml`);
    writeFileSync(file, text);
    return file;
  };
  const apply = (file: string, target: string, extra: string[] = []) =>
    veil(['apply', '-f', file, '-t', join(dir.path, target), ...extra], env);
  const uploads = () => cas.log().match(/"method":"(POST|PUT)","url":"[^"]*"/g) ?? [];

  before(async () => {
    cas = await startCas(join(dir.path, 'data'), dir.path, ['--log-level', 'info']);
    writeFileSync(join(dir.path, 'app.py'), 'print("hello")\n');
    const secrets = `secrets:\n  global:\n    - {name: pw, kind: ascii, value: "${SECRET}"}\n`;
    writeFileSync(join(dir.path, 'flask.yaml'), service('flask', 'veil-test/python_flask_redis:latest', secrets));
    writeFileSync(join(dir.path, 'redis.yaml'), service('redis', 'veil-test/redis:latest'));
    for (const target of ['t1', 't2', 't3', 't4']) {
      for (const svc of ['flask', 'redis']) {
        const r = await veil(
          ['apply', '-f', join(dir.path, `${svc}.yaml`), '--no-image', '-t', join(dir.path, target)],
          env,
        );
        assert.equal(r.code, 0, r.stderr);
      }
    }
    const attest = await veil(['cas', 'attest', cas.url, '-c', cas.fingerprint], env);
    assert.equal(attest.code, 0, attest.stderr);
  });
  after(async () => {
    await cas?.stop();
    dir.cleanup();
  });

  it('show-identification prints the CAS key and the session-encryption key', async () => {
    const c = await veil(['cas', 'show-identification', '-c'], env);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout.trim(), cas.fingerprint);
    const k = await veil(['cas', 'show-identification', '--session-encryption-key'], env);
    key = k.stdout.trim();
    assert.match(key, /^[0-9a-f]{64}$/);
    const s = await veil(['cas', 'show-identification', '-s'], env);
    assert.match(s.stderr, /-s \(the CAS software key\) is not supported by Veil.*CLI_UNSUPPORTED/s);
  });

  it('EncryptedManifest: every session arrives at PUT /v1/encrypted_sessions, none in plaintext', async () => {
    const before = uploads().length;
    const r = await apply(mesh('enc-ns', 'EncryptedManifest'), 't1');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /session enc-ns\/flask: created \(hash [0-9a-f]{64}\), encrypted to the CAS/);
    const sent = uploads().slice(before);
    assert.equal(sent.length, 3, sent.join('\n'));
    for (const line of sent) assert.equal(line, '"method":"PUT","url":"/v1/encrypted_sessions"');
    const read = await veil(['session', 'read', 'enc-ns/flask'], env);
    assert.equal(read.code, 0, read.stderr);
    assert.match(read.stdout, /name: pw/);
    assert.ok(!cas.log().includes(SECRET));
    // Applied again: updates, each with the CAS's current hash inside the envelope.
    const again = await apply(mesh('enc-ns', 'EncryptedManifest'), 't1');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /session enc-ns\/flask: updated/);
    assert.ok(existsSync(join(dir.path, 't1', 'policies', 'enc-ns', 'flask.encrypted.json')));
  });

  it('EncryptedManifest: a cas_encryption_key other than the CAS publishes is refused, naming both', async () => {
    const before = uploads().length;
    const wrong = 'ab'.repeat(32);
    const r = await apply(mesh('enc-wrong', 'EncryptedManifest', wrong), 't2');
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`cas_encryption_key is ${wrong}.*publishes session-encryption key ${key}`));
    assert.match(r.stderr, /CLI_ENCRYPTION_KEY_MISMATCH/);
    assert.equal(uploads().length, before, 'nothing uploaded');
  });

  it('EncryptedOnly: encrypted upload, and no plaintext policy under target/', async () => {
    const r = await apply(mesh('only-ns', 'EncryptedOnly'), 't3');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /no plaintext policy/);
    const policies = filesUnder(join(dir.path, 't3', 'policies'));
    assert.ok(policies.length === 3 && policies.every((f) => f.endsWith('.encrypted.json')), policies.join());
    for (const f of filesUnder(join(dir.path, 't3'))) {
      const text = readFileSync(f, 'latin1');
      assert.ok(!text.includes(SECRET), `${f} holds the secret value`);
      if (f.includes(`${join('t3', 'policies')}`)) assert.ok(!text.includes('only-ns/flask'), `${f} is plaintext`);
    }
    assert.equal((await veil(['session', 'read', 'only-ns/flask'], env)).code, 0);
  });

  it('NoUpload: the policies are written and nothing is uploaded, as the output says', async () => {
    const before = uploads().length;
    const r = await apply(mesh('none-ns', 'NoUpload'), 't4');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /NoUpload: nothing was uploaded/);
    assert.equal(uploads().length, before);
    assert.ok(existsSync(join(dir.path, 't4', 'policies', 'none-ns', 'flask.yaml')));
    assert.match((await veil(['session', 'read', 'none-ns/flask'], env)).stderr, /CAS_NOT_FOUND/);
  });

  it('SignedManifest uploads (signed by the CLI identity); SignOnline is refused by name', async () => {
    const signed = await apply(mesh('sig-ns', 'SignedManifest'), 't4');
    assert.equal(signed.code, 0, signed.stderr);
    const online = await apply(mesh('sig-ns', 'SignOnline'), 't4');
    assert.match(online.stderr, /cas\[0\]\.mode SignOnline is not supported by Veil/);
  });

  it('veil session encrypt --key (offline) and create --encrypt upload encrypted', async () => {
    const file = join(dir.path, 'offline.yaml');
    writeFileSync(file, `name: offline-${randomBytes(3).toString('hex')}\nversion: "0.3"\n`);
    const out = join(dir.path, 'offline.json');
    const enc = await veil(['session', 'encrypt', file, '--key', key, '--cas-key', cas.fingerprint, '-o', out], env);
    assert.equal(enc.code, 0, enc.stderr);
    const before = uploads().length;
    const created = await veil(['session', 'create', '-f', out], env);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^[0-9a-f]{64}\n$/);
    assert.deepEqual(uploads().slice(before), ['"method":"PUT","url":"/v1/encrypted_sessions"']);
    const plain = join(dir.path, 'online.yaml');
    writeFileSync(plain, `name: online-${randomBytes(3).toString('hex')}\nversion: "0.3"\n`);
    const sent = uploads().length;
    const online = await veil(['session', 'create', '-f', plain, '--encrypt'], env);
    assert.equal(online.code, 0, online.stderr);
    assert.deepEqual(uploads().slice(sent), ['"method":"PUT","url":"/v1/encrypted_sessions"']);
    const missing = await veil(['session', 'encrypt', file, '--key', key], env);
    assert.match(missing.stderr, /--key needs --cas-key/);
  });
});
