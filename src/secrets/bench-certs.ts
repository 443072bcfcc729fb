import { generatePrivateKey } from './keys.js';
import { issueCertificate } from './x509.js';

/** Leaf certificates per second on this core: a fresh P-256 key and a signature by a cached CA each. */
export function benchCertificates(seconds: number): { perSecond: number; count: number } {
  const caKey = generatePrivateKey('P-256');
  const now = new Date();
  const later = new Date(now.getTime() + 365 * 864e5);
  const ca = { certDer: issueCertificate({ subjectKey: caKey, commonName: 'bench CA', isCa: true, notBefore: now, notAfter: later }), key: caKey };
  let count = 0;
  const end = Date.now() + seconds * 1000;
  const started = process.hrtime.bigint();
  while (Date.now() < end) {
    for (let i = 0; i < 100; i++) {
      const key = generatePrivateKey('P-256');
      issueCertificate({ subjectKey: key, issuer: ca, commonName: 'leaf', dns: ['api'], isCa: false, endpoint: 'server', notBefore: now, notAfter: later });
    }
    count += 100;
  }
  return { perSecond: count / (Number(process.hrtime.bigint() - started) / 1e9), count };
}
