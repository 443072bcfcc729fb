export { SecretsError, type SecretsErrorCode } from './errors.js';
export { KEY_TYPES, generatePrivateKey, keyHash, parsePrivateKeyPem, privateKeyObject, publicKeySpki, type KeyType, type PrivateKeyMaterial } from './keys.js';
export { issueCertificate, parseValidFor, type CertificateRequest } from './x509.js';
export { base32, pemDecodeAll, pemEncode } from './encodings.js';
export { generateSecretSet, randomAscii, type GenerateOptions } from './generate.js';
export { renderSecret } from './render.js';
export type { SecretKind, SecretLookup, SecretSpec, StoredSecret } from './types.js';
export { selfSignedIdentity, type SelfSignedIdentity } from './identity.js';
