import { constants, createHash, generateKeyPair, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { SnpTcb } from '../types.js';

/**
 * Test-only: builders for a synthetic AMD-like SEV-SNP hierarchy with real cryptography (turin.test.ts,
 * vlek.test.ts). An RSA-4096 self-signed ARK (RSASSA-PSS/SHA-384, salt 48, as AMD's), an ASK or ASVK it signs,
 * SEV-VCEK / SEV-VLEK certificates the ASK/ASVK signs with the AMD extensions encoded as in real certificates
 * (virtee vcek_turin.der, trustee test-vlek.der), reports signed by the VCEK/VLEK key, and ARK-signed CRLs.
 * The structures are built with pkijs/asn1js; every signature is made with node:crypto over the DER pkijs
 * encodes. Nothing in production code imports this module.
 */

export const NOW = new Date('2025-06-01T00:00:00Z');
export const AMD_ARC = '1.3.6.1.4.1.3704.1.';
export const HWID = Buffer.from('5a17c0ffee0b7a11', 'hex');
/** Distinct values per component, so a mix-up of any two bytes of the layout is a mismatch. */
export const TCB: Required<SnpTcb> = { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 5 };
export const ARK_SERIAL = 0x30000;
export const ASK_SERIAL = 0x30001;

export { code } from '../test-errors.js';

// ---- keys ----------------------------------------------------------------------------------------------------

export interface KeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}
export const keyPair = promisify(generateKeyPair);
export const rsa4096 = () => keyPair('rsa', { modulusLength: 4096 }) as Promise<KeyPair>;
export const p384 = () => keyPair('ec', { namedCurve: 'secp384r1' }) as Promise<KeyPair>;

// ---- names, algorithms, signing --------------------------------------------------------------------------------

/**
 * AMD's subject layout: OU, C (PrintableString), L, ST, O, CN, every attribute in its own SET, as AMD's. (pkijs
 * would put all of them in one multi-valued RDN, "OU=… + C=… + CN=…", so the sequence is encoded here.)
 */
export function amdName(cn: string): pkijs.RelativeDistinguishedNames {
  const attr = (type: string, value: asn1js.Utf8String | asn1js.PrintableString) =>
    new asn1js.Set({ value: [new pkijs.AttributeTypeAndValue({ type, value }).toSchema()] });
  const utf8 = (type: string, value: string) => attr(type, new asn1js.Utf8String({ value }));
  const name = new asn1js.Sequence({
    value: [
      utf8('2.5.4.11', 'Engineering'),
      attr('2.5.4.6', new asn1js.PrintableString({ value: 'US' })),
      utf8('2.5.4.7', 'Santa Clara'),
      utf8('2.5.4.8', 'CA'),
      utf8('2.5.4.10', 'Advanced Micro Devices'),
      utf8('2.5.4.3', cn),
    ],
  });
  return pkijs.RelativeDistinguishedNames.fromBER(name.toBER(false));
}

/** RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48, trailer omitted: the AlgorithmIdentifier AMD's certificates carry. */
export function pss384(): pkijs.AlgorithmIdentifier {
  const sha384 = new pkijs.AlgorithmIdentifier({
    algorithmId: '2.16.840.1.101.3.4.2.2',
    algorithmParams: new asn1js.Null(),
  });
  const params = new pkijs.RSASSAPSSParams({
    hashAlgorithm: sha384,
    maskGenAlgorithm: new pkijs.AlgorithmIdentifier({
      algorithmId: '1.2.840.113549.1.1.8',
      algorithmParams: sha384.toSchema(),
    }),
    saltLength: 48,
  });
  return new pkijs.AlgorithmIdentifier({ algorithmId: '1.2.840.113549.1.1.10', algorithmParams: params.toSchema() });
}

export function pssSign(data: Uint8Array, key: KeyObject): Buffer {
  return sign('sha384', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 });
}

export const ab = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
export const der = (o: { toSchema(encodeFlag?: boolean): asn1js.AsnType }): Buffer =>
  Buffer.from(o.toSchema().toBER(false));
export const pem = (d: Buffer, label = 'CERTIFICATE') =>
  `-----BEGIN ${label}-----\n${d
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n')}\n-----END ${label}-----\n`;

export function ext(oid: string, value: Buffer, critical = false): pkijs.Extension {
  return new pkijs.Extension({ extnID: oid, critical, extnValue: ab(value) });
}

export function keyId(key: KeyObject): Buffer {
  const spki = pkijs.PublicKeyInfo.fromBER(key.export({ type: 'spki', format: 'der' }));
  return createHash('sha1').update(spki.subjectPublicKey.valueBlock.valueHexView).digest();
}

export interface CertSpec {
  serial: number;
  subject: string;
  issuer: string;
  from: Date;
  to: Date;
  publicKey: KeyObject;
  signer: KeyObject;
  extensions: pkijs.Extension[];
}

export function buildCert(s: CertSpec): Buffer {
  const cert = new pkijs.Certificate();
  cert.version = 2;
  cert.serialNumber = new asn1js.Integer({ value: s.serial });
  cert.signature = pss384();
  cert.signatureAlgorithm = pss384();
  cert.issuer = amdName(s.issuer);
  cert.subject = amdName(s.subject);
  cert.notBefore = new pkijs.Time({ type: 0, value: s.from });
  cert.notAfter = new pkijs.Time({ type: 0, value: s.to });
  cert.subjectPublicKeyInfo = pkijs.PublicKeyInfo.fromBER(s.publicKey.export({ type: 'spki', format: 'der' }));
  cert.extensions = s.extensions;
  cert.tbsView = new Uint8Array(cert.encodeTBS().toBER(false));
  cert.signatureValue = new asn1js.BitString({ valueHex: ab(pssSign(cert.tbsView, s.signer)) });
  return der(cert);
}

export const ARK_FROM = new Date('2023-05-15T20:03:12Z');
export const ARK_TO = new Date('2048-05-15T20:03:12Z');
export const VCEK_FROM = new Date('2024-11-06T21:14:00Z');
export const VCEK_TO = new Date('2031-11-06T21:14:00Z');

export function buildArk(key: KeyPair): Buffer {
  return buildCert({
    serial: ARK_SERIAL,
    subject: 'ARK-Turin',
    issuer: 'ARK-Turin',
    from: ARK_FROM,
    to: ARK_TO,
    publicKey: key.publicKey,
    signer: key.privateKey,
    extensions: [
      ext('2.5.29.15', Buffer.from('03020106', 'hex'), true), // keyCertSign, cRLSign
      ext('2.5.29.14', Buffer.concat([Buffer.from([0x04, 20]), keyId(key.publicKey)])),
      ext('2.5.29.19', Buffer.from(new pkijs.BasicConstraints({ cA: true }).toSchema().toBER(false)), true),
    ],
  });
}

export function buildAsk(key: KeyObject, arkKey: KeyPair, serial = ASK_SERIAL, subject = 'SEV-Turin'): Buffer {
  return buildCert({
    serial,
    subject,
    issuer: 'ARK-Turin',
    from: new Date('2023-05-15T20:25:21Z'),
    to: new Date('2048-05-15T20:25:21Z'),
    publicKey: key,
    signer: arkKey.privateKey,
    extensions: [
      ext('2.5.29.14', Buffer.concat([Buffer.from([0x04, 20]), keyId(key)])),
      ext('2.5.29.35', Buffer.concat([Buffer.from([0x30, 22, 0x80, 20]), keyId(arkKey.publicKey)])),
      ext(
        '2.5.29.19',
        Buffer.from(new pkijs.BasicConstraints({ cA: true, pathLenConstraint: 0 }).toSchema().toBER(false)),
        true,
      ),
      ext('2.5.29.15', Buffer.from('03020204', 'hex'), true), // keyCertSign
    ],
  });
}

// ---- the VCEK extensions, as the real Turin VCEK encodes them ----------------------------------------------------

/** DER INTEGER for 0..255: 02 01 xx, or 02 02 00 xx from 128 on (as the trustee legacy VCEK has 00 A9). */
export const derInt = (n: number) => (n < 0x80 ? Buffer.from([0x02, 0x01, n]) : Buffer.from([0x02, 0x02, 0x00, n]));
export const derIa5 = (s: string) => Buffer.concat([Buffer.from([0x16, s.length]), Buffer.from(s, 'latin1')]);

export interface VcekSpec {
  productName?: string;
  structVersion?: number;
  tcb?: Partial<SnpTcb> & { fmc?: number | undefined };
  /** Leave fmcSPL out (a Milan-style VCEK, or a broken Turin one). */
  omitFmc?: boolean;
  hwId?: Buffer | undefined;
  /** The newer KDS form: the hwID bytes wrapped in a DER OCTET STRING. */
  wrapHwId?: boolean;
  from?: Date;
  to?: Date;
  /** The issuer's CN ("SEV-Turin" unless given). */
  issuer?: string;
}

export function vcekExtensions(v: VcekSpec): pkijs.Extension[] {
  const t = { ...TCB, ...v.tcb };
  const hwId = v.hwId === undefined && !('hwId' in v) ? HWID : v.hwId;
  return [
    ext(`${AMD_ARC}1`, derInt(v.structVersion ?? 1)),
    ext(`${AMD_ARC}2`, derIa5(v.productName ?? 'Turin-B0')),
    ...(v.omitFmc ? [] : [ext(`${AMD_ARC}3.9`, derInt(t.fmc!))]),
    ext(`${AMD_ARC}3.1`, derInt(t.bootloader)),
    ext(`${AMD_ARC}3.2`, derInt(t.tee)),
    ext(`${AMD_ARC}3.3`, derInt(t.snp)),
    ext(`${AMD_ARC}3.5`, derInt(0)),
    ext(`${AMD_ARC}3.6`, derInt(0)),
    ext(`${AMD_ARC}3.7`, derInt(0)),
    ext(`${AMD_ARC}3.8`, derInt(t.microcode)),
    ...(hwId ? [ext(`${AMD_ARC}4`, v.wrapHwId ? Buffer.concat([Buffer.from([0x04, hwId.length]), hwId]) : hwId)] : []),
  ];
}

export function buildVcek(key: KeyObject, askKey: KeyObject, v: VcekSpec = {}): Buffer {
  return buildCert({
    serial: 0,
    subject: 'SEV-VCEK',
    issuer: v.issuer ?? 'SEV-Turin',
    from: v.from ?? VCEK_FROM,
    to: v.to ?? VCEK_TO,
    publicKey: key,
    signer: askKey,
    extensions: vcekExtensions(v),
  });
}

// ---- reports -------------------------------------------------------------------------------------------------

/** TCB_VERSION in the Turin layout: [0]=FMC [1]=BL [2]=TEE [3]=SNP [4..6]=reserved [7]=UCODE. */
export function turinTcb(t: Partial<SnpTcb> = {}): Buffer {
  const v = { ...TCB, ...t };
  return Buffer.from([v.fmc!, v.bootloader, v.tee, v.snp, 0, 0, 0, v.microcode]);
}
/** TCB_VERSION in the Milan/Genoa layout: [0]=BL [1]=TEE [6]=SNP [7]=UCODE. */
export function milanTcb(t: Partial<SnpTcb> = {}): Buffer {
  const v = { ...TCB, ...t };
  return Buffer.from([v.bootloader, v.tee, 0, 0, 0, 0, v.snp, v.microcode]);
}

export interface ReportSpec {
  version?: number;
  /** [family, model, stepping]; v≥3 only. */
  cpuid?: [number, number, number];
  reportedTcb?: Buffer;
  chipId?: Buffer;
  reportData?: Buffer;
  /** SIGNING_KEY (signer info bits 4:2): VCEK unless given. */
  signingKey?: 'vcek' | 'vlek';
}

export const MEASUREMENT = createHash('sha384').update('synthetic Turin guest').digest();
export const CHIP_ID = Buffer.concat([HWID, Buffer.alloc(56)]);

/** The 0x2A0 signed bytes of a Turin report (fields at the offsets of attestation.md §1.6), unsigned. */
export function reportBody(s: ReportSpec = {}): Buffer {
  const r = Buffer.alloc(0x4a0);
  const version = s.version ?? 3;
  r.writeUInt32LE(version, 0x000);
  r.writeUInt32LE(7, 0x004); // GUEST_SVN
  r.writeBigUInt64LE(0x30000n, 0x008); // SMT allowed, reserved bit 17, ABI 0.0
  Buffer.alloc(16, 0xf1).copy(r, 0x010); // FAMILY_ID
  Buffer.alloc(16, 0x1d).copy(r, 0x020); // IMAGE_ID
  r.writeUInt32LE(0, 0x030); // VMPL
  r.writeUInt32LE(1, 0x034); // SIGNATURE_ALGO: ECDSA P-384 / SHA-384
  turinTcb().copy(r, 0x038); // CURRENT_TCB
  r.writeBigUInt64LE(3n, 0x040); // PLATFORM_INFO: SMT_EN, TSME_EN
  r.writeUInt32LE(s.signingKey === 'vlek' ? 1 << 2 : 0, 0x048); // signer info: SIGNING_KEY, chip key not masked
  (s.reportData ?? Buffer.alloc(64, 0xab)).copy(r, 0x050);
  MEASUREMENT.copy(r, 0x090);
  Buffer.alloc(32, 0x4d).copy(r, 0x0c0); // HOST_DATA
  Buffer.alloc(32, 0x1e).copy(r, 0x140); // REPORT_ID
  (s.reportedTcb ?? turinTcb()).copy(r, 0x180);
  if (version >= 3) Buffer.from(s.cpuid ?? [0x1a, 0x02, 0x01]).copy(r, 0x188);
  (s.chipId ?? CHIP_ID).copy(r, 0x1a0);
  turinTcb().copy(r, 0x1e0); // COMMITTED_TCB
  Buffer.from([0x21, 0x37, 0x01]).copy(r, 0x1e8); // CURRENT build, minor, major
  Buffer.from([0x21, 0x37, 0x01]).copy(r, 0x1ec); // COMMITTED
  turinTcb({ snp: 3 }).copy(r, 0x1f0); // LAUNCH_TCB
  if (version >= 5) {
    r.writeBigUInt64LE(0x1n, 0x1f8);
    r.writeBigUInt64LE(0x3n, 0x200);
  }
  return r;
}

/** ECDSA P-384/SHA-384 over [0, 0x2A0); R and S little-endian, each zero-extended to 72 bytes. */
export function signReport(report: Buffer, key: KeyObject, bigEndian = false): Buffer {
  const out = Buffer.from(report);
  out.fill(0, 0x2a0);
  const rs = sign('sha384', out.subarray(0, 0x2a0), { key, dsaEncoding: 'ieee-p1363' });
  const r = Buffer.from(rs.subarray(0, 48));
  const s = Buffer.from(rs.subarray(48));
  (bigEndian ? r : r.reverse()).copy(out, 0x2a0);
  (bigEndian ? s : s.reverse()).copy(out, 0x2a0 + 72);
  return out;
}

// ---- CRLs ------------------------------------------------------------------------------------------------------

export interface CrlSpec {
  revoked?: number[];
  thisUpdate?: Date;
  nextUpdate?: Date | null;
  signer: KeyObject;
  issuer?: string;
}

export function buildCrl(s: CrlSpec): Buffer {
  const crl = new pkijs.CertificateRevocationList();
  crl.version = 1;
  crl.issuer = amdName(s.issuer ?? 'ARK-Turin');
  crl.signature = pss384();
  crl.signatureAlgorithm = pss384();
  crl.thisUpdate = new pkijs.Time({ type: 0, value: s.thisUpdate ?? new Date('2025-05-01T00:00:00Z') });
  if (s.nextUpdate !== null)
    crl.nextUpdate = new pkijs.Time({ type: 0, value: s.nextUpdate ?? new Date('2025-07-01T00:00:00Z') });
  if (s.revoked?.length) {
    crl.revokedCertificates = s.revoked.map(
      (serial) =>
        new pkijs.RevokedCertificate({
          userCertificate: new asn1js.Integer({ value: serial }),
          revocationDate: new pkijs.Time({ type: 0, value: new Date('2025-04-01T00:00:00Z') }),
        }),
    );
  }
  crl.tbsView = new Uint8Array((crl as unknown as { encodeTBS(): asn1js.Sequence }).encodeTBS().toBER(false)); // protected in the typings only
  crl.signatureValue = new asn1js.BitString({ valueHex: ab(pssSign(crl.tbsView, s.signer)) });
  return der(crl);
}

// ---- the VLEK, as trustee's test-vlek.der encodes its extensions ------------------------------------------------

export const CSP_ID = 'CN=cc-us-east-2.amazonaws.com';

export interface VlekSpec {
  productName?: string;
  tcb?: Partial<SnpTcb>;
  /** The cspID (IA5String, as test-vlek.der's); undefined leaves the extension out. Default CSP_ID. */
  cspId?: string | undefined;
  issuer?: string;
  from?: Date;
  to?: Date;
}

/**
 * test-vlek.der's order and encodings: .1 structVersion, .2 productName, .3.1 blSPL, .3.2 teeSPL, .3.4–.3.7
 * reserved SPLs (0), .3.3 snpSPL, .3.8 ucodeSPL, .5 cspID (IA5String "CN=…"); no hwID. Turin adds .3.9 fmcSPL
 * after productName, as the Turin VCEK has it.
 */
export function vlekExtensions(v: VlekSpec): pkijs.Extension[] {
  const t = { ...TCB, ...v.tcb };
  const productName = v.productName ?? 'Turin-B0';
  const cspId = 'cspId' in v ? v.cspId : CSP_ID;
  return [
    ext(`${AMD_ARC}1`, derInt(0)),
    ext(`${AMD_ARC}2`, derIa5(productName)),
    ...(productName.startsWith('Turin') ? [ext(`${AMD_ARC}3.9`, derInt(t.fmc))] : []),
    ext(`${AMD_ARC}3.1`, derInt(t.bootloader)),
    ext(`${AMD_ARC}3.2`, derInt(t.tee)),
    ext(`${AMD_ARC}3.4`, derInt(0)),
    ext(`${AMD_ARC}3.5`, derInt(0)),
    ext(`${AMD_ARC}3.6`, derInt(0)),
    ext(`${AMD_ARC}3.7`, derInt(0)),
    ext(`${AMD_ARC}3.3`, derInt(t.snp)),
    ext(`${AMD_ARC}3.8`, derInt(t.microcode)),
    ...(cspId !== undefined ? [ext(`${AMD_ARC}5`, derIa5(cspId))] : []),
  ];
}

/** A "SEV-VLEK" certificate for `key`, signed by the ASVK key (issuer "SEV-VLEK-Turin" unless given). */
export function buildVlek(key: KeyObject, asvkKey: KeyObject, v: VlekSpec = {}): Buffer {
  return buildCert({
    serial: 0,
    subject: 'SEV-VLEK',
    issuer: v.issuer ?? 'SEV-VLEK-Turin',
    from: v.from ?? VCEK_FROM,
    to: v.to ?? VCEK_TO,
    publicKey: key,
    signer: asvkKey,
    extensions: vlekExtensions(v),
  });
}
