import { type X509Certificate, createHash, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { AttestationError } from '../errors.js';
import { parseCertificates } from '../pki.js';
import { Lru } from '../../lru.js';
import { SNP_PRODUCTS, type SnpProduct } from './report.js';

/**
 * AMD's certificates for SEV-SNP: roles by subject CN (the chain is then checked cryptographically against the
 * pinned ARK, so the CN only selects, it never authorises), the VCEK/VLEK extensions (AMD "Versioned Chip
 * Endorsement Key (VCEK) Certificate and KDS Interface Specification", 57230, §3), and the GHCB certificate
 * table that the host hands the guest (configfs-tsm `auxblob`, SNP_GET_EXT_REPORT).
 */

export type AmdRole = 'vcek' | 'vlek' | 'ask' | 'asvk' | 'ark' | 'other';

export interface AmdCert {
  cert: X509Certificate;
  /** The public key, parsed once (node builds a new KeyObject on every `cert.publicKey`). */
  key: KeyObject;
  /** SHA-256 of the DER, hex: the cache key for everything derived from this certificate. */
  sha256: string;
  cn: string;
  role: AmdRole;
  /** For ASK/ASVK/ARK: the product their CN names. */
  product: SnpProduct | undefined;
}

export interface VekExtensions {
  structVersion: number;
  productName: string;
  /** productName up to the first '-' ("Milan-B0" → Milan). */
  product: SnpProduct;
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  /** Turin and later only. */
  fmc: number | undefined;
  /** VCEK only: 64 bytes (8 on Turin). */
  hwId: Buffer | undefined;
  /** VLEK only: the cloud provider the key was issued to. */
  cspId: string | undefined;
}

const AMD_ARC = '1.3.6.1.4.1.3704.1.';
const OID = {
  structVersion: `${AMD_ARC}1`,
  productName: `${AMD_ARC}2`,
  blSPL: `${AMD_ARC}3.1`,
  teeSPL: `${AMD_ARC}3.2`,
  snpSPL: `${AMD_ARC}3.3`,
  ucodeSPL: `${AMD_ARC}3.8`,
  fmcSPL: `${AMD_ARC}3.9`,
  hwID: `${AMD_ARC}4`,
  cspID: `${AMD_ARC}5`,
} as const;

const certCache = new Lru<AmdCert>(1024);
const extCache = new Lru<VekExtensions>(1024);
/** Whole inputs (a PEM bundle, a DER file) → their certificates, so a repeated bundle is not re-parsed. */
const inputCache = new Lru<AmdCert[]>(256);

function chainError(message: string, check: string): AttestationError {
  return new AttestationError('ATTESTATION_CHAIN', message, { check });
}

/** One X509Certificate per distinct DER, parsed once. */
export function amdCert(cert: X509Certificate): AmdCert {
  const sha256 = createHash('sha256').update(cert.raw).digest('hex');
  const cached = certCache.get(sha256);
  if (cached) return cached;
  let key: KeyObject;
  try {
    // node parses the key lazily and throws a plain Error for a malformed one; refuse it here, once.
    key = cert.publicKey;
  } catch (err) {
    throw new AttestationError(
      'ATTESTATION_CHAIN',
      `a certificate's public key does not parse (${(err as Error).message})`,
      { check: 'AMD certificate', cause: err },
    );
  }
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? '';
  const entry: AmdCert = { cert, key, sha256, cn, ...classify(cn) };
  certCache.set(sha256, entry);
  return entry;
}

function classify(cn: string): { role: AmdRole; product: SnpProduct | undefined } {
  if (cn === 'SEV-VCEK') return { role: 'vcek', product: undefined };
  if (cn === 'SEV-VLEK') return { role: 'vlek', product: undefined };
  for (const p of SNP_PRODUCTS) {
    if (cn === `SEV-${p}`) return { role: 'ask', product: p };
    if (cn === `SEV-VLEK-${p}`) return { role: 'asvk', product: p };
    if (cn === `ARK-${p}`) return { role: 'ark', product: p };
  }
  return { role: 'other', product: undefined };
}

/** PEM bundles or single DER certificates, as callers, files and KDS provide them. */
export function amdCerts(inputs: readonly (Buffer | string)[], check: string): AmdCert[] {
  return inputs.flatMap((input) => {
    const key = createHash('sha256').update(input).digest('hex');
    const cached = inputCache.get(key);
    if (cached) return cached;
    const parsed = parseCertificates(input, check).map(amdCert);
    inputCache.set(key, parsed);
    return parsed;
  });
}

// ---- VCEK / VLEK extensions -----------------------------------------------------------------------------

/**
 * The AMD extensions of a VCEK or VLEK. Each extnValue must hold exactly one DER value of the type the spec
 * gives (INTEGER for versions and SPLs, IA5String for names), with no trailing bytes.
 *
 * hwID: the spec defines it as the 64 raw CHIP_ID bytes as the extnValue contents, and older KDS certificates
 * are encoded so (trustee's test-vcek-invalid-legacy.der). Newer KDS certificates wrap the same bytes in a DER
 * OCTET STRING (04 40 ‖ 64 bytes; test-vcek-invalid-new.der). Both are accepted: the two forms cannot be
 * confused because a raw hwID is exactly 64 bytes (8 on Turin) and a wrapped one is exactly 66 (10), starting
 * 04 40 (04 08). Any other length is refused. An SPL of 128..255 is a two-byte INTEGER (00 A9 = 169, as in the
 * legacy file); that is correct DER and is read as such. Non-minimal, negative or out-of-range INTEGERs are
 * refused. (Both trustee files carry invalid signatures; they exercise only this parser.)
 */
export function vekExtensions(entry: AmdCert, check: string): VekExtensions {
  const cached = extCache.get(entry.sha256);
  if (cached) return cached;
  const exts = amdExtensionValues(entry.cert, check);
  const int = (name: keyof typeof OID, max: number) => {
    const v = exts.get(OID[name]);
    if (!v) throw chainError(`the ${entry.cn} certificate has no ${name} extension (${OID[name]})`, check);
    return derUint(v, max, `${entry.cn} ${name}`, check);
  };
  const productName = ia5(exts.get(OID.productName), `${entry.cn} productName`, check);
  const family = productName.split('-')[0] as SnpProduct;
  if (!SNP_PRODUCTS.includes(family))
    throw chainError(`the ${entry.cn} productName '${productName}' is not Milan, Genoa or Turin`, check);
  const fmcValue = exts.get(OID.fmcSPL);
  const fmc = fmcValue ? derUint(fmcValue, 255, `${entry.cn} fmcSPL`, check) : undefined;
  if (family === 'Turin' && fmc === undefined)
    throw chainError(`the ${entry.cn} certificate is for Turin but has no fmcSPL extension`, check);
  const hwValue = exts.get(OID.hwID);
  const hwId = hwValue ? hwIdBytes(hwValue, family, entry.cn, check) : undefined;
  const cspValue = exts.get(OID.cspID);
  const cspId = cspValue ? ia5(cspValue, `${entry.cn} cspID`, check) : undefined;
  const result: VekExtensions = {
    structVersion: int('structVersion', 0xffff),
    productName,
    product: family,
    bootloader: int('blSPL', 255),
    tee: int('teeSPL', 255),
    snp: int('snpSPL', 255),
    microcode: int('ucodeSPL', 255),
    fmc,
    hwId,
    cspId,
  };
  extCache.set(entry.sha256, result);
  return result;
}

/** extnID → extnValue contents, for AMD's arc only; a repeated AMD extension is refused. */
function amdExtensionValues(cert: X509Certificate, check: string): Map<string, Uint8Array> {
  let parsed: pkijs.Certificate;
  try {
    parsed = pkijs.Certificate.fromBER(cert.raw);
  } catch (err) {
    throw new AttestationError('ATTESTATION_CHAIN', `the certificate does not parse (${(err as Error).message})`, {
      check,
      cause: err,
    });
  }
  const out = new Map<string, Uint8Array>();
  for (const ext of parsed.extensions ?? []) {
    if (!ext.extnID.startsWith(AMD_ARC)) continue;
    if (out.has(ext.extnID)) throw chainError(`extension ${ext.extnID} appears twice`, check);
    out.set(ext.extnID, ext.extnValue.valueBlock.valueHexView);
  }
  return out;
}

/** Exactly one DER element spanning all of `bytes`. */
function single(bytes: Uint8Array, what: string, check: string): asn1js.AsnType {
  const result = asn1js.fromBER(bytes);
  if (result.offset === -1) throw chainError(`${what} is not DER (${result.result.error})`, check);
  if (result.offset !== bytes.length)
    throw chainError(`${what} has ${bytes.length - result.offset} bytes after its value`, check);
  return result.result;
}

function derUint(bytes: Uint8Array, max: number, what: string, check: string): number {
  const value = single(bytes, what, check);
  if (!(value instanceof asn1js.Integer)) throw chainError(`${what} is not an INTEGER`, check);
  const v = value.valueBlock.valueHexView;
  if (v.length === 0) throw chainError(`${what} is an empty INTEGER`, check);
  if (v[0]! & 0x80) throw chainError(`${what} is negative`, check);
  if (v.length > 1 && v[0] === 0 && (v[1]! & 0x80) === 0) throw chainError(`${what} is not minimally encoded`, check);
  if (v.length > 4) throw chainError(`${what} is out of range`, check);
  let n = 0;
  for (const b of v) n = n * 256 + b;
  if (n > max) throw chainError(`${what} is ${n}, more than ${max}`, check);
  return n;
}

function ia5(bytes: Uint8Array | undefined, what: string, check: string): string {
  if (!bytes) throw chainError(`the certificate has no ${what} extension`, check);
  const value = single(bytes, what, check);
  if (!(value instanceof asn1js.IA5String)) throw chainError(`${what} is not an IA5String`, check);
  const text = value.valueBlock.value;
  if (!/^[\x20-\x7e]*$/.test(text)) throw chainError(`${what} has non-printable characters`, check);
  return text;
}

function hwIdBytes(bytes: Uint8Array, product: SnpProduct, cn: string, check: string): Buffer {
  const size = product === 'Turin' ? 8 : 64;
  const b = Buffer.from(bytes);
  if (b.length === size) return b;
  if (b.length === size + 2 && b[0] === 0x04 && b[1] === size) return b.subarray(2);
  throw chainError(`the ${cn} hwID is ${b.length} bytes; expected ${size} (or a DER OCTET STRING of ${size})`, check);
}

// ---- GHCB certificate table (auxblob) ----------------------------------------------------------------------

/** GUIDs in RFC 4122 byte order, as the table stores them (GHCB spec, SNP extended guest request). */
export const CERT_TABLE_GUIDS = {
  vcek: '63da758d-e664-4564-adc5-f4b93be8accd',
  vlek: 'a8074bc2-a25a-483e-aae6-39c045a0b8a1',
  ask: '4ab7b379-bbac-4fe4-a02f-05aef327c782',
  ark: 'c0b406a4-a803-4952-9743-3fb6014cd0ae',
} as const;

export interface CertTableEntry {
  guid: string;
  /** The name for known GUIDs; undefined for others (kept, never used as a certificate). */
  kind: keyof typeof CERT_TABLE_GUIDS | undefined;
  data: Buffer;
}

const ENTRY_SIZE = 24;
/** A host provisions a handful of certificates; far more entries is malformed, not generous. */
export const CERT_TABLE_MAX_ENTRIES = 64;

function auxError(message: string): AttestationError {
  return new AttestationError('ATTESTATION_MALFORMED', message, { check: 'SNP certificate table' });
}

function guidString(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Entries {GUID[16], u32 offset, u32 length} up to an all-zero entry; offsets are relative to the table start.
 * Every blob must lie after the terminator and inside the buffer; a GUID may appear once.
 */
export function parseCertTable(table: Buffer): CertTableEntry[] {
  const headers: { guid: string; offset: number; length: number }[] = [];
  let end = -1;
  for (let pos = 0; pos + ENTRY_SIZE <= table.length; pos += ENTRY_SIZE) {
    const raw = table.subarray(pos, pos + ENTRY_SIZE);
    if (raw.every((b) => b === 0)) {
      end = pos + ENTRY_SIZE;
      break;
    }
    if (headers.length === CERT_TABLE_MAX_ENTRIES) throw auxError(`more than ${CERT_TABLE_MAX_ENTRIES} entries`);
    headers.push({ guid: guidString(raw.subarray(0, 16)), offset: raw.readUInt32LE(16), length: raw.readUInt32LE(20) });
  }
  if (end < 0) throw auxError('no terminating all-zero entry');
  const seen = new Set<string>();
  const entries: CertTableEntry[] = [];
  for (const h of headers) {
    if (seen.has(h.guid)) throw auxError(`GUID ${h.guid} appears twice`);
    seen.add(h.guid);
    if (h.length === 0) throw auxError(`entry ${h.guid} is empty`);
    if (h.offset < end || h.offset + h.length > table.length) {
      throw auxError(
        `entry ${h.guid} (offset ${h.offset}, length ${h.length}) lies outside the data area [${end}, ${table.length})`,
      );
    }
    const kind = (Object.keys(CERT_TABLE_GUIDS) as (keyof typeof CERT_TABLE_GUIDS)[]).find(
      (k) => CERT_TABLE_GUIDS[k] === h.guid,
    );
    entries.push({ guid: h.guid, kind, data: table.subarray(h.offset, h.offset + h.length) });
  }
  return entries;
}

/** Builds a table (for tests and for hosts that provision certificates): the inverse of parseCertTable. */
export function buildCertTable(entries: readonly { guid: string; data: Buffer }[]): Buffer {
  const head = Buffer.alloc((entries.length + 1) * ENTRY_SIZE);
  let offset = head.length;
  entries.forEach((e, i) => {
    Buffer.from(e.guid.replace(/-/g, ''), 'hex').copy(head, i * ENTRY_SIZE);
    head.writeUInt32LE(offset, i * ENTRY_SIZE + 16);
    head.writeUInt32LE(e.data.length, i * ENTRY_SIZE + 20);
    offset += e.data.length;
  });
  return Buffer.concat([head, ...entries.map((e) => e.data)]);
}

/** The certificates in a table: known kinds only, each parsed as DER (or PEM) with the entry named on failure. */
export function certsFromTable(table: Buffer): AmdCert[] {
  const out: AmdCert[] = [];
  for (const entry of parseCertTable(table)) {
    if (!entry.kind) continue;
    try {
      out.push(...amdCerts([entry.data], 'SNP certificate table'));
    } catch (err) {
      throw auxError(`the ${entry.kind.toUpperCase()} entry is not a certificate (${(err as Error).message})`);
    }
  }
  return out;
}
