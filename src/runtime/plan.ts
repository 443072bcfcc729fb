import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RuntimeConfig } from './attest.js';
import { RuntimeError } from './errors.js';
import { inPrivateRoot, needsPrivateRoot } from './private-root.js';

/** One step of the namespace helper (helper.ts), which runs them in order and ends by exec'ing the program. */
export type Step =
  | { op: 'mkdir'; path: string }
  /** `size` in bytes (64 MiB unless given); `huge`: large folios where the kernel has them (the shield's). */
  | { op: 'tmpfs'; path: string; size?: number; huge?: boolean }
  | { op: 'bind'; from: string; to: string }
  | { op: 'rbind'; from: string; to: string }
  | { op: 'symlink'; target: string; path: string }
  | { op: 'chroot'; path: string }
  | { op: 'write'; path: string; mode: number; content: Buffer }
  | { op: 'unshield'; node: string; script: string; shield: string; staging: string; secret: string }
  | { op: 'chdir'; path: string }
  | { op: 'env'; name: string; value: string }
  | { op: 'arg'; value: string }
  | { op: 'exec' };

export interface PlanOptions {
  /** false only with --INSECURE-no-namespace: nothing is mounted, files land on the host. */
  secure: boolean;
  hosts?: Record<string, string> | undefined;
  /** Where the helper's own tmpfs mounts go (inside the namespace, so runs leave nothing on the host). */
  tmp?: string;
  hostsFile?: string;
  /** The user the helper runs as (root needs no private root); defaults to this process's. */
  uid?: number | undefined;
  /** Whether a directory exists or can be made on the host (tests answer for another user). */
  canCreate?: (path: string) => boolean;
  /** How many entries a host directory has (0 when it does not exist); a mount would hide them. */
  entriesOf?: (dir: string) => number;
  /** The bytes the files of a host directory hold (the shielded tree's blobs; 0 when it cannot be read). */
  bytesOf?: (dir: string) => number;
  /** Whether the kernel accepts tmpfs's `huge=` option (it has transparent huge pages). */
  hugeTmpfs?: () => boolean;
}

const UNSHIELD = fileURLToPath(new URL('./unshield.js', import.meta.url));

/** What the helper must do so the program finds exactly the policy's world, and nothing of the host's. */
export function launchPlan(config: RuntimeConfig, opts: PlanOptions): Step[] {
  const [argv0] = config.command;
  if (argv0 === undefined)
    throw new RuntimeError('RUNTIME_CONFIG', 'the policy gives no command for this service', {
      hint: 'add command: to the service in the session',
    });
  const tmp = opts.tmp ?? privateTmp();
  const steps: Step[] = [
    ...hostSteps(opts, tmp),
    ...shieldSteps(config, opts, tmp),
    ...injectionSteps(config, opts),
    { op: 'chdir', path: config.pwd },
    ...Object.entries(config.environment).map(([name, value]): Step => ({ op: 'env', name, value })),
    ...config.command.map((value): Step => ({ op: 'arg', value })),
    { op: 'exec' },
  ];
  const uid = 'uid' in opts ? opts.uid : process.getuid?.();
  return opts.secure && needsPrivateRoot(steps, uid, opts.canCreate)
    ? inPrivateRoot(steps, posix.join(tmp, '.veil-root'))
    : steps;
}

/** The namespace's own /etc/hosts: the host's entries plus the mesh's names on loopback addresses. */
function hostSteps(opts: PlanOptions, tmp: string): Step[] {
  const hosts = Object.entries(opts.hosts ?? {});
  if (hosts.length === 0) return [];
  if (!opts.secure)
    throw new RuntimeError('RUNTIME_NAMESPACE', 'host name mapping (--host) needs a private namespace', {
      hint: 'drop --INSECURE-no-namespace, or --host',
    });
  const hostsFile = opts.hostsFile ?? '/etc/hosts';
  const dir = posix.join(tmp, '.veil-hosts');
  const lines = hosts.map(([name, address]) => `${address}\t${name}`).join('\n');
  const content = Buffer.from(`${readFileSync(hostsFile, 'utf8')}\n# veil run\n${lines}\n`);
  return [
    ...mkdirs(dir),
    { op: 'tmpfs', path: dir },
    { op: 'write', path: `${dir}/hosts`, mode: 0o644, content },
    { op: 'bind', from: `${dir}/hosts`, to: hostsFile },
  ];
}

/**
 * The shielded tree is verified and decrypted into a fresh tmpfs, then mounted over the encrypted directory:
 * the program finds its code in plaintext where the policy's paths say, only in this namespace.
 */
function shieldSteps(config: RuntimeConfig, opts: PlanOptions, tmp: string): Step[] {
  const { secure } = opts;
  const fspf = config.fspf;
  if (!fspf?.path) return [];
  if (!fspf.key || !fspf.tag)
    throw new RuntimeError('RUNTIME_CONFIG', `the policy names fspf_path ${fspf.path} without fspf_key and fspf_tag`, {
      hint: "add the values 'veil fspf encrypt' printed",
    });
  if (!secure)
    throw new RuntimeError('RUNTIME_NAMESPACE', 'a shielded file system needs a private namespace', {
      hint: 'drop --INSECURE-no-namespace',
    });
  const shield = dirname(cleanPath(fspf.path, 'fspf_path'));
  const staging = posix.join(tmp, '.veil-fspf-staging');
  // Room for the whole tree (its plaintext is smaller than its blobs) and for what the program writes there.
  const size = (opts.bytesOf ?? bytesOnHost)(shield) + TMPFS_SIZE;
  // Large folios: writing the plaintext into 4 KiB pages cost ≈ 0.4 ms per MiB, as much as deciphering it;
  // `within_size` uses them only inside each file's size, so small files waste no memory.
  const huge = (opts.hugeTmpfs ?? hugeTmpfsOnHost)();
  return [
    ...mkdirs(staging),
    { op: 'tmpfs', path: staging, size, huge },
    { op: 'unshield', node: process.execPath, script: UNSHIELD, shield, staging, secret: `${fspf.key} ${fspf.tag}` },
    { op: 'bind', from: staging, to: shield },
  ];
}

/**
 * Each directory holding injection files gets its own tmpfs (one beneath another's needs none): the files
 * never touch a disk. Parents come first, so no mount hides one made before it; a directory the host has
 * filled (or the shielded code's) is refused, since the mount would hide what is in it.
 */
function injectionSteps(config: RuntimeConfig, opts: PlanOptions): Step[] {
  const files = config.injectionFiles.map((f) => ({ ...f, path: cleanPath(f.path, 'injection file') }));
  const dirs = [...new Set(files.map((f) => posix.dirname(f.path)))].sort();
  const shield = config.fspf?.path ? posix.dirname(config.fspf.path) : undefined;
  const mounted: string[] = [];
  const steps = dirs.flatMap((dir): Step[] => {
    if (!opts.secure || mounted.some((m) => dir.startsWith(`${m}/`))) return mkdirs(dir);
    if (shield && (shield === dir || shield.startsWith(`${dir}/`))) throw hides(dir, 'the shielded code');
    const entries = (opts.entriesOf ?? entriesOnHost)(dir);
    if (entries > 0 && !(shield && dir.startsWith(`${shield}/`)))
      throw hides(dir, `its ${entries} entries on this host`);
    mounted.push(dir);
    return [...mkdirs(dir), { op: 'tmpfs', path: dir }];
  });
  return [
    ...steps,
    ...files.map(
      (f): Step => ({ op: 'write', path: f.path, mode: f.mode & 0o7777, content: Buffer.from(f.content, 'base64') }),
    ),
  ];
}

function hides(dir: string, what: string): RuntimeError {
  return new RuntimeError(
    'RUNTIME_CONFIG',
    `injection files in ${dir} would need a memory file system over it, hiding ${what}`,
    {
      hint: 'inject into a directory of its own (e.g. /tls or /secrets), not into one that holds other files',
    },
  );
}

/** The mount options of a tmpfs step, as the helper passes them to mount(8) (after mode=0755). */
export function tmpfsOptions(step: { size?: number; huge?: boolean }): string {
  return `size=${step.size ?? TMPFS_SIZE}${step.huge ? ',huge=within_size' : ''}`;
}

/** The size of a tmpfs that holds injection files or /etc/hosts (README "Limits"). */
export const TMPFS_SIZE = 64 * 1024 * 1024;

/** The blobs as decryption reads them: links followed (0 where the directory cannot be read: unshield says why). */
function bytesOnHost(dir: string): number {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  let sum = 0;
  for (const name of names) {
    try {
      const st = statSync(posix.join(dir, name));
      if (st.isFile()) sum += st.size;
    } catch {
      // a dangling link: decryption refuses the tree
    }
  }
  return sum;
}

export function hugeTmpfsOnHost(): boolean {
  return existsSync('/sys/kernel/mm/transparent_hugepage/shmem_enabled');
}

function entriesOnHost(dir: string): number {
  try {
    return readdirSync(dir).length;
  } catch {
    return 0;
  }
}

/** Paths from the policy, as the program will use them: absolute, normal, and not into /proc, /sys or /dev. */
export function cleanPath(path: string, what: string): string {
  if (!path.startsWith('/') || posix.normalize(path) !== path || path.endsWith('/')) {
    throw new RuntimeError('RUNTIME_CONFIG', `${what} path ${JSON.stringify(path)} is not a plain absolute path`, {
      hint: "write it without '..', '.', '//' or a trailing '/'",
    });
  }
  // What the kernel serves there is not a file the policy may replace (/proc/self/..., /dev/stdout, ...).
  const kernel = /^\/(proc|sys|dev)(\/|$)/.exec(path);
  if (kernel) {
    throw new RuntimeError(
      'RUNTIME_CONFIG',
      `${what} path ${JSON.stringify(path)} is inside /${kernel[1]}, which the kernel provides`,
      {
        hint: 'inject into a directory of its own (e.g. /secrets), outside /proc, /sys and /dev',
      },
    );
  }
  return path;
}

/**
 * The directory for the helper's own mount points: this user's, 0700, so no other local user can put a
 * file or a link where a mount will go. (The mounts themselves exist only in the namespace.)
 */
function privateTmp(): string {
  const uid = process.getuid?.() ?? 0;
  const dir = posix.join(tmpdir(), `veil-${uid}`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new RuntimeError(
      'RUNTIME_NAMESPACE',
      `${dir} is not this user's private directory (owner ${st.uid}, mode ${(st.mode & 0o777).toString(8)})`,
      { hint: `remove it; veil run makes it again with mode 0700` },
    );
  }
  return dir;
}

/** `mkdir -p`, one step per ancestor (existing ones are fine). */
function mkdirs(dir: string): Step[] {
  const parts = posix.resolve(dir).split('/').filter(Boolean);
  return parts.map((_, i): Step => ({ op: 'mkdir', path: `/${parts.slice(0, i + 1).join('/')}` }));
}

/** Netstring-like fields (`<length>:<bytes>`), so paths, values and file contents need no escaping. */
export function encodePlan(steps: Step[]): Buffer {
  const parts: Buffer[] = [];
  const field = (value: string | Buffer) => {
    const bytes = typeof value === 'string' ? Buffer.from(value) : value;
    parts.push(Buffer.from(`${bytes.length}:`), bytes);
  };
  for (const step of steps) {
    field(step.op);
    for (const value of stepFields(step)) field(value);
  }
  return Buffer.concat(parts);
}

function stepFields(step: Step): Array<string | Buffer> {
  switch (step.op) {
    case 'tmpfs':
      return [step.path, tmpfsOptions(step)];
    case 'mkdir':
    case 'chdir':
    case 'chroot':
      return [step.path];
    case 'bind':
    case 'rbind':
      return [step.from, step.to];
    case 'symlink':
      return [step.target, step.path];
    case 'write':
      return [step.path, String(step.mode), step.content];
    case 'unshield':
      return [step.node, step.script, step.shield, step.staging, step.secret];
    case 'env':
      return [step.name, step.value];
    case 'arg':
      return [step.value];
    case 'exec':
      return [];
  }
}
