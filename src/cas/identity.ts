import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { generatePrivateKey, issueCertificate, pemEncode, type PrivateKeyMaterial } from '../secrets/index.js';
import type { Store } from './store/index.js';

/**
 * The CAS's long-lived identity: a CA key and certificate kept (encrypted) in its store across restarts.
 * Clients pin the CA by the SHA-256 of its DER; the TLS certificate is re-issued by that CA at each start
 * for the names the CAS is reached by, so changing the listen address never changes the pin.
 */
export interface CasIdentity {
  caCertDer: Buffer;
  caCertPem: string;
  /** Hex SHA-256 of the CA certificate's DER: what `veil cas attest -c` and VEIL_CAS_FINGERPRINT compare. */
  fingerprint: string;
  tlsCertPem: string;
  tlsKeyPem: string;
  /**
   * What this CAS presents when it fetches an import from another CAS: a leaf (EKU clientAuth) issued by its CA,
   * then the CA, so the exporter identifies it by the CA's fingerprint from a chain it verifies.
   */
  clientCertPem: string;
  clientKeyPem: string;
}

const CA = 'identity/ca';
const OLD_CA_KEY = 'identity/ca.key';
const OLD_CA_CERT = 'identity/ca.crt';
const YEAR_MS = 365 * 24 * 3600 * 1000;

/** Told the fingerprint of a key this process made and stored first (the audit log's `key.created`). */
export type KeyCreated = (fingerprint: string) => Promise<void>;

export async function loadIdentity(
  store: Store,
  names: string[],
  now: Date,
  created?: KeyCreated,
): Promise<CasIdentity> {
  const ca = await loadOrCreateCa(store, now, created);
  const tlsKey = generatePrivateKey('P-256');
  const tlsCert = issueCertificate({
    subjectKey: tlsKey,
    issuer: { certDer: ca.certDer, key: ca.key },
    commonName: 'veil-cas',
    dns: names.filter((n) => isIP(n) === 0),
    ips: names.filter((n) => isIP(n) !== 0),
    isCa: false,
    endpoint: 'server',
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(now.getTime() + YEAR_MS),
  });
  const client = issueClientCertificate(ca, now);
  return {
    ...client,
    caCertDer: ca.certDer,
    caCertPem: pemEncode('CERTIFICATE', ca.certDer),
    fingerprint: fingerprintOf(ca.certDer),
    tlsCertPem: pemEncode('CERTIFICATE', tlsCert) + pemEncode('CERTIFICATE', ca.certDer),
    tlsKeyPem: pemEncode('PRIVATE KEY', tlsKey.pkcs8),
  };
}

function issueClientCertificate(ca: { key: PrivateKeyMaterial; certDer: Buffer }, now: Date) {
  const key = generatePrivateKey('P-256');
  const cert = issueCertificate({
    subjectKey: key,
    issuer: { certDer: ca.certDer, key: ca.key },
    commonName: 'veil-cas-importer',
    isCa: false,
    endpoint: 'client',
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(now.getTime() + YEAR_MS),
  });
  return {
    clientCertPem: pemEncode('CERTIFICATE', cert) + pemEncode('CERTIFICATE', ca.certDer),
    clientKeyPem: pemEncode('PRIVATE KEY', key.pkcs8),
  };
}

export function fingerprintOf(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

/**
 * The CA key and certificate are one blob, put only if absent: replicas starting at once on one database
 * keep whichever came first, and a key can never be paired with another replica's certificate. Stores from
 * before keep them as two blobs, which are joined into one on first start.
 */
export async function loadOrCreateCa(
  store: Store,
  now: Date,
  created?: KeyCreated,
): Promise<{ key: PrivateKeyMaterial; certDer: Buffer }> {
  const stored = (await store.getBlob(CA)) ?? (await joinedOldCa(store));
  if (stored) return decodeCa(stored);
  const mine = encodeCa(newCa(now));
  const kept = await store.putBlobIfAbsent(CA, mine);
  const ca = decodeCa(kept);
  // Another replica may have stored its CA first: only the one whose CA is kept made it.
  if (created && kept.equals(mine)) await created(fingerprintOf(ca.certDer));
  return ca;
}

async function joinedOldCa(store: Store): Promise<Buffer | undefined> {
  const [keyDer, certDer] = await Promise.all([store.getBlob(OLD_CA_KEY), store.getBlob(OLD_CA_CERT)]);
  if (!keyDer || !certDer) return undefined;
  return store.putBlobIfAbsent(CA, encodeCa({ key: { keyType: 'P-256', pkcs8: keyDer }, certDer }));
}

function newCa(now: Date): { key: PrivateKeyMaterial; certDer: Buffer } {
  const key = generatePrivateKey('P-256');
  const certDer = issueCertificate({
    subjectKey: key,
    commonName: 'Veil CAS CA',
    isCa: true,
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(now.getTime() + 20 * YEAR_MS),
  });
  return { key, certDer };
}

function encodeCa(ca: { key: PrivateKeyMaterial; certDer: Buffer }): Buffer {
  return Buffer.from(JSON.stringify({ key: ca.key.pkcs8.toString('base64'), cert: ca.certDer.toString('base64') }));
}

function decodeCa(blob: Buffer): { key: PrivateKeyMaterial; certDer: Buffer } {
  const { key, cert } = JSON.parse(blob.toString('utf8')) as { key: string; cert: string };
  return { key: { keyType: 'P-256', pkcs8: Buffer.from(key, 'base64') }, certDer: Buffer.from(cert, 'base64') };
}
