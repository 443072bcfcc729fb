import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { applyMesh, buildBundle, parseMeshManifest, parseServiceManifest, type UploadEncryption } from './index.js';

const root = mkdtempSync(join(tmpdir(), 'veil-apply-modes-'));
after(() => rmSync(root, { recursive: true, force: true }));
writeFileSync(join(root, 'app.py'), 'print("hello")\n');
const keysDir = join(root, 'keys');
const VALUE = 'explicit-value-Zq7!';

const service = `apiVersion: scone/5.8
kind: genservice
environment: {local: [{name: MODE, value: test}]}
secrets: {global: [{name: pw, kind: ascii, value: "${VALUE}"}]}
build: {name: hello, kind: python, to: repo/hello:1, pwd: /python, command: python3 /python/app.py, copy: [app.py]}
`;
const mesh = `apiVersion: scone/5.8
kind: mesh
cas: [{name: cas, cas_url: "cas:8081"}]
policy: {namespace: ns}
env: []
services: [{name: hello, image: repo/hello:1}]
`;

/** A stand-in for the CAS recording which route each upload took; "encryption" marks its input recognisably. */
function recorder() {
  const plain: string[] = [];
  const encrypted: string[] = [];
  const store = {
    currentHash: async (name: string) => (name === 'ns' ? 'a'.repeat(64) : undefined),
    postSession: async (text: string) => {
      plain.push(text);
      return { status: 201, hash: 'h' };
    },
    putEncryptedSession: async (envelope: string) => {
      encrypted.push(envelope);
      return { status: 201, hash: 'h' };
    },
  };
  return { plain, encrypted, store };
}
const encryption = (only: boolean): UploadEncryption => ({
  encrypt: async (text) => JSON.stringify({ sealed: Buffer.from(text).toString('base64') }),
  only,
});

function applied(target: string) {
  const parsed = parseServiceManifest(service, join(root, 'service.yaml'), root);
  buildBundle(parsed, { target, keysDir });
  return parseMeshManifest(mesh, 'mesh.yaml', target);
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)],
  );
}

describe('applyMesh: encrypted uploads (cas[].mode)', () => {
  it('EncryptedManifest: every session goes through the encryption to PUT, with its predecessor inside', async () => {
    const target = join(root, 't1');
    const { plain, encrypted, store } = recorder();
    const { sessions } = await applyMesh(applied(target), {
      target,
      keysDir,
      mode: 'debug',
      store,
      encryption: encryption(false),
    });
    assert.equal(plain.length, 0, 'nothing went in plaintext');
    assert.equal(encrypted.length, 2);
    const inner = encrypted.map((e) => Buffer.from(JSON.parse(e).sealed, 'base64').toString());
    assert.match(inner[0]!, /"predecessor":"a{64}"/);
    assert.match(inner[1]!, new RegExp(VALUE), 'the values reach the CAS, inside the envelope');
    assert.deepEqual(
      sessions.map((s) => [s.name, s.action, s.envelope]),
      [
        ['ns', 'updated', join('policies', 'ns.encrypted.json')],
        ['ns/hello', 'created', join('policies', 'ns', 'hello.encrypted.json')],
      ],
    );
    assert.ok(existsSync(join(target, 'policies', 'ns', 'hello.yaml')), 'the redacted policy is written');
  });

  it('EncryptedOnly: only envelopes under target/policies, and a plaintext policy from before is removed', async () => {
    const target = join(root, 't2');
    await applyMesh(applied(target), { target, keysDir, mode: 'debug' });
    assert.ok(existsSync(join(target, 'policies', 'ns', 'hello.yaml')));
    const { store } = recorder();
    await applyMesh(applied(target), { target, keysDir, mode: 'debug', store, encryption: encryption(true) });
    const policies = filesUnder(join(target, 'policies'));
    assert.deepEqual(policies.map((f) => f.slice(target.length + 1)).sort(), [
      join('policies', 'ns.encrypted.json'),
      join('policies', 'ns', 'hello.encrypted.json'),
    ]);
    for (const f of filesUnder(target)) assert.ok(!readFileSync(f, 'latin1').includes(VALUE), f);
  });

  it('without a CAS (--dry-run) the envelopes are still written, nothing is uploaded', async () => {
    const target = join(root, 't3');
    const { sessions } = await applyMesh(applied(target), {
      target,
      keysDir,
      mode: 'debug',
      encryption: encryption(true),
    });
    assert.ok(sessions.every((s) => s.action === 'written only' && s.envelope));
  });
});
