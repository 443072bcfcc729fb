export { SecretsError, type SecretsErrorCode } from './errors.js';
export {
  KEY_TYPES,
  RSA_GENERATIONS_AT_ONCE,
  generatePrivateKey,
  generatePrivateKeyAsync,
  keyHash,
  parsePrivateKeyPem,
  privateKeyObject,
  publicKeySpki,
  spkiOfPublicKey,
  type KeyType,
  type PrivateKeyMaterial,
} from './keys.js';
export { issueCertificate, issueCertificateAsync, type CertificateRequest } from './x509.js';
export { MIN_VALID_FOR_S, ONE_YEAR_S, parseDuration, parseValidFor } from './cert-fields.js';
export { certificateSecret, type Dependencies as CertificateDependencies } from './certificates.js';
export {
  base32,
  base32Decode,
  encodeBytes,
  pemBlocks,
  pemDecode,
  pemDecodeAll,
  pemEncode,
  type ByteEncoding,
  type PemBlock,
} from './encodings.js';
export { YIELD_AFTER_MS, generateSecretSet, type GenerateOptions, type PreviousSecrets } from './generate.js';
export { DEFAULT_SIZE, randomAscii } from './values.js';
export { renderSecret } from './render.js';
export type {
  SecretKind,
  SecretLookup,
  SecretSpec,
  StoredCertificate,
  StoredPgpKey,
  StoredPrivateKey,
  StoredSecret,
  StoredSecretWithKey,
} from './types.js';
export { selfSignedIdentity, type SelfSignedIdentity } from './identity.js';
