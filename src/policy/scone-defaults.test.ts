import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseSession, sessionJsonSchema } from './index.js';
import { policyError } from './test-errors.js';

/**
 * SCONE's fields for what Veil does not do: refused by name, or accepted only with the value that means what
 * Veil does anyway. None is accepted and then ignored.
 */
const READBACK = fileURLToPath(new URL('../../testdata/scone/readback/redis-session.yaml', import.meta.url));
const TOKEN = 'tok-9f8e7d6c5b4a';

/** `text` is refused as unsupported, once, at `path`, naming `construct`, and the token is never repeated. */
function refusedAt(text: string, path: string, construct: string): string {
  const err = policyError(text);
  assert.equal(err.code, 'POLICY_UNSUPPORTED', err.message);
  assert.deepEqual(
    err.issues.map((i) => i.path),
    [path],
  );
  const message = err.issues[0]!.message;
  assert.ok(message.startsWith(`${construct} is not supported by Veil: `), message);
  for (const said of [err.message, err.hint ?? '', JSON.stringify(err.issues)]) assert.ok(!said.includes(TOKEN), said);
  return message;
}

const service = (field: string) => `name: a\nservices:\n  - {name: s, command: run, ${field}}\n`;

describe('second factors Veil does not check are refused, never kept', () => {
  it("a service's one_time_password_shared_secret", () => {
    const says = refusedAt(
      service(`one_time_password_shared_secret: ${TOKEN}`),
      'services[0].one_time_password_shared_secret',
      'one_time_password_shared_secret',
    );
    assert.match(says, /one-time password .* attestation evidence alone/);
  });

  it("security.attestation's one_time_password_shared_secret", () => {
    refusedAt(
      `name: a\nsecurity:\n  attestation: {mode: none, one_time_password_shared_secret: ${TOKEN}}\n`,
      'security.attestation.one_time_password_shared_secret',
      'attestation.one_time_password_shared_secret',
    );
  });

  it('security.service_access_token', () => {
    const says = refusedAt(
      `name: a\nsecurity:\n  service_access_token: ${TOKEN}\n`,
      'security.service_access_token',
      'service_access_token',
    );
    assert.match(says, /SCONE_SERVICE_ACCESS_TOKEN/);
  });
});

describe('volumes are refused, wherever they are written', () => {
  it('top-level volumes (with their fspf_key, never repeated)', () => {
    const says = refusedAt(`name: a\nvolumes:\n  - {name: v, fspf_key: ${TOKEN}}\n`, 'volumes', 'volumes');
    assert.match(says, /encrypted volumes .* not implemented/);
  });

  it('images[].volumes', () => {
    refusedAt(
      'name: a\nimages:\n  - name: i\n    volumes: [{name: v, path: /v, update_policy: rollback_protected}]\n',
      'images[0].volumes',
      'images[].volumes',
    );
  });
});

describe("SCONE's defaults, which mean what Veil does, are accepted; other values are refused", () => {
  it('persistency: None (what SCONE read-backs write), nothing else', () => {
    assert.equal(parseSession(service('persistency: None')).services![0]!.persistency, 'None');
    const says = refusedAt(service('persistency: Full'), 'services[0].persistency', 'persistency other than None');
    assert.match(says, /no state of a service across runs/);
  });

  it('fspf_update_policy: rollback_protected_reinitializable (the default); no_rollback_protection is refused', () => {
    const ok = parseSession(service('fspf_update_policy: rollback_protected_reinitializable'));
    assert.equal(ok.services![0]!.fspf_update_policy, 'rollback_protected_reinitializable');
    const says = refusedAt(
      service('fspf_update_policy: no_rollback_protection'),
      'services[0].fspf_update_policy',
      "fspf_update_policy 'no_rollback_protection'",
    );
    assert.match(says, /tag the session pins \(fspf_tag\)/);
    // A misspelt value is a fault of the document, told with the value it is closest to.
    const typo = policyError(service('fspf_update_policy: rollback_protected_reinitialisable'));
    assert.equal(typo.code, 'POLICY_SHAPE');
  });

  it('singleton_enclaves: false (the default); true is refused', () => {
    assert.equal(parseSession('name: a\nsecurity: {singleton_enclaves: false}\n').security?.singleton_enclaves, false);
    const says = refusedAt(
      'name: a\nsecurity: {singleton_enclaves: true}\n',
      'security.singleton_enclaves',
      'singleton_enclaves: true',
    );
    assert.match(says, /one running instance/);
  });

  it('secret_config: {store_in: !cas} (the default); Azure Key Vault and anything else are refused', () => {
    assert.deepEqual(parseSession('name: a\nsecret_config:\n  store_in: !cas\n').secret_config, { store_in: '' });
    for (const value of [`{store_in: !akv {token: ${TOKEN}, vault: v}}`, `{store_in: !cas, token: ${TOKEN}}`]) {
      const says = refusedAt(
        `name: a\nsecret_config: ${value}\n`,
        'secret_config',
        'secret_config other than store_in: !cas',
      );
      assert.match(says, /Azure Key Vault/);
    }
  });

  it('in the JSON Schema too: refused fields never validate, the others only with their default', () => {
    const text = JSON.stringify(sessionJsonSchema());
    for (const field of ['service_access_token', 'one_time_password_shared_secret', 'volumes']) {
      assert.match(text, new RegExp(`"${field}":\\{"not":\\{\\},"description":"[^"]*not supported by Veil`));
    }
    assert.match(text, /"persistency":\{"anyOf":\[\{"type":"string","const":"None"\},\{"not":\{\}/);
    assert.match(text, /"singleton_enclaves":\{"anyOf":\[\{"type":"boolean","const":false\},\{"not":\{\}/);
  });
});

describe("a read-back of SCONE's CAS", () => {
  it('(version: 0.3.10, predecessor: null, persistency: None, creator) parses as it is', () => {
    const session = parseSession(readFileSync(READBACK, 'utf8'));
    assert.equal(session.version, '0.3.10');
    assert.equal(session.predecessor, null);
    assert.equal(session.services![0]!.persistency, 'None');
    assert.match(session.creator ?? '', /^-----BEGIN CERTIFICATE-----/);
  });
});
