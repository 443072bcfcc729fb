export { EncryptionError, ENCRYPTION_CATALOGUE, type EncryptionErrorCode } from './errors.js';
export {
  generateSessionKey,
  openSession,
  parsePublicKey,
  plaintextBytes,
  readEnvelope,
  recipientHash,
  sealSession,
  sessionRecipient,
  type SessionRecipient,
} from './hpke.js';
