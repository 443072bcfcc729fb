import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { curl, opensslIdentity, startCas, tempDir, type CasProcess } from './harness.js';

describe('CAS bad input: clear JSON errors, nothing lost', () => {
  const dir = tempDir();
  let cas: CasProcess;
  let me: { cert: string; key: string };
  const post = (data: string) => curl(cas, `${cas.url}/v1/sessions`, { identity: me, data });

  before(async () => {
    cas = await startCas(join(dir.path, 'data'), dir.path, ['--body-limit', '65536']);
    me = await opensslIdentity(dir.path, 'me');
  });
  after(async () => {
    await cas?.stop();
    dir.cleanup();
  });

  it('answers the version without authentication', async () => {
    const res = await curl(cas, `${cas.url}/v1/version`);
    assert.equal(res.status, 200);
    assert.equal(typeof res.json().version, 'string');
  });

  it('reports malformed YAML with its line', async () => {
    const res = await post('name: x\nservices:\n  - name: [unclosed\n');
    assert.equal(res.status, 400);
    const error = res.json().error;
    assert.equal(error.code, 'CAS_POLICY_INVALID');
    assert.match(error.message, /:\d+:\d+/);
  });

  it('reports every unknown field with its path and line at once', async () => {
    const res = await post('name: x\nversion: "0.3"\ncolour: blue\nservices:\n  - name: s\n    comand: python3\n');
    assert.equal(res.status, 400);
    const issues = res.json().error.issues as Array<{ path: string; line?: number }>;
    const paths = issues.map((i) => i.path);
    assert.ok(paths.includes('colour'), JSON.stringify(issues));
    assert.ok(paths.includes('services[0].comand'), JSON.stringify(issues));
    assert.equal(issues.find((i) => i.path === 'services[0].comand')?.line, 6);
  });

  it('refuses a placeholder naming an unknown secret when the session is created', async () => {
    const yaml =
      'name: x\nversion: "0.3"\nimages:\n  - name: i\n    injection_files:\n      - path: /tls/ca.crt\n        content: $$SCONE::redis_ca.crt$$\n';
    const res = await post(yaml);
    assert.equal(res.status, 400);
    assert.match(res.json().error.message, /images\[0\]\.injection_files\[0\]\.content: .*redis_ca/);
  });

  it('refuses issuer cycles, a non-CA issuer and a private_key that is no key', async () => {
    const cycle = [
      'name: x',
      'version: "0.3"',
      'secrets:',
      '  - {name: k, kind: private-key}',
      '  - {name: a, kind: x509-ca, private_key: k, issuer: b}',
      '  - {name: b, kind: x509-ca, private_key: k, issuer: a}',
      '  - {name: pw, kind: ascii}',
      '  - {name: c, kind: x509, private_key: pw, issuer: pw}',
    ].join('\n');
    const res = await post(cycle);
    assert.equal(res.status, 400);
    const message = res.json().error.message as string;
    assert.match(message, /cycle/i);
    assert.match(message, /secrets\[4\]\.private_key/);
    assert.match(message, /secrets\[4\]\.issuer/);
  });

  it('refuses an oversized body with 413 and a JSON error', async () => {
    const res = await post(`name: big\nversion: "0.3"\n# ${'x'.repeat(70_000)}\n`);
    assert.equal(res.status, 413);
    assert.equal(res.json().error.code, 'CAS_PAYLOAD_TOO_LARGE');
  });

  it('refuses a YAML alias bomb quickly', async () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 12; i++) {
      const prev = String.fromCharCode(96 + i);
      const cur = String.fromCharCode(97 + i);
      lines.push(`${cur}: &${cur} [*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev}]`);
    }
    const started = Date.now();
    const res = await post(`name: bomb\n${lines.join('\n')}\n`);
    assert.equal(res.status, 400);
    assert.ok(Date.now() - started < 5000);
  });

  it('refuses deep nesting', async () => {
    const res = await post(`name: deep\nsecrets: [{name: f, value: ${'['.repeat(300)}${']'.repeat(300)}}]\n`);
    assert.equal(res.status, 400);
  });

  it('refuses to make a private key public', async () => {
    const res = await post(
      'name: pub\nversion: "0.3"\nsecrets:\n  - name: k\n    kind: private-key\n    export_public: true\n',
    );
    assert.equal(res.status, 400);
    assert.match(res.json().error.message, /secrets\[0\]\.export_public/);
  });

  it('requires a client certificate to create', async () => {
    const res = await curl(cas, `${cas.url}/v1/sessions`, { data: 'name: anon\n' });
    assert.equal(res.status, 401);
    assert.equal(res.json().error.code, 'CAS_UNAUTHENTICATED');
  });

  it('answers unknown endpoints with a JSON error', async () => {
    const res = await curl(cas, `${cas.url}/v2/nothing`);
    assert.equal(res.status, 404);
    assert.equal(res.json().error.code, 'CAS_NOT_FOUND');
  });

  it('lost nothing: a valid session still uploads after all that', async () => {
    const res = await post('name: fine\nversion: "0.3"\n');
    assert.equal(res.status, 201, res.body);
  });
});
