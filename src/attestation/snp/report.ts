import { AttestationError } from '../errors.js';
import type { SnpTcb } from '../types.js';

/**
 * The SEV-SNP ATTESTATION_REPORT (AMD SEV-SNP ABI spec, table "ATTESTATION_REPORT Structure"), parsed without
 * trusting anything in it: every field is read at a fixed offset, every reserved byte is checked to be zero and
 * every enumerated value is checked, so that two different byte strings never yield the same claims unless the
 * difference is refused. Nothing here checks the signature; verify.ts does.
 */

export type SnpProduct = 'Milan' | 'Genoa' | 'Turin';
export const SNP_PRODUCTS: readonly SnpProduct[] = ['Milan', 'Genoa', 'Turin'];

export const SNP_REPORT_SIZE = 0x4a0;
/** The signature covers bytes [0, 0x2A0). */
export const SNP_SIGNED_SIZE = 0x2a0;
const SIG_COMPONENT = 72;
const P384_BYTES = 48;

/** Policy bits this verifier knows (ABI 1.58). Any other bit set is refused: an unknown bit may relax isolation. */
const POLICY_KNOWN_MASK = (1n << 26n) - 1n;
const POLICY_RESERVED_ONE = 1n << 17n;

export interface SnpFirmwareVersion {
  major: number;
  minor: number;
  build: number;
}

export interface SnpReport {
  /** A copy of the exact 1184 bytes. */
  raw: Buffer;
  version: number;
  guestSvn: number;
  policy: bigint;
  familyId: Buffer;
  imageId: Buffer;
  vmpl: number;
  signatureAlgo: number;
  /** TCB_VERSION fields as 8 raw bytes: their meaning depends on the product (decodeTcb). */
  currentTcb: Buffer;
  platformInfo: bigint;
  authorKeyEn: boolean;
  maskChipKey: boolean;
  signingKey: 'vcek' | 'vlek';
  reportData: Buffer;
  measurement: Buffer;
  hostData: Buffer;
  idKeyDigest: Buffer;
  authorKeyDigest: Buffer;
  reportId: Buffer;
  reportIdMa: Buffer;
  reportedTcb: Buffer;
  /** Version 3 and later: CPUID family (extended + base), model (extended + base) and stepping of the chip. */
  cpuid: { family: number; model: number; stepping: number } | undefined;
  chipId: Buffer;
  committedTcb: Buffer;
  currentVersion: SnpFirmwareVersion;
  committedVersion: SnpFirmwareVersion;
  launchTcb: Buffer;
  /** Version 5 and later. */
  launchMitVector: bigint | undefined;
  currentMitVector: bigint | undefined;
  /** The signature as node's ieee-p1363 wants it: r ‖ s, 48 bytes each, big-endian. */
  signature: Buffer;
  /** The product the CPUID fields name (version ≥ 3); undefined for version 2 (see productFromChipId). */
  product: SnpProduct | undefined;
}

function malformed(field: string, message: string): AttestationError {
  return new AttestationError('ATTESTATION_MALFORMED', `${field} ${message}`, { check: 'SNP report' });
}

function mbz(raw: Buffer, from: number, to: number, field: string): void {
  for (let i = from; i < to; i++) {
    if (raw[i] !== 0)
      throw malformed(
        field,
        `(bytes 0x${from.toString(16)}..0x${to.toString(16)}) must be zero, byte 0x${i.toString(16)} is 0x${raw[i]!.toString(16)}`,
      );
  }
}

/**
 * Parses exactly one report. A longer buffer (report ‖ certificate table, as SNP_GET_EXT_REPORT returns it) is
 * refused: the caller must split it, so certificates can never be mistaken for report bytes or vice versa.
 */
export function parseSnpReport(bytes: Buffer): SnpReport {
  if (!Buffer.isBuffer(bytes)) throw malformed('report', 'is not a byte buffer');
  if (bytes.length !== SNP_REPORT_SIZE) {
    throw malformed(
      'report',
      `must be exactly ${SNP_REPORT_SIZE} bytes, got ${bytes.length}${bytes.length > SNP_REPORT_SIZE ? ' (split report and certificate table first)' : ''}`,
    );
  }
  const raw = Buffer.from(bytes);
  const version = raw.readUInt32LE(0x000);
  if (version < 2 || version > 5) throw malformed('VERSION', `${version} is not supported (2..5)`);
  const signatureAlgo = raw.readUInt32LE(0x034);
  if (signatureAlgo !== 1) throw malformed('SIGNATURE_ALGO', `${signatureAlgo} is not 1 (ECDSA P-384 with SHA-384)`);

  const policy = raw.readBigUInt64LE(0x008);
  if ((policy & POLICY_RESERVED_ONE) === 0n) throw malformed('POLICY', 'reserved bit 17 must be 1');
  if ((policy & ~POLICY_KNOWN_MASK) !== 0n)
    throw malformed('POLICY', `has unknown bits set (0x${policy.toString(16)}); refused rather than guessed`);

  const vmpl = raw.readUInt32LE(0x030);
  if (vmpl > 3) throw malformed('VMPL', `${vmpl} is not 0..3`);

  const signer = raw.readUInt32LE(0x048);
  if (signer >>> 5 !== 0) throw malformed('signer info', `reserved bits 5..31 must be zero (0x${signer.toString(16)})`);
  const keySel = (signer >>> 2) & 7;
  if (keySel === 7) throw malformed('SIGNING_KEY', 'is 7: the report is not signed');
  if (keySel !== 0 && keySel !== 1) throw malformed('SIGNING_KEY', `${keySel} is reserved (0 VCEK, 1 VLEK)`);
  const maskChipKey = (signer & 2) !== 0;
  mbz(raw, 0x04c, 0x050, 'reserved');

  // v≥3 carries the CPUID identification at 0x188..0x18A; before that the bytes are reserved.
  let cpuid: SnpReport['cpuid'];
  if (version >= 3) {
    cpuid = { family: raw[0x188]!, model: raw[0x189]!, stepping: raw[0x18a]! };
    mbz(raw, 0x18b, 0x1a0, 'reserved');
  } else {
    mbz(raw, 0x188, 0x1a0, 'reserved');
  }
  if (raw[0x1eb] !== 0) throw malformed('reserved', 'byte 0x1eb must be zero');
  if (raw[0x1ef] !== 0) throw malformed('reserved', 'byte 0x1ef must be zero');
  let launchMitVector: bigint | undefined;
  let currentMitVector: bigint | undefined;
  if (version >= 5) {
    launchMitVector = raw.readBigUInt64LE(0x1f8);
    currentMitVector = raw.readBigUInt64LE(0x200);
    mbz(raw, 0x208, SNP_SIGNED_SIZE, 'reserved');
  } else {
    mbz(raw, 0x1f8, SNP_SIGNED_SIZE, 'reserved');
  }

  const signature = parseSignature(raw.subarray(SNP_SIGNED_SIZE));
  const product = cpuid ? productFromCpuid(cpuid.family, cpuid.model) : undefined;
  return {
    raw,
    version,
    guestSvn: raw.readUInt32LE(0x004),
    policy,
    familyId: raw.subarray(0x010, 0x020),
    imageId: raw.subarray(0x020, 0x030),
    vmpl,
    signatureAlgo,
    currentTcb: raw.subarray(0x038, 0x040),
    platformInfo: raw.readBigUInt64LE(0x040),
    authorKeyEn: (signer & 1) !== 0,
    maskChipKey,
    signingKey: keySel === 0 ? 'vcek' : 'vlek',
    reportData: raw.subarray(0x050, 0x090),
    measurement: raw.subarray(0x090, 0x0c0),
    hostData: raw.subarray(0x0c0, 0x0e0),
    idKeyDigest: raw.subarray(0x0e0, 0x110),
    authorKeyDigest: raw.subarray(0x110, 0x140),
    reportId: raw.subarray(0x140, 0x160),
    reportIdMa: raw.subarray(0x160, 0x180),
    reportedTcb: raw.subarray(0x180, 0x188),
    cpuid,
    chipId: raw.subarray(0x1a0, 0x1e0),
    committedTcb: raw.subarray(0x1e0, 0x1e8),
    currentVersion: { build: raw[0x1e8]!, minor: raw[0x1e9]!, major: raw[0x1ea]! },
    committedVersion: { build: raw[0x1ec]!, minor: raw[0x1ed]!, major: raw[0x1ee]! },
    launchTcb: raw.subarray(0x1f0, 0x1f8),
    launchMitVector,
    currentMitVector,
    signature,
    product,
  };
}

/**
 * R and S are little-endian and zero-extended to 72 bytes; the rest of the 512-byte field is reserved. All
 * padding must be zero, so no byte of the report is outside every check.
 */
function parseSignature(field: Buffer): Buffer {
  const r = field.subarray(0, SIG_COMPONENT);
  const s = field.subarray(SIG_COMPONENT, 2 * SIG_COMPONENT);
  for (const [name, part] of [
    ['R', r],
    ['S', s],
  ] as const) {
    if (!part.subarray(P384_BYTES).every((b) => b === 0))
      throw malformed('SIGNATURE', `${name} does not fit 48 bytes (upper 24 bytes of its 72-byte field must be zero)`);
  }
  const rest = field.subarray(2 * SIG_COMPONENT);
  if (!rest.every((b) => b === 0)) throw malformed('SIGNATURE', 'reserved bytes after R and S must be zero');
  return Buffer.concat([
    Buffer.from(r.subarray(0, P384_BYTES)).reverse(),
    Buffer.from(s.subarray(0, P384_BYTES)).reverse(),
  ]);
}

/** CPUID family/model ranges per product (AMD PPRs; as go-sev-guest and virtee map them). */
export function productFromCpuid(family: number, model: number): SnpProduct {
  if (family === 0x19 && model <= 0x0f) return 'Milan';
  if (family === 0x19 && ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf))) return 'Genoa';
  if (family === 0x1a && model <= 0x11) return 'Turin';
  throw new AttestationError(
    'ATTESTATION_UNSUPPORTED',
    `CPUID family 0x${family.toString(16)} model 0x${model.toString(16)} is not a known SEV-SNP product (Milan, Genoa, Turin)`,
    {
      check: 'SNP report',
    },
  );
}

/**
 * The version-2 heuristic: Turin chips use only the first 8 bytes of CHIP_ID. A fully masked (all-zero) CHIP_ID
 * says nothing, so it yields undefined, as does a 64-byte one (Milan or Genoa: the VCEK names which).
 */
export function productFromChipId(chipId: Buffer): 'Turin' | undefined {
  const head = chipId.subarray(0, 8).some((b) => b !== 0);
  const tail = chipId.subarray(8).some((b) => b !== 0);
  return head && !tail ? 'Turin' : undefined;
}

/** TCB_VERSION: Milan/Genoa `[0]=BL [1]=TEE [6]=SNP [7]=UCODE`; Turin `[0]=FMC [1]=BL [2]=TEE [3]=SNP [7]=UCODE`. */
export function decodeTcb(raw: Buffer, product: SnpProduct): SnpTcb {
  if (product === 'Turin') return { fmc: raw[0]!, bootloader: raw[1]!, tee: raw[2]!, snp: raw[3]!, microcode: raw[7]! };
  return { bootloader: raw[0]!, tee: raw[1]!, snp: raw[6]!, microcode: raw[7]! };
}

export function decodePolicy(policy: bigint): {
  raw: string;
  abi_major: number;
  abi_minor: number;
  smt: boolean;
  migrate_ma: boolean;
  debug: boolean;
  single_socket: boolean;
} {
  const bit = (n: number) => ((policy >> BigInt(n)) & 1n) === 1n;
  return {
    raw: `0x${policy.toString(16)}`,
    abi_minor: Number(policy & 0xffn),
    abi_major: Number((policy >> 8n) & 0xffn),
    smt: bit(16),
    migrate_ma: bit(18),
    debug: bit(19),
    single_socket: bit(20),
  };
}
