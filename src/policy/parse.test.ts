import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type PolicyError, parseSession, sessionHash, sessionJsonSchema, substituteVariables } from './index.js';
import { policyError } from './test-errors.js';

/** The key hash of the creator the hashes here are computed for (any will do, the same throughout). */
const CREATOR = 'c0'.repeat(32);

const policyFile = (which: string) =>
  fileURLToPath(new URL(`../../examples/flask-redis/policies/${which}-session.yaml`, import.meta.url));
const VARS = {
  FLASK_SESSION: 'flask-1',
  REDIS_SESSION: 'redis-1',
  MRENCLAVE: 'a'.repeat(64),
  SCONE_FSPF_KEY: 'b'.repeat(64),
  SCONE_FSPF_TAG: 'c'.repeat(32),
};
const seed = (which: string) => substituteVariables(readFileSync(policyFile(which), 'utf8'), VARS);

describe('parseSession', () => {
  it("parses both of the seed's policies", () => {
    const redis = parseSession(seed('redis'));
    assert.equal(redis.name, 'redis-1');
    assert.deepEqual(redis.secrets?.find((s) => s.name === 'redis_ca_cert')?.export, [{ session: 'flask-1' }]);
    const flask = parseSession(seed('flask'));
    assert.deepEqual(flask.secrets?.find((s) => s.name === 'redis_client_cert')?.import, {
      session: 'redis-1',
      secret: 'redis_client_cert',
    });
    assert.equal(flask.services?.[0]?.environment?.['SCONE_LOG'], 'TRACE');
  });

  it('reports every shape error at once, each with its path, line and column', () => {
    const err = policyError(
      'name: ok\nversion: "0.3"\ncolour: blue\nservices:\n  - name: s\n    comand: x\nsecrets:\n  - name: p\n    kind: password\n',
    );
    assert.equal(err.code, 'POLICY_SHAPE');
    const byPath = new Map(err.issues.map((i) => [i.path, i]));
    assert.deepEqual([...byPath.keys()].sort(), ['colour', 'secrets[0].kind', 'services[0].comand']);
    assert.equal(byPath.get('colour')?.line, 3);
    assert.equal(byPath.get('colour')?.column, 1);
    assert.equal(byPath.get('services[0].comand')?.line, 6);
    assert.equal(byPath.get('services[0].comand')?.column, 5);
    assert.match(err.message, /s\.yaml:6:5: services\[0\]\.comand: unknown field 'comand'/);
  });

  it('refuses bad names, hashes and ANY mixed with other entries', () => {
    const err = policyError(`name: "bad name/x"\npredecessor: abc\naccess_policy:\n  read: [ANY, CREATOR]\n`);
    const paths = err.issues.map((i) => i.path).sort();
    assert.deepEqual(paths, ['access_policy.read', 'name', 'predecessor']);
  });

  it('reports YAML syntax errors with their position', () => {
    const err = policyError('name: x\nservices:\n  - name: [unclosed\n');
    assert.equal(err.code, 'POLICY_YAML_SYNTAX');
    assert.ok(err.issues[0]?.line !== undefined);
  });

  it('refuses a billion-laughs alias bomb quickly', () => {
    const lines = ['a: &a [x,x,x,x,x,x,x,x,x]'];
    for (let i = 1; i < 10; i++) {
      const p = String.fromCharCode(96 + i);
      lines.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [*${p},*${p},*${p},*${p},*${p},*${p},*${p},*${p},*${p}]`,
      );
    }
    const started = Date.now();
    assert.equal(policyError(`name: x\n${lines.join('\n')}\n`).code, 'POLICY_TOO_COMPLEX');
    assert.ok(Date.now() - started < 2000);
  });

  it('refuses nesting 200 levels deep', () => {
    assert.equal(
      policyError(`name: x\nsecrets: [{name: f, value: {a: ${'['.repeat(200)}${']'.repeat(200)}}}]\n`).code,
      'POLICY_TOO_COMPLEX',
    );
  });

  it('checks which fields fit which secret kind', () => {
    const err = policyError(
      'name: x\nsecrets:\n  - {name: a, kind: ascii, key_type: P-256}\n  - {name: k, kind: private-key, dns: [x]}\n  - {name: c, kind: x509-ca, endpoint: server, private_key: k}\n  - {name: i, import: {session: o, secret: i}, size: 3}\n',
    );
    assert.deepEqual(
      err.issues.map((i) => i.path),
      ['secrets[0].key_type', 'secrets[1].dns', 'secrets[2].endpoint', 'secrets[3].size'],
    );
  });
});

describe('attestation variants', () => {
  const withAttestation = (attestation: string) =>
    `name: s\nservices:\n  - name: api\n    attestation: ${attestation}\n`;
  const h96 = 'ab'.repeat(48);

  it('accepts SCONE forms (mrenclave as one value or a list, signer) and the tdx / snp / vtpm extensions', () => {
    const one = parseSession(withAttestation(`{mrenclave: ${'a'.repeat(64)}}`));
    assert.deepEqual((one.services![0]!.attestation as { mrenclave: string[] }).mrenclave, ['a'.repeat(64)]);
    const variants = parseSession(
      withAttestation(
        `[{signer: {mrsigner: ${'b'.repeat(64)}, isvprodid: 1, isvsvn_min: 2}}, ` +
          `{tdx: {mrtd: [${h96}], rtmr0: ${h96}, rtmr1: ${h96}, rtmr2: ${h96}, rtmr3: ${h96}}}, {snp: {measurement: ${h96}, min_tcb: {snp: 8}, signing_key: vlek}, vtpm: {pcrs: {'7': ${'c'.repeat(64)}}}}]`,
      ),
    );
    assert.equal((variants.services![0]!.attestation as unknown[]).length, 3);
  });

  it('refuses, at upload and with paths, variants that mix TEEs, name nothing, or carry bad values', () => {
    const err = policyError(
      withAttestation(
        `[{mrenclave: [${'a'.repeat(64)}], tdx: {mrtd: ${h96}}}, {}, {tdx: {mrtd: abc, rtmr9: ${h96}}}, ` +
          `{snp: {min_tcb: {snp: 300}}}, {signer: {mrsigner: ${'b'.repeat(64)}, isvsvn: 1, isvsvn_min: 0}}, {vtpm: {pcrs: {'99': ${'c'.repeat(64)}}}}]`,
      ),
    );
    const text = err.issues.map((i) => `${i.path}: ${i.message}`).join('\n');
    assert.match(text, /services\[0\]\.attestation\[0\]: one variant names one TEE/);
    assert.match(text, /services\[0\]\.attestation\[1\]: a variant must name mrenclave, signer, tdx or snp/);
    assert.match(text, /services\[0\]\.attestation\[2\]\.tdx\.mrtd/);
    assert.match(text, /services\[0\]\.attestation\[2\]\.tdx\.rtmr9: unknown field/);
    assert.match(text, /services\[0\]\.attestation\[3\]\.snp\.min_tcb\.snp/);
    assert.match(text, /attestation\[4\]\.signer: give isvsvn or isvsvn_min \/ isvsvn_max, not both/);
    assert.match(text, /attestation\[5\]/);
  });

  it('refuses TDX and SNP identities that any VM could match', () => {
    const text = policyError(
      withAttestation(
        `[{tdx: {rtmr0: ${h96}}}, {tdx: {mrtd: ${h96}, rtmr3: ${h96}}}, {snp: {host_data: ${'d'.repeat(64)}, min_tcb: {snp: 1}}}]`,
      ),
    )
      .issues.map((i) => `${i.path}: ${i.message}`)
      .join('\n');
    assert.match(text, /attestation\[0\]\.tdx: a tdx variant must give mrtd/);
    assert.match(text, /attestation\[1\]\.tdx: rtmr3 names the program only with rtmr0, rtmr1 and rtmr2/);
    assert.match(text, /attestation\[2\]\.snp: an snp variant must give measurement or id_key_digest/);
    assert.doesNotThrow(() =>
      parseSession(withAttestation(`{snp: {id_key_digest: ${h96}, host_data: ${'d'.repeat(64)}, min_tcb: {snp: 8}}}`)),
    );
    const noFloor = policyError(withAttestation(`{snp: {measurement: ${h96}}}`))
      .issues.map((i) => `${i.path}: ${i.message}`)
      .join('\n');
    assert.match(noFloor, /attestation\.snp: an snp variant must give min_tcb/);
  });
});

describe('cross references', () => {
  it('names unknown secrets in placeholders, with the path of the field', () => {
    const err = policyError(
      'name: x\nimages:\n  - name: i\n    injection_files:\n      - path: /a\n      - path: /b\n      - path: /tls/ca.crt\n        content: $$SCONE::redis_ca.crt$$\n',
    );
    assert.equal(err.code, 'POLICY_REFERENCE');
    assert.equal(err.issues[0]?.path, 'images[0].injection_files[2].content');
    assert.match(err.issues[0]!.message, /no secret named 'redis_ca'/);
    assert.equal(err.issues[0]?.line, 8);
  });

  it('refuses unknown suffixes and suffixes that do not fit the kind', () => {
    const err = policyError(
      'name: x\nservices:\n  - name: s\n    command: run $$SCONE::pw:crt$$ $$SCONE::pw:frobnicate$$\nsecrets:\n  - {name: pw, kind: ascii}\n',
    );
    assert.equal(err.issues.length, 2);
    assert.match(err.message, /':crt' does not fit ascii/);
    assert.match(err.message, /unknown placeholder suffix ':frobnicate'/);
  });

  it('finds issuer cycles, non-CA issuers and keys that are not keys', () => {
    const err = policyError(
      [
        'name: x',
        'secrets:',
        '  - {name: k, kind: private-key}',
        '  - {name: a, kind: x509-ca, private_key: k, issuer: b}',
        '  - {name: b, kind: x509-ca, private_key: k, issuer: a}',
        '  - {name: self, kind: x509-ca, private_key: k, issuer: self}',
        '  - {name: pw, kind: ascii}',
        '  - {name: c, kind: x509, private_key: pw, issuer: pw}',
        '',
      ].join('\n'),
    );
    const messages = err.issues.map((i) => `${i.path}: ${i.message}`);
    assert.ok(messages.includes("secrets[5].private_key: 'pw' is a ascii, not a private-key"), messages.join('\n'));
    assert.ok(messages.includes("secrets[5].issuer: 'pw' is a ascii, not an x509-ca"));
    assert.equal(messages.filter((m) => /cycle/.test(m)).length, 3);
  });

  it('finds duplicate names and services naming no image', () => {
    const err = policyError('name: x\nservices:\n  - {name: s, image_name: nope}\n  - {name: s}\n');
    assert.deepEqual(
      err.issues.map((i) => i.path),
      ['services[1].name', 'services[0].image_name'],
    );
  });
});

describe('templates and hashes', () => {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: ${VAR} is the session-template syntax under test
  it('fills $VAR and ${VAR} and leaves $$SCONE::x$$ intact', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: ${VAR} is the session-template syntax under test
    assert.equal(substituteVariables('a: $A ${B} $$SCONE::x.crt$$', { A: '1', B: '2' }), 'a: 1 2 $$SCONE::x.crt$$');
  });

  it('names every missing variable with its line', () => {
    assert.throws(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: ${VAR} is the session-template syntax under test
      () => substituteVariables('name: $SESSION\nx: ${OTHER}\n', {}),
      (err: PolicyError) => {
        assert.equal(err.code, 'POLICY_TEMPLATE_VARIABLE');
        assert.deepEqual(
          err.issues.map((i) => [i.message, i.line]),
          [
            ['variable $SESSION is not defined', 1],
            ['variable $OTHER is not defined', 2],
          ],
        );
        return true;
      },
    );
  });

  it('hashes content, not formatting or key order, and ignores the creator', () => {
    const a = parseSession('name: x\nversion: "0.3"\nsecrets:\n  - {name: p, kind: ascii}\n');
    const b = parseSession('version: "0.3"\nsecrets:\n- kind: ascii\n  name: p\nname: x\ncreator: someone\n');
    const c = parseSession('name: x\nversion: "0.3"\nsecrets:\n  - {name: p, kind: ascii, size: 21}\n');
    assert.equal(sessionHash(a, CREATOR), sessionHash(b, CREATOR));
    assert.notEqual(sessionHash(a, CREATOR), sessionHash(c, CREATOR));
    assert.match(sessionHash(a, CREATOR), /^[0-9a-f]{64}$/);
    // The creator's key hash is part of it (the identity that created the session), not a `creator` field.
    assert.notEqual(sessionHash(a, CREATOR), sessionHash(a, 'c1'.repeat(32)));
  });

  it('gives the same answer on the fast and the full YAML path', () => {
    const plain = parseSession('name: x\nsecrets:\n  - {name: p, kind: ascii}\n');
    const anchored = parseSession('name: x\nsecrets:\n  - &s {name: p, kind: ascii}\n');
    assert.equal(sessionHash(plain, CREATOR), sessionHash(anchored, CREATOR));
  });

  it('publishes a JSON Schema generated from the validator', () => {
    const schema = sessionJsonSchema() as {
      properties: Record<string, unknown>;
      required: string[];
      additionalProperties: boolean;
    };
    assert.ok(schema.properties['secrets'] && schema.properties['services']);
    assert.deepEqual(schema.required, ['name']);
    assert.equal(schema.additionalProperties, false);
    const published = fileURLToPath(new URL('../../schemas/session.schema.json', import.meta.url));
    assert.deepEqual(JSON.parse(readFileSync(published, 'utf8')), schema, 'schemas/ is stale: run npm run schemas');
  });
});
