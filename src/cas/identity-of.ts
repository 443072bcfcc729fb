import { X509Certificate, createHash, timingSafeEqual } from 'node:crypto';

/**
 * A client as the CAS knows it: the TLS client certificate it presented. Any certificate is an identity
 * (SCONE's clients use self-signed ones); what identifies the client is its public key, which the TLS
 * handshake proved it holds.
 */
export interface ClientIdentity {
  certPem: string;
  /** Hex SHA-256 of the DER SubjectPublicKeyInfo: the "key hash" access policies may name. */
  keyHash: string;
  /** DER SubjectPublicKeyInfo of the certificate's key (what attestation evidence binds). */
  spki: Buffer;
}

const cache = new Map<string, ClientIdentity>();
const CACHE_LIMIT = 1024;

export function identityFromDer(der: Buffer): ClientIdentity {
  const id = createHash('sha256').update(der).digest('hex');
  const hit = cache.get(id);
  if (hit) return hit;
  const identity = identityFromCert(new X509Certificate(der));
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(id, identity);
  return identity;
}

export function identityFromPem(pem: string): ClientIdentity {
  return identityFromCert(new X509Certificate(pem));
}

function identityFromCert(cert: X509Certificate): ClientIdentity {
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return { certPem: cert.toString(), keyHash: createHash('sha256').update(spki).digest('hex'), spki };
}

/** Constant-time equality of two hex key hashes (they are identities, treated like secrets). */
export function sameKeyHash(a: string, b: string): boolean {
  const x = Buffer.from(a.toLowerCase(), 'utf8');
  const y = Buffer.from(b.toLowerCase(), 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
