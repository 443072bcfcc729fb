import { VeilError, type ErrorCatalogue } from '../errors.js';

export type EncryptionErrorCode =
  | 'ENCRYPTION_KEY_INVALID'
  | 'ENCRYPTION_ENVELOPE_INVALID'
  | 'ENCRYPTION_UNSUPPORTED'
  | 'ENCRYPTION_WRONG_RECIPIENT'
  | 'ENCRYPTION_WRONG_UPLOADER'
  | 'ENCRYPTION_OPEN_FAILED';

export const ENCRYPTION_CATALOGUE: ErrorCatalogue<EncryptionErrorCode> = {
  ENCRYPTION_KEY_INVALID: {
    summary: 'a session-encryption key given is not an X25519 public key (64 hex digits, base64 or PEM)',
    hint: "use the key 'veil cas show-identification --session-encryption-key' prints",
  },
  ENCRYPTION_ENVELOPE_INVALID: {
    summary: 'the text is not an encrypted session (a Veil envelope: JSON with veil_encrypted_session)',
    hint: "make it with 'veil session encrypt FILE'",
  },
  ENCRYPTION_UNSUPPORTED: {
    summary: 'the envelope names a version or suite that Veil does not support',
    hint: "encrypt the session again with this Veil's 'veil session encrypt'",
  },
  ENCRYPTION_WRONG_RECIPIENT: {
    summary: 'the session was encrypted for another session-encryption key or another CAS',
    hint: "encrypt it for this CAS: 'veil session encrypt FILE --cas URL'",
  },
  ENCRYPTION_WRONG_UPLOADER: {
    summary: 'the envelope names another uploader (TLS client key hash) than the client that sent it',
    hint: "send it with the identity it names, or encrypt it again with 'veil session encrypt FILE --uploader'",
  },
  ENCRYPTION_OPEN_FAILED: {
    summary: 'the encrypted session does not decrypt: it was changed or truncated on its way',
    hint: 'encrypt the session again and send the file unchanged',
  },
};

/** Errors of session encryption: they name keys by hash and envelopes by field, never plaintext. */
export class EncryptionError extends VeilError<EncryptionErrorCode> {}
