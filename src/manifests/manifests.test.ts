import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseSession } from '../policy/index.js';
import {
  type ManifestError,
  buildBundle,
  generateSessions,
  parseMeshManifest,
  parseServiceManifest,
  policyText,
} from './index.js';

const root = mkdtempSync(join(tmpdir(), 'veil-manifests-'));
after(() => rmSync(root, { recursive: true, force: true }));
writeFileSync(join(root, 'app.py'), 'print("hello")\n');

const service = (extra = '', build = '') => `apiVersion: scone/5.8
kind: genservice
environment:
  local:
    - name: PASSWORD
      value: $$SCONE::password$$
  global:
    - name: API_USER
    - name: LOG
      value: "{{LOG_LEVEL | default(value=\\"info\\")}}"
secrets:
  global:
    - name: password
      kind: ascii
      size: 12
    - name: literal
      kind: ascii
      value: "#NOPE!"
${extra}build:
  name: hello
  kind: python
  to: repo/hello:1
  pwd: /python
  command: python3 /python/app.py
  copy: [app.py]
${build}`;

function refused(text: string, code: string, ...patterns: RegExp[]): void {
  assert.throws(
    () => parseServiceManifest(text, 'service.yaml', root),
    (e: ManifestError) => {
      assert.equal(e.code, code, e.message);
      for (const p of patterns) assert.match(e.message, p);
      return true;
    },
  );
}

describe('service manifests', () => {
  it('accepts SCONE fields and refuses unknown ones with their line', () => {
    assert.equal(parseServiceManifest(service(), 'service.yaml', root).manifest.build.name, 'hello');
    refused(service('', '  tagz: x\n'), 'MANIFEST_SHAPE', /service\.yaml:26:3: build\.tagz: unknown field 'tagz'/);
    refused(
      service().replace('scone/5.8', 'scone/5.7'),
      'MANIFEST_SHAPE',
      /apiVersion: the VERSION must be 5\.8 or higher/,
    );
  });

  it('lists every broken reference at once', () => {
    const text = service('injection_files:\n  - path: /tls/x\n    content: $$SCONE::nope.crt$$\n').replace(
      'copy: [app.py]',
      'copy: [app.py, missing.py]',
    );
    refused(
      text,
      'MANIFEST_REFERENCE',
      /injection_files\[0\]\.content: \$\$SCONE::nope\.crt\$\$ names secret 'nope'/,
      /build\.copy\[1\]: 'missing\.py' does not exist/,
    );
  });

  it("checks secrets with the session language's rules, reported at the manifest's fields", () => {
    refused(
      service('').replace('      size: 12', '      size: 12\n      issuer: password'),
      'MANIFEST_REFERENCE',
      /secrets\.global\[0\]/,
    );
  });

  it('names what it does not support instead of ignoring it', () => {
    refused(
      service('', '  volumes: []\n'),
      'MANIFEST_UNSUPPORTED',
      /:26:3: build\.volumes: volumes is not supported by Veil/,
    );
    refused(
      service().replace('kind: python', 'kind: java'),
      'MANIFEST_UNSUPPORTED',
      /build\.kind 'java' is not supported by Veil/,
    );
  });
});

describe('mesh manifests', () => {
  const target = join(root, 'target');
  const keysDir = join(root, 'keys');
  const mesh = (env: string) => `apiVersion: scone/5.8
kind: mesh
cas: [{name: cas, cas_url: "cas:8081"}]
policy: {namespace: ns, tolerate: "hyperthreading, outdated-tcb", ignore_advisories: "*"}
env:
${env}
services:
  - {name: hello, image: repo/hello:1}
`;
  buildBundle(parseServiceManifest(service(), join(root, 'service.yaml'), root), { target, keysDir });

  it('fails listing every global variable without a value', () => {
    const parsed = parseMeshManifest(mesh('  - service: global\n    env: []'), 'mesh.yaml', target);
    assert.throws(
      () => generateSessions(parsed, { keysDir, mode: 'production' }),
      (e: ManifestError) => e.code === 'MANIFEST_VARIABLE' && /API_USER has no value/.test(e.message),
    );
  });

  it('generates one session per service plus the namespace, with secrets exported and values kept out of the written policy', () => {
    const parsed = parseMeshManifest(
      mesh('  - {name: API_USER, value: alice}\n  - service: hello\n    env: [{name: LOG_LEVEL, value: debug}]'),
      'mesh.yaml',
      target,
    );
    const host = 'ab'.repeat(32);
    const [ns, hello] = generateSessions(parsed, { keysDir, mode: 'debug', platforms: [host] });
    assert.equal(ns!.name, 'ns');
    const session = hello!.session as {
      services: Array<Record<string, unknown>>;
      secrets: Array<Record<string, unknown>>;
      security: unknown;
    };
    assert.equal(hello!.name, 'ns/hello');
    assert.deepEqual(session.services[0]!['environment'], {
      API_USER: 'alice',
      LOG: 'debug',
      PASSWORD: '$$SCONE::password$$',
    });
    assert.match(String((session.services[0]!['command'] as string[])[1]), /services\/hello\/app\/app\.py$/);
    assert.deepEqual(session.secrets[0]!['export'], [{ namespace: 'ns' }]);
    assert.deepEqual(
      session.services[0]!['platforms'],
      [host],
      'debug mode lists the hosts whose simulation it accepts',
    );
    assert.deepEqual((hello!.redacted as typeof session).services[0]!['platforms'], [host]);
    const production = generateSessions(parsed, { keysDir, mode: 'production', platforms: [host] })[1]!
      .session as typeof session;
    assert.equal(production.services[0]!['platforms'], undefined, 'platforms mean something for simulation only');
    assert.deepEqual(session.security, {
      attestation: { mode: 'none', tolerate: ['debug-mode', 'hyperthreading', 'outdated-tcb'], ignore_advisories: '*' },
    });
    parseSession(JSON.stringify(session));
    const written = policyText(hello!);
    assert.doesNotMatch(written, /#NOPE!/);
    assert.doesNotMatch(written, new RegExp(String(session.services[0]!['fspf_key'])));
    assert.match(written, /-e VEIL_FSPF_KEY=\.\.\. -e VEIL_SECRET_1=\.\.\./);
  });

  it('takes the namespace from --policy-namespace when given', () => {
    const parsed = parseMeshManifest(mesh('  - {name: API_USER, value: alice}'), 'mesh.yaml', target, {
      namespace: 'other',
    });
    assert.deepEqual(
      generateSessions(parsed, { keysDir, mode: 'debug' }).map((g) => g.name),
      ['other', 'other/hello'],
    );
    assert.throws(() => parseMeshManifest(mesh(''), 'mesh.yaml', target, { namespace: 'bad name' }), {
      code: 'MANIFEST_SHAPE',
    });
  });

  it('reports a broken env entry at its field, in the form it comes closest to', () => {
    assert.throws(
      () => parseMeshManifest(mesh('  - service: global\n    env:\n      - name: API_USER'), 'mesh.yaml', target),
      (e: ManifestError) =>
        e.code === 'MANIFEST_SHAPE' && /mesh\.yaml:8:9: env\[0\]\.env\[0\]\.value: is required/.test(e.message),
    );
  });

  it('refuses a service whose image no applied manifest builds, and an unknown env service', () => {
    const text = mesh('  - service: nobody\n    env: []').replace('repo/hello:1', 'repo/other:2');
    assert.throws(
      () => parseMeshManifest(text, 'mesh.yaml', target),
      (e: ManifestError) =>
        /no service manifest applied here builds 'repo\/other:2' \(known: repo\/hello:1\)/.test(e.message) &&
        /'nobody' is not a service of this mesh/.test(e.message),
    );
  });
});
