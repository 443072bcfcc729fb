import { createHash, type KeyObject, randomBytes, sign } from 'node:crypto';
import { dnsBytes, ipBytes } from './cert-fields.js';
import { NULL, TRUE, bitString, ctx, implicit, int, octets, oid, seq, set, time, tlv, uint, utf8 } from './der.js';
import { type CertificateParts, certificateParts, publicKeyBits } from './der-read.js';
import { SecretsError } from './errors.js';
import { privateKeyObject, publicKeySpki, type KeyType, type PrivateKeyMaterial } from './keys.js';

export interface CertificateRequest {
  subjectKey: PrivateKeyMaterial;
  /** Absent: self-signed. */
  issuer?: { certDer: Buffer; key: PrivateKeyMaterial } | undefined;
  commonName: string;
  dns?: string[] | undefined;
  ips?: string[] | undefined;
  isCa: boolean;
  /** Adds the TLS server or client extended key usage (end-entity certificates only). */
  endpoint?: 'server' | 'client' | undefined;
  notBefore: Date;
  notAfter: Date;
}

interface Signature {
  algorithm: Buffer;
  hash: string | null;
}

const SIGNATURES: Record<KeyType, Signature> = {
  'P-256': { algorithm: seq(oid('1.2.840.10045.4.3.2')), hash: 'sha256' },
  'P-384': { algorithm: seq(oid('1.2.840.10045.4.3.3')), hash: 'sha384' },
  Ed25519: { algorithm: seq(oid('1.3.101.112')), hash: null },
  'RSA-2048': { algorithm: seq(oid('1.2.840.113549.1.1.11'), NULL), hash: 'sha256' },
  'RSA-3072': { algorithm: seq(oid('1.2.840.113549.1.1.11'), NULL), hash: 'sha256' },
};

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), TRUE, octets(value)) : seq(oid(id), octets(value));
}

/** KeyUsage bits, first byte of the BIT STRING counting the unused trailing bits. */
const keyUsage = (bits: number, unused: number) => extension('2.5.29.15', true, tlv(0x03, Buffer.from([unused, bits])));

// Everything that does not vary between certificates is encoded once: issuance runs at the speed of the signature.
const VERSION_3 = ctx(0, int(2));
const COMMON_NAME = oid('2.5.4.3');
const BASIC_CA = extension('2.5.29.19', true, seq(TRUE));
const BASIC_LEAF = extension('2.5.29.19', true, seq());
const USAGE_CA = keyUsage(0x06, 1); // keyCertSign, cRLSign
const USAGE_SIGN = keyUsage(0x80, 7); // digitalSignature
const USAGE_SIGN_ENCIPHER = keyUsage(0xa0, 5); // digitalSignature, keyEncipherment (RSA key exchange)
const EXTENDED_USAGE = {
  server: extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))),
  client: extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.2'))),
};
const SAN = oid('2.5.29.17');
const SKI = oid('2.5.29.14');
const AKI = oid('2.5.29.35');

/** Issues an X.509 v3 certificate (DER), signed by `issuer` or, without one, by its own key. */
export function issueCertificate(req: CertificateRequest): Buffer {
  const { tbs, signature, signer } = toBeSigned(req);
  return seq(tbs, signature.algorithm, bitString(sign(signature.hash, tbs, privateKeyObject(signer.pkcs8))));
}

/**
 * The same certificate, with an RSA signature made in libuv's thread pool (RSA-3072 signs in 2–5 ms, long for
 * the CAS's one thread). EC and Ed25519 sign here: 50 µs, less than the round trip to the pool (≈ 120 µs).
 */
export async function issueCertificateAsync(req: CertificateRequest): Promise<Buffer> {
  const { tbs, signature, signer } = toBeSigned(req);
  const key = privateKeyObject(signer.pkcs8);
  const inPool = signer.keyType.startsWith('RSA');
  const bits = inPool ? await signInPool(signature.hash, tbs, key) : sign(signature.hash, tbs, key);
  return seq(tbs, signature.algorithm, bitString(bits));
}

function signInPool(hash: string | null, data: Buffer, key: KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) => sign(hash, data, key, (err, bits) => (err ? reject(err) : resolve(bits))));
}

function toBeSigned(req: CertificateRequest): { tbs: Buffer; signature: Signature; signer: PrivateKeyMaterial } {
  checkPeriod(req);
  const signer = req.issuer?.key ?? req.subjectKey;
  const signature = SIGNATURES[signer.keyType];
  if (!signature) {
    const type = String(signer.keyType);
    const what = `certificate '${req.commonName}' would be signed by a key of unknown type '${type}'`;
    throw new SecretsError('SECRET_UNSUPPORTED', what);
  }
  const subjectSpki = publicKeySpki(req.subjectKey.pkcs8);
  const subjectKeyId = keyId(subjectSpki);
  const subject = nameOf(req.commonName);
  const issuer = req.issuer ? issuerOf(req.issuer, req.commonName) : { name: subject, keyId: subjectKeyId };
  const validity = seq(time(req.notBefore), time(req.notAfter));
  const exts = ctx(3, seq(...extensions(req, subjectKeyId, issuer.keyId)));
  const tbs = seq(VERSION_3, uint(serial()), signature.algorithm, issuer.name, validity, subject, subjectSpki, exts);
  return { tbs, signature, signer };
}

function checkPeriod(req: CertificateRequest): void {
  const from = req.notBefore.getTime();
  const to = req.notAfter.getTime();
  if (Number.isFinite(from) && Number.isFinite(to) && from <= to && req.notAfter.getUTCFullYear() <= 9999) return;
  throw new SecretsError('SECRET_INVALID_VALUE', `certificate '${req.commonName}' has no valid validity period`, {
    hint: 'notBefore must be a date before notAfter, and notAfter before the year 10000',
  });
}

/**
 * The issuer's Name and key identifier, taken from its certificate: the AKI repeats the issuer's own SKI (so
 * path building works for CAs made elsewhere), and the key must be the certificate's or nothing would verify.
 */
function issuerOf(
  issuer: { certDer: Buffer; key: PrivateKeyMaterial },
  subject: string,
): { name: Buffer; keyId: Buffer } {
  let parts: CertificateParts;
  try {
    parts = certificateParts(issuer.certDer);
  } catch (err) {
    throw new SecretsError('SECRET_INVALID_VALUE', `the issuer certificate of '${subject}' is not well-formed DER`, {
      cause: err,
    });
  }
  if (!parts.spki.equals(publicKeySpki(issuer.key.pkcs8))) {
    throw new SecretsError(
      'SECRET_DEPENDENCY',
      `the issuer key given for '${subject}' does not belong to the issuer certificate`,
      {
        hint: "the CA's private_key must be the key its certificate was issued for",
      },
    );
  }
  return { name: parts.subject, keyId: parts.subjectKeyId ?? keyId(parts.spki) };
}

let serialPool = Buffer.alloc(0);
let serialAt = 0;

/**
 * 16 random bytes, positive (top bit clear) and of full length, as RFC 5280 §4.1.2.2 asks. Drawn from a pooled
 * block: one randomBytes call per certificate cost 8% of issuance, and serials need not be secret.
 */
function serial(): Buffer {
  if (serialAt + 16 > serialPool.length) {
    serialPool = randomBytes(4096);
    serialAt = 0;
  }
  const bytes = Buffer.from(serialPool.subarray(serialAt, serialAt + 16));
  serialAt += 16;
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes;
}

function nameOf(commonName: string): Buffer {
  return seq(set(seq(COMMON_NAME, utf8(commonName))));
}

/** RFC 5280 §4.2.1.2 method 1 (SHA-1 of the key bits), as openssl computes it. */
function keyId(spki: Buffer): Buffer {
  return createHash('sha1').update(publicKeyBits(spki)).digest();
}

function extensions(req: CertificateRequest, subjectKeyId: Buffer, authorityKeyId: Buffer): Buffer[] {
  const out = [req.isCa ? BASIC_CA : BASIC_LEAF, usageOf(req)];
  if (req.endpoint && !req.isCa) out.push(EXTENDED_USAGE[req.endpoint]);
  const names = [
    ...(req.dns ?? []).map((d) => implicit(2, dnsBytes(d))),
    ...(req.ips ?? []).map((ip) => implicit(7, ipBytes(ip))),
  ];
  if (names.length > 0) out.push(seq(SAN, octets(seq(...names))));
  out.push(seq(SKI, octets(octets(subjectKeyId))), seq(AKI, octets(seq(implicit(0, authorityKeyId)))));
  return out;
}

function usageOf(req: CertificateRequest): Buffer {
  if (req.isCa) return USAGE_CA;
  return req.subjectKey.keyType.startsWith('RSA') ? USAGE_SIGN_ENCIPHER : USAGE_SIGN;
}
