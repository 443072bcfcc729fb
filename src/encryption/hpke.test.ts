import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { SESSION_ENCRYPTION_SUITE, type EncryptedSession } from '../contract/index.js';
import {
  EncryptionError,
  generateSessionKey,
  openSession,
  parsePublicKey,
  readEnvelope,
  sealSession,
  sessionRecipient,
  type EncryptionErrorCode,
  type SessionRecipient,
} from './index.js';

const FINGERPRINT = 'f'.repeat(64);
const UPLOADER = 'a'.repeat(64);
const SESSION = 'name: s\nversion: "0.3"\nsecrets:\n  - name: pw\n    kind: ascii\n    value: hunter2-plaintext\n';

async function recipient(fingerprint = FINGERPRINT): Promise<SessionRecipient> {
  return sessionRecipient(generateSessionKey(), fingerprint);
}

async function sealed(to: SessionRecipient, contentType = 'application/yaml'): Promise<EncryptedSession> {
  return sealSession({
    publicKey: to.publicKey,
    casFingerprint: to.casFingerprint,
    uploader: UPLOADER,
    contentType,
    plaintext: SESSION,
  });
}

async function refused(promise: Promise<unknown>, code: EncryptionErrorCode, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof EncryptionError, String(err));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    assert.ok(!err.message.includes('hunter2'), 'no plaintext in the message');
    return true;
  });
}

/** One base64 character of `text` changed at `at`, keeping it base64. */
function flip(text: string, at: number): string {
  const c = text[at] === 'A' ? 'B' : 'A';
  return text.slice(0, at) + c + text.slice(at + 1);
}

describe('encrypted sessions (HPKE, RFC 9180)', () => {
  it('round-trips a session, and the envelope holds no plaintext', async () => {
    const to = await recipient();
    const envelope = await sealed(to);
    assert.equal(envelope.suite, SESSION_ENCRYPTION_SUITE);
    assert.equal(envelope.recipient, to.keyHash);
    assert.ok(!JSON.stringify(envelope).includes('hunter2'));
    const opened = await openSession(envelope, to, UPLOADER);
    assert.equal(opened.plaintext.toString('utf8'), SESSION);
    assert.equal(opened.contentType, 'application/yaml');
    assert.deepEqual(readEnvelope(JSON.stringify(envelope), 'f.json'), envelope);
  });

  it('refuses an envelope made for another key, naming both key hashes', async () => {
    const to = await recipient();
    const other = await recipient();
    await refused(
      openSession(await sealed(other), to, UPLOADER),
      'ENCRYPTION_WRONG_RECIPIENT',
      new RegExp(other.keyHash),
    );
  });

  it('refuses an envelope made for another CAS (the fingerprint info binds), even with the same key', async () => {
    const to = await recipient();
    const envelope = await sealed(to);
    const sameKeyOtherCas: SessionRecipient = { ...to, casFingerprint: 'e'.repeat(64) };
    await refused(
      openSession(envelope, sameKeyOtherCas, UPLOADER),
      'ENCRYPTION_WRONG_RECIPIENT',
      /CA fingerprint f{64}/,
    );
    // Relabelled to pass the field check: the key schedule still binds the fingerprint it was made for.
    const relabelled = { ...envelope, cas_fingerprint: 'e'.repeat(64) };
    await refused(openSession(relabelled, sameKeyOtherCas, UPLOADER), 'ENCRYPTION_OPEN_FAILED', /authentication tag/);
  });

  it('refuses a tampered ciphertext, enc, or content type (the AEAD tag)', async () => {
    const to = await recipient();
    const envelope = await sealed(to);
    const ct = envelope.ciphertext;
    for (const at of [0, Math.floor(ct.length / 2), ct.length - 4]) {
      await refused(
        openSession({ ...envelope, ciphertext: flip(ct, at) }, to, UPLOADER),
        'ENCRYPTION_OPEN_FAILED',
        /tag/,
      );
    }
    await refused(
      openSession({ ...envelope, enc: flip(envelope.enc, 3) }, to, UPLOADER),
      'ENCRYPTION_OPEN_FAILED',
      /tag/,
    );
    const relabelled = { ...envelope, content_type: 'application/json' };
    await refused(openSession(relabelled, to, UPLOADER), 'ENCRYPTION_OPEN_FAILED', /tag/);
  });

  it('refuses a truncated ciphertext', async () => {
    const to = await recipient();
    const envelope = await sealed(to);
    const bytes = Buffer.from(envelope.ciphertext, 'base64');
    const cut = (n: number) => ({ ...envelope, ciphertext: bytes.subarray(0, n).toString('base64') });
    await refused(openSession(cut(bytes.length - 1), to, UPLOADER), 'ENCRYPTION_OPEN_FAILED', /tag/);
    await refused(openSession(cut(10), to, UPLOADER), 'ENCRYPTION_OPEN_FAILED', /shorter than its authentication tag/);
    await refused(openSession(cut(0), to, UPLOADER), 'ENCRYPTION_OPEN_FAILED', /shorter/);
  });

  it('refuses an unknown suite or version by name, as not supported by Veil', async () => {
    const to = await recipient();
    const envelope = await sealed(to);
    const suite = 'HPKE-Base/DHKEM(P-256,HKDF-SHA256)/HKDF-SHA256/AES-128-GCM';
    await refused(
      openSession({ ...envelope, suite }, to, UPLOADER),
      'ENCRYPTION_UNSUPPORTED',
      /P-256.*not supported by Veil/,
    );
    const v1 = { ...envelope, veil_encrypted_session: 1 };
    await refused(openSession(v1, to, UPLOADER), 'ENCRYPTION_UNSUPPORTED', /version 1 is not supported by Veil/);
  });

  it('reads envelopes strictly: unknown fields refused, YAML is not an envelope', async () => {
    const envelope = await sealed(await recipient());
    assert.throws(
      () => readEnvelope(JSON.stringify({ ...envelope, note: 'x' }), 'f.json'),
      (err: EncryptionError) => err.code === 'ENCRYPTION_ENVELOPE_INVALID' && /note/.test(err.message),
    );
    const { enc: _enc, ...noEnc } = envelope;
    assert.throws(() => readEnvelope(JSON.stringify(noEnc), 'f.json'), /enc/);
    assert.equal(readEnvelope(SESSION, 'f.yaml'), undefined);
    assert.equal(readEnvelope('{"name": "s", "version": "0.3"}', 'f.json'), undefined);
    const to = await recipient();
    const padded = { ...(await sealed(to)), enc: `${(await sealed(to)).enc.slice(0, -1)}=` };
    await assert.rejects(openSession(padded, to, UPLOADER), EncryptionError);
  });

  it('takes the public key as hex, base64, base64url, PEM or base64 DER, and refuses other keys', async () => {
    const to = await recipient();
    const pem = createPublicKey({ key: Buffer.concat([SPKI_X25519, to.publicKey]), format: 'der', type: 'spki' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
    for (const form of [
      to.publicKey.toString('hex'),
      to.publicKey.toString('hex').toUpperCase(),
      to.publicKey.toString('base64'),
      to.publicKey.toString('base64url'),
      pem,
      Buffer.concat([SPKI_X25519, to.publicKey]).toString('base64'),
    ]) {
      assert.deepEqual(parsePublicKey(form, '--key'), to.publicKey, form);
    }
    const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    for (const bad of [ed, 'abc', '0'.repeat(63), '']) {
      assert.throws(
        () => parsePublicKey(bad, '--key'),
        (err: EncryptionError) => err.code === 'ENCRYPTION_KEY_INVALID' && /--key/.test(err.message),
      );
    }
  });
});

/** The DER prefix of an X25519 SubjectPublicKeyInfo (RFC 8410). */
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');
