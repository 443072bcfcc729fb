import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { posix } from 'node:path';
import { promisify } from 'node:util';
import { ImageError } from './errors.js';
import { assembleImage, type Image } from './image.js';
import { buildLayer, type LayerEntry } from './layer.js';

const exec = promisify(execFile);

/** Everything a host base holds is read into memory to build its one layer: at most this many bytes. */
export const HOST_BASE_MAX_BYTES = 1024 * 1024 * 1024;
/** As the kernel's ELOOP: a path that needs more symbolic links than this is refused. */
const MAX_LINK_HOPS = 40;
/** `ldd` of one file may not take longer (it runs the host's dynamic loader in trace mode). */
export const LDD_TIMEOUT_MS = 30_000;

export interface HostBaseInput {
  /** Absolute host paths: files, directories (taken whole), or symbolic links (kept as links, and followed). */
  paths: string[];
  /** Paths (below a directory taken whole) left out, e.g. caches and test suites. */
  exclude?: (path: string) => boolean;
  /** The image's `Env` (e.g. `PATH=/usr/bin`). */
  env?: string[];
  /** Lower than HOST_BASE_MAX_BYTES, for tests. */
  maxBytes?: number;
}

/**
 * A base image from this machine's own files, with every shared library they link: each ELF file's `ldd`
 * closure (dynamic loader included) is added under the names the loader looks for, and every symbolic link on
 * the way to a file is kept as a link (Debian's merged /usr: /lib64 → usr/lib64 → …), so the program starts in
 * a container exactly as on the host. A base holding only a program's binary cannot start it: its loader and
 * libraries are missing.
 */
export async function hostBaseImage(input: HostBaseInput): Promise<Image> {
  const layer = await buildLayer(await hostEntries(input.paths, input.exclude, input.maxBytes));
  const env = input.env ?? ['PATH=/usr/local/bin:/usr/bin:/bin'];
  return assembleImage(undefined, [layer], (c) => ({ ...c, Env: env }), [`veil host base: ${input.paths.join(' ')}`]);
}

/** The layer entries of `paths` and of everything they need (links' targets, libraries), sorted by path. */
export async function hostEntries(
  paths: string[],
  exclude: (path: string) => boolean = () => false,
  maxBytes = HOST_BASE_MAX_BYTES,
) {
  const collector = new Collector(exclude, Math.min(maxBytes, HOST_BASE_MAX_BYTES));
  for (const path of paths) await collector.add(path);
  for (let elf = collector.nextElf(); elf; elf = collector.nextElf())
    for (const lib of await sharedLibraries(elf)) await collector.add(lib);
  return [...collector.entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

class Collector {
  readonly entries = new Map<string, LayerEntry>();
  private readonly elves: string[] = [];
  private bytes = 0;

  constructor(
    private readonly exclude: (path: string) => boolean,
    private readonly maxBytes: number,
  ) {}

  nextElf(): string | undefined {
    return this.elves.shift();
  }

  /** Adds `path` as the host has it: each link on the way is an entry of its own, then the file or directory. */
  async add(path: string, hops = 0): Promise<void> {
    if (!posix.isAbsolute(path))
      throw hostError(`${path} is not an absolute path`, 'name host files by their absolute path');
    const parts = posix.normalize(path).split('/').filter(Boolean);
    let current = '';
    for (let i = 0; i < parts.length; i++) {
      const candidate = `${current}/${parts[i]}`;
      const stat = await lstat(candidate);
      if (stat.isSymbolicLink()) {
        if (hops >= MAX_LINK_HOPS)
          throw hostError(`${path} needs more than ${MAX_LINK_HOPS} symbolic links`, 'a link loops: fix it');
        const target = await fs.readlink(candidate);
        this.entries.set(candidate, { type: 'symlink', path: candidate, target });
        const resolved = target.startsWith('/') ? target : posix.join(current || '/', target);
        return this.add(posix.join(resolved, ...parts.slice(i + 1)), hops + 1);
      }
      current = candidate;
    }
    await this.addReal(current || '/', hops);
  }

  private async addReal(path: string, hops: number): Promise<void> {
    if (this.entries.has(path)) return;
    const stat = await lstat(path);
    if (stat.isDirectory()) {
      this.entries.set(path, { type: 'directory', path, mode: stat.mode & 0o777 });
      for (const name of (await fs.readdir(path)).sort()) {
        const child = posix.join(path, name);
        if (!this.exclude(child)) await this.add(child, hops);
      }
      return;
    }
    if (!stat.isFile()) return; // sockets, devices and FIFOs have no place in an image
    this.bytes += stat.size;
    if (this.bytes > this.maxBytes)
      throw hostError(
        `the host files for the base exceed ${this.maxBytes} bytes at ${path}`,
        'name fewer or smaller directories (exclude caches and test suites)',
      );
    const data = await fs.readFile(path);
    this.entries.set(path, { type: 'file', path, mode: stat.mode & 0o777, data });
    if (data.subarray(0, 4).equals(ELF_MAGIC)) this.elves.push(path);
  }
}

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

async function lstat(path: string) {
  try {
    return await fs.lstat(path);
  } catch (err) {
    throw hostError(
      `cannot read ${path} on this host: ${(err as Error).message}`,
      'install the package that has it',
      err,
    );
  }
}

/**
 * The libraries `file` links, by the path the loader finds them at (so links such as libssl.so.3 stay links),
 * and its dynamic loader. A static binary links nothing. A library ldd cannot find is an error, not a gap.
 */
export async function sharedLibraries(file: string): Promise<string[]> {
  let out: string;
  try {
    ({ stdout: out } = await exec('ldd', [file], { timeout: LDD_TIMEOUT_MS, env: { PATH: '/usr/bin:/bin' } }));
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: unknown };
    if (/not a dynamic executable|statically linked/.test(`${e.stdout ?? ''}${e.stderr ?? ''}`)) return [];
    throw hostError(`ldd ${file} failed: ${(e.stderr ?? String(err)).trim()}`, 'is libc-bin (ldd) installed?', err);
  }
  return parseLdd(out, file);
}

/** `ldd`'s lines: `name => /path (addr)`, `/loader (addr)`, `linux-vdso.so.1 (addr)`, or `name => not found`. */
export function parseLdd(out: string, file: string): string[] {
  return out.split('\n').flatMap((line) => {
    const missing = /^\s*(\S+)\s+=>\s+not found/.exec(line);
    if (missing)
      throw hostError(`${file} links ${missing[1]}, which this host lacks`, 'install the package that provides it');
    const arrow = /^\s*\S+\s+=>\s+(\/\S+)/.exec(line);
    if (arrow) return [arrow[1]!];
    const loader = /^\s*(\/\S+)\s+\(/.exec(line);
    return loader ? [loader[1]!] : [];
  });
}

function hostError(message: string, hint: string, cause?: unknown): ImageError {
  return new ImageError('IMAGE_HOST_FILE', message, { hint, ...(cause === undefined ? {} : { cause }) });
}
