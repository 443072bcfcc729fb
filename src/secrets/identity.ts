import { pemEncode } from './encodings.js';
import { generatePrivateKey, publicKeySpki } from './keys.js';
import { issueCertificate } from './x509.js';

export interface SelfSignedIdentity {
  certPem: string;
  keyPem: string;
  /** DER SubjectPublicKeyInfo of the key: what evidence binds and key hashes name. */
  spki: Buffer;
}

/** A fresh P-256 key with a self-signed certificate: a TLS client identity (CLI user, runtime connection). */
export function selfSignedIdentity(opts: {
  commonName: string;
  notBefore: Date;
  notAfter: Date;
  endpoint?: 'client' | 'server';
}): SelfSignedIdentity {
  const key = generatePrivateKey('P-256');
  const der = issueCertificate({
    subjectKey: key,
    commonName: opts.commonName,
    isCa: false,
    endpoint: opts.endpoint,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
  });
  return {
    certPem: pemEncode('CERTIFICATE', der),
    keyPem: pemEncode('PRIVATE KEY', key.pkcs8),
    spki: publicKeySpki(key.pkcs8),
  };
}
