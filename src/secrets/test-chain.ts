import { pemEncode } from './encodings.js';
import { generatePrivateKey } from './keys.js';
import { issueCertificate } from './x509.js';

/** A P-256 leaf under a P-256 CA, valid a day either side of now: for tests and benches that need a chain. */
export interface TestChain {
  caDer: Buffer;
  leafDer: Buffer;
  /** The leaf's key, PKCS#8 PEM. */
  keyPem: string;
  /** The leaf then its CA, PEM: what a TLS endpoint presents. */
  chainPem: string;
}

export function testChain(leaf: {
  commonName: string;
  endpoint: 'server' | 'client';
  dns?: string[];
  ips?: string[];
}): TestChain {
  const day = 864e5;
  const span = { notBefore: new Date(Date.now() - day), notAfter: new Date(Date.now() + day) };
  const caKey = generatePrivateKey('P-256');
  const caDer = issueCertificate({ subjectKey: caKey, commonName: `${leaf.commonName} CA`, isCa: true, ...span });
  const key = generatePrivateKey('P-256');
  const leafDer = issueCertificate({
    subjectKey: key,
    isCa: false,
    issuer: { certDer: caDer, key: caKey },
    ...leaf,
    ...span,
  });
  return {
    caDer,
    leafDer,
    keyPem: pemEncode('PRIVATE KEY', key.pkcs8),
    chainPem: pemEncode('CERTIFICATE', leafDer) + pemEncode('CERTIFICATE', caDer),
  };
}
