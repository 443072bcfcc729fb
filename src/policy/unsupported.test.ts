import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { findingsOfZod, onlyUnsupported } from '../issues.js';
import { parseSession, sessionJsonSchema } from './index.js';
import { policyError } from './test-errors.js';
import { unsupported } from './unsupported.js';

const ERRORS = fileURLToPath(new URL('../../testdata/scone/errors/', import.meta.url));
const fixture = (name: string) => readFileSync(`${ERRORS}${name}`, 'utf8');

describe('constructs Veil does not support', () => {
  it('are refused with POLICY_UNSUPPORTED, "not supported by Veil" and the construct, when nothing else is wrong', () => {
    const err = policyError(
      'name: a\nsecrets:\n  - {name: t, kind: aad-token}\n  - {name: u, import_akv: {name: x}}\n',
    );
    assert.equal(err.code, 'POLICY_UNSUPPORTED');
    assert.equal(err.issues.length, 2);
    assert.match(err.message, /s\.yaml:3:21: secrets\[0\]\.kind: kind 'aad-token' is not supported by Veil/);
    assert.match(err.message, /s\.yaml:4:15: secrets\[1\]\.import_akv: import_akv is not supported by Veil/);
    assert.doesNotMatch(err.message, /is required|Invalid option|fix the fields/);
    assert.match(err.hint ?? '', /SCONE's session language in Veil/);
  });

  it('a YAML tag the parser would drop is refused by name; store_in: !cas is read', () => {
    const tagged = 'name: a\nversion: "0.3"\nsecrets:\n  - {name: s, kind: !foo ascii}\n';
    const err = policyError(tagged);
    assert.equal(err.code, 'POLICY_UNSUPPORTED');
    assert.match(err.message, /:4:.*the YAML tag !foo is not supported by Veil/);
    assert.ok(parseSession('name: a\nversion: "0.3"\nsecret_config:\n  store_in: !cas\n'));
  });

  it("SCONE's quoting enclave keys and Azure Attestation's settings are refused, not kept and ignored", () => {
    const err = policyError(
      'name: a\nsecurity:\n  attestation: {trusted_scone_qe_pubkeys: [k], url: u, certificates: []}\n',
    );
    assert.equal(err.code, 'POLICY_UNSUPPORTED');
    assert.deepEqual(
      err.issues.map((i) => i.path),
      [
        'security.attestation.trusted_scone_qe_pubkeys',
        'security.attestation.url',
        'security.attestation.certificates',
      ],
    );
    assert.match(err.message, /attestation\.url is not supported by Veil: it configures Microsoft Azure Attestation/);
  });

  it('are POLICY_SHAPE beside a real fault, which is reported with them', () => {
    const err = policyError('name: a\nsecrets:\n  - {name: t, kind: aad-token}\n  - {name: u, size: many}\n');
    assert.equal(err.code, 'POLICY_SHAPE');
    assert.ok(err.issues.some((i) => /not supported by Veil/.test(i.message)));
    assert.ok(err.issues.some((i) => i.path === 'secrets[1].size'));
  });

  it('are told by the marker on the zod issue, not by the wording of a message', () => {
    const schema = z.strictObject({
      a: unsupported('a', 'why').optional(),
      b: z
        .string()
        .refine(() => false, 'b is not supported by Veil: same words, no marker')
        .optional(),
    });
    const findings = (value: unknown) => findingsOfZod(schema.safeParse(value).error!.issues, value, [], schema);
    assert.ok(onlyUnsupported(findings({ a: 1 })));
    assert.ok(!onlyUnsupported(findings({ b: 'x' })));
    assert.ok(!onlyUnsupported([]));
  });

  it('the v0.1 language (no version) is refused as unsupported, in its own words', () => {
    const err = policyError('name: a\ntags: [x]\n');
    assert.equal(err.code, 'POLICY_UNSUPPORTED');
    assert.match(err.message, /'tags' is of the session language v0\.1/);
  });

  it('the JSON Schema never accepts a refused field', () => {
    const text = JSON.stringify(sessionJsonSchema());
    assert.match(text, /"import_akv":\{"not":\{\},"description":"import_akv is not supported by Veil/);
  });
});

describe('unknown keys', () => {
  it('get the allowed key they are closest to', () => {
    const text = 'name: a\nimages:\n  - name: i\n    injection_file: []\nservices:\n  - {name: s, comand: x}\n';
    const err = policyError(text);
    assert.equal(err.code, 'POLICY_SHAPE');
    assert.match(
      err.message,
      /images\[0\]\.injection_file: unknown field 'injection_file' — did you mean 'injection_files'\?/,
    );
    assert.match(err.message, /services\[0\]\.comand: unknown field 'comand' — did you mean 'command'\?/);
  });

  it('in every form of a union, and only when one is near', () => {
    const near = policyError('name: a\nsecrets:\n  - {name: s, export: {sesion: x}}\n');
    assert.match(near.message, /did you mean 'session'\?/);
    const far = policyError('name: a\nfrobnicate: 1\nsecretz: []\n');
    assert.match(far.message, /unknown field 'frobnicate'\n/);
    assert.match(far.message, /unknown field 'secretz' — did you mean 'secrets'\?/);
  });
});

describe('values out of a list', () => {
  it('get the allowed value they are closest to, transpositions counted as one edit', () => {
    const err = policyError(
      'name: a\nsecrets:\n  - {name: t, kind: asci}\n  - {name: u, kind: x509, endpoint: clinet}\n',
    );
    assert.match(err.message, /secrets\[0\]\.kind: Invalid option: .* — did you mean 'ascii'\?/);
    assert.match(err.message, /secrets\[1\]\.endpoint: Invalid option: .* — did you mean 'client'\?/);
    assert.doesNotMatch(policyError('name: a\nsecrets:\n  - {name: t, kind: zzzz}\n').message, /did you mean/);
  });
});

describe('YAML syntax errors', () => {
  const cases: Array<[string, RegExp]> = [
    [
      'tab-indent.yaml',
      /:18:1: a tab indents this line; YAML indents with spaces only .* line 18: "\\tSCONE_LOG: TRACE"/,
    ],
    [
      'unclosed-quote.yaml',
      /:15:14: a quoted string opens here and is not closed .* line 15: " {4}command: \\"python3/,
    ],
    [
      'missing-colon.yaml',
      /:13:5: .*the ':' after a key is missing here .* line 13: " {4}image_name flask_restapi_image"/,
    ],
  ];
  for (const [file, says] of cases) {
    it(`${file}: one error, the root cause, in plain words with its line`, () => {
      const err = policyError(fixture(file));
      assert.equal(err.code, 'POLICY_YAML_SYNTAX');
      assert.equal(err.issues.length, 1, err.message);
      assert.match(err.message, says);
    });
  }

  it('an unclosed [ is named, and a second document is refused as such', () => {
    assert.match(
      policyError('name: a\nservices: [x\nimages: []\n').message,
      /a \[ opened before this line is not closed/,
    );
    assert.match(policyError('name: a\n---\nname: b\n').message, /a second YAML document starts here/);
  });

  it('still parses what is valid', () => {
    assert.equal(
      parseSession(fixture('tab-indent.yaml').replace('\tSCONE_LOG', '      SCONE_LOG')).name,
      'flask-session',
    );
  });
});
