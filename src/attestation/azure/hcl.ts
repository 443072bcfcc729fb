import { createPublicKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { AttestationError } from '../errors.js';

/**
 * The Azure CVM HCL report (attestation.md §1.7): the paravisor (HCL) asks the hardware for a report whose
 * REPORT_DATA is SHA-256 of a JSON document (the "runtime data" / var data) holding the vTPM's attestation key.
 * Layout: 32-byte header ('HCLA', version, report_size, request_type, status, reserved) ‖ the hardware report
 * area at 0x20 (1184 bytes: an SNP ATTESTATION_REPORT, or a 1024-byte TDREPORT and zeros) ‖ IGVM request data at
 * 0x4C0 (data_size, version, report_type, hash_type, var_size, var data) ‖ zeros to 2600 bytes.
 */

export const HCL_REPORT_SIZE = 2600;
const HW_OFFSET = 0x20;
const HW_SIZE = 1184;
const TDREPORT_SIZE = 1024;
const IGVM_OFFSET = 0x4c0;
const IGVM_HEADER = 20;
/** IGVM report_type values. */
const REPORT_TYPES = { 2: 'snp', 4: 'tdx' } as const;
const HASH_SHA256 = 1;

export interface HclReport {
  version: number;
  hardwareType: 'snp' | 'tdx';
  /** The SNP report (1184 bytes) or the TDREPORT (1024 bytes). */
  hardware: Buffer;
  /** The exact bytes the hardware report's REPORT_DATA hashes. */
  varData: Buffer;
  runtime: RuntimeData;
}

export interface RsaJwk {
  kty: 'RSA';
  n: string;
  e: string;
}

export interface RuntimeData {
  akPub: RsaJwk;
  akKey: KeyObject;
  /** The whole parsed document, for the record (vm-configuration, user-data). */
  json: Record<string, unknown>;
}

function malformed(message: string): AttestationError {
  return new AttestationError('ATTESTATION_MALFORMED', message, { check: 'HCL report' });
}

function zeros(b: Buffer, from: number, to: number, what: string): void {
  for (let i = from; i < to; i++)
    if (b[i] !== 0)
      throw malformed(
        `${what} (bytes 0x${from.toString(16)}..0x${to.toString(16)}) must be zero, byte 0x${i.toString(16)} is not`,
      );
}

export function parseHclReport(bytes: Buffer): HclReport {
  if (!Buffer.isBuffer(bytes) || bytes.length !== HCL_REPORT_SIZE)
    throw malformed(
      `must be exactly ${HCL_REPORT_SIZE} bytes, got ${Buffer.isBuffer(bytes) ? bytes.length : typeof bytes}`,
    );
  const b = Buffer.from(bytes);
  if (b.toString('latin1', 0, 4) !== 'HCLA') throw malformed("does not start with 'HCLA'");
  const version = b.readUInt32LE(4);
  if (version < 1 || version > 2) throw malformed(`version ${version} is not supported (1, 2)`);
  const reportSize = b.readUInt32LE(8);
  const requestType = b.readUInt32LE(12);
  if (requestType !== 2) throw malformed(`request_type ${requestType} is not 2 (attestation report)`);
  const status = b.readUInt32LE(16);
  if (status !== 0) throw malformed(`status ${status} is not 0 (success)`);
  zeros(b, 20, HW_OFFSET, 'header reserved');

  const dataSize = b.readUInt32LE(IGVM_OFFSET);
  const igvmVersion = b.readUInt32LE(IGVM_OFFSET + 4);
  if (igvmVersion !== 1) throw malformed(`IGVM request data version ${igvmVersion} is not 1`);
  const reportType = b.readUInt32LE(IGVM_OFFSET + 8);
  const hardwareType = REPORT_TYPES[reportType as keyof typeof REPORT_TYPES];
  if (!hardwareType) throw malformed(`IGVM report_type ${reportType} is not 2 (SNP) or 4 (TDX)`);
  const hashType = b.readUInt32LE(IGVM_OFFSET + 12);
  if (hashType !== HASH_SHA256) throw malformed(`IGVM hash_type ${hashType} is not 1 (SHA-256)`);
  const varSize = b.readUInt32LE(IGVM_OFFSET + 16);
  const varEnd = IGVM_OFFSET + IGVM_HEADER + varSize;
  if (varSize === 0 || varEnd > HCL_REPORT_SIZE) throw malformed(`var_size ${varSize} does not fit the report`);
  if (dataSize !== IGVM_HEADER + varSize)
    throw malformed(`IGVM data_size ${dataSize} is not ${IGVM_HEADER} + var_size ${varSize}`);
  if (reportSize !== varEnd) throw malformed(`report_size ${reportSize} is not the end of the var data (${varEnd})`);
  zeros(b, varEnd, HCL_REPORT_SIZE, 'padding after the var data');

  let hardware = b.subarray(HW_OFFSET, HW_OFFSET + HW_SIZE);
  if (hardwareType === 'tdx') {
    zeros(b, HW_OFFSET + TDREPORT_SIZE, HW_OFFSET + HW_SIZE, 'padding after the TDREPORT');
    hardware = hardware.subarray(0, TDREPORT_SIZE);
  }
  const varData = b.subarray(IGVM_OFFSET + IGVM_HEADER, varEnd);
  return { version, hardwareType, hardware, varData, runtime: parseRuntimeData(varData) };
}

const base64url = z.string().regex(/^[A-Za-z0-9_-]+$/);
const jwkSchema = z.looseObject({ kid: z.string(), kty: z.string(), n: base64url.optional(), e: base64url.optional() });
const runtimeSchema = z.looseObject({ keys: z.array(jwkSchema).max(16) });

/** The var data JSON: exactly one HCLAkPub, an RSA key of at least 2048 bits. */
export function parseRuntimeData(varData: Buffer): RuntimeData {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(varData));
  } catch (err) {
    throw malformed(`the var data is not UTF-8 JSON (${(err as Error).message})`);
  }
  const parsed = runtimeSchema.safeParse(json);
  if (!parsed.success)
    throw malformed(`the var data JSON has no valid 'keys' array (${parsed.error.issues[0]?.message ?? 'invalid'})`);
  const aks = parsed.data.keys.filter((k) => k.kid === 'HCLAkPub');
  if (aks.length !== 1) throw malformed(`the var data has ${aks.length} HCLAkPub keys, expected 1`);
  const ak = aks[0]!;
  if (ak.kty !== 'RSA' || !ak.n || !ak.e) throw malformed('HCLAkPub is not an RSA JWK with n and e');
  const akPub: RsaJwk = { kty: 'RSA', n: ak.n, e: ak.e };
  let akKey: KeyObject;
  try {
    akKey = createPublicKey({ key: { ...akPub }, format: 'jwk' });
  } catch (err) {
    throw malformed(`HCLAkPub is not a usable RSA key (${(err as Error).message})`);
  }
  const bits = akKey.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < 2048) throw malformed(`HCLAkPub is a ${bits}-bit RSA key; at least 2048 bits are required`);
  return { akPub, akKey, json: parsed.data as Record<string, unknown> };
}
