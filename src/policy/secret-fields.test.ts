import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type PolicyError,
  REDACTED,
  SECRET_FIELD_PATHS,
  parseSession,
  redactSession,
  restoreRedacted,
  sessionHash,
} from './index.js';

/** The key hash of the creator the hashes here are computed for (any will do, the same throughout). */
const CREATOR = 'c0'.repeat(32);

const KEY = 'ab'.repeat(32);

describe('secret-bearing fields', () => {
  it('are found by walking the schema: every field known to carry a secret is marked', () => {
    const paths = SECRET_FIELD_PATHS.map((p) => p.join('.'));
    for (const known of ['secrets.[].value', 'services.[].fspf_key'])
      assert.ok(paths.includes(known), `${known} is not marked secret (marked: ${paths.join(', ')})`);
    // Refused whatever their value (or accepted only as SCONE's default): they never hold a secret to keep.
    for (const refused of ['service_access_token', 'one_time_password', 'volumes', 'secret_config'])
      assert.ok(!paths.some((p) => p.includes(refused)), `${refused} is marked secret (marked: ${paths.join(', ')})`);
  });

  it('are all redacted, and only they', () => {
    const session = parseSession(
      [
        'name: s',
        'services:',
        `  - {name: a, command: run, fspf_key: "${KEY}"}`,
        `  - {name: b, command: run, fspf_key: "${'cd'.repeat(32)}"}`,
        'secrets:',
        '  - {name: pw, kind: ascii, value: "1234"}',
        '  - {name: gen, kind: ascii}',
        '  - {name: bin, kind: binary, value: "c0ffee00"}',
        '  - {name: frag, kind: config-fragment, value: {tolerate: [debug-mode]}}',
        '',
      ].join('\n'),
    );
    const text = JSON.stringify(redactSession(session));
    for (const value of [KEY, 'cd'.repeat(32), '"1234"', 'c0ffee00', 'debug-mode']) {
      assert.ok(!text.includes(value), `${value} in ${text}`);
    }
    assert.equal(text.split(REDACTED).length - 1, 5);
    assert.match(text, /"name":"gen","kind":"ascii"\}/);
  });

  it('put back on update by name, wherever the element moved', () => {
    const line = ([n, v]: [string, string]) => `  - {name: ${n}, kind: ascii, value: "${v}"}\n`;
    const session = (values: Array<[string, string]>) =>
      parseSession(`name: s\nsecrets:\n${values.map(line).join('')}`);
    const current = session([
      ['a', 'one'],
      ['b', 'two'],
    ]);
    const next = session([
      ['b', REDACTED],
      ['a', REDACTED],
      ['c', REDACTED],
    ]);
    const { session: restored, kept, missing } = restoreRedacted(next, current);
    assert.deepEqual(
      restored.secrets!.map((s) => s.value),
      ['two', 'one', REDACTED],
    );
    assert.equal(kept, 2);
    assert.deepEqual(missing, ['secrets[2].value']);
  });

  it('count in the hash as present only, so a read-back hashes like the policy it came from', () => {
    const text = (v: string) => `name: s\nsecrets:\n  - {name: a, kind: ascii, value: "${v}"}\n`;
    assert.equal(sessionHash(parseSession(text('weak')), CREATOR), sessionHash(parseSession(text(REDACTED)), CREATOR));
    const generated = parseSession('name: s\nsecrets:\n  - {name: a, kind: ascii}\n');
    assert.notEqual(sessionHash(parseSession(text('weak')), CREATOR), sessionHash(generated, CREATOR));
  });
});

describe('__proto__', () => {
  const refused = (text: string, path: RegExp) =>
    assert.throws(
      () => parseSession(text),
      (e: PolicyError) => e.issues.some((i) => path.test(i.path) && /__proto__/.test(i.message)),
    );

  it('is refused as a key anywhere (it would vanish from the environment) and as a name', () => {
    const env = 'name: s\nservices:\n  - name: a\n    environment: {__proto__: x, B: y}\n';
    refused(env, /^services\[0\]\.environment\.__proto__$/);
    refused('name: s\nsecrets:\n  - {name: __proto__, kind: ascii}\n', /^secrets\[0\]\.name$/);
    refused('name: s\nservices:\n  - {name: __proto__}\n', /^services\[0\]\.name$/);
    const fragment = 'name: s\nsecrets:\n  - {name: f, kind: config-fragment, value: {__proto__: {a: 1}}}\n';
    refused(fragment, /^secrets\[0\]\.value\.__proto__$/);
  });
});
