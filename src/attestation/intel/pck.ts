import type { X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import { AttestationError } from '../errors.js';
import { extensionValue, parseDer } from '../pki.js';

/**
 * The Intel SGX extension of PCK certificates (OID 1.2.840.113741.1.13.1): what identifies the platform's TCB
 * and selects its collateral. Layout: attestation.md §1.5 (SEQUENCE of {OID, value}).
 */

export const SGX_EXTENSION_OID = '1.2.840.113741.1.13.1';
const OID = SGX_EXTENSION_OID;
const CHECK = 'PCK certificate';

export interface PckExtension {
  ppid: Buffer;
  /** The 16 TCB component SVNs, in order. */
  compSvn: number[];
  pceSvn: number;
  cpuSvn: Buffer;
  /** 4 hex digits, lower case. */
  pceId: string;
  /** 12 hex digits, lower case. */
  fmspc: string;
  /** 0 Standard, 1 Scalable, 2 Scalable with integrity. */
  sgxType: number;
  platformInstanceId?: Buffer;
  configuration?: { dynamicPlatform?: boolean; cachedKeys?: boolean; smtEnabled?: boolean };
}

function bad(message: string): AttestationError {
  return new AttestationError('ATTESTATION_CHAIN', message, { check: CHECK });
}

/** Which PCK CA issued the leaf, from the issuer CN: it selects the PCK CRL. */
export function pckCa(cert: X509Certificate): 'platform' | 'processor' {
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.issuer)?.[1];
  if (cn === 'Intel SGX PCK Platform CA') return 'platform';
  if (cn === 'Intel SGX PCK Processor CA') return 'processor';
  throw bad(`issued by '${cn ?? cert.issuer}', not by the Intel SGX PCK Platform or Processor CA`);
}

export function isPckLeaf(cert: X509Certificate): boolean {
  return /(?:^|\n)CN=Intel SGX PCK Certificate(?:\n|$)/.test(cert.subject);
}

export function parsePckExtension(cert: X509Certificate): PckExtension {
  let der: Uint8Array | undefined;
  try {
    der = extensionValue(cert, OID);
  } catch (err) {
    throw new AttestationError('ATTESTATION_CHAIN', `the certificate does not parse (${(err as Error).message})`, {
      check: CHECK,
      cause: err,
    });
  }
  if (!der) throw bad(`no SGX extension (${OID})`);
  let root: asn1js.AsnType;
  try {
    root = parseDer(der, CHECK);
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    throw bad(`the SGX extension does not parse (${(err as Error).message})`);
  }
  const entries = namedEntries(root, 'SGX extension');
  const tcb = namedEntries(required(entries, '.2', 'TCB'), 'TCB');
  const compSvn: number[] = [];
  for (let i = 1; i <= 16; i++)
    compSvn.push(int(required(tcb, `.2.${i}`, `TCB component ${i}`), `TCB component ${i}`, 255));
  const ext: PckExtension = {
    ppid: octets(required(entries, '.1', 'PPID'), 'PPID', 16),
    compSvn,
    pceSvn: int(required(tcb, '.2.17', 'PCESVN'), 'PCESVN', 0xffff),
    cpuSvn: octets(required(tcb, '.2.18', 'CPUSVN'), 'CPUSVN', 16),
    pceId: octets(required(entries, '.3', 'PCE-ID'), 'PCE-ID', 2).toString('hex'),
    fmspc: octets(required(entries, '.4', 'FMSPC'), 'FMSPC', 6).toString('hex'),
    sgxType: enumerated(required(entries, '.5', 'SGX type'), 'SGX type'),
  };
  const instance = entries.get('.6');
  if (instance) ext.platformInstanceId = octets(instance, 'platform instance ID', 16);
  const config = entries.get('.7');
  if (config) ext.configuration = configuration(config);
  return ext;
}

/** SEQUENCE OF SEQUENCE { OID, value } → map from the OID suffix after the extension's OID. */
function namedEntries(node: asn1js.AsnType, what: string): Map<string, asn1js.AsnType> {
  if (!(node instanceof asn1js.Sequence)) throw bad(`${what} is not a SEQUENCE`);
  const out = new Map<string, asn1js.AsnType>();
  for (const item of node.valueBlock.value) {
    const pair = item instanceof asn1js.Sequence ? item.valueBlock.value : [];
    const [id, value] = pair;
    if (pair.length !== 2 || !(id instanceof asn1js.ObjectIdentifier) || !value)
      throw bad(`${what} has an entry that is not {OID, value}`);
    const oid = id.valueBlock.toString();
    if (!oid.startsWith(OID + '.')) throw bad(`${what} has an entry with a foreign OID ${oid}`);
    const key = oid.slice(OID.length);
    if (out.has(key)) throw bad(`${what} names ${oid} twice`);
    out.set(key, value);
  }
  return out;
}

function required(map: Map<string, asn1js.AsnType>, key: string, what: string): asn1js.AsnType {
  const v = map.get(key);
  if (!v) throw bad(`the SGX extension has no ${what} (${OID}${key})`);
  return v;
}

function octets(node: asn1js.AsnType, what: string, size: number): Buffer {
  if (!(node instanceof asn1js.OctetString)) throw bad(`${what} is not an OCTET STRING`);
  const b = Buffer.from(node.valueBlock.valueHexView);
  if (b.length !== size) throw bad(`${what} is ${b.length} bytes, not ${size}`);
  return b;
}

function int(node: asn1js.AsnType, what: string, max: number): number {
  if (!(node instanceof asn1js.Integer)) throw bad(`${what} is not an INTEGER`);
  const v = node.valueBlock.valueDec;
  if (!Number.isInteger(v) || v < 0 || v > max) throw bad(`${what} ${v} is out of range 0–${max}`);
  return v;
}

function enumerated(node: asn1js.AsnType, what: string): number {
  if (!(node instanceof asn1js.Enumerated)) throw bad(`${what} is not ENUMERATED`);
  const v = node.valueBlock.valueDec;
  if (!Number.isInteger(v) || v < 0 || v > 2) throw bad(`${what} ${v} is not 0, 1 or 2`);
  return v;
}

function configuration(node: asn1js.AsnType): NonNullable<PckExtension['configuration']> {
  const entries = namedEntries(node, 'configuration');
  const flag = (key: string): boolean | undefined => {
    const v = entries.get(key);
    if (v === undefined) return undefined;
    if (!(v instanceof asn1js.Boolean)) throw bad(`configuration ${OID}${key} is not a BOOLEAN`);
    return v.valueBlock.value;
  };
  const out: NonNullable<PckExtension['configuration']> = {};
  const d = flag('.7.1');
  const c = flag('.7.2');
  const s = flag('.7.3');
  if (d !== undefined) out.dynamicPlatform = d;
  if (c !== undefined) out.cachedKeys = c;
  if (s !== undefined) out.smtEnabled = s;
  return out;
}
