import { X509Certificate, createHash, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { Lru } from '../lru.js';
import { spkiOfPublicKey } from '../secrets/index.js';

/**
 * A client as the CAS knows it: the TLS client certificate it presented. Any certificate is an identity
 * (SCONE's clients use self-signed ones); what identifies the client is its public key, which the TLS
 * handshake proved it holds.
 */
export interface ClientIdentity {
  certPem: string;
  /** Hex SHA-256 of the DER SubjectPublicKeyInfo (EC points uncompressed): the "key hash" access policies may name. */
  keyHash: string;
  /** DER SubjectPublicKeyInfo of the certificate's key (what attestation evidence binds). */
  spki: Buffer;
}

const CACHE_LIMIT = 1024;

/**
 * One parse per connection: the identity is the certificate the handshake on THIS socket verified possession
 * for, so it is cached on the socket object itself (a WeakMap: it goes with the socket, and no other socket can
 * ever read it). A TLS 1.2 renegotiation could present another certificate on the same socket, so renegotiation
 * is disabled on the socket before its identity is cached (TLS 1.3 has none).
 */
const bySocket = new WeakMap<TLSSocket, { identity: ClientIdentity; cert: X509Certificate } | null>();

export function identityOfSocket(socket: TLSSocket): ClientIdentity | undefined {
  return peerOfSocket(socket)?.identity;
}

/**
 * The certificate the peer presented, linked to the issuers it sent (`issuerCertificate`). Node hands the chain
 * out once per socket — a second getPeerX509Certificate() or getPeerCertificate(true) comes back without the
 * issuers — so everything that needs the chain (POST /v1/exports) reads it here.
 */
export function peerCertificateOfSocket(socket: TLSSocket): X509Certificate | undefined {
  return peerOfSocket(socket)?.cert;
}

function peerOfSocket(socket: TLSSocket): { identity: ClientIdentity; cert: X509Certificate } | undefined {
  const known = bySocket.get(socket);
  if (known !== undefined) return known ?? undefined;
  if (typeof socket.getPeerX509Certificate !== 'function') return undefined;
  socket.disableRenegotiation();
  // The X509Certificate OpenSSL already parsed in the handshake: no re-parse of the DER, and none of the
  // fingerprints and name strings getPeerCertificate() builds. Every connection brings a fresh certificate
  // (a runtime's key is new per attestation), so this runs once per attestation.
  const cert = socket.getPeerX509Certificate();
  const peer = cert ? { identity: identityFromCert(cert), cert } : null;
  bySocket.set(socket, peer);
  return peer ?? undefined;
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
  const spki = spkiOfPublicKey(cert.publicKey);
  const keyHash = createHash('sha256').update(spki).digest('hex');
  // The PEM is read only where a session records its creator; most requests never need it.
  let pem: string | undefined;
  return {
    get certPem() {
      pem ??= cert.toString();
      return pem;
    },
    keyHash,
    spki,
  };
}

/** Constant-time equality of two hex key hashes (they are identities, treated like secrets). */
export function sameKeyHash(a: string, b: string): boolean {
  const x = Buffer.from(a.toLowerCase(), 'utf8');
  const y = Buffer.from(b.toLowerCase(), 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
