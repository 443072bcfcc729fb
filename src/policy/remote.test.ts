import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseSession, substituteVariables } from './index.js';
import { parseCasUrl } from './remote.js';
import { policyError } from './test-errors.js';

const fixture = (name: string) =>
  readFileSync(fileURLToPath(new URL(`../../testdata/scone/remote/${name}.yaml`, import.meta.url)), 'utf8');

const KEY1 = 'a1'.repeat(32);
const KEY2 = 'b2'.repeat(32);
const VARS = {
  REDIS_SESSION: 'redis',
  FLASK_SESSION: 'flask',
  MRENCLAVE: 'c'.repeat(64),
  REDIS_CAS_URL: 'cas1.example.com:18081',
  REDIS_CAS_KEY: KEY1,
  FLASK_CAS_URL: 'cas2.example.com',
  FLASK_CAS_KEY: KEY2.toUpperCase(),
};
const seed = (name: string) => parseSession(substituteVariables(fixture(name), VARS));
const withImport = (imp: string) =>
  `name: s\nsecrets:\n  - name: x\n    import: ${imp}\nservices:\n  - {name: a, command: "x $$SCONE::x$$"}\n`;
const withExport = (target: string) => `name: s\nsecrets:\n  - name: x\n    kind: ascii\n    export: [${target}]\n`;

describe('imports from another CAS', () => {
  it('parses the object form and the URL form of the Flask policy into one typed form', () => {
    const flask = seed('flask-session');
    const imports = Object.fromEntries((flask.secrets ?? []).flatMap((s) => (s.import ? [[s.name, s.import]] : [])));
    assert.deepEqual(imports['redis_client_cert'], {
      session: 'redis',
      secret: 'redis_client_cert',
      cas_url: 'cas1.example.com:18081',
      cas_key: KEY1,
    });
    assert.deepEqual(imports['redis_ca_cert'], {
      session: 'redis',
      secret: 'redis_ca_cert',
      cas_url: 'cas1.example.com:18081',
      cas_key: KEY1,
    });
  });

  it('reads the local URL form as a local import', () => {
    const s = parseSession(withImport('/session=other,secret=y'));
    assert.deepEqual(s.secrets?.[0]?.import, { session: 'other', secret: 'y' });
  });

  it('refuses an import from another CAS without a pin, naming the CAS', () => {
    const err = policyError(withImport('{cas_url: cas1.example.com, session: r, secret: y}'));
    assert.match(err.message, /import from another CAS \(cas1\.example\.com\) needs cas_key/);
    const url = policyError(withImport('cas1.example.com/session=r,secret=y'));
    assert.match(url.message, /needs cas_key/);
  });

  it('refuses cas_software_key by name, as not supported by Veil', () => {
    for (const imp of [
      `{cas_url: c.example, cas_software_key: ${KEY1}, session: r, secret: y}`,
      `c.example/cas_software_key=${KEY1},session=r,secret=y`,
    ]) {
      const err = policyError(withImport(imp));
      assert.match(err.message, /cas_software_key is not supported by Veil/);
    }
  });

  it('refuses a cas_key that is no SHA-256, a cas_url that is no address, and unknown URL fields', () => {
    assert.match(policyError(withImport('{cas_url: c, cas_key: abc, session: r, secret: y}')).message, /64 hex/);
    const path = policyError(withImport(`{cas_url: "https://c/x", cas_key: ${KEY1}, session: r, secret: y}`));
    assert.match(path.message, /cas_url must be 'host\[:port\]'/);
    const http = policyError(withImport(`{cas_url: "http://c", cas_key: ${KEY1}, session: r, secret: y}`));
    assert.match(http.message, /cas_url must be/);
    const unknown = policyError(withImport(`c/cas_key=${KEY1},session=r,secret=y,colour=blue`));
    assert.match(unknown.message, /'colour' is not a field of the URL form/);
    assert.match(policyError(withImport(`c/cas_key=${KEY1},session=r`)).message, /secret=<name/);
    assert.match(policyError(withImport(`{cas_key: ${KEY1}, session: r, secret: y}`)).message, /cas_url as well/);
  });

  it('refuses a certificate issued by a CA imported from another CAS, as not supported by Veil', () => {
    const text = [
      'name: s',
      'secrets:',
      `  - {name: ca, import: {cas_url: c.example, cas_key: ${KEY1}, session: r, secret: ca}}`,
      '  - {name: k, kind: private-key}',
      '  - {name: crt, kind: x509, private_key: k, issuer: ca}',
      '',
    ].join('\n');
    const err = policyError(text);
    assert.match(err.message, /issuer 'ca' is imported from the CAS at c\.example.*not supported by Veil/);
  });

  it('bounds the imports from other CAS per session (remoteImports)', () => {
    const lines = ['name: s', 'secrets:'];
    for (let i = 0; i < 17; i++) {
      lines.push(`  - {name: x${i}, import: {cas_url: c.example, cas_key: ${KEY1}, session: r, secret: y}}`);
    }
    const err = policyError(`${lines.join('\n')}\n`);
    assert.equal(err.code, 'POLICY_LIMIT');
    assert.match(err.message, /17 imports from other CAS, more than the limit remoteImports = 16/);
  });

  it('dials https on port 8081 unless told otherwise', () => {
    assert.equal(parseCasUrl('cas.example.com')?.href, 'https://cas.example.com:8081/');
    assert.equal(parseCasUrl('https://127.0.0.1:9')?.href, 'https://127.0.0.1:9/');
    assert.equal(parseCasUrl('[::1]:7')?.port, '7');
    // https's own port is kept (URL leaves it out of the address; the dialer puts it back), not replaced by 8081.
    assert.equal(parseCasUrl('cas.example:443')?.href, 'https://cas.example/');
    assert.equal(parseCasUrl('https://cas.example:443')?.href, 'https://cas.example/');
    assert.equal(parseCasUrl('[::1]')?.port, '8081');
    assert.equal(parseCasUrl('user@c.example'), undefined);
    assert.equal(parseCasUrl('c.example?x=1'), undefined);
  });
});

describe('exports to another CAS', () => {
  it("parses the Redis policy's remote exports (object and URL forms), pins in lower case", () => {
    const redis = seed('redis-session');
    const exports = Object.fromEntries((redis.secrets ?? []).map((s) => [s.name, s.export]));
    const target = { session: 'flask', cas_url: 'cas2.example.com', cas_key: KEY2 };
    assert.deepEqual(exports['redis_client_key'], [target]);
    assert.deepEqual(exports['redis_client_cert'], [target]);
    assert.deepEqual(exports['redis_ca_cert'], [{ session: 'flask', cas_key: KEY2 }]);
  });

  it('parses every documented target form', () => {
    const targets = parseSession(fixture('export-forms')).secrets?.[0]?.export;
    assert.deepEqual(targets, [
      { session: 'local_importer' },
      { session: 'pinned_importer', session_hash: '0f'.repeat(32) },
      { namespace: './children' },
      { session: 'remote_importer', cas_url: 'cas.example.com', cas_key: 'a'.repeat(64) },
      {
        session: 'url_importer',
        cas_url: 'cas.example.com:18081',
        cas_key: 'b'.repeat(64),
        session_hash: '1e'.repeat(32),
      },
      { session: 'local_url_importer', session_hash: '2d'.repeat(32) },
    ]);
  });

  it('refuses a remote target without cas_key, and cas_software_key by name', () => {
    assert.match(policyError(withExport('{cas_url: c.example, session: f}')).message, /needs cas_key/);
    assert.match(
      policyError(withExport(`{cas_software_key: ${KEY1}, session: f}`)).message,
      /cas_software_key is not supported by Veil/,
    );
    assert.match(policyError(withExport(`"c/cas_key=${KEY1},session=f,session_hash=zz"`)).message, /session_hash/);
  });
});
