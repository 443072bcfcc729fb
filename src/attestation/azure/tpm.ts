import { constants, createHash, verify, type KeyObject } from 'node:crypto';
import { AttestationError } from '../errors.js';

/**
 * TPM 2.0 quotes (TPM 2.0 Library Part 2: TPMS_ATTEST, TPMS_QUOTE_INFO, TPML_PCR_SELECTION). All integers are
 * big-endian. The whole message must be consumed: trailing bytes would be signed yet unread.
 */

export const TPM_GENERATED_VALUE = 0xff544347;
export const TPM_ST_ATTEST_QUOTE = 0x8018;
export const TPM_ALG_SHA256 = 0x000b;
const MAX_PCR_BANKS = 16;

export interface PcrSelection {
  hash: number;
  /** Selected PCR indices, ascending. */
  pcrs: number[];
}

export interface TpmsAttest {
  qualifiedSigner: Buffer;
  extraData: Buffer;
  clock: bigint;
  resetCount: number;
  restartCount: number;
  safe: boolean;
  firmwareVersion: bigint;
  pcrSelect: PcrSelection[];
  pcrDigest: Buffer;
}

function malformed(message: string): AttestationError {
  return new AttestationError('ATTESTATION_MALFORMED', message, { check: 'TPM quote' });
}

class Reader {
  pos = 0;
  constructor(private readonly b: Buffer) {}
  need(n: number, what: string): void {
    if (this.pos + n > this.b.length)
      throw malformed(`${what} runs past the end of the message (${this.b.length} bytes)`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.b[this.pos++]!;
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.b.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.b.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(what: string): bigint {
    this.need(8, what);
    const v = this.b.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  bytes(n: number, what: string): Buffer {
    this.need(n, what);
    const v = Buffer.from(this.b.subarray(this.pos, this.pos + n));
    this.pos += n;
    return v;
  }
  /** TPM2B: u16 size then bytes, at most `max`. */
  sized(max: number, what: string): Buffer {
    const n = this.u16(`${what} size`);
    if (n > max) throw malformed(`${what} is ${n} bytes, more than ${max}`);
    return this.bytes(n, what);
  }
  get done(): boolean {
    return this.pos === this.b.length;
  }
}

export function parseTpmsAttest(message: Buffer): TpmsAttest {
  if (!Buffer.isBuffer(message)) throw malformed('the message is not a byte buffer');
  const r = new Reader(message);
  const magic = r.u32('magic');
  if (magic !== TPM_GENERATED_VALUE)
    throw malformed(`magic 0x${magic.toString(16)} is not TPM_GENERATED_VALUE (0xff544347)`);
  const type = r.u16('type');
  if (type !== TPM_ST_ATTEST_QUOTE) throw malformed(`type 0x${type.toString(16)} is not TPM_ST_ATTEST_QUOTE (0x8018)`);
  // TPM2B_NAME: a hash algorithm and its digest (≤ 2 + 64), TPM2B_DATA: ≤ 64 (sizeof TPMT_HA).
  const qualifiedSigner = r.sized(66, 'qualifiedSigner');
  const extraData = r.sized(64, 'extraData');
  const clock = r.u64('clock');
  const resetCount = r.u32('resetCount');
  const restartCount = r.u32('restartCount');
  const safeByte = r.u8('safe');
  if (safeByte > 1) throw malformed(`clockInfo.safe ${safeByte} is not a TPMI_YES_NO`);
  const firmwareVersion = r.u64('firmwareVersion');
  const count = r.u32('pcrSelect count');
  if (count > MAX_PCR_BANKS) throw malformed(`pcrSelect has ${count} banks, more than ${MAX_PCR_BANKS}`);
  const pcrSelect: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const hash = r.u16('pcrSelect hash');
    const size = r.u8('sizeofSelect');
    if (size < 3 || size > 4) throw malformed(`sizeofSelect ${size} is not 3 or 4`);
    const bits = r.bytes(size, 'pcrSelect');
    const pcrs: number[] = [];
    for (let p = 0; p < size * 8; p++) if (bits[p >> 3]! & (1 << (p & 7))) pcrs.push(p);
    pcrSelect.push({ hash, pcrs });
  }
  const pcrDigest = r.sized(64, 'pcrDigest');
  if (!r.done) throw malformed(`${message.length - r.pos} bytes after the quote info`);
  return {
    qualifiedSigner,
    extraData,
    clock,
    resetCount,
    restartCount,
    safe: safeByte === 1,
    firmwareVersion,
    pcrSelect,
    pcrDigest,
  };
}

/** RSASSA-PKCS1-v1_5 with SHA-256 over the TPMS_ATTEST bytes; the signature is the bare modulus-sized value. */
export function verifyQuoteSignature(message: Buffer, signature: Buffer, ak: KeyObject): void {
  const bytes = (ak.asymmetricKeyDetails?.modulusLength ?? 0) / 8;
  if (signature.length !== bytes)
    throw new AttestationError(
      'ATTESTATION_MALFORMED',
      `the signature is ${signature.length} bytes; the AK needs ${bytes}`,
      { check: 'TPM quote signature' },
    );
  let ok = false;
  try {
    ok = verify('sha256', message, { key: ak, padding: constants.RSA_PKCS1_PADDING }, signature);
  } catch {
    ok = false;
  }
  if (!ok)
    throw new AttestationError(
      'ATTESTATION_SIGNATURE',
      'does not verify with the attestation key (HCLAkPub) of this HCL report',
      { check: 'TPM quote signature' },
    );
}

/**
 * The quote's pcrDigest is the hash of the selected PCR values, concatenated in selection order. Only one
 * SHA-256 bank can be checked against one list of values; anything else is refused rather than half-checked.
 */
export function checkPcrs(quote: TpmsAttest, values: readonly Buffer[]): Record<string, string> {
  const fail = (m: string) => new AttestationError('ATTESTATION_MALFORMED', m, { check: 'TPM PCRs' });
  const [bank, ...more] = quote.pcrSelect;
  if (!bank || more.length > 0 || bank.hash !== TPM_ALG_SHA256)
    throw fail('the quote must select exactly one SHA-256 PCR bank for PCR values to be checked');
  const out: Record<string, string> = {};
  const hash = createHash('sha256');
  for (const i of bank.pcrs) {
    const v = values[i];
    if (v?.length !== 32) throw fail(`PCR ${i} is selected but its value is ${v ? `${v.length} bytes` : 'missing'}`);
    hash.update(v);
    out[String(i)] = v.toString('hex');
  }
  const digest = hash.digest();
  if (!digest.equals(quote.pcrDigest)) {
    throw new AttestationError(
      'ATTESTATION_SIGNATURE',
      `the PCR values do not hash to the quote's pcrDigest (${digest.toString('hex').slice(0, 16)}… ≠ ${quote.pcrDigest.toString('hex').slice(0, 16)}…)`,
      {
        check: 'TPM PCRs',
      },
    );
  }
  return out;
}
