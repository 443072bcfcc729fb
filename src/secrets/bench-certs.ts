import { generatePrivateKey, type PrivateKeyMaterial } from './keys.js';
import { issueCertificate } from './x509.js';

export interface CertificateBench {
  /** Leaf certificates per second: a fresh P-256 key and a certificate signed by a cached CA each. */
  perSecond: number;
  count: number;
  /** The two halves of that cost, measured apart: P-256 key generation alone, issuance for a ready key alone. */
  keygenPerSecond: number;
  issuePerSecond: number;
}

/** Runs for about 1.5 × `seconds` on the calling thread (one core). */
export function benchCertificates(seconds: number): CertificateBench {
  const caKey = generatePrivateKey('P-256');
  const notBefore = new Date();
  const notAfter = new Date(notBefore.getTime() + 365 * 864e5);
  const ca = {
    certDer: issueCertificate({ subjectKey: caKey, commonName: 'bench CA', isCa: true, notBefore, notAfter }),
    key: caKey,
  };
  const leaf = (subjectKey: PrivateKeyMaterial) =>
    issueCertificate({
      subjectKey,
      issuer: ca,
      commonName: 'api',
      dns: ['api'],
      isCa: false,
      endpoint: 'server',
      notBefore,
      notAfter,
    });
  const fixedKey = generatePrivateKey('P-256');
  leaf(fixedKey); // decodes and caches the CA key, as a running CAS has
  const full = rate(seconds, () => leaf(generatePrivateKey('P-256')));
  return {
    perSecond: full.perSecond,
    count: full.count,
    keygenPerSecond: rate(seconds / 4, () => generatePrivateKey('P-256')).perSecond,
    issuePerSecond: rate(seconds / 4, () => leaf(fixedKey)).perSecond,
  };
}

function rate(seconds: number, op: () => unknown): { perSecond: number; count: number } {
  let count = 0;
  const started = process.hrtime.bigint();
  const end = started + BigInt(Math.round(seconds * 1e9));
  let now = started;
  for (; now < end; now = process.hrtime.bigint()) {
    for (let i = 0; i < 100; i++) op();
    count += 100;
  }
  return { perSecond: count / (Number(now - started) / 1e9), count };
}
