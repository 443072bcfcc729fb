import { bitString, ctx, int, octets, oid, seq } from './der.js';
import { children, content, readTlv } from './der-read.js';

/**
 * PKCS#8 and SubjectPublicKeyInfo for EC and Ed25519 keys, built from and taken apart into raw components,
 * so neither generation nor signing goes through OpenSSL's slow DER encoders and decoders.
 */
export type EcCurve = 'P-256' | 'P-384';

const EC_PUBLIC_KEY = oid('1.2.840.10045.2.1');
const CURVE_OIDS: Record<EcCurve, Buffer> = { 'P-256': oid('1.2.840.10045.3.1.7'), 'P-384': oid('1.3.132.0.34') };
const ED25519 = oid('1.3.101.112');
export const SCALAR_BYTES: Record<EcCurve, number> = { 'P-256': 32, 'P-384': 48 };
const EC_ALGORITHMS: Record<EcCurve, Buffer> = {
  'P-256': seq(EC_PUBLIC_KEY, CURVE_OIDS['P-256']),
  'P-384': seq(EC_PUBLIC_KEY, CURVE_OIDS['P-384']),
};
const ED25519_ALGORITHM = seq(ED25519);

/** RFC 5915 ECPrivateKey inside RFC 5208 PKCS#8, as openssl writes it: curve in the algorithm, public key kept. */
export function ecPkcs8(curve: EcCurve, d: Buffer, point: Buffer): Buffer {
  const ecPrivateKey = seq(int(1), octets(leftPad(d, SCALAR_BYTES[curve])), ctx(1, bitString(point)));
  return seq(int(0), EC_ALGORITHMS[curve], octets(ecPrivateKey));
}

export function ecSpki(curve: EcCurve, point: Buffer): Buffer {
  return seq(EC_ALGORITHMS[curve], bitString(point));
}

/** RFC 8410 v1 (no public key), the form openssl and Node read and write. */
export function ed25519Pkcs8(seed: Buffer): Buffer {
  return seq(int(0), ED25519_ALGORITHM, octets(octets(seed)));
}

export function ed25519Spki(publicKey: Buffer): Buffer {
  return seq(ED25519_ALGORITHM, bitString(publicKey));
}

/** SEC1 scalars are fixed-width, but some encoders drop leading zeros; JWK needs the full width. */
export function leftPad(bytes: Buffer, size: number): Buffer {
  return bytes.length >= size ? bytes : Buffer.concat([Buffer.alloc(size - bytes.length), bytes]);
}

export type ParsedPkcs8 =
  | { type: 'ec'; curve: EcCurve; d: Buffer; point: Buffer | undefined }
  | { type: 'ed25519'; seed: Buffer }
  | { type: 'other' };

/** The components of a PKCS#8 key this module can use directly; anything else is `other` (left to OpenSSL). */
export function parsePkcs8(der: Buffer): ParsedPkcs8 {
  const fields = children(der, readTlv(der, 0));
  const algorithm = fields[1] ? children(der, fields[1]) : [];
  const privateKey = fields[2];
  if (privateKey?.tag !== 0x04 || !algorithm[0]) return { type: 'other' };
  const inner = content(der, privateKey);
  if (algorithm[0].raw.equals(ED25519)) return { type: 'ed25519', seed: content(inner, readTlv(inner, 0)) };
  if (!algorithm[0].raw.equals(EC_PUBLIC_KEY) || !algorithm[1]) return { type: 'other' };
  const curve = curveOf(algorithm[1].raw);
  return curve ? { type: 'ec', curve, ...ecPrivateKey(inner, curve) } : { type: 'other' };
}

function curveOf(encodedOid: Buffer): EcCurve | undefined {
  return (Object.keys(CURVE_OIDS) as EcCurve[]).find((c) => CURVE_OIDS[c].equals(encodedOid));
}

function ecPrivateKey(der: Buffer, curve: EcCurve): { d: Buffer; point: Buffer | undefined } {
  const fields = children(der, readTlv(der, 0));
  const d = leftPad(content(der, fields[1]!), SCALAR_BYTES[curve]);
  const tagged = fields.find((f) => f.tag === 0xa1);
  if (!tagged) return { d, point: undefined };
  const bits = readTlv(der, tagged.start);
  return { d, point: der.subarray(bits.start + 1, bits.end) };
}
