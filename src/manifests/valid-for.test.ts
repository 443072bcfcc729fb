import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseSession } from '../policy/index.js';
import { generateSecretSet } from '../secrets/index.js';
import { applyMesh, buildBundle, parseMeshManifest, parseServiceManifest } from './index.js';

const root = mkdtempSync(join(tmpdir(), 'veil-valid-for-'));
after(() => rmSync(root, { recursive: true, force: true }));
writeFileSync(join(root, 'app.py'), 'print("hello")\n');
const target = join(root, 'target');
const keysDir = join(root, 'keys');

const service = `apiVersion: scone/5.8
kind: genservice
environment:
  local:
    - {name: MODE, value: test}
secrets:
  global:
    - {name: ca_key, kind: private-key}
    - {name: ca, kind: x509-ca, private_key: ca_key, valid_for: 59d}
    - {name: tls_key, kind: private-key}
    - {name: tls, kind: x509, private_key: tls_key, issuer: ca, dns: [hello], valid_for: "{{LIFETIME}}"}
build: {name: hello, kind: python, to: repo/hello:1, pwd: /python, command: python3 /python/app.py, copy: [app.py]}
`;

const mesh = `apiVersion: scone/5.8
kind: mesh
cas: [{name: cas, cas_url: "cas:8081"}]
policy: {namespace: ns}
env:
  - {name: LIFETIME, value: 20s}
services:
  - {name: hello, image: repo/hello:1}
`;

describe('valid_for from a service manifest', () => {
  it('reaches the generated session (mesh variables rendered) and the certificates issued from it', async () => {
    buildBundle(parseServiceManifest(service, join(root, 'service.yaml'), root), { target, keysDir });
    const uploaded: string[] = [];
    const postSession = async (text: string) => {
      uploaded.push(text);
      return { status: 201, hash: 'h' };
    };
    const store = { currentHash: async () => undefined, postSession };
    await applyMesh(parseMeshManifest(mesh, 'mesh.yaml', target), { target, keysDir, mode: 'debug', store });
    const session = parseSession(uploaded.find((t) => t.includes('ns/hello'))!);
    const validFor = new Map(session.secrets!.map((s) => [s.name, 'valid_for' in s ? s.valid_for : undefined]));
    assert.deepEqual([validFor.get('ca'), validFor.get('tls')], ['59d', '20s']);
    const now = new Date();
    const secrets = await generateSecretSet(session.secrets!, undefined, { now });
    const lifetime = (name: string) => {
      const cert = new X509Certificate(Buffer.from((secrets.get(name) as { value: string }).value, 'base64'));
      return (Date.parse(cert.validTo) - now.getTime()) / 1000;
    };
    assert.ok(Math.abs(lifetime('tls') - 20) <= 1, String(lifetime('tls')));
    assert.ok(Math.abs(lifetime('ca') - 59 * 86400) <= 1, String(lifetime('ca')));
  });
});
