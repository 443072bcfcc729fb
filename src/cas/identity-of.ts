import { X509Certificate, createHash, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { Lru } from '../lru.js';

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

const CACHE_LIMIT = 1024;
const derCache = new Lru<ClientIdentity>(CACHE_LIMIT);

export function identityFromDer(der: Buffer): ClientIdentity {
  const id = createHash('sha256').update(der).digest('hex');
  return derCache.memo(id, () => identityFromCert(new X509Certificate(der)));
}

/**
 * One parse per connection: the identity is the certificate the handshake on THIS socket verified possession
 * for, so it is cached on the socket object itself (a WeakMap: it goes with the socket, and no other socket can
 * ever read it). A TLS 1.2 renegotiation could present another certificate on the same socket, so renegotiation
 * is disabled on the socket before its identity is cached (TLS 1.3 has none).
 */
const bySocket = new WeakMap<TLSSocket, ClientIdentity | null>();

export function identityOfSocket(socket: TLSSocket): ClientIdentity | undefined {
  const known = bySocket.get(socket);
  if (known !== undefined) return known ?? undefined;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  socket.disableRenegotiation();
  // Not getPeerX509Certificate(): after it, a later getPeerCertificate(true) on the socket came back without the
  // issuer chain that POST /v1/exports reads (src/cas/remote-import.test.ts).
  const cert = socket.getPeerCertificate();
  const identity = cert?.raw ? identityFromDer(cert.raw) : null;
  bySocket.set(socket, identity);
  return identity ?? undefined;
}

/**
 * Creators' certificates are read on every attestation that imports (the export's trust rule) and every read
 * rule: parsing one costs ≈ 0.1 ms and a key export, so identities are kept by the SHA-256 of the exact text.
 * What is kept is a pure function of those bytes, so there is nothing to invalidate; `pemCache` is bounded.
 */
const pemCache = new Lru<ClientIdentity>(CACHE_LIMIT);

export function identityFromPem(pem: string): ClientIdentity {
  const id = createHash('sha256').update(pem).digest('hex');
  return pemCache.memo(id, () => identityFromCert(new X509Certificate(pem)));
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
