/**
 * TEST-ONLY. The PKI half of the synthetic Intel-like DCAP kit (synthetic.ts builds collateral and quotes on it), for tests that must reach checks the real
 * vectors cannot (nobody can sign as Intel). Nothing in production imports this file; it is verified with
 * verifyIntelQuoteAgainst and its own pinned root, never with verifyIntelQuote (which pins INTEL_SGX_ROOT).
 *
 * Everything is real cryptography: ECDSA P-256 keys from node:crypto, certificates and CRLs built with
 * pkijs/asn1js and signed over the DER pkijs encodes, names built by hand (CN, O, L, ST, C, each attribute its
 * own RDN, as Intel's), the PCK SGX extension encoded as in a real PCK certificate (automata-dcap-rs
 * pck_certchain.pem), TCB info / QE identity texts signed as hex r‖s over the exact text, and quotes laid out
 * as attestation.md §1.1–1.4 (SGX v3, TDX v4 with the type-6 wrapper).
 */
import { X509Certificate, createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { pinRoot, spkiSha256, type PinnedRoot } from '../pki.js';
import { toPem } from './chain.js';

export const SGX_EXT = '1.2.840.113741.1.13.1';
const ECDSA_SHA256 = '1.2.840.10045.4.3.2';

export interface KeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

export const p256 = (): KeyPair => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

// ---- names, certificates ---------------------------------------------------------------------------------

/** Intel's subject layout: CN, O, L, ST (UTF8String), C (PrintableString), each attribute in its own SET. */
export function intelName(cn: string): pkijs.RelativeDistinguishedNames {
  const attr = (type: string, value: asn1js.Utf8String | asn1js.PrintableString) =>
    new asn1js.Set({ value: [new pkijs.AttributeTypeAndValue({ type, value }).toSchema()] });
  const utf8 = (type: string, value: string) => attr(type, new asn1js.Utf8String({ value }));
  const name = new asn1js.Sequence({
    value: [
      utf8('2.5.4.3', cn),
      utf8('2.5.4.10', 'Intel Corporation'),
      utf8('2.5.4.7', 'Santa Clara'),
      utf8('2.5.4.8', 'CA'),
      attr('2.5.4.6', new asn1js.PrintableString({ value: 'US' })),
    ],
  });
  return pkijs.RelativeDistinguishedNames.fromBER(name.toBER(false));
}

const ab = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
const ecdsaSha256 = () => new pkijs.AlgorithmIdentifier({ algorithmId: ECDSA_SHA256 });
/** UTCTime until 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5). */
const time = (d: Date) => new pkijs.Time({ type: d.getUTCFullYear() < 2050 ? 0 : 1, value: d });

export function ext(oid: string, value: Buffer, critical = false): pkijs.Extension {
  return new pkijs.Extension({ extnID: oid, critical, extnValue: ab(value) });
}

export function keyId(key: KeyObject): Buffer {
  const spki = pkijs.PublicKeyInfo.fromBER(key.export({ type: 'spki', format: 'der' }));
  return createHash('sha1').update(spki.subjectPublicKey.valueBlock.valueHexView).digest();
}

/** DER of the extension values Intel's certificates carry. */
export const KU = { ca: '03020106', leaf: '030206c0', crlOnly: '03020102', signOnly: '03020780' } as const;
export const BC = { leaf: '3000', ca0: '30060101ff020100', ca1: '30060101ff020101', caNoLen: '30030101ff' } as const;

export interface CertSpec {
  /** DER INTEGER contents, hex (so 0, high-bit and negative serials are exact): '00', '00ac0f…', 'ff01'. */
  serial: string;
  subject: string;
  issuer: string;
  from: Date;
  to: Date;
  publicKey: KeyObject;
  /** The issuer's key pair (its public key gives the authority key identifier). */
  signer: KeyPair;
  /** Hex DER of keyUsage / basicConstraints; null leaves the extension out. */
  keyUsage?: string | null;
  basicConstraints?: string | null;
  extra?: pkijs.Extension[];
}

export interface Issued {
  der: Buffer;
  pem: string;
  cert: X509Certificate;
  key: KeyPair;
  /** DER INTEGER contents, hex. */
  serial: string;
}

export function buildCert(s: CertSpec): Buffer {
  const cert = new pkijs.Certificate();
  cert.version = 2;
  cert.serialNumber = new asn1js.Integer({ valueHex: ab(Buffer.from(s.serial, 'hex')) });
  cert.signature = ecdsaSha256();
  cert.signatureAlgorithm = ecdsaSha256();
  cert.issuer = intelName(s.issuer);
  cert.subject = intelName(s.subject);
  cert.notBefore = time(s.from);
  cert.notAfter = time(s.to);
  cert.subjectPublicKeyInfo = pkijs.PublicKeyInfo.fromBER(s.publicKey.export({ type: 'spki', format: 'der' }));
  const extensions = [
    ext('2.5.29.35', Buffer.concat([Buffer.from([0x30, 22, 0x80, 20]), keyId(s.signer.publicKey)])),
    ext('2.5.29.14', Buffer.concat([Buffer.from([0x04, 20]), keyId(s.publicKey)])),
  ];
  if (s.keyUsage !== null) extensions.push(ext('2.5.29.15', Buffer.from(s.keyUsage ?? KU.ca, 'hex'), true));
  if (s.basicConstraints !== null)
    extensions.push(ext('2.5.29.19', Buffer.from(s.basicConstraints ?? BC.ca0, 'hex'), true));
  cert.extensions = [...extensions, ...(s.extra ?? [])];
  cert.tbsView = new Uint8Array(cert.encodeTBS().toBER(false));
  cert.signatureValue = new asn1js.BitString({ valueHex: ab(sign('sha256', cert.tbsView, s.signer.privateKey)) });
  return Buffer.from(cert.toSchema().toBER(false));
}

export function issue(s: Omit<CertSpec, 'publicKey'>, key: KeyPair): Issued {
  const der = buildCert({ ...s, publicKey: key.publicKey });
  return { der, pem: toPem(der), cert: new X509Certificate(der), key, serial: s.serial };
}

// ---- the PCK SGX extension -------------------------------------------------------------------------------

export interface PckSpec {
  ppid?: Buffer;
  compSvn?: number[];
  pceSvn?: number;
  cpuSvn?: Buffer;
  pceId?: string;
  fmspc?: string;
  /** 0 Standard, 1 Scalable, 2 Scalable with integrity. */
  sgxType?: number;
  /** Platform CA leaves carry a platform instance ID and a configuration. */
  platformInstanceId?: Buffer | null;
  configuration?: { dynamicPlatform: boolean; cachedKeys: boolean; smtEnabled: boolean } | null;
}

/** The values of the real PCK certificate in automata-dcap-rs pck_certchain.pem (FMSPC 00606A000000). */
export const REAL_PCK = {
  ppid: Buffer.from('25f8e1da4fe822d04f0ff15025931f49', 'hex'),
  compSvn: [12, 12, 3, 3, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  pceSvn: 13,
  cpuSvn: Buffer.from('0c0c0303ffff01000000000000000000', 'hex'),
  pceId: '0000',
  fmspc: '00606a000000',
  sgxType: 1,
  platformInstanceId: Buffer.from('1135c40890aedf44eb6e02d58424229e', 'hex'),
  configuration: { dynamicPlatform: true, cachedKeys: false, smtEnabled: false },
} as const satisfies PckSpec;

/** SEQUENCE OF { OID, value } as Intel encodes it (minimal DER INTEGERs: 255 is 02 02 00 FF). */
export function pckExtension(p: PckSpec = {}): Buffer {
  const v = { ...REAL_PCK, ...p };
  const entry = (suffix: string, value: asn1js.AsnType) =>
    new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: SGX_EXT + suffix }), value] });
  const octets = (b: Buffer) => new asn1js.OctetString({ valueHex: ab(b) });
  const tcb = [
    ...v.compSvn.map((svn, i) => entry(`.2.${i + 1}`, new asn1js.Integer({ value: svn }))),
    entry('.2.17', new asn1js.Integer({ value: v.pceSvn })),
    entry('.2.18', octets(v.cpuSvn)),
  ];
  const entries = [
    entry('.1', octets(v.ppid)),
    entry('.2', new asn1js.Sequence({ value: tcb })),
    entry('.3', octets(Buffer.from(v.pceId, 'hex'))),
    entry('.4', octets(Buffer.from(v.fmspc, 'hex'))),
    entry('.5', new asn1js.Enumerated({ value: v.sgxType })),
  ];
  if (v.platformInstanceId) entries.push(entry('.6', octets(v.platformInstanceId)));
  const c = v.configuration;
  if (c) {
    entries.push(
      entry(
        '.7',
        new asn1js.Sequence({
          value: [
            entry('.7.1', new asn1js.Boolean({ value: c.dynamicPlatform })),
            entry('.7.2', new asn1js.Boolean({ value: c.cachedKeys })),
            entry('.7.3', new asn1js.Boolean({ value: c.smtEnabled })),
          ],
        }),
      ),
    );
  }
  return Buffer.from(new asn1js.Sequence({ value: entries }).toBER(false));
}

// ---- the hierarchy ---------------------------------------------------------------------------------------

export const ROOT_CN = 'Intel SGX Root CA';
export const PLATFORM_CN = 'Intel SGX PCK Platform CA';
export const PROCESSOR_CN = 'Intel SGX PCK Processor CA';
export const PCK_CN = 'Intel SGX PCK Certificate';
export const TCB_SIGNING_CN = 'Intel SGX TCB Signing';

export const CERT_FROM = new Date('2018-05-21T10:45:10Z');
export const CERT_TO = new Date('2049-12-31T23:59:59Z');

export interface IntelPki {
  root: Issued;
  /** The synthetic root, pinned by its key: pass it to verifyIntelQuoteAgainst. */
  pinned: PinnedRoot;
  platform: Issued;
  processor: Issued;
  tcbSigning: Issued;
  /** A PCK leaf issued by the Platform CA, with the REAL_PCK values (or createIntelPki's). */
  pck: Issued;
}

export const SERIALS = {
  root: '01',
  platform: '02',
  processor: '03',
  tcbSigning: '04',
  pck: '00ac0fbdba7bce8ccfb800dd932fa8467e68ea932e',
} as const;

export function createIntelPki(pck: PckSpec = {}): IntelPki {
  const rootKey = p256();
  const root = issue(
    {
      serial: SERIALS.root,
      subject: ROOT_CN,
      issuer: ROOT_CN,
      from: CERT_FROM,
      to: CERT_TO,
      signer: rootKey,
      basicConstraints: BC.ca1,
    },
    rootKey,
  );
  const pinned = pinRoot('the synthetic Intel SGX Root CA', root.pem, spkiSha256(root.cert.publicKey));
  const platform = issueCa(root, PLATFORM_CN, SERIALS.platform);
  const processor = issueCa(root, PROCESSOR_CN, SERIALS.processor);
  const tcbSigning = issueLeaf(root, TCB_SIGNING_CN, SERIALS.tcbSigning);
  return { root, pinned, platform, processor, tcbSigning, pck: issuePck(platform, pck) };
}

/** A CA (Platform / Processor, or any name) issued by `issuer`; the overrides can make it a non-CA. */
export function issueCa(
  issuer: Issued,
  cn: string,
  serial: string,
  overrides: Partial<CertSpec> = {},
  key = p256(),
): Issued {
  const issuerCn = /CN=([^\n]+)/.exec(issuer.cert.subject)![1]!;
  return issue(
    {
      serial,
      subject: cn,
      issuer: issuerCn,
      from: CERT_FROM,
      to: CERT_TO,
      signer: issuer.key,
      keyUsage: KU.ca,
      basicConstraints: BC.ca0,
      ...overrides,
    },
    key,
  );
}

/** A leaf (TCB Signing or any name) issued by `issuer`. */
export function issueLeaf(
  issuer: Issued,
  cn: string,
  serial: string,
  overrides: Partial<CertSpec> = {},
  key = p256(),
): Issued {
  return issueCa(issuer, cn, serial, { keyUsage: KU.leaf, basicConstraints: BC.leaf, ...overrides }, key);
}

/** A PCK leaf issued by `ca` (Platform or Processor CA) with the given SGX extension values. */
export function issuePck(ca: Issued, pck: PckSpec = {}, overrides: Partial<CertSpec> = {}, key = p256()): Issued {
  const processor = /CN=Intel SGX PCK Processor CA/.test(ca.cert.subject);
  const spec: PckSpec = processor ? { platformInstanceId: null, configuration: null, ...pck } : pck;
  return issueLeaf(
    ca,
    PCK_CN,
    SERIALS.pck,
    {
      from: new Date('2023-08-24T21:35:32Z'),
      to: new Date('2030-08-24T21:35:32Z'),
      extra: [ext(SGX_EXT, pckExtension(spec))],
      ...overrides,
    },
    key,
  );
}

/** Leaf ‖ CA ‖ root as canonical PEM, then a NUL, as quotes carry it. */
export function pckChainPem(pck: Issued, ca: Issued, root: Issued, nul = true): Buffer {
  return Buffer.concat([Buffer.from(pck.pem + ca.pem + root.pem, 'latin1'), nul ? Buffer.from([0]) : Buffer.alloc(0)]);
}

// ---- CRLs ------------------------------------------------------------------------------------------------

export interface CrlSpec {
  issuer: Issued;
  /** Another key than the issuer's (a forged CRL). */
  signer?: KeyObject;
  /** DER INTEGER contents, hex. */
  revoked?: string[];
  thisUpdate?: Date;
  /** null: no nextUpdate. */
  nextUpdate?: Date | null;
}

export const CRL_THIS = new Date('2025-05-25T00:00:00Z');
export const CRL_NEXT = new Date('2025-06-24T00:00:00Z');

export function buildCrl(s: CrlSpec): Buffer {
  const crl = new pkijs.CertificateRevocationList();
  crl.version = 1;
  crl.issuer = intelName(/CN=([^\n]+)/.exec(s.issuer.cert.subject)![1]!);
  crl.signature = ecdsaSha256();
  crl.signatureAlgorithm = ecdsaSha256();
  crl.thisUpdate = time(s.thisUpdate ?? CRL_THIS);
  if (s.nextUpdate !== null) crl.nextUpdate = time(s.nextUpdate ?? CRL_NEXT);
  if (s.revoked?.length) {
    crl.revokedCertificates = s.revoked.map(
      (serial) =>
        new pkijs.RevokedCertificate({
          userCertificate: new asn1js.Integer({ valueHex: ab(Buffer.from(serial, 'hex')) }),
          revocationDate: time(new Date('2025-04-01T00:00:00Z')),
        }),
    );
  }
  crl.tbsView = new Uint8Array((crl as unknown as { encodeTBS(): asn1js.Sequence }).encodeTBS().toBER(false)); // protected in the typings only
  crl.signatureValue = new asn1js.BitString({
    valueHex: ab(sign('sha256', crl.tbsView, s.signer ?? s.issuer.key.privateKey)),
  });
  return Buffer.from(crl.toSchema().toBER(false));
}
