import { X509Certificate, constants, createHash, verify, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { Lru } from '../lru.js';
import { AttestationError } from './errors.js';
import type { ChainEntry } from './types.js';

/**
 * Certificates, chains and CRLs for the hardware verifiers. node:crypto verifies signatures (ECDSA, RSA-PSS)
 * and parses certificates; pkijs/asn1js parse what node:crypto does not expose: CRLs and private extensions.
 * Roots are pinned by the SHA-256 of their SubjectPublicKeyInfo, never by name: Intel's own sample data ships a
 * test root with the production root's subject and another key.
 */

export interface PinnedRoot {
  /** For messages: "the Intel SGX Root CA". */
  name: string;
  /** SHA-256 over the root's SPKI DER, lower-case hex. */
  spkiSha256: string;
  certificate: X509Certificate;
}

/** A PEM bundle (a trailing NUL, as quotes carry it, is ignored) or one DER certificate. */
export function parseCertificates(input: Buffer | string, check: string): X509Certificate[] {
  const text = typeof input === 'string' ? input : input.toString('latin1');
  const pems = text.match(/-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----/g);
  try {
    if (pems) return pems.map((pem) => new X509Certificate(pem));
    if (typeof input !== 'string' && input[0] === 0x30) return [new X509Certificate(input)];
  } catch (err) {
    throw new AttestationError('ATTESTATION_CHAIN', `a certificate does not parse (${(err as Error).message})`, {
      check,
      cause: err,
    });
  }
  throw new AttestationError('ATTESTATION_CHAIN', 'no certificate found (expected PEM or DER)', { check });
}

export function spkiSha256(key: KeyObject): string {
  return createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

export function pinRoot(name: string, pem: string, spkiHex: string): PinnedRoot {
  const certificate = new X509Certificate(pem);
  // A mistyped constant must fail loudly at start, not silently pin another key.
  if (spkiSha256(certificate.publicKey) !== spkiHex)
    throw new Error(`pinned root ${name}: embedded certificate does not have the pinned key`);
  return { name, spkiSha256: spkiHex, certificate };
}

export function describe(cert: X509Certificate): ChainEntry {
  return {
    subject: oneLine(cert.subject),
    issuer: oneLine(cert.issuer),
    fingerprint256: cert.fingerprint256,
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
  };
}

function oneLine(name: string): string {
  return name.split('\n').join(', ');
}

function colonHex(hex: string): string {
  return (hex.match(/../g) ?? []).join(':');
}

/**
 * Checks `chain` (leaf first; the last element may be the root itself, which is then compared with the pin and
 * otherwise ignored): each certificate is issued and signed by the next, every issuer is a CA, the top one is
 * signed by the pinned root, and all are valid at `now`. Returns the chain as verified, leaf first, root last.
 */
export function verifyChain(chain: X509Certificate[], root: PinnedRoot, now: Date, check: string): ChainEntry[] {
  if (chain.length === 0) throw new AttestationError('ATTESTATION_CHAIN', 'the chain is empty', { check });
  const certs = [...chain];
  const top = certs[certs.length - 1]!;
  if (top.checkIssued(top) && certs.length > 1) {
    const fp = spkiSha256(top.publicKey);
    if (fp !== root.spkiSha256) {
      const subject = top.subject.replace(/\n/g, ', ');
      const certFp = top.fingerprint256.slice(0, 11);
      throw new AttestationError(
        'ATTESTATION_CHAIN',
        `root is not ${root.name} (certificate ${certFp}…, key fingerprint ${colonHex(fp).slice(0, 11)}…, ${subject})`,
        {
          check,
          hint: `only ${root.name} is trusted; its key is pinned (SHA-256 of the key ${colonHex(root.spkiSha256).slice(0, 11)}…)`,
        },
      );
    }
    certs.pop();
  }
  const full = [...certs, root.certificate];
  for (let i = 0; i < full.length; i++) {
    const cert = full[i]!;
    checkValidity(cert, now, check);
    if (i === full.length - 1) break;
    const issuer = full[i + 1]!;
    // node's `ca` is OpenSSL's X509_check_ca: basicConstraints CA, and keyCertSign when a key usage is given.
    if (!issuer.ca)
      throw new AttestationError('ATTESTATION_CHAIN', `${name(issuer)} is not a CA but issued ${name(cert)}`, {
        check,
      });
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) {
      throw new AttestationError('ATTESTATION_CHAIN', `${name(cert)} is not signed by ${name(issuer)}`, {
        check,
        hint: i === full.length - 2 ? `the chain must lead to ${root.name}` : undefined,
      });
    }
  }
  return full.map(describe);
}

export function checkValidity(cert: X509Certificate, now: Date, check: string): void {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (now < from)
    throw new AttestationError(
      'ATTESTATION_EXPIRED',
      `${name(cert)} is not valid before ${from.toISOString()} (verification time ${now.toISOString()})`,
      { check },
    );
  if (now > to)
    throw new AttestationError(
      'ATTESTATION_EXPIRED',
      `${name(cert)} expired at ${to.toISOString()} (verification time ${now.toISOString()})`,
      { check, hint: 'fetch fresh certificates or verify at a time inside their validity (--at)' },
    );
}

function name(cert: X509Certificate): string {
  const cn = /CN=([^\n,]+)/.exec(cert.subject)?.[1];
  return `'${cn ?? cert.subject.replace(/\n/g, ', ')}'`;
}

// ---- CRLs -----------------------------------------------------------------------------------------------

export interface Crl {
  /** SHA-256 of the bytes it was parsed from: what its verified signature is remembered by. */
  digest: string;
  issuer: string;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  /** Upper-case hex serials without leading zeros, as X509Certificate.serialNumber normalised. */
  revoked: Set<string>;
  tbs: Uint8Array;
  signatureOid: string;
  signatureParams: asn1js.AsnType | undefined;
  signature: Uint8Array;
}

const signedCrls = new Lru<true>(256);
const parsedCrls = new Lru<Crl>(64);

/** Parsed once per distinct input (pkijs takes milliseconds for a CRL); the result is read-only data. */
export function parseCrl(input: Buffer, check: string): Crl {
  const key = createHash('sha256').update(input).digest('hex');
  const hit = parsedCrls.get(key);
  if (hit) return hit;
  const crl = { ...parseCrlUncached(input, check), digest: key };
  parsedCrls.set(key, crl);
  return crl;
}

function parseCrlUncached(input: Buffer, check: string): Omit<Crl, 'digest'> {
  let der = input;
  const pem = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/.exec(input.toString('latin1'));
  if (pem) der = Buffer.from(pem[1]!.replace(/\s+/g, ''), 'base64');
  let crl: pkijs.CertificateRevocationList;
  try {
    crl = pkijs.CertificateRevocationList.fromBER(der);
  } catch (err) {
    throw new AttestationError('ATTESTATION_COLLATERAL', `the CRL does not parse (${(err as Error).message})`, {
      check,
      cause: err,
    });
  }
  return {
    issuer: crl.issuer.typesAndValues.map((tv) => `${tv.type}=${tv.value.valueBlock.value}`).join(', '),
    thisUpdate: crl.thisUpdate.value,
    nextUpdate: crl.nextUpdate?.value,
    revoked: new Set(
      (crl.revokedCertificates ?? []).map((r) =>
        normaliseSerial(Buffer.from(r.userCertificate.valueBlock.valueHexView).toString('hex')),
      ),
    ),
    tbs: crl.tbsView,
    signatureOid: crl.signatureAlgorithm.algorithmId,
    signatureParams: crl.signatureAlgorithm.algorithmParams as asn1js.AsnType | undefined,
    signature: crl.signatureValue.valueBlock.valueHexView,
  };
}

/**
 * A serial as the minimal two's-complement bytes DER writes (upper-case hex): both sides of a revocation
 * check come from DER, so serial 0 ('00') and negative serials ('FF…') compare like any other.
 */
export function normaliseSerial(hex: string): string {
  let h = hex.toUpperCase();
  if (h.length % 2 === 1) h = `0${h}`;
  while (
    h.length > 2 &&
    ((h.startsWith('00') && parseInt(h[2]!, 16) < 8) || (h.startsWith('FF') && parseInt(h[2]!, 16) >= 8))
  )
    h = h.slice(2);
  return h;
}

/** The certificate's serial from its DER (node's serialNumber writes 0 as '0' and negatives with a '-'). */
export function serialOf(cert: X509Certificate): string {
  let serial = serials.get(cert);
  if (serial === undefined) {
    serial = normaliseSerial(
      Buffer.from(pkijs.Certificate.fromBER(cert.raw).serialNumber.valueBlock.valueHexView).toString('hex'),
    );
    serials.set(cert, serial);
  }
  return serial;
}

/** pkijs parses a certificate in ~1 ms; the verifiers keep their certificate objects, so remember by object. */
const serials = new WeakMap<X509Certificate, string>();

/** The CRL is signed by `issuer` and current at `now`; pkijs checks neither freshness nor (synchronously) signatures. */
export function checkCrl(crl: Crl, issuer: X509Certificate, now: Date, check: string): void {
  // The signature (an RSA-4096 PSS verify for AMD) is a pure function of the bytes: checked once per CRL and issuer.
  const key = `${crl.digest}:${createHash('sha256').update(issuer.raw).digest('hex')}`;
  if (!signedCrls.get(key)) {
    if (!verifySignature(crl.signatureOid, crl.signatureParams, issuer.publicKey, crl.tbs, crl.signature)) {
      throw new AttestationError('ATTESTATION_SIGNATURE', `the CRL is not signed by ${name(issuer)}`, { check });
    }
    signedCrls.set(key, true);
  }
  if (now < crl.thisUpdate)
    throw new AttestationError(
      'ATTESTATION_EXPIRED',
      `the CRL is not valid before ${crl.thisUpdate.toISOString()} (verification time ${now.toISOString()})`,
      { check },
    );
  if (!crl.nextUpdate || now > crl.nextUpdate) {
    throw new AttestationError(
      'ATTESTATION_EXPIRED',
      `the CRL expired at ${crl.nextUpdate?.toISOString() ?? '(no nextUpdate)'} (verification time ${now.toISOString()})`,
      {
        check,
        hint: 'fetch a current CRL or verify at a time inside its window (--at)',
      },
    );
  }
}

export function checkNotRevoked(crl: Crl, cert: X509Certificate, check: string): void {
  const serial = serialOf(cert);
  if (crl.revoked.has(serial)) {
    throw new AttestationError(
      'ATTESTATION_REVOKED',
      `${name(cert)} (serial ${serial}) is revoked by its issuer's CRL`,
      { check },
    );
  }
}

const SIGNATURE_HASHES: Record<string, string> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
};
const RSA_PSS = '1.2.840.113549.1.1.10';
const HASH_OIDS: Record<string, string> = {
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

function verifySignature(
  oid: string,
  params: asn1js.AsnType | undefined,
  key: KeyObject,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  try {
    if (oid === RSA_PSS) {
      const pss = new pkijs.RSASSAPSSParams({ schema: params });
      const hash = HASH_OIDS[pss.hashAlgorithm.algorithmId];
      if (!hash) return false;
      return verify(
        hash,
        data,
        { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: pss.saltLength },
        signature,
      );
    }
    const hash = SIGNATURE_HASHES[oid];
    return hash !== undefined && verify(hash, data, key, signature);
  } catch {
    return false;
  }
}

// ---- extensions -----------------------------------------------------------------------------------------

/** The DER value (extnValue contents) of the extension `oid`, or undefined. */
export function extensionValue(cert: X509Certificate, oid: string): Uint8Array | undefined {
  const parsed = pkijs.Certificate.fromBER(cert.raw);
  return parsed.extensions?.find((e) => e.extnID === oid)?.extnValue.valueBlock.valueHexView;
}

export function parseDer(bytes: Uint8Array, check: string): asn1js.AsnType {
  const result = asn1js.fromBER(bytes);
  if (result.offset === -1)
    throw new AttestationError('ATTESTATION_CHAIN', `an extension does not parse as DER (${result.result.error})`, {
      check,
    });
  return result.result;
}
