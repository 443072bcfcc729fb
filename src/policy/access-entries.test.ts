import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { accessEntries } from './access-entries.js';
import { SESSION_LIMITS } from './limits.js';
import { parseSession } from './parse.js';
import { policyError } from './test-errors.js';

/** access_policy's entry forms (§4.1) as the schema reads them, and their typed form. */
const fixture = (name: string) =>
  readFileSync(new URL(`../../testdata/scone/governance/${name}`, import.meta.url), 'utf8');

const pub = (type: 'ed25519' | 'ec' | 'rsa', options: object = {}) =>
  generateKeyPairSync(type as 'ed25519', options)
    .publicKey.export({ type: 'spki', format: 'pem' })
    .toString();

/** A YAML block entry `signer: |` at list indentation `at`. */
const signer = (pem: string, at = 4) =>
  [
    `${' '.repeat(at)}- signer: |`,
    ...pem
      .trim()
      .split('\n')
      .map((l) => `${' '.repeat(at + 4)}${l}`),
  ].join('\n');

const session = (policy: string, extra = '') => `name: s\naccess_policy:\n${policy}\n${extra}`;
const paths = (text: string) => policyError(text).issues.map((i) => `${i.path}: ${i.message}`);

describe('access_policy entries (governance)', () => {
  it("accepts sconedocs' governance forms and types them", () => {
    const parsed = parseSession(fixture('require-at-least-2.yaml'));
    const update = accessEntries(parsed.access_policy?.update ?? [], 'update');
    assert.equal(update.length, 1);
    const group = update[0];
    assert.ok(group?.kind === 'group');
    assert.equal(group.need, 2);
    assert.deepEqual(
      group.members.map((m) => m.kind === 'signer' && m.keyType),
      ['ed25519', 'ed25519', 'ed25519'],
    );
    const create = accessEntries(parsed.access_policy?.create_sessions ?? [], 'create_sessions');
    assert.ok(create[0]?.kind === 'group' && create[0].label === 'require-all' && create[0].need === 2);
  });

  it('accepts the plain forms: CREATOR, key hash, certificate, $$SCONE::x509$$, signer', () => {
    const parsed = parseSession(fixture('entry-forms.yaml'));
    const read = accessEntries(parsed.access_policy?.read ?? [], 'read').map((e) => e.kind);
    assert.deepEqual(read, ['creator', 'key', 'secret', 'key']);
    const cert = accessEntries(parsed.access_policy?.read ?? [], 'read')[3];
    assert.ok(cert?.kind === 'key');
    assert.equal(cert.keyHash, '8a55bc8197aea303f7d512e35e61eb14bd8a2bd79f14b1bb8e4b782f5040b2d1', 'its key hash');
    const update = accessEntries(parsed.access_policy?.update ?? [], 'update');
    assert.ok(update[1]?.kind === 'signer' && update[1].keyType === 'p256');
  });

  it('refuses a signer in read, saying why', () => {
    const issues = paths(session(`  read:\n${signer(pub('ed25519'))}`));
    assert.match(issues.join('\n'), /access_policy\.read\[0\]: a signer entry is not allowed in read/);
  });

  it('refuses groups in read', () => {
    const issues = paths(session(`  read:\n    - require-all:\n${signer(pub('ed25519'), 8)}`));
    assert.match(
      issues.join('\n'),
      /read\[0\]\.require-all: require-all is allowed only in update and create_sessions/,
    );
  });

  it('refuses N larger than the members, N = 0, and nested groups', () => {
    const two = `${signer(pub('ed25519'), 8)}\n${signer(pub('ed25519'), 8)}`;
    const over = paths(session(`  update:\n    - require-at-least-3:\n${two}`));
    assert.match(over.join('\n'), /require-at-least-3 needs 3 members, but lists only 2/);
    const zero = paths(session(`  update:\n    - require-at-least-0:\n${two}`));
    assert.match(zero.join('\n'), /update\[0\]/);
    const nested = paths(session(`  update:\n    - require-all:\n        - require-all: [CREATOR]\n`));
    assert.match(nested.join('\n'), /nested group is not supported by Veil/);
  });

  it('refuses the same identity twice in one group (it would count twice)', () => {
    const key = pub('ed25519');
    const issues = paths(session(`  update:\n    - require-at-least-2:\n${signer(key, 8)}\n${signer(key, 8)}`));
    assert.match(issues.join('\n'), /require-at-least-2\[1\]: names the same identity twice/);
  });

  it('refuses signer keys of other types or sizes, and what is not a public key', () => {
    const p521 = pub('ec', { namedCurve: 'P-521' });
    assert.match(
      paths(session(`  update:\n${signer(p521)}`)).join('\n'),
      /EC curve secp521r1 is not supported by Veil/,
    );
    const rsa1024 = pub('rsa', { modulusLength: 1024 });
    assert.match(paths(session(`  update:\n${signer(rsa1024)}`)).join('\n'), /2048–8192 bits/);
    const garbage = '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----';
    assert.match(paths(session(`  update:\n${signer(garbage)}`)).join('\n'), /not a valid public key PEM/);
    for (const ok of [pub('ec', { namedCurve: 'P-384' }), pub('rsa', { modulusLength: 2048 })]) {
      assert.doesNotThrow(() => parseSession(session(`  update:\n${signer(ok)}`)));
    }
  });

  it('refuses entries that name no identity, and unknown keys', () => {
    assert.match(paths(session('  read: [not-a-principal]')).join('\n'), /must be CREATOR, ANY, NONE/);
    assert.match(paths(session('  update: [{signer: x, extra: 1}]')).join('\n'), /update\[0\]/);
    assert.match(paths(session('  update: [{require-some: [CREATOR]}]')).join('\n'), /update\[0\]/);
    const broken = paths(session('  read: ["-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----"]'));
    assert.match(broken.join('\n'), /not a valid PEM certificate/);
  });

  it('checks $$SCONE::name$$ entries against the session (stage 2)', () => {
    const secrets = 'secrets:\n  - {name: pw, kind: ascii}\n';
    assert.match(paths(session('  read: ["$$SCONE::nope$$"]')).join('\n'), /read\[0\]: no secret named 'nope'/);
    const wrongKind = paths(session('  update: [{require-all: ["$$SCONE::pw$$", CREATOR]}]', secrets));
    assert.match(wrongKind.join('\n'), /require-all\[0\]: 'pw' is a ascii: an access entry names an x509/);
    assert.match(paths(session('  read: ["$$SCONE::pw:crt$$"]')).join('\n'), /without a suffix/);
  });

  it(`bounds each list to ${SESSION_LIMITS.accessEntries} entries, group members counted`, () => {
    const hashes = Array.from({ length: SESSION_LIMITS.accessEntries - 1 }, (_, i) => i.toString(16).padStart(64, 'a'));
    assert.doesNotThrow(() => parseSession(session(`  update: [{require-at-least-1: [${hashes.join(', ')}]}]`)));
    const over = paths(session(`  update: [CREATOR, {require-at-least-1: [${hashes.join(', ')}]}]`));
    assert.match(over.join('\n'), /the limit accessEntries = 64/);
  });
});
