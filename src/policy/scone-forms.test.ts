import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type PolicyError, parseSession, sessionHash } from './index.js';

const CREATOR = 'c0'.repeat(32);
const refused =
  (pattern: RegExp, path: string, code = 'POLICY_SHAPE') =>
  (e: PolicyError) =>
    e.code === code && e.issues.some((i) => i.path === path && pattern.test(i.message));
const unsupported = (pattern: RegExp, path: string) => refused(pattern, path, 'POLICY_UNSUPPORTED');

describe("SCONE's forms of the session language", () => {
  it('takes ANY and NONE as a scalar as well as a list, and hashes both forms alike', () => {
    const scalar = parseSession('name: a\naccess_policy: {read: ANY, update: NONE}\n');
    assert.deepEqual(scalar.access_policy, { read: ['ANY'], update: ['NONE'] });
    const list = parseSession('name: a\naccess_policy: {read: [ANY], update: [NONE]}\n');
    assert.equal(sessionHash(scalar, CREATOR), sessionHash(list, CREATOR));
    // Only those two: any other entry is one of a list, which is what SCONE writes.
    assert.throws(() => parseSession('name: a\naccess_policy: {read: CREATOR}\n'), { code: 'POLICY_SHAPE' });
  });

  it('refuses the Azure-only secrets by name, and says why', () => {
    const aad = 'name: a\nsecrets:\n  - {name: t, kind: aad-token}\n';
    assert.throws(
      () => parseSession(aad),
      unsupported(/kind 'aad-token' is not supported by Veil: .*needs Azure/, 'secrets[0].kind'),
    );
    const akv = 'name: a\nsecrets:\n  - {name: t, import_akv: {name: x, vault: v}}\n';
    assert.throws(
      () => parseSession(akv),
      unsupported(/import_akv is not supported by Veil: .*Azure Key Vault needs Azure/, 'secrets[0].import_akv'),
    );
    const typo = 'name: a\nsecrets:\n  - {name: t, kind: asci}\n';
    assert.throws(() => parseSession(typo), refused(/expected one of/, 'secrets[0].kind'));
  });

  it('names the fields of the old language v0.1 (no version) and what to change, not "unknown field"', () => {
    const old = ['name: a', 'digest: abc', 'tags: [x]', 'images:', '  - {name: i, mrenclaves: [abc]}', ''].join('\n');
    const says = (e: PolicyError) =>
      e.issues.length === 3 &&
      e.issues.every((i) => /session language v0\.1/.test(i.message) && /version: "0\.3"/.test(i.message)) &&
      e.issues.some((i) => i.path === 'images[0].mrenclaves' && /services\[\]\.mrenclaves/.test(i.message));
    assert.throws(
      () => parseSession(old),
      (e: PolicyError) => e.code === 'POLICY_UNSUPPORTED' && says(e),
    );
    // With a version, they are unknown fields of v0.3 as any other.
    assert.throws(() => parseSession(`version: "0.3"\n${old}`), refused(/unknown field 'digest'/, 'digest'));
  });
});

describe('image names', () => {
  it('are arbitrary strings, as in sconedocs, and unique within the session', () => {
    const image = 'registry.scontain.com/sconecuratedimages/dapps:copy_demo';
    const text = (second: string) =>
      `name: a\nservices:\n  - {name: s, image_name: "${image}"}\nimages:\n  - {name: "${image}"}\n${second}`;
    assert.equal(parseSession(text('')).images?.[0]?.name, image);
    const twice = text(`  - {name: "${image}"}\n`);
    assert.throws(
      () => parseSession(twice),
      (e: PolicyError) => e.code === 'POLICY_REFERENCE',
    );
    assert.throws(
      () => parseSession('name: a\nimages:\n  - {name: ""}\n'),
      refused(/must not be empty/, 'images[0].name'),
    );
  });
});
