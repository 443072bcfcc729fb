import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  parseSession,
  parseWrittenSession,
  redactSession,
  resolveSession,
  sessionHash,
  substituteVariables,
} from './index.js';
import { policyError } from './test-errors.js';

const fixture = (name: string) => readFileSync(`testdata/scone/kinds/${name}.yaml`, 'utf8');
const hex = (c: string) => c.repeat(64);
const CREATOR = 'c0'.repeat(32);
const attestationFixture = () =>
  substituteVariables(fixture('config-fragment-attestation'), {
    SESSION: 'frag',
    MRENCLAVE: hex('a'),
    PLATFORM: hex('b'),
  });

describe('config-fragment secrets', () => {
  it('fill a whole section (service attestation, security) as the section written out would', () => {
    const session = parseSession(attestationFixture());
    assert.deepEqual(session.services?.[0]?.attestation, { mrenclave: [hex('a')] });
    assert.deepEqual(session.security, { attestation: { mode: 'none', tolerate: ['debug-mode'] } });
    // The session as written keeps the placeholders: that is what is stored, hashed and read back.
    const written = parseWrittenSession(attestationFixture());
    assert.equal(written.services?.[0]?.attestation, '$$SCONE::api_attestation$$');
    assert.equal(written.security, '$$SCONE::test_security$$');
  });

  it('merge a list fragment into the list it stands in (access_policy, attestation variants, tolerate)', () => {
    const session = parseSession(fixture('config-fragment-lists'));
    assert.deepEqual(session.access_policy?.read, ['CREATOR', hex('a'), hex('b')]);
    const variants = session.services?.[0]?.attestation;
    assert.ok(Array.isArray(variants) && variants.length === 3);
    assert.deepEqual(variants[1], { mrenclave: [hex('2')] });
    assert.deepEqual(session.security?.attestation?.tolerate, [
      'debug-mode',
      'outdated-tcb',
      'software-hardening-needed',
    ]);
  });

  it('refuse a fragment that would bring a field the section refuses', () => {
    const text = [
      'name: a',
      'services: [{name: api, attestation: $$SCONE::f$$}]',
      'secrets:',
      '  - {name: f, kind: config-fragment, value: {mrenclave: [' + hex('a') + '], backdoor: true}}',
      '',
    ].join('\n');
    const err = policyError(text);
    assert.equal(err.code, 'POLICY_SHAPE');
    assert.ok(
      err.issues.some((i) => i.path.startsWith('services[0].attestation') && /backdoor/.test(i.message)),
      err.message,
    );
    assert.match(err.message, /with config-fragments 'f' filled in/);
    // Entries are checked too: a merged toleration must be one SCONE knows.
    const tolerate = [
      'name: a',
      'security: {attestation: {tolerate: [$$SCONE::t$$]}}',
      'secrets: [{name: t, kind: config-fragment, value: [everything]}]',
      '',
    ].join('\n');
    assert.equal(policyError(tolerate).code, 'POLICY_SHAPE');
    // And a whole access_policy from a fragment passes the same rules (ANY alone in its list).
    const acl = [
      'name: a',
      'access_policy: $$SCONE::acl$$',
      'secrets: [{name: acl, kind: config-fragment, value: {read: [ANY, CREATOR]}}]',
      '',
    ].join('\n');
    assert.ok(policyError(acl).issues.some((i) => /ANY must be alone/.test(i.message)));
  });

  it('refuse a placeholder naming a missing secret, or another kind of secret, where a fragment stands', () => {
    const missing = policyError('name: a\nsecurity: $$SCONE::nothing$$\n');
    assert.equal(missing.code, 'POLICY_REFERENCE');
    assert.match(missing.message, /security: no secret named 'nothing'/);
    const entry = policyError('name: a\naccess_policy: {read: [CREATOR, $$SCONE::nobody$$]}\n');
    assert.match(entry.message, /access_policy\.read\[1\]: no secret named 'nobody'/);
    const ascii = 'name: a\nsecurity: $$SCONE::pw$$\nsecrets: [{name: pw, kind: ascii}]\n';
    assert.match(policyError(ascii).message, /'pw' is a ascii secret: only a config-fragment can stand here/);
    const inFile =
      'name: a\nservices: [{name: s, command: "x $$SCONE::f$$"}]\n' +
      'secrets: [{name: f, kind: config-fragment, value: [1]}]\n';
    assert.match(policyError(inFile).message, /is a config-fragment: it fills attestation, security or access_policy/);
  });

  it('are filled in once: a fragment naming another fragment is refused', () => {
    const text = [
      'name: a',
      'security: $$SCONE::outer$$',
      'secrets:',
      '  - {name: outer, kind: config-fragment, value: {attestation: {tolerate: [$$SCONE::inner$$]}}}',
      '  - {name: inner, kind: config-fragment, value: [debug-mode]}',
      '',
    ].join('\n');
    assert.match(policyError(text).message, /'inner' is named inside another config-fragment/);
  });

  it('need a value, are never public, and a structured value is theirs only', () => {
    assert.match(policyError('name: a\nsecrets: [{name: f, kind: config-fragment}]\n').message, /needs a value/);
    const pub = 'name: a\nsecrets: [{name: f, kind: config-fragment, value: [1], export_public: true}]\n';
    assert.match(policyError(pub).message, /not published/);
    const ascii = 'name: a\nsecrets: [{name: f, kind: ascii, value: {a: 1}}]\n';
    assert.match(policyError(ascii).message, /structured value .* is for config-fragment secrets, not ascii/);
  });

  it('keep the filled-in session within the YAML node limit, however often a fragment is named', () => {
    const big = Array.from({ length: 3000 }, (_, i) => `k${i}`);
    const services = Array.from({ length: 10 }, (_, i) => `  - {name: s${i}, platforms: [$$SCONE::p$$]}`);
    const text = [
      'name: a',
      'services:',
      ...services,
      `secrets: [{name: p, kind: config-fragment, value: [${big}]}]`,
      '',
    ];
    assert.match(
      policyError(text.join('\n')).message,
      /with its config-fragments filled in, the session has more than/,
    );
  });

  it('are redacted in read-backs, but the hash covers their values: a pin fixes what they fill', () => {
    const written = parseWrittenSession(attestationFixture());
    const redacted = redactSession(written);
    assert.equal(redacted.secrets?.[0]?.value, '<redacted>');
    const other = parseWrittenSession(attestationFixture().replace(`[${hex('a')}]`, `[${hex('d')}]`));
    assert.notEqual(sessionHash(written, CREATOR), sessionHash(other, CREATOR));
  });

  it("count an imported fragment's value in the hash as the CAS fetched it", () => {
    const text =
      'name: a\naccess_policy: $$SCONE::acl$$\nsecrets: [{name: acl, kind: config-fragment, import: {session: o, secret: acl}}]\n';
    const written = parseWrittenSession(text);
    const good = sessionHash(written, CREATOR, new Map([['acl', { read: [hex('e')] }]]));
    const evil = sessionHash(written, CREATOR, new Map([['acl', { read: [hex('f')] }]]));
    assert.notEqual(good, evil);
    assert.throws(() => sessionHash(written, CREATOR, new Map()), /the value of config-fragment 'acl' is needed/);
    // Without the imported values: the hash of the text alone, which fragment imports are judged by.
    assert.notEqual(sessionHash(written, CREATOR), good);
  });

  it('need the value of an imported fragment to judge the session, and leave it out only to check it offline', () => {
    const text = [
      'name: a',
      'access_policy: $$SCONE::acl$$',
      'secrets: [{name: acl, kind: config-fragment, import: {session: other, secret: acl}}]',
      '',
    ].join('\n');
    const written = parseWrittenSession(text);
    assert.equal(parseSession(text).access_policy, undefined);
    assert.throws(
      () => resolveSession(written, { unknownImports: 'refuse' }),
      /config-fragment 'acl' is not available/,
    );
    const acl = { read: [hex('e')], update: ['NONE'] };
    const session = resolveSession(written, { unknownImports: 'refuse', imported: () => acl });
    assert.deepEqual(session.access_policy, acl);
    assert.throws(
      () => resolveSession(written, { unknownImports: 'refuse', imported: () => ({ read: 'CREATOR' }) }),
      /with config-fragments 'acl' filled in/,
    );
    // An import without kind: config-fragment is not taken for one.
    const kindless = text.replace('kind: config-fragment, ', '');
    assert.match(policyError(kindless).message, /an import without kind: config-fragment/);
  });

  it('leave mrenclave one value or a list, and merge a platforms fragment beside other placeholders', () => {
    const session = parseSession(fixture('platforms'));
    const service = session.services?.[0];
    assert.deepEqual(service?.attestation, { mrenclave: [hex('4')] });
    assert.deepEqual(service?.platforms, [
      hex('5'),
      '$$SCONE::platform_bin$$',
      '$$SCONE::platform_text$$',
      hex('8'),
      hex('9'),
    ]);
    const list = parseSession(`name: a\nservices: [{name: s, attestation: {mrenclave: [${hex('a')}, ${hex('b')}]}}]\n`);
    assert.deepEqual(list.services?.[0]?.attestation, { mrenclave: [hex('a'), hex('b')] });
  });
});
