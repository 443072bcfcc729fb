import { createHash } from 'node:crypto';
import { AttestationError } from './errors.js';
import type { RtmrEvent } from './evidence.js';

/**
 * TDX runtime measurement registers (RTMR0–3, SHA-384). The TDX module extends a register as
 * `RTMR := SHA-384(RTMR ‖ digest)` (TDG.MR.RTMR.EXTEND, 48-byte digest); all four start as zeros when the TD
 * is built. Firmware and the boot loader use RTMR0–2; RTMR3 is left to the OS and applications, so Veil
 * extends RTMR3 with what it is about to run before it asks for a quote, and a verifier who replays the
 * events below from zero gets the RTMR3 the quote reports (TD body offset 472).
 *
 * Veil's events, in this order (the labels end in NUL so no label is the prefix of another's value):
 * 1. `veil-runtime`: SHA-384("veil-rtmr3-runtime-v1\0" ‖ code-tree digest of the runtime (32 bytes, the
 *    `codeTreeDigest` the simulation measurement uses too));
 * 2. `program`: SHA-384("veil-rtmr3-program-v1\0" ‖ SHA-256 of the program file (32 bytes)).
 * `veil measure --rtmr PROGRAM` prints both and the RTMR3 they give.
 *
 * The replay from zero holds for the first `veil run` after the TD booted — the one-program-per-TD shape of
 * a confidential container. A second run in the same TD extends further; the runtime says so when it finds
 * RTMR3 already extended.
 */

export const RTMR_BYTES = 48;
export const ZERO_RTMR = Buffer.alloc(RTMR_BYTES);
/** The register Veil extends. */
export const VEIL_RTMR_INDEX = 3;

const RUNTIME_LABEL = 'veil-rtmr3-runtime-v1\0';
const PROGRAM_LABEL = 'veil-rtmr3-program-v1\0';

/** One extension: SHA-384(value ‖ digest), both 48 bytes. */
export function extendRtmr(value48: Buffer, digest48: Buffer): Buffer {
  requireLength(value48, RTMR_BYTES, 'RTMR value');
  requireLength(digest48, RTMR_BYTES, 'RTMR event digest');
  return createHash('sha384').update(value48).update(digest48).digest();
}

/** The register after the events for `index` (default 3), extended in order from `initial` (default zeros). */
export function replayRtmr(events: readonly RtmrEvent[], initial: Buffer = ZERO_RTMR, index = VEIL_RTMR_INDEX): Buffer {
  return events.filter((e) => e.index === index).reduce((value, e) => extendRtmr(value, hexDigest(e.digest)), initial);
}

/** Veil's two RTMR3 events for a runtime code digest and a program's SHA-256 (both 32 bytes). */
export function veilRtmr3Events(runtimeCodeDigest: Buffer, programSha256: Buffer): RtmrEvent[] {
  requireLength(runtimeCodeDigest, 32, 'runtime code digest');
  requireLength(programSha256, 32, 'program SHA-256');
  return [
    {
      index: VEIL_RTMR_INDEX,
      digest: labelled(RUNTIME_LABEL, runtimeCodeDigest),
      description: `veil-runtime sha256:${runtimeCodeDigest.toString('hex')}`,
    },
    {
      index: VEIL_RTMR_INDEX,
      digest: labelled(PROGRAM_LABEL, programSha256),
      description: `program sha256:${programSha256.toString('hex')}`,
    },
  ];
}

/** The RTMR3 a TD reports after Veil's events, extended from zero (see above). */
export function expectedRtmr3(runtimeCodeDigest: Buffer, programSha256: Buffer): Buffer {
  return replayRtmr(veilRtmr3Events(runtimeCodeDigest, programSha256));
}

function labelled(label: string, value: Buffer): string {
  return createHash('sha384').update(label, 'ascii').update(value).digest('hex');
}

function hexDigest(hex: string): Buffer {
  if (!/^[0-9a-fA-F]{96}$/.test(hex))
    throw new AttestationError(
      'ATTESTATION_MALFORMED',
      `an RTMR event digest must be 96 hex digits (SHA-384), got ${hex.length} characters`,
      { check: 'RTMR event log' },
    );
  return Buffer.from(hex, 'hex');
}

function requireLength(buf: Buffer, bytes: number, what: string): void {
  if (buf.length !== bytes)
    throw new AttestationError('ATTESTATION_MALFORMED', `${what} must be ${bytes} bytes, not ${buf.length}`, {
      check: 'RTMR',
    });
}

/**
 * The kernel's RTMR interface (Linux ≥ 6.16, tsm-mr): `Documentation/ABI/testing/sysfs-devices-virtual-misc-tdx_guest`
 * documents `/sys/devices/virtual/misc/tdx_guest/measurements/rtmr[0123]:sha384` (RW): "Read from any of these
 * returns the current value of the corresponding RTMR. Write extends the written buffer to the RTMR. All
 * writes must start at offset 0 and be 48 bytes in size." /sys/class/misc/tdx_guest is the class link to
 * that device directory.
 */
export const DEFAULT_TDX_MEASUREMENTS = '/sys/class/misc/tdx_guest/measurements';

export interface RtmrFs {
  readFile(path: string): Promise<Buffer>;
  writeFile(path: string, data: Buffer): Promise<void>;
  exists(path: string): Promise<boolean>;
}

export function rtmrPath(base: string, index: number): string {
  return `${base}/rtmr${index}:sha384`;
}

/** Whether this kernel lets user space extend RTMR `index`. */
export function rtmrInterfacePresent(
  fs: RtmrFs,
  base = DEFAULT_TDX_MEASUREMENTS,
  index = VEIL_RTMR_INDEX,
): Promise<boolean> {
  return fs.exists(rtmrPath(base, index));
}

export async function readRtmr(fs: RtmrFs, base = DEFAULT_TDX_MEASUREMENTS, index = VEIL_RTMR_INDEX): Promise<Buffer> {
  const path = rtmrPath(base, index);
  const value = await kernelStep('read', path, () => fs.readFile(path));
  if (value.length !== RTMR_BYTES)
    throw rtmrError(
      `${path} reads ${value.length} bytes, not ${RTMR_BYTES}`,
      'is this the tdx_guest measurements directory? check VEIL_TDX_MEASUREMENTS_PATH',
    );
  return value;
}

/** Extends RTMR `index` with one 48-byte digest, in a single write at offset 0 as the ABI requires. */
export async function extendRtmrThroughKernel(
  fs: RtmrFs,
  digest48: Buffer,
  base = DEFAULT_TDX_MEASUREMENTS,
  index = VEIL_RTMR_INDEX,
): Promise<void> {
  requireLength(digest48, RTMR_BYTES, 'RTMR event digest');
  const path = rtmrPath(base, index);
  await kernelStep('extend', path, () => fs.writeFile(path, digest48));
}

async function kernelStep<T>(what: string, path: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw rtmrError(
      `cannot ${what} ${path} (${code})`,
      code === 'EACCES' || code === 'EPERM' ? 'extending an RTMR needs root' : 'check the kernel log (dmesg)',
      err,
    );
  }
}

function rtmrError(message: string, hint: string, cause?: unknown): AttestationError {
  return new AttestationError('ATTESTATION_COLLECT', message, {
    check: 'TDX RTMR',
    hint,
    ...(cause === undefined ? {} : { cause }),
  });
}
