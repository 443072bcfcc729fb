import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  timingSafeEqual,
  type webcrypto,
} from 'node:crypto';
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import {
  ENCRYPTED_SESSION_VERSION,
  SESSION_ENCRYPTION_SUITE,
  encryptedSessionSchema,
  type EncryptedSession,
} from '../contract/index.js';
import { describeIssues, issuesOf } from '../contract/index.js';
import { EncryptionError } from './errors.js';

type CryptoKey = webcrypto.CryptoKey;

/**
 * Sessions encrypted to a CAS with HPKE (RFC 9180, base mode). `info` binds a label and the CAS's CA
 * fingerprint, so an envelope made for one CAS never opens at another that happened to hold the same key, and the
 * uploader's key hash, so an envelope relabelled for another sender (a carrier) does not open either; the
 * associated data binds the inner content type, so nobody on the way can relabel what the plaintext is.
 */
const LABEL = 'veil-encrypted-session-v2';
const ENC_BYTES = 32;
const TAG_BYTES = 16;

let cachedSuite: CipherSuite | undefined;
function suite(): CipherSuite {
  cachedSuite ??= new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
  return cachedSuite;
}

const bytes = (text: string) => new Uint8Array(Buffer.from(text, 'utf8'));
const infoFor = (casFingerprint: string, uploader: string) =>
  bytes(`${LABEL}\0cas:${casFingerprint}\0uploader:${uploader.toLowerCase()}`);
const aadFor = (contentType: string) => bytes(`${LABEL}\0content-type:${contentType}`);

/** The hash an envelope names its recipient by: SHA-256 of the raw 32-byte X25519 public key, in hex. */
export function recipientHash(publicKey: Buffer): string {
  return createHash('sha256').update(publicKey).digest('hex');
}

/** A CAS's session-encryption key pair: made once, kept (encrypted) in its store as PKCS#8 DER. */
export function generateSessionKey(): Buffer {
  return generateKeyPairSync('x25519').privateKey.export({ type: 'pkcs8', format: 'der' });
}

/** What a CAS opens envelopes with: its key (imported once) and the fingerprint its envelopes must name. */
export interface SessionRecipient {
  publicKey: Buffer;
  keyHash: string;
  casFingerprint: string;
  privateKey: CryptoKey;
}

export async function sessionRecipient(pkcs8: Buffer, casFingerprint: string): Promise<SessionRecipient> {
  const jwk = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' });
  if (jwk.crv !== 'X25519' || !jwk.x || !jwk.d) throw new Error('the stored session-encryption key is not X25519');
  const privateKey = await suite().kem.importKey('jwk', { kty: 'OKP', crv: 'X25519', x: jwk.x, d: jwk.d }, false);
  const publicKey = Buffer.from(jwk.x, 'base64url');
  return { publicKey, keyHash: recipientHash(publicKey), casFingerprint, privateKey };
}

/**
 * A session-encryption public key as people carry it: 64 hex digits (the form the CAS publishes, and SCONE's
 * `cas_encryption_key`), base64 or base64url of the 32 raw bytes, or a PEM / base64 DER SubjectPublicKeyInfo.
 */
export function parsePublicKey(text: string, where: string): Buffer {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (t.startsWith('-----BEGIN PUBLIC KEY-----')) return fromSpki(t, where);
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) {
    const raw = Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64');
    if (raw.length === 32) return raw;
    if (raw.length > 32 && raw.length <= 64) return fromSpki(raw, where);
  }
  throw invalidKey(where);
}

function fromSpki(key: string | Buffer, where: string): Buffer {
  try {
    const pub = typeof key === 'string' ? createPublicKey(key) : createPublicKey({ key, format: 'der', type: 'spki' });
    const jwk = pub.export({ format: 'jwk' });
    if (pub.asymmetricKeyType === 'x25519' && jwk.x) return Buffer.from(jwk.x, 'base64url');
  } catch {
    // Reported below, as every other form that is not an X25519 key.
  }
  throw invalidKey(where);
}

function invalidKey(where: string): EncryptionError {
  return new EncryptionError('ENCRYPTION_KEY_INVALID', `${where} is not an X25519 public key`, {
    hint: "give the key as 'veil cas show-identification --session-encryption-key' prints it (64 hex digits)",
  });
}

/** Encrypts one upload (a session's text, or another upload body the CAS takes) to a CAS's key. */
export async function sealSession(opts: {
  publicKey: Buffer;
  casFingerprint: string;
  /** Key hash of the TLS client identity that will send the envelope (and so create the session). */
  uploader: string;
  contentType: string;
  plaintext: string | Buffer;
}): Promise<EncryptedSession> {
  const s = suite();
  let recipientPublicKey: CryptoKey;
  try {
    recipientPublicKey = await s.kem.deserializePublicKey(new Uint8Array(opts.publicKey));
  } catch {
    throw invalidKey(`the session-encryption key ${opts.publicKey.toString('hex')}`);
  }
  const plaintext = typeof opts.plaintext === 'string' ? Buffer.from(opts.plaintext, 'utf8') : opts.plaintext;
  const uploader = opts.uploader.toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(uploader)) throw invalidUploader(opts.uploader);
  const info = infoFor(opts.casFingerprint, uploader);
  const sealed = await s.seal({ recipientPublicKey, info }, new Uint8Array(plaintext), aadFor(opts.contentType));
  return {
    veil_encrypted_session: ENCRYPTED_SESSION_VERSION,
    suite: SESSION_ENCRYPTION_SUITE,
    recipient: recipientHash(opts.publicKey),
    cas_fingerprint: opts.casFingerprint,
    uploader,
    content_type: opts.contentType,
    enc: Buffer.from(sealed.enc).toString('base64'),
    ciphertext: Buffer.from(sealed.ct).toString('base64'),
  };
}

/** The length of the plaintext inside, from the ciphertext's length alone: to refuse before decrypting. */
export function plaintextBytes(envelope: EncryptedSession): number {
  const b64 = envelope.ciphertext;
  const padding = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  return Math.max(0, Math.floor((b64.length * 3) / 4) - padding - TAG_BYTES);
}

/**
 * Opens an envelope made for `recipient`: version, suite, CAS and key are checked first (so the error says which
 * one differs), then HPKE decrypts and AES-GCM checks the tag: any change to `enc`, the ciphertext or the content
 * type fails as a whole.
 */
export async function openSession(
  envelope: EncryptedSession,
  recipient: SessionRecipient,
  sender: string,
): Promise<{ contentType: string; plaintext: Buffer }> {
  checkVersionAndSuite(envelope);
  checkRecipient(envelope, recipient);
  checkUploader(envelope, sender);
  const enc = canonicalBase64(envelope.enc, 'enc');
  const ciphertext = canonicalBase64(envelope.ciphertext, 'ciphertext');
  if (enc.length !== ENC_BYTES) throw invalidField('enc', `is ${enc.length} bytes, not ${ENC_BYTES}`);
  if (ciphertext.length < TAG_BYTES) throw openFailed('the ciphertext is shorter than its authentication tag');
  try {
    const info = infoFor(recipient.casFingerprint, sender);
    const params = { recipientKey: recipient.privateKey, enc: new Uint8Array(enc), info };
    const plaintext = await suite().open(params, new Uint8Array(ciphertext), aadFor(envelope.content_type));
    return { contentType: envelope.content_type, plaintext: Buffer.from(plaintext) };
  } catch {
    throw openFailed('its authentication tag does not match (changed, truncated, or a forged enc)');
  }
}

function checkVersionAndSuite(envelope: EncryptedSession): void {
  if (envelope.veil_encrypted_session !== ENCRYPTED_SESSION_VERSION) {
    throw new EncryptionError(
      'ENCRYPTION_UNSUPPORTED',
      `encrypted-session version ${envelope.veil_encrypted_session} is not supported by Veil ` +
        `(this Veil reads version ${ENCRYPTED_SESSION_VERSION})`,
      { hint: "encrypt the session with this Veil's 'veil session encrypt'" },
    );
  }
  if (envelope.suite !== SESSION_ENCRYPTION_SUITE) {
    throw new EncryptionError(
      'ENCRYPTION_UNSUPPORTED',
      `suite '${envelope.suite}' is not supported by Veil (it decrypts ${SESSION_ENCRYPTION_SUITE} only)`,
      { hint: "encrypt the session with 'veil session encrypt', which uses that suite" },
    );
  }
}

function checkRecipient(envelope: EncryptedSession, recipient: SessionRecipient): void {
  if (!sameHex(envelope.cas_fingerprint, recipient.casFingerprint)) {
    throw new EncryptionError(
      'ENCRYPTION_WRONG_RECIPIENT',
      `the session was encrypted for the CAS with CA fingerprint ${envelope.cas_fingerprint}, ` +
        `not for this one (${recipient.casFingerprint})`,
      { hint: "encrypt it for this CAS: 'veil session encrypt FILE --cas URL'" },
    );
  }
  if (!sameHex(envelope.recipient, recipient.keyHash)) {
    throw new EncryptionError(
      'ENCRYPTION_WRONG_RECIPIENT',
      `the session was encrypted for the key with hash ${envelope.recipient}, not for this CAS's ` +
        `session-encryption key (hash ${recipient.keyHash})`,
      { hint: "encrypt it again with the key 'veil cas show-identification --session-encryption-key' prints" },
    );
  }
}

/** The envelope is sent by the identity it names: the one that will be the session's CREATOR. */
function checkUploader(envelope: EncryptedSession, sender: string): void {
  if (sameHex(envelope.uploader.toLowerCase(), sender.toLowerCase())) return;
  throw new EncryptionError(
    'ENCRYPTION_WRONG_UPLOADER',
    `the session was encrypted to be uploaded by the client with key hash ${envelope.uploader}, ` +
      `but the client with key hash ${sender} sent it`,
    {
      hint:
        "send it with the identity it names, or encrypt it again naming the sender: 'veil session encrypt FILE " +
        "--uploader CERT.pem|KEYHASH' (the uploader becomes the session's CREATOR)",
    },
  );
}

function invalidUploader(given: string): EncryptionError {
  return new EncryptionError('ENCRYPTION_KEY_INVALID', `the uploader '${given}' is not a key hash (64 hex digits)`, {
    hint: 'name the uploader by its certificate (CERT.pem) or its key hash (hex SHA-256 of its DER SPKI)',
  });
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Base64 as written by Buffer: anything else (a second encoding of the same bytes) is refused. */
function canonicalBase64(text: string, field: string): Buffer {
  const decoded = Buffer.from(text, 'base64');
  if (decoded.toString('base64') !== text) throw invalidField(field, 'is not canonical base64');
  return decoded;
}

function invalidField(field: string, what: string): EncryptionError {
  return new EncryptionError('ENCRYPTION_ENVELOPE_INVALID', `the encrypted session's ${field} ${what}`, {
    hint: "make the envelope with 'veil session encrypt FILE' and send it unchanged",
  });
}

function openFailed(why: string): EncryptionError {
  return new EncryptionError('ENCRYPTION_OPEN_FAILED', `the encrypted session does not decrypt: ${why}`, {
    hint: 'encrypt the session again and send the file unchanged',
  });
}

/**
 * An envelope from text, or undefined when the text is not one (a session in YAML): a JSON object with the
 * field `veil_encrypted_session`. A text that claims to be one and is malformed is an error, not a session.
 */
export function readEnvelope(text: string, where: string): EncryptedSession | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null || !('veil_encrypted_session' in json)) return undefined;
  const parsed = encryptedSessionSchema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issues = describeIssues(issuesOf(parsed.error, 'envelope', json));
  throw new EncryptionError('ENCRYPTION_ENVELOPE_INVALID', `${where} is not a valid encrypted session: ${issues}`, {
    hint: "make it with 'veil session encrypt FILE' and send it unchanged",
  });
}
