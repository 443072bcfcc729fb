import { createHash, randomBytes, sign } from 'node:crypto';
import { isIP } from 'node:net';
import { NULL, TRUE, bitString, ctx, octets, oid, seq, set, time, tlv, uint, utf8 } from './der.js';
import { certificateParts, publicKeyBits } from './der-read.js';
import { privateKeyObject, publicKeySpki, type KeyType, type PrivateKeyMaterial } from './keys.js';

export interface CertificateRequest {
  subjectKey: PrivateKeyMaterial;
  /** Absent: self-signed. */
  issuer?: { certDer: Buffer; key: PrivateKeyMaterial } | undefined;
  commonName: string;
  dns?: string[] | undefined;
  ips?: string[] | undefined;
  isCa: boolean;
  endpoint?: 'server' | 'client' | undefined;
  notBefore: Date;
  notAfter: Date;
}

const SIGNATURE: Record<KeyType, { oid: string; hash: string | null; params: boolean }> = {
  'P-256': { oid: '1.2.840.10045.4.3.2', hash: 'sha256', params: false },
  'P-384': { oid: '1.2.840.10045.4.3.3', hash: 'sha384', params: false },
  Ed25519: { oid: '1.3.101.112', hash: null, params: false },
  'RSA-2048': { oid: '1.2.840.113549.1.1.11', hash: 'sha256', params: true },
  'RSA-3072': { oid: '1.2.840.113549.1.1.11', hash: 'sha256', params: true },
};

/** Issues an X.509 v3 certificate (DER), built directly so issuance runs at the speed of the signature. */
export function issueCertificate(req: CertificateRequest): Buffer {
  const signer = req.issuer?.key ?? req.subjectKey;
  const subjectSpki = publicKeySpki(req.subjectKey.pkcs8);
  const issuerSpki = req.issuer ? certificateParts(req.issuer.certDer).spki : subjectSpki;
  const subject = nameOf(req.commonName);
  const algorithm = algorithmOf(signer.keyType);
  const tbs = seq(
    ctx(0, uint(Buffer.from([2]))),
    uint(serial()),
    algorithm,
    req.issuer ? certificateParts(req.issuer.certDer).subject : subject,
    seq(time(req.notBefore), time(req.notAfter)),
    subject,
    subjectSpki,
    ctx(3, seq(...extensions(req, subjectSpki, issuerSpki))),
  );
  const spec = SIGNATURE[signer.keyType];
  const signature = sign(spec.hash, tbs, privateKeyObject(signer.pkcs8));
  return seq(tbs, algorithm, bitString(signature));
}

function algorithmOf(keyType: KeyType): Buffer {
  const spec = SIGNATURE[keyType];
  return spec.params ? seq(oid(spec.oid), NULL) : seq(oid(spec.oid));
}

/** 16 random bytes, positive and non-zero as RFC 5280 asks. */
function serial(): Buffer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes;
}

function nameOf(commonName: string): Buffer {
  return seq(set(seq(oid('2.5.4.3'), utf8(commonName))));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), TRUE, octets(value)) : seq(oid(id), octets(value));
}

/** RFC 5280 method 1 (SHA-1 of the key bits), as openssl computes it, so AKI/SKI match openssl-made CAs. */
function keyId(spki: Buffer): Buffer {
  return createHash('sha1').update(publicKeyBits(spki)).digest();
}

function extensions(req: CertificateRequest, subjectSpki: Buffer, issuerSpki: Buffer): Buffer[] {
  const out = [
    extension('2.5.29.19', true, req.isCa ? seq(TRUE) : seq()),
    extension('2.5.29.15', true, keyUsage(req)),
    extension('2.5.29.14', false, octets(keyId(subjectSpki))),
    extension('2.5.29.35', false, seq(tlv(0x80, keyId(issuerSpki)))),
  ];
  if (req.endpoint && !req.isCa) {
    const usage = req.endpoint === 'server' ? '1.3.6.1.5.5.7.3.1' : '1.3.6.1.5.5.7.3.2';
    out.push(extension('2.5.29.37', false, seq(oid(usage))));
  }
  const san = subjectAltNames(req.dns ?? [], req.ips ?? []);
  if (san) out.push(extension('2.5.29.17', false, san));
  return out;
}

function keyUsage(req: CertificateRequest): Buffer {
  // digitalSignature 0x80, keyEncipherment 0x20, keyCertSign 0x04, cRLSign 0x02; the first byte counts unused bits.
  if (req.isCa) return tlv(0x03, Buffer.from([1, 0x86]));
  if (req.subjectKey.keyType.startsWith('RSA')) return tlv(0x03, Buffer.from([5, 0xa0]));
  return tlv(0x03, Buffer.from([7, 0x80]));
}

function subjectAltNames(dns: string[], ips: string[]): Buffer | undefined {
  if (dns.length + ips.length === 0) return undefined;
  const names = [...dns.map((d) => tlv(0x82, Buffer.from(d, 'ascii'))), ...ips.map((ip) => tlv(0x87, ipBytes(ip)))];
  return seq(...names);
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  return ipv6Bytes(ip);
}

function ipv6Bytes(ip: string): Buffer {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const part = (s: string | undefined) => (s ? s.split(':') : []);
  const groups = tail === undefined ? part(head) : [...part(head), ...Array(8 - part(head).length - part(tail).length).fill('0'), ...part(tail)];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** "1 year", "59d", "12 hours", "30 minutes", "2 weeks" → seconds. */
export function parseValidFor(text: string): number | undefined {
  const match = /^\s*(\d+)\s*(y|years?|d|days?|h|hours?|m|min|minutes?|w|weeks?|s|seconds?)\s*$/i.exec(text);
  if (!match) return undefined;
  const unit = match[2]!.toLowerCase();
  const seconds: Record<string, number> = { y: 31536000, d: 86400, h: 3600, m: 60, w: 604800, s: 1 };
  const key = unit.startsWith('min') ? 'm' : unit[0]!;
  return Number(match[1]) * seconds[key]!;
}
