import { X509Certificate, createHash, timingSafeEqual } from 'node:crypto';
import { connect, type PeerCertificate } from 'node:tls';
import { RuntimeError } from './errors.js';

export interface PinnedCas {
  url: string;
  fingerprint: string;
  caPem: string;
}

/**
 * Fetches the CAS's CA certificate over TLS and decides whether to trust it: the SHA-256 of its DER must
 * equal the expected fingerprint, unless the caller explicitly accepts any CAS (testing only). Veil has no
 * hardware quote of the CAS yet, so this fingerprint is what a user compares out of band.
 */
export async function attestCas(url: string, expected: string | undefined, trustAny: boolean): Promise<PinnedCas> {
  if (!expected && !trustAny) {
    throw new RuntimeError('RUNTIME_CONFIG', 'no fingerprint given to check the CAS against', {
      hint: "pass -c <fingerprint> (printed by 'veil cas serve'), or --only_for_testing-trust-any for a throw-away test CAS",
    });
  }
  const ca = await fetchCa(url);
  const fingerprint = createHash('sha256').update(ca.raw).digest('hex');
  if (expected && !sameHex(expected, fingerprint)) {
    throw new RuntimeError('RUNTIME_CAS_UNTRUSTED', `the CAS at ${url} presents CA fingerprint ${fingerprint}, not the expected ${expected.toLowerCase()}`, {
      hint: 'do not use this CAS: it is not the one you were told about (or check the fingerprint you passed)',
    });
  }
  return { url, fingerprint, caPem: ca.toString() };
}

export function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a.trim().toLowerCase().replace(/:/g, ''));
  const y = Buffer.from(b.toLowerCase());
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The chain's root as the CAS sends it; its leaf must be signed by it, or the chain proves nothing. */
async function fetchCa(url: string): Promise<X509Certificate> {
  const peer = await peerChain(url);
  const leaf = new X509Certificate(peer.raw);
  const top = topOf(peer);
  const ca = new X509Certificate(top.raw);
  if (!ca.verify(ca.publicKey) || !leaf.verify(ca.publicKey) || !ca.ca) {
    throw new RuntimeError('RUNTIME_CAS_UNTRUSTED', `the CAS at ${url} did not present a CA-signed certificate chain`, {
      hint: 'this is not a Veil CAS, or its identity is damaged',
    });
  }
  return ca;
}

function topOf(cert: PeerCertificate & { issuerCertificate?: PeerCertificate }): PeerCertificate {
  let current = cert as PeerCertificate & { issuerCertificate?: PeerCertificate };
  while (current.issuerCertificate && current.issuerCertificate !== current) {
    current = current.issuerCertificate as PeerCertificate & { issuerCertificate?: PeerCertificate };
  }
  return current;
}

function peerChain(url: string): Promise<PeerCertificate> {
  const { hostname, port } = new URL(url);
  const host = hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    // Trust is decided above, by fingerprint; this connection only fetches what the CAS presents.
    const socket = connect({ host, port: Number(port), rejectUnauthorized: false, ...(isName(host) ? { servername: host } : {}) }, () => {
      const peer = socket.getPeerCertificate(true);
      socket.end();
      resolve(peer);
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('timed out')));
    socket.on('error', (err) => reject(new RuntimeError('RUNTIME_CAS_UNREACHABLE', `cannot reach the CAS at ${url} (${err.message})`, {
      hint: 'check that it runs (veil cas serve) and the address', cause: err,
    })));
  });
}

function isName(host: string): boolean {
  return !/^[0-9.]+$/.test(host) && !host.includes(':');
}
