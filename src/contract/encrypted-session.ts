import { z } from 'zod';
import { base64, hex } from './evidence.js';

/**
 * Encrypted session uploads (`PUT /v1/encrypted_sessions`, SCONE's path): a session encrypted with HPKE (RFC 9180)
 * to the CAS's session-encryption key, which `GET /v1/identity` publishes beside the CA fingerprint.
 */

/** The one suite Veil speaks: base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM. */
export const SESSION_ENCRYPTION_SUITE = 'HPKE-Base/DHKEM(X25519,HKDF-SHA256)/HKDF-SHA256/AES-256-GCM';
/** 2: the envelope names and binds its uploader (version 1 envelopes, which did not, are refused by name). */
export const ENCRYPTED_SESSION_VERSION = 2;

/** A media type as HTTP writes it (`type/subtype`, no parameters): what the inner upload is. */
const mediaType = z
  .string()
  .max(127)
  .regex(/^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/, 'must be a media type, e.g. application/yaml');

/**
 * The envelope. Version and suite are plain fields, checked by the opener, so that one it does not know is
 * refused by name ("not supported by Veil") rather than as a shape error. `recipient` is the SHA-256 of the raw
 * public key it is encrypted to, so a CAS tells "for another key" (another CAS, a rotated key) from tampering.
 */
export const encryptedSessionSchema = z.strictObject({
  veil_encrypted_session: z.number().int(),
  suite: z.string().max(200),
  recipient: hex(64),
  cas_fingerprint: hex(64),
  /**
   * Key hash (hex SHA-256 of the DER SPKI) of the TLS client identity that must send the envelope: it becomes
   * the session's CREATOR, so a carrier that sends it with its own certificate is refused (HPKE info binds it).
   */
  uploader: hex(64),
  content_type: mediaType,
  /** The KEM's encapsulated key: 32 bytes for X25519. */
  enc: base64(64),
  ciphertext: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64'),
});
export type EncryptedSession = z.infer<typeof encryptedSessionSchema>;

/** `GET /v1/identity`: what a client needs to pin the CAS (`cas_key`) and to encrypt sessions to it. */
export const identityAnswerSchema = z.strictObject({
  /** SHA-256 of the CA certificate's DER: the CAS key a mesh's `cas_key` names. */
  ca_fingerprint: hex(64),
  /** The raw X25519 public key in hex: the form of SCONE's `cas_encryption_key`. */
  session_encryption_key: hex(64),
  /** SHA-256 of that raw key: an envelope's `recipient`. */
  session_encryption_key_hash: hex(64),
  session_encryption_suite: z.string(),
});
export type IdentityAnswer = z.infer<typeof identityAnswerSchema>;
