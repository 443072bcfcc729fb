/**
 * TEST-ONLY STAND-IN for the kernel's configfs-tsm report interface and the tdx_guest RTMR interface. No TEE
 * exists on the machines the tests run on, so the runtime's hardware path is exercised against stand-ins that
 * follow the kernel ABI (Documentation/ABI/testing/configfs-tsm; sysfs-devices-virtual-misc-tdx_guest):
 *
 * - `memoryTsm()`: an in-memory TsmFs/RtmrFs for unit tests;
 * - `mountTsmStandIn()`: the same semantics as a real FUSE file system (tsm-standin.py, python3-fusepy), so a
 *   real `veil run` process reads and writes real paths.
 *
 * Semantics (both): `<base>/report/` exists; mkdir of `<base>/report/<name>` makes a report object whose
 * attributes appear at once (inblob, outblob, auxblob, provider, generation, privlevel, privlevel_floor);
 * each write to inblob or privlevel increments generation; inblob takes at most 64 bytes (sev_guest exactly
 * 64); outblob returns the RECORDED evidence it was given — a stand-in cannot sign, so the quote never binds
 * the runtime's report data; auxblob is the recorded certificate table (sev_guest). `rtmr[0-3]:sha384` read
 * as 48 bytes and are extended (SHA-384(value ‖ data)) by each 48-byte write.
 * Nothing here is evidence of anything: it only lets the runtime's code paths run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TsmFs } from '../attestation/configfs-tsm.js';
import type { RtmrFs } from '../attestation/rtmr.js';
import { ROOT, run, waitFor } from './harness.js';

export interface StandInRecording {
  provider: 'tdx_guest' | 'sev_guest';
  /** The evidence outblob returns (a recorded quote or report). */
  outblob: Buffer;
  auxblob?: Buffer;
  /** Offer the tdx_guest RTMR interface too (`<measurements>/rtmr[0-3]:sha384`). */
  rtmr?: boolean;
}

interface ReportObject {
  generation: number;
  inblob: Buffer;
  privlevel: number;
}

const ATTRIBUTES = ['inblob', 'outblob', 'auxblob', 'provider', 'generation', 'privlevel', 'privlevel_floor'];

function errno(code: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${path}`), { code });
}

/** In-memory configfs-tsm (at `base`) and RTMR interface (at `measurements`), with hooks for tests. */
export function memoryTsm(
  recording: StandInRecording,
  paths = { base: '/tsm', measurements: '/tdx_guest/measurements' },
) {
  const objects = new Map<string, ReportObject>();
  const rtmrs = [0, 1, 2, 3].map(() => Buffer.alloc(48));
  const hooks: { beforeOutblobRead?: (objectDir: string) => Promise<void> | void } = {};
  const log: string[] = [];

  const objectOf = (path: string): { dir: string; attr: string; object: ReportObject } => {
    const match = new RegExp(`^${paths.base}/report/([^/]+)/([^/]+)$`).exec(path);
    const object = match ? objects.get(match[1]!) : undefined;
    if (!match || !object || !ATTRIBUTES.includes(match[2]!)) throw errno('ENOENT', path);
    return { dir: `${paths.base}/report/${match[1]}`, attr: match[2]!, object };
  };
  const rtmrIndex = (path: string): number | undefined => {
    const match = new RegExp(`^${paths.measurements}/rtmr([0-3]):sha384$`).exec(path);
    return recording.rtmr && match ? Number(match[1]) : undefined;
  };

  const fs: TsmFs & RtmrFs = {
    async mkdir(path) {
      log.push(`mkdir ${path}`);
      const match = new RegExp(`^${paths.base}/report/([^/]+)$`).exec(path);
      if (!match) throw errno('ENOENT', path);
      if (objects.has(match[1]!)) throw errno('EEXIST', path);
      objects.set(match[1]!, { generation: 0, inblob: Buffer.alloc(0), privlevel: 0 });
    },
    async rmdir(path) {
      log.push(`rmdir ${path}`);
      const name = path.slice(`${paths.base}/report/`.length);
      if (!objects.delete(name)) throw errno('ENOENT', path);
    },
    async exists(path) {
      if (path === `${paths.base}/report` || path === paths.base) return true;
      if (rtmrIndex(path) !== undefined) return true;
      try {
        objectOf(path);
        return true;
      } catch {
        return objects.has(path.slice(`${paths.base}/report/`.length));
      }
    },
    async readFile(path) {
      log.push(`read ${path}`);
      const index = rtmrIndex(path);
      if (index !== undefined) return Buffer.from(rtmrs[index]!);
      const { dir, attr, object } = objectOf(path);
      if (attr === 'inblob' || attr === 'privlevel') throw errno('EACCES', path); // write-only
      if (attr === 'provider') return Buffer.from(`${recording.provider}\n`);
      if (attr === 'generation') return Buffer.from(`${object.generation}\n`);
      if (attr === 'privlevel_floor') return Buffer.from('0\n');
      if (attr === 'auxblob')
        return recording.provider === 'sev_guest' ? Buffer.from(recording.auxblob ?? Buffer.alloc(0)) : Buffer.alloc(0);
      await hooks.beforeOutblobRead?.(dir);
      return Buffer.from(recording.outblob);
    },
    async writeFile(path, data) {
      log.push(`write ${path} ${data.length}`);
      const index = rtmrIndex(path);
      if (index !== undefined) {
        if (data.length !== 48) throw errno('EINVAL', path);
        rtmrs[index] = createHash('sha384').update(rtmrs[index]!).update(data).digest();
        return;
      }
      const { attr, object } = objectOf(path);
      if (attr === 'inblob') {
        if (data.length > 64) throw errno('EFBIG', path);
        if (recording.provider === 'sev_guest' && data.length !== 64) throw errno('EINVAL', path);
        object.inblob = Buffer.from(data);
      } else if (attr === 'privlevel') {
        const level = Number(data.toString('ascii').trim());
        if (!Number.isInteger(level) || level < 0 || level > 3) throw errno('EINVAL', path);
        object.privlevel = level;
      } else {
        throw errno('EACCES', path); // read-only
      }
      object.generation++;
    },
  };
  return { fs, paths, objects, rtmrs, hooks, log };
}

/** Whether a FUSE stand-in can run here: /dev/fuse, root (libfuse 2 mounts directly) and python3-fusepy. */
export async function fuseStandInPossible(): Promise<string | false> {
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse';
  if (process.getuid?.() !== 0) return 'the FUSE stand-in mounts as root';
  const probe = await run(PYTHON, ['-c', 'import fusepy']);
  if (probe.code !== 0) return 'python3-fusepy (Debian) is not installed';
  return false;
}

// Debian's interpreter: python3-fusepy is installed for it, whatever python3 comes first on PATH.
const PYTHON = '/usr/bin/python3';

export interface MountedStandIn {
  /** VEIL_TSM_PATH */
  tsm: string;
  /** VEIL_TDX_MEASUREMENTS_PATH */
  measurements: string;
  process: ChildProcess;
  log(): string;
  unmount(): Promise<void>;
}

/** Mounts tsm-standin.py on `mountPoint` (an empty directory) with the recording, until unmount(). */
export async function mountTsmStandIn(
  mountPoint: string,
  recording: StandInRecording,
  scratch: string,
): Promise<MountedStandIn> {
  const outblob = join(scratch, 'standin-outblob');
  writeFileSync(outblob, recording.outblob);
  const args = [join(ROOT, 'src', 'e2e', 'tsm-standin.py'), '--provider', recording.provider, '--outblob', outblob];
  if (recording.auxblob) {
    writeFileSync(join(scratch, 'standin-auxblob'), recording.auxblob);
    args.push('--auxblob', join(scratch, 'standin-auxblob'));
  }
  if (recording.rtmr) args.push('--rtmr');
  const child = spawn(PYTHON, [...args, mountPoint], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const tsm = join(mountPoint, 'tsm');
  await waitFor(
    () => existsSync(join(tsm, 'report')) || child.exitCode !== null,
    10_000,
    () => `the FUSE stand-in did not mount: ${out}`,
  );
  if (child.exitCode !== null) throw new Error(`the FUSE stand-in exited: ${out}`);
  return {
    tsm,
    measurements: join(mountPoint, 'tdx_guest', 'measurements'),
    process: child,
    log: () => out,
    unmount: async () => {
      await run('umount', [mountPoint]);
      if (child.exitCode === null && child.signalCode === null) setTimeout(() => child.kill('SIGTERM'), 2000).unref();
      await exited;
    },
  };
}
