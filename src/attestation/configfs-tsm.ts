import { randomBytes } from 'node:crypto';
import { access, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { AttestationError } from './errors.js';

/**
 * Evidence from the kernel's configfs-tsm report interface (Linux ≥ 6.7, CONFIG_TSM_REPORTS), the one ABI
 * both TDX and SEV-SNP guests offer for quotes. The ABI is the kernel's
 * `Documentation/ABI/testing/configfs-tsm` (renamed `configfs-tsm-report` in later kernels):
 * - `mkdir <base>/report/<name>` creates a report object; its attributes appear inside it;
 * - `inblob` (WO): up to 64 bytes of user data → TDX REPORTDATA / SNP REPORT_DATA (sev_guest insists on
 *   exactly 64, so Veil always writes 64);
 * - `privlevel` (WO): the SNP VMPL the report is requested for;
 * - `provider` (RO): `tdx_guest` or `sev_guest`, the format of `outblob`;
 * - `outblob` (RO): generated on read — a complete DCAP quote (tdx_guest) or the 1184-byte
 *   ATTESTATION_REPORT (sev_guest);
 * - `auxblob` (RO): sev_guest's GHCB certificate table (VCEK/VLEK, ASK, ARK) when the host provisioned it;
 * - `generation` (RO): incremented by every write to `inblob` or an option. "Userspace can detect conflicts
 *   by checking generation before writing to any attribute and making sure the number of writes matches
 *   expectations after reading @outblob" — a report object is shared by everyone who can open it.
 */

/** Where configfs-tsm lives when configfs is mounted at its usual place. */
export const DEFAULT_TSM_BASE = '/sys/kernel/config/tsm';
/** TSM_INBLOB_MAX in include/linux/tsm.h; sev_guest refuses any other length. */
export const TSM_INBLOB_BYTES = 64;

/** The file-system operations configfs-tsm needs, so tests (and stand-ins) can supply their own. */
export interface TsmFs {
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  readFile(path: string): Promise<Buffer>;
  writeFile(path: string, data: Buffer): Promise<void>;
  exists(path: string): Promise<boolean>;
}

export type TsmProvider = 'tdx_guest' | 'sev_guest';

export interface TsmReport {
  provider: TsmProvider;
  outblob: Buffer;
  /** sev_guest only, and only when the host provisioned certificates (an empty table is left out). */
  auxblob?: Buffer;
}

/** The machine's file system (node:fs/promises). */
export const nodeTsmFs: TsmFs = {
  mkdir: async (path) => void (await mkdir(path)),
  rmdir: (path) => rmdir(path),
  readFile: (path) => readFile(path),
  writeFile: (path, data) => writeFile(path, data),
  exists: (path) =>
    access(path).then(
      () => true,
      () => false,
    ),
};

/**
 * One report: creates a private report object, writes the 64-byte report data (and the privilege level, if
 * given), reads provider, outblob and (sev_guest) auxblob, checks that nobody else wrote to the object
 * meanwhile, and removes it. Every failure is an ATTESTATION_COLLECT error naming the path and errno.
 */
export async function tsmReport(
  reportData64: Buffer,
  opts: { fs: TsmFs; base?: string; privlevel?: number },
): Promise<TsmReport> {
  if (reportData64.length !== TSM_INBLOB_BYTES) {
    throw collectError(
      `report data must be exactly ${TSM_INBLOB_BYTES} bytes, not ${reportData64.length}`,
      'pass hardwareReportData(nonce, spki)',
    );
  }
  if (
    opts.privlevel !== undefined &&
    !(Number.isInteger(opts.privlevel) && opts.privlevel >= 0 && opts.privlevel <= 3)
  ) {
    throw collectError(`privlevel must be 0–3, not ${opts.privlevel}`, 'give the SNP VMPL the report is for');
  }
  const { fs } = opts;
  const dir = reportObject(opts.base);
  await step('create the report object', dir, () => fs.mkdir(dir));
  try {
    const before = await readGeneration(fs, dir);
    await step('write', `${dir}/inblob`, () => fs.writeFile(`${dir}/inblob`, reportData64));
    let writes = 1;
    if (opts.privlevel !== undefined) {
      await step('write', `${dir}/privlevel`, () =>
        fs.writeFile(`${dir}/privlevel`, Buffer.from(`${opts.privlevel}\n`)),
      );
      writes++;
    }
    const provider = await readProvider(fs, dir);
    const outblob = await step('read', `${dir}/outblob`, () => fs.readFile(`${dir}/outblob`));
    const auxblob = provider === 'sev_guest' ? await readAuxblob(fs, dir) : undefined;
    const after = await readGeneration(fs, dir);
    if (after !== before + writes) {
      throw collectError(
        `${dir} was written by someone else while this report was made (generation ${before} → ${after}, expected ${before + writes}): the outblob may not carry this report data`,
        'another process uses the same report object; start the program again',
      );
    }
    if (outblob.length === 0)
      throw collectError(`${dir}/outblob is empty`, 'the TEE produced no evidence; check the kernel log (dmesg)');
    return { provider, outblob, ...(auxblob && auxblob.length > 0 ? { auxblob } : {}) };
  } finally {
    // Best effort: a left-over object holds no secret (the report data is public), only a name.
    await fs.rmdir(dir).catch(() => undefined);
  }
}

/**
 * Which TEE answers, without asking it for evidence: a report object's `provider` is readable at once, and
 * `outblob` is only generated when read. The runtime needs it before the quote (TDX extends RTMR3 first).
 */
export async function tsmProvider(opts: { fs: TsmFs; base?: string }): Promise<TsmProvider> {
  const dir = reportObject(opts.base);
  await step('create the report object', dir, () => opts.fs.mkdir(dir));
  try {
    return await readProvider(opts.fs, dir);
  } finally {
    await opts.fs.rmdir(dir).catch(() => undefined);
  }
}

/** A fresh object per request, named so it is recognisable and cannot collide with another runtime's. */
function reportObject(base = DEFAULT_TSM_BASE): string {
  return `${base}/report/veil-${process.pid}-${randomBytes(6).toString('hex')}`;
}

async function readGeneration(fs: TsmFs, dir: string): Promise<number> {
  const text = (await step('read', `${dir}/generation`, () => fs.readFile(`${dir}/generation`)))
    .toString('ascii')
    .trim();
  if (!/^\d+$/.test(text))
    throw collectError(
      `${dir}/generation reads '${text.slice(0, 20)}', not a number`,
      'is this configfs-tsm? check VEIL_TSM_PATH',
    );
  return Number(text);
}

async function readProvider(fs: TsmFs, dir: string): Promise<TsmProvider> {
  const provider = (await step('read', `${dir}/provider`, () => fs.readFile(`${dir}/provider`)))
    .toString('ascii')
    .trim();
  if (provider !== 'tdx_guest' && provider !== 'sev_guest') {
    throw collectError(
      `provider '${provider.slice(0, 40)}' at ${dir} is not one Veil can send (tdx_guest, sev_guest)`,
      'run in a TDX or SEV-SNP guest',
    );
  }
  return provider;
}

/** An auxblob the kernel does not offer (older kernels) is the same as an empty one: no certificates. */
async function readAuxblob(fs: TsmFs, dir: string): Promise<Buffer | undefined> {
  const path = `${dir}/auxblob`;
  if (!(await fs.exists(path))) return undefined;
  return step('read', path, () => fs.readFile(path));
}

async function step<T>(what: string, path: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw collectError(`cannot ${what} ${path} (${code})`, hintFor(code, path), err);
  }
}

function hintFor(code: string, path: string): string {
  if (code === 'EACCES' || code === 'EPERM') return 'configfs-tsm needs root (or write access to the report directory)';
  if (code === 'ENOENT')
    return 'is configfs mounted (mount -t configfs none /sys/kernel/config) and the TEE guest driver loaded? VEIL_TSM_PATH names another base';
  if (path.endsWith('/outblob'))
    return 'the TEE could not produce evidence: for TDX the host needs a reachable Quote Generation Service; check the kernel log (dmesg)';
  return 'check the kernel log (dmesg)';
}

function collectError(message: string, hint: string, cause?: unknown): AttestationError {
  return new AttestationError('ATTESTATION_COLLECT', message, {
    check: 'configfs-tsm',
    hint,
    ...(cause === undefined ? {} : { cause }),
  });
}
