import { X509Certificate, createHash } from 'node:crypto';
import { Lru } from '../lru.js';
import type { StoredCertificate } from '../secrets/index.js';
import type { Renewal, SessionRecord, Store } from './store/index.js';

/**
 * Renewed certificates as state beside a session version: what the store keeps (a certificate secret as JSON)
 * and how it stands in for the version's own value when sessions are read.
 */

export function encodeRenewal(cert: StoredCertificate): Buffer {
  return Buffer.from(JSON.stringify(cert), 'utf8');
}

/** The stored renewal, if it is a certificate (anything else is ignored: the version's own value stays). */
export function decodeRenewal(renewal: Renewal): StoredCertificate | undefined {
  try {
    const cert = JSON.parse(renewal.value.toString('utf8')) as StoredCertificate;
    const isCert = cert.kind === 'x509' || cert.kind === 'x509-ca';
    return isCert && typeof cert.value === 'string' ? cert : undefined;
  } catch {
    return undefined;
  }
}

/** `record` with each renewed certificate in place of its own value (a copy; the record is left alone). */
export function withRenewals(record: SessionRecord, renewals: ReadonlyMap<string, Renewal>): SessionRecord {
  if (renewals.size === 0) return record;
  const secrets = { ...record.secrets };
  for (const [name, renewal] of renewals) {
    const own = secrets[name] as { kind?: string } | undefined;
    const cert = decodeRenewal(renewal);
    if (cert && own?.kind === cert.kind) secrets[name] = cert;
  }
  return { ...record, secrets };
}

/** A session as read now, renewals applied. */
export async function renewedRecord(store: Store, record: SessionRecord): Promise<SessionRecord> {
  return withRenewals(record, await store.renewals(record.name, record.hash));
}

/** The share of its lifetime after which a certificate is renewed. */
export const RENEW_AFTER = 2 / 3;

/** When (ms since the epoch) a certificate reaches two thirds of its lifetime; undefined if its dates do not parse. */
export function renewalPoint(der: Buffer): number | undefined {
  // Every attestation asks this of each certificate it renders: parse each one once. A pure function of the
  // exact bytes (keyed by their SHA-256), so a renewed certificate, being other bytes, is parsed afresh.
  const id = createHash('sha256').update(der).digest('hex');
  const known = renewalPoints.get(id);
  if (known !== undefined) return known;
  const point = parseRenewalPoint(der);
  if (point !== undefined) renewalPoints.set(id, point);
  return point;
}

const renewalPoints = new Lru<number>(4096);

function parseRenewalPoint(der: Buffer): number | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    return undefined;
  }
  const from = new Date(cert.validFrom).getTime();
  const to = new Date(cert.validTo).getTime();
  if (Number.isNaN(from) || Number.isNaN(to) || to < from) return undefined;
  return Math.floor(from + RENEW_AFTER * (to - from));
}
