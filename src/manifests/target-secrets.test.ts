import assert from 'node:assert/strict';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseSession } from '../policy/index.js';
import { generatePrivateKey, pemEncode } from '../secrets/index.js';
import { ManifestError, applyMesh, buildBundle, parseMeshManifest, parseServiceManifest } from './index.js';

const root = mkdtempSync(join(tmpdir(), 'veil-target-secrets-'));
after(() => rmSync(root, { recursive: true, force: true }));
writeFileSync(join(root, 'app.py'), 'print("hello")\n');
const target = join(root, 'target');
const keysDir = join(root, 'keys');

const ASCII = 'explicit-ascii-Zq7!';
const BINARY = 'deadbeef0badc0de';
const KEY_PEM = pemEncode('PRIVATE KEY', generatePrivateKey().pkcs8);

const service = `apiVersion: scone/5.8
kind: genservice
environment:
  local:
    - {name: MODE, value: test}
secrets:
  global:
    - {name: pw, kind: ascii, value: "${ASCII}"}
    - {name: bin, kind: binary, value: "${BINARY}"}
    - {name: key, kind: private-key, value: ${JSON.stringify(KEY_PEM)}}
    - {name: generated, kind: ascii}
build: {name: hello, kind: python, to: repo/hello:1, pwd: /python, command: python3 /python/app.py, copy: [app.py]}
`;

const mesh = `apiVersion: scone/5.8
kind: mesh
cas: [{name: cas, cas_url: "cas:8081"}]
policy: {namespace: ns}
env:
  - {name: X, value: y}
services:
  - {name: hello, image: repo/hello:1}
`;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)],
  );
}

describe('veil apply writes nothing secret under target/', () => {
  it('keeps explicit values and the shield key out of every file, and in the uploaded policy only', async () => {
    const parsed = parseServiceManifest(service, join(root, 'service.yaml'), root);
    const { bundle } = buildBundle(parsed, { target, keysDir });
    buildBundle(parsed, { target, keysDir }); // again: the same values file
    const uploaded: string[] = [];
    const postSession = async (text: string) => {
      uploaded.push(text);
      return { status: 201, hash: 'h' };
    };
    const store = { currentHash: async () => undefined, postSession };
    await applyMesh(parseMeshManifest(mesh, 'mesh.yaml', target), { target, keysDir, mode: 'debug', store });
    const shieldKey = readFileSync(join(keysDir, `${bundle.shield!.tag}.key`), 'utf8').trim();
    const buildSecret = readFileSync(join(keysDir, 'build-secret'), 'utf8').trim();
    const secrets = [ASCII, BINARY, KEY_PEM.split('\n')[1]!, shieldKey, buildSecret];
    const files = filesUnder(target);
    assert.ok(
      files.some((f) => f.endsWith('bundle.json')),
      files.join('\n'),
    );
    assert.ok(
      files.some((f) => f.endsWith('ns/hello.yaml')),
      files.join('\n'),
    );
    for (const file of files) {
      const text = readFileSync(file).toString('latin1');
      for (const secret of secrets) assert.ok(!text.includes(secret), `${file} holds a secret`);
    }
    const session = parseSession(uploaded.find((t) => t.includes('ns/hello'))!);
    const byName = new Map(session.secrets!.map((s) => [s.name, s.value]));
    assert.equal(byName.get('pw'), ASCII);
    assert.equal(byName.get('bin'), BINARY);
    assert.equal(byName.get('key'), KEY_PEM);
    assert.equal(byName.get('generated'), undefined);
    const valueFiles = readdirSync(keysDir).filter((f) => f.startsWith('values-'));
    assert.equal(valueFiles.length, 1);
    assert.equal(statSync(join(keysDir, valueFiles[0]!)).mode & 0o777, 0o600);
  });

  it('says what to do when the values are not in the key directory', async () => {
    const elsewhere = join(root, 'other-keys');
    mkdirSync(elsewhere);
    for (const f of readdirSync(keysDir).filter((n) => n.endsWith('.key'))) {
      copyFileSync(join(keysDir, f), join(elsewhere, f));
    }
    const parsed = parseMeshManifest(mesh, 'mesh.yaml', target);
    const applying = applyMesh(parsed, { target, keysDir: elsewhere, mode: 'debug' });
    await assert.rejects(
      applying,
      (e: ManifestError) => e instanceof ManifestError && /explicit secret values of service 'hello'/.test(e.message),
    );
  });

  it('refuses __proto__ as a variable or secret name (it would vanish from the environment)', () => {
    const variable = service.replace('name: MODE', 'name: __proto__');
    assert.throws(() => parseServiceManifest(variable, 'service.yaml', root), /__proto__/);
    const secret = service.replace('name: generated', 'name: __proto__');
    assert.throws(() => parseServiceManifest(secret, 'service.yaml', root), /__proto__/);
  });
});
