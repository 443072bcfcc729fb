import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateSessionKey, openSession, readEnvelope, sessionRecipient } from '../encryption/index.js';
import type { CliError } from './errors.js';
import { checkExpectedKey, encryptUpload, INNER_CONTENT_TYPE } from './session-encryption.js';

describe('CLI session encryption', () => {
  it("accepts the mesh's cas_encryption_key when it is the published key, in any of its forms", async () => {
    const r = await sessionRecipient(generateSessionKey(), 'c'.repeat(64));
    const target = { publicKey: r.publicKey, fingerprint: r.casFingerprint, uploader: 'b'.repeat(64) };
    for (const form of [undefined, r.publicKey.toString('hex'), r.publicKey.toString('base64')]) {
      checkExpectedKey(target, form, 'cas[0].cas_encryption_key');
    }
  });

  it('refuses a cas_encryption_key that is not the published key, naming both', async () => {
    const r = await sessionRecipient(generateSessionKey(), 'c'.repeat(64));
    const other = await sessionRecipient(generateSessionKey(), 'c'.repeat(64));
    const target = { publicKey: r.publicKey, fingerprint: r.casFingerprint, uploader: 'b'.repeat(64) };
    assert.throws(
      () => checkExpectedKey(target, other.publicKey.toString('hex'), 'cas[0].cas_encryption_key'),
      (err: CliError) =>
        err.code === 'CLI_ENCRYPTION_KEY_MISMATCH' &&
        err.message.includes(other.publicKey.toString('hex')) &&
        err.message.includes(r.publicKey.toString('hex')) &&
        err.message.includes('cas[0].cas_encryption_key'),
    );
  });

  it('writes an envelope the CAS opens, holding the session as a plain upload sends it', async () => {
    const r = await sessionRecipient(generateSessionKey(), 'c'.repeat(64));
    const text = 'name: s\nversion: "0.3"\n';
    const uploader = 'b'.repeat(64);
    const file = await encryptUpload({ publicKey: r.publicKey, fingerprint: r.casFingerprint, uploader }, text);
    const opened = await openSession(readEnvelope(file, 'f')!, r, uploader);
    assert.equal(opened.plaintext.toString(), text);
    assert.equal(opened.contentType, INNER_CONTENT_TYPE);
  });
});
