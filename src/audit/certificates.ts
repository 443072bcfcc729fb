import { X509Certificate, createHash, type KeyObject } from 'node:crypto';
import type * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { AuditError } from './errors.js';

/** The keys that may sign entries of one export, by `key` (SHA-256 of the certificate's DER). */
export type AuditKeys = ReadonlyMap<string, KeyObject>;

const KEY_USAGE = '2.5.29.15';
const EXTENDED_KEY_USAGE = '2.5.29.37';
const DIGITAL_SIGNATURE = 0x80;
/** The subject of the audit certificate the CAS issues (cas/audit-log.ts), and of no other certificate of its CA. */
export const AUDIT_SUBJECT = 'CN=veil-cas audit';

export function sha256Hex(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

/** The one CA certificate of `caPem`, and its fingerprint (SHA-256 of its DER). */
export function parseCa(caPem: string): { ca: X509Certificate; fingerprint: string } {
  const ca = parseCertificate(caPem, 'the CA certificate (--ca)', 'pass the CAS CA certificate in PEM');
  if (!ca.ca) {
    throw new AuditError('AUDIT_CERTIFICATE', 'the certificate given as the CA is not a CA (basicConstraints)', {
      hint: 'pass the CAS CA certificate (veil cas show-certificate), not a leaf',
    });
  }
  return { ca, fingerprint: sha256Hex(ca.raw) };
}

/**
 * The export's audit certificates, each issued (name and signature) by `ca`, allowed to sign (keyUsage
 * digitalSignature) and an audit certificate as the CAS issues it: subject exactly CN "veil-cas audit" and no
 * extended key usage. The same CA issues the CAS's TLS certificate (serverAuth) and client certificates
 * (clientAuth), which sign too: a key that speaks TLS must not vouch for entries. Validity dates are not
 * judged: a log is verified long after its entries were signed, and an expired certificate still names its key.
 */
export function auditKeys(pems: readonly string[], ca: X509Certificate): AuditKeys {
  const keys = new Map<string, KeyObject>();
  pems.forEach((pem, i) => {
    const where = `audit certificate ${i + 1} of the header (line 1)`;
    const cert = parseCertificate(pem, where, 'the header was modified; take the export from another copy');
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
      throw new AuditError('AUDIT_CERTIFICATE', `${where} is not issued by the given CA (${cert.subject})`, {
        line: 1,
      });
    }
    if (!signsDigitally(cert.raw)) {
      throw new AuditError('AUDIT_CERTIFICATE', `${where} does not carry keyUsage digitalSignature`, { line: 1 });
    }
    if (cert.subject !== AUDIT_SUBJECT) {
      throw new AuditError('AUDIT_CERTIFICATE', `${where} is not an audit certificate (subject ${cert.subject})`, {
        line: 1,
        hint: `only the CAS's audit certificate (${AUDIT_SUBJECT}) signs its log; the header was modified`,
      });
    }
    if (hasExtendedUsage(cert.raw)) {
      throw new AuditError('AUDIT_CERTIFICATE', `${where} carries an extended key usage (a TLS certificate?)`, {
        line: 1,
        hint: "the CAS's audit certificate has none; a certificate for TLS cannot sign the log",
      });
    }
    keys.set(sha256Hex(cert.raw), cert.publicKey);
  });
  return keys;
}

function parseCertificate(pem: string, where: string, hint: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new AuditError('AUDIT_CERTIFICATE', `${where} does not parse (${(err as Error).message})`, {
      hint,
      cause: err,
    });
  }
}

/** node:crypto exposes extended key usage only: the keyUsage bits are read with pkijs. */
function signsDigitally(der: Buffer): boolean {
  try {
    const ext = extensionsOf(der).find((e) => e.extnID === KEY_USAGE);
    const bits = ext?.parsedValue as asn1js.BitString | undefined;
    const first = bits?.valueBlock.valueHexView[0];
    return first !== undefined && (first & DIGITAL_SIGNATURE) !== 0;
  } catch {
    return false;
  }
}

/** Any extended key usage, whatever its purposes (read from the DER, not from node's parsed view of it). */
function hasExtendedUsage(der: Buffer): boolean {
  try {
    return extensionsOf(der).some((e) => e.extnID === EXTENDED_KEY_USAGE);
  } catch {
    return true;
  }
}

function extensionsOf(der: Buffer): pkijs.Extension[] {
  return pkijs.Certificate.fromBER(der).extensions ?? [];
}
