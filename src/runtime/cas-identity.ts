import { X509Certificate, createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { RuntimeError } from './errors.js';

export interface PinnedCas {
  url: string;
  fingerprint: string;
  caPem: string;
}

/** How the CAS is recognised: its CA certificate (a pinned file, or a fingerprint), or — tests only — not at all. */
export interface CasTrustAnchor {
  caPem?: string | undefined;
  fingerprint?: string | undefined;
  trustAny?: boolean | undefined;
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
  const { socket, pin } = await connectCas(url, { fingerprint: expected, trustAny });
  socket.end();
  return pin;
}

/**
 * One TLS connection to the CAS, verified before a byte of application data is sent: the CA is the pinned
 * one (or the chain's root, whose fingerprint must match), it signed the CAS's certificate, and that
 * certificate is current and names the host dialled. One handshake instead of a probe plus a second one,
 * and no root store is loaded: launch time counts.
 */
export function connectCas(
  url: string,
  trust: CasTrustAnchor,
  client?: { certPem: string; keyPem: string },
  timeoutMs = 10_000,
): Promise<{ socket: TLSSocket; pin: PinnedCas }> {
  const { hostname, port } = new URL(url);
  const host = hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    // Trust is decided in trustedCa, by our rules; `ca: []` keeps Node from loading its root store.
    const socket = connect(
      {
        host,
        // URL leaves out https's default port: an address written with :443 comes here with none.
        port: Number(port) || 443,
        ca: [],
        rejectUnauthorized: false,
        ...(isIP(host) ? {} : { servername: host }),
        ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
      },
      () => {
        try {
          resolve({ socket, pin: { url, ...trustedCa(url, host, socket.getPeerX509Certificate(), trust) } });
        } catch (err) {
          socket.destroy();
          reject(err);
        }
      },
    );
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('timed out')));
    socket.once('error', (err) =>
      reject(
        new RuntimeError('RUNTIME_CAS_UNREACHABLE', `cannot reach the CAS at ${url} (${err.message})`, {
          hint: 'check that it runs (veil cas serve) and the address (SCONE_CAS_ADDR)',
          cause: err,
        }),
      ),
    );
  });
}

function trustedCa(
  url: string,
  host: string,
  peer: X509Certificate | undefined,
  trust: CasTrustAnchor,
): { fingerprint: string; caPem: string } {
  // The certificate the handshake parsed, linked to the issuers the CAS sent: no second parse of either.
  if (!peer) throw untrusted(`the CAS at ${url} presented no certificate`, 'this is not a Veil CAS');
  const leaf = peer;
  const ca = trust.caPem ? new X509Certificate(trust.caPem) : topOf(peer);
  const fingerprint = createHash('sha256').update(ca.raw).digest('hex');
  if (trust.fingerprint && !sameHex(trust.fingerprint, fingerprint)) {
    throw untrusted(
      `the CAS at ${url} presents CA fingerprint ${fingerprint}, not the expected ${trust.fingerprint.toLowerCase()}`,
      'do not use this CAS: it is not the one you were told about (or check the fingerprint you passed)',
    );
  }
  if (!ca.ca || !ca.verify(ca.publicKey) || !leaf.verify(ca.publicKey)) {
    throw untrusted(
      `the CAS at ${url} did not present a certificate signed by ${trust.caPem ? 'the pinned CA' : 'its CA'}`,
      trust.caPem
        ? 'this is not the CAS whose CA file you pinned'
        : 'this is not a Veil CAS, or its identity is damaged',
    );
  }
  const now = Date.now();
  if (now < Date.parse(leaf.validFrom) || now > Date.parse(leaf.validTo)) {
    throw untrusted(
      `the CAS at ${url} presents a certificate valid only from ${leaf.validFrom} to ${leaf.validTo}`,
      "check this machine's clock, or restart the CAS to renew its certificate",
    );
  }
  if (!(isIP(host) ? leaf.checkIP(host) : leaf.checkHost(host))) {
    throw untrusted(
      `the CAS's certificate does not name ${host}`,
      "use an address the CAS serves (see 'veil cas serve --name')",
    );
  }
  return { fingerprint, caPem: ca.toString() };
}

function untrusted(message: string, hint: string): RuntimeError {
  return new RuntimeError('RUNTIME_CAS_UNTRUSTED', message, { hint });
}

export function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a.trim().toLowerCase().replace(/:/g, ''));
  const y = Buffer.from(b.toLowerCase());
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The chain's root as the CAS sends it (a chain longer than a CAS sends is not walked to its end). */
function topOf(cert: X509Certificate): X509Certificate {
  let current = cert;
  for (let i = 0; i < 8 && current.issuerCertificate && !current.issuerCertificate.raw.equals(current.raw); i++) {
    current = current.issuerCertificate;
  }
  return current;
}
