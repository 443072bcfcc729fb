import { AttestationError } from '../errors.js';

/**
 * Intel DCAP ECDSA quotes, versions 3 (SGX), 4 and 5 (SGX or TDX): layout only, no cryptography.
 * Every read is bounds-checked and every length must add up exactly, so garbage gives ATTESTATION_MALFORMED
 * naming the field and its offset, never a RangeError. Offsets: attestation.md §1.1–1.4.
 */

export const INTEL_QE_VENDOR_ID = '939a7233f79c4ca9940a0db3957f0607';
export const HEADER_SIZE = 48;
export const SGX_REPORT_SIZE = 384;
export const TD10_BODY_SIZE = 584;
export const TD15_BODY_SIZE = 648;
const ATT_KEY_TYPE_ECDSA_P256 = 2;
const TEE_SGX = 0x00000000;
const TEE_TDX = 0x00000081;
/** Certification data types (Intel DCAP). */
export const CERT_PPID_CLEARTEXT = 1;
export const CERT_PCK_CHAIN = 5;
export const CERT_QE_REPORT = 6;

/** v5 body types: which body follows the 6-byte descriptor. */
const BODY_SIZES: Record<number, number> = { 1: SGX_REPORT_SIZE, 2: TD10_BODY_SIZE, 3: TD15_BODY_SIZE };

export interface ParsedQuote {
  version: 3 | 4 | 5;
  tee: 'sgx' | 'tdx';
  /** 1 SGX report, 2 TD report (TDX 1.0), 3 TD report v1.5 (v5 only). */
  bodyType: 1 | 2 | 3;
  header: Buffer;
  body: Buffer;
  /** What the attestation key signs: everything before signature_data_len. */
  signedBytes: Buffer;
  signature: Buffer;
  /** Raw X‖Y of the P-256 attestation key. */
  attestKey: Buffer;
  qeReport: Buffer;
  qeReportSignature: Buffer;
  qeAuthData: Buffer;
  /** The innermost certification data (v4/v5: inside the type-6 wrapper). */
  certType: number;
  certData: Buffer;
  /** Bytes after the signature data: ignored, reported as a warning. */
  trailing: number;
}

const CHECK = 'quote';

/** A cursor that names what it reads, so a short buffer is reported as "<field> at offset N". */
class Reader {
  constructor(
    private readonly buf: Buffer,
    public pos: number,
    private readonly end: number,
  ) {}

  take(n: number, field: string): Buffer {
    if (n < 0 || this.pos + n > this.end) {
      throw malformed(`${field} at offset ${this.pos} needs ${n} bytes, only ${Math.max(0, this.end - this.pos)} left`);
    }
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  u16(field: string): number {
    return this.take(2, field).readUInt16LE(0);
  }

  u32(field: string): number {
    return this.take(4, field).readUInt32LE(0);
  }
}

function malformed(message: string): AttestationError {
  return new AttestationError('ATTESTATION_MALFORMED', message, { check: CHECK });
}

export function parseQuote(bytes: Buffer): ParsedQuote {
  if (!Buffer.isBuffer(bytes)) throw malformed('expected the quote as bytes');
  const r = new Reader(bytes, 0, bytes.length);
  const header = r.take(HEADER_SIZE, 'header');
  const version = header.readUInt16LE(0);
  if (version !== 3 && version !== 4 && version !== 5)
    throw malformed(`version ${version} at offset 0 is not 3, 4 or 5`);
  const attKeyType = header.readUInt16LE(2);
  if (attKeyType !== ATT_KEY_TYPE_ECDSA_P256) {
    throw malformed(`att_key_type ${attKeyType} at offset 2 is not 2 (ECDSA P-256)`);
  }
  const teeRaw = header.readUInt32LE(4);
  // v3 has no tee_type: the field is reserved and must be 0 (SGX).
  if (teeRaw !== TEE_SGX && (version === 3 || teeRaw !== TEE_TDX)) {
    throw malformed(
      `tee_type 0x${teeRaw.toString(16)} at offset 4 is not ${version === 3 ? '0 (v3 is SGX only)' : '0 or 0x81'}`,
    );
  }
  const tee = teeRaw === TEE_TDX ? 'tdx' : 'sgx';
  const vendor = header.subarray(12, 28).toString('hex');
  if (vendor !== INTEL_QE_VENDOR_ID) throw malformed(`qe_vendor_id ${vendor} at offset 12 is not Intel's`);

  const { bodyType, body } = readBody(r, version, tee);
  const signedBytes = bytes.subarray(0, r.pos);
  const sigLen = r.u32('signature_data_len');
  const sigStart = r.pos;
  const sig = new Reader(bytes, sigStart, sigStart + Math.min(sigLen, bytes.length - sigStart));
  if (sigStart + sigLen > bytes.length) {
    throw malformed(
      `signature_data_len ${sigLen} at offset ${sigStart - 4} exceeds the quote (${bytes.length - sigStart} bytes left)`,
    );
  }
  const signature = sig.take(64, 'quote signature');
  const attestKey = sig.take(64, 'attestation key');
  let inner: Reader = sig;
  let innerEnd = sigStart + sigLen;
  if (version !== 3) {
    // v4/v5 wrap the QE report in certification data of type 6 (ECDSA_SIG_AUX_DATA).
    const at = sig.pos;
    const outerType = sig.u16('certification data type');
    if (outerType !== CERT_QE_REPORT)
      throw malformed(`certification data type ${outerType} at offset ${at} is not 6 (QE report)`);
    const outerSize = sig.u32('certification data size');
    inner = new Reader(bytes, sig.pos, sig.pos + outerSize);
    innerEnd = sig.pos + outerSize;
    sig.take(outerSize, 'QE report certification data');
  }
  const qeReport = inner.take(SGX_REPORT_SIZE, 'QE report');
  const qeReportSignature = inner.take(64, 'QE report signature');
  const authLen = inner.u16('QE auth data size');
  const qeAuthData = inner.take(authLen, 'QE auth data');
  const certAt = inner.pos;
  const certType = inner.u16('certification data type');
  if (certType < 1 || certType > 5)
    throw malformed(`certification data type ${certType} at offset ${certAt} is not 1–5`);
  const certSize = inner.u32('certification data size');
  const certData = inner.take(certSize, 'certification data');
  // The lengths must account for every byte they claim: unexplained bytes inside signed structures are refused.
  if (inner.pos !== innerEnd)
    throw malformed(`${innerEnd - inner.pos} unexplained bytes at offset ${inner.pos} in the QE report data`);
  if (sig.pos !== sigStart + sigLen)
    throw malformed(`${sigStart + sigLen - sig.pos} unexplained bytes at offset ${sig.pos} in the signature data`);
  return {
    version,
    tee,
    bodyType,
    header,
    body,
    signedBytes,
    signature,
    attestKey,
    qeReport,
    qeReportSignature,
    qeAuthData,
    certType,
    certData,
    trailing: bytes.length - (sigStart + sigLen),
  };
}

function readBody(r: Reader, version: 3 | 4 | 5, tee: 'sgx' | 'tdx'): { bodyType: 1 | 2 | 3; body: Buffer } {
  if (version !== 5) {
    const bodyType = tee === 'tdx' ? 2 : 1;
    return {
      bodyType,
      body: r.take(
        bodyType === 2 ? TD10_BODY_SIZE : SGX_REPORT_SIZE,
        tee === 'tdx' ? 'TD report body' : 'SGX report body',
      ),
    };
  }
  const typeAt = r.pos;
  const bodyType = r.u16('body type');
  const expected = BODY_SIZES[bodyType];
  if (expected === undefined) throw malformed(`body type ${bodyType} at offset ${typeAt} is not 1, 2 or 3`);
  if ((bodyType === 1) !== (tee === 'sgx')) {
    throw malformed(`body type ${bodyType} at offset ${typeAt} does not fit tee_type ${tee === 'tdx' ? '0x81' : '0'}`);
  }
  const size = r.u32('body size');
  if (size !== expected)
    throw malformed(`body size ${size} at offset ${typeAt + 2} is not ${expected} (body type ${bodyType})`);
  return { bodyType: bodyType as 1 | 2 | 3, body: r.take(size, 'body') };
}

// ---- field views ----------------------------------------------------------------------------------------

/** The SGX report body fields (also the QE report's), attestation.md §1.2. */
export interface SgxReportFields {
  cpusvn: Buffer;
  miscselect: number;
  isvextprodid: Buffer;
  attributes: Buffer;
  mrenclave: Buffer;
  mrsigner: Buffer;
  configid: Buffer;
  isvprodid: number;
  isvsvn: number;
  configsvn: number;
  isvfamilyid: Buffer;
  reportData: Buffer;
}

export function sgxReportFields(b: Buffer): SgxReportFields {
  if (b.length !== SGX_REPORT_SIZE) throw malformed(`an SGX report is ${SGX_REPORT_SIZE} bytes, not ${b.length}`);
  return {
    cpusvn: b.subarray(0, 16),
    miscselect: b.readUInt32LE(16),
    isvextprodid: b.subarray(32, 48),
    attributes: b.subarray(48, 64),
    mrenclave: b.subarray(64, 96),
    mrsigner: b.subarray(128, 160),
    configid: b.subarray(192, 256),
    isvprodid: b.readUInt16LE(256),
    isvsvn: b.readUInt16LE(258),
    configsvn: b.readUInt16LE(260),
    isvfamilyid: b.subarray(304, 320),
    reportData: b.subarray(320, 384),
  };
}

/** The TD report body fields, attestation.md §1.3. */
export interface TdReportFields {
  teeTcbSvn: Buffer;
  mrseam: Buffer;
  mrsignerseam: Buffer;
  seamattributes: Buffer;
  tdattributes: Buffer;
  xfam: Buffer;
  mrtd: Buffer;
  mrconfigid: Buffer;
  mrowner: Buffer;
  mrownerconfig: Buffer;
  rtmr: [Buffer, Buffer, Buffer, Buffer];
  reportData: Buffer;
  teeTcbSvn2?: Buffer;
  mrservicetd?: Buffer;
}

export function tdReportFields(b: Buffer): TdReportFields {
  if (b.length !== TD10_BODY_SIZE && b.length !== TD15_BODY_SIZE)
    throw malformed(`a TD report body is 584 or 648 bytes, not ${b.length}`);
  const f: TdReportFields = {
    teeTcbSvn: b.subarray(0, 16),
    mrseam: b.subarray(16, 64),
    mrsignerseam: b.subarray(64, 112),
    seamattributes: b.subarray(112, 120),
    tdattributes: b.subarray(120, 128),
    xfam: b.subarray(128, 136),
    mrtd: b.subarray(136, 184),
    mrconfigid: b.subarray(184, 232),
    mrowner: b.subarray(232, 280),
    mrownerconfig: b.subarray(280, 328),
    rtmr: [b.subarray(328, 376), b.subarray(376, 424), b.subarray(424, 472), b.subarray(472, 520)],
    reportData: b.subarray(520, 584),
  };
  if (b.length === TD15_BODY_SIZE) {
    f.teeTcbSvn2 = b.subarray(584, 600);
    f.mrservicetd = b.subarray(600, 648);
  }
  return f;
}
