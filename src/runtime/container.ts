import { spawn } from 'node:child_process';
import {
  closeSync,
  constants as fsConstants,
  fchmodSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { constants } from 'node:os';
import { dirname, posix } from 'node:path';
import type { RuntimeConfig } from './attest.js';
import { RuntimeError } from './errors.js';
import { cleanPath } from './plan.js';

/** In images, the shielded copy of a directory D is at CONTAINER_SHIELD_ROOT + D; it is decrypted into D. */
export const CONTAINER_SHIELD_ROOT = '/opt/veil/shield';
const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/**
 * `veil run --container`: the container is the namespace. Nothing is mounted (a pod needs no capability):
 * every directory that receives secrets or decrypted code must already be a memory file system — the Helm
 * chart mounts `emptyDir: {medium: Memory}` there — or the runtime refuses, so nothing lands on a disk.
 */
export async function launchInContainer(
  config: RuntimeConfig,
  programFd: number,
  mounts = readMounts(),
): Promise<number> {
  const shield = config.fspf?.path ? shieldTarget(config) : undefined;
  for (const file of config.injectionFiles) requireMemory(cleanPath(file.path, 'injection file'), mounts);
  if (shield) {
    const { decryptTree } = await import('../fsshield/index.js');
    const check = (paths: string[]) => {
      for (const p of paths) requireMemory(posix.join(shield.into, p), mounts);
    };
    await decryptTree(
      shield.from,
      shield.into,
      { key: config.fspf!.key!, tag: config.fspf!.tag! },
      { beforeWrite: check },
    ).catch((err: Error) => {
      if (err instanceof RuntimeError) throw err;
      throw new RuntimeError('RUNTIME_CONFIG', `file-system shield: ${err.message}`, {
        hint: 'the image was changed, or the session names another build',
        cause: err,
      });
    });
  }
  for (const file of config.injectionFiles)
    writeSecret(file.path, Buffer.from(file.content, 'base64'), file.mode, mounts);
  return start(config, programFd);
}

/**
 * Writes where the path really leads: the directory's real path must be on memory too (a link left in a
 * shared volume cannot redirect a secret to a disk), and the file is made afresh, never through a link.
 */
function writeSecret(path: string, data: Buffer, mode: number, mounts: Map<string, string>): void {
  mkdirSync(dirname(path), { recursive: true });
  const real = posix.join(realpathSync(dirname(path)), posix.basename(path));
  requireMemory(real, mounts);
  rmSync(real, { force: true });
  const fd = openSync(
    real,
    fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY | fsConstants.O_NOFOLLOW,
    mode & 0o7777,
  );
  try {
    writeSync(fd, data);
    fchmodSync(fd, mode & 0o7777);
  } finally {
    closeSync(fd);
  }
}

function shieldTarget(config: RuntimeConfig): { from: string; into: string } {
  const fspf = config.fspf!;
  if (!fspf.key || !fspf.tag)
    throw new RuntimeError('RUNTIME_CONFIG', `the policy names fspf_path ${fspf.path} without fspf_key and fspf_tag`, {
      hint: "add the values 'veil fspf encrypt' printed",
    });
  const from = posix.dirname(fspf.path!);
  if (from !== CONTAINER_SHIELD_ROOT && !from.startsWith(`${CONTAINER_SHIELD_ROOT}/`)) {
    throw new RuntimeError(
      'RUNTIME_CONFIG',
      `in a container the shielded tree must be under ${CONTAINER_SHIELD_ROOT} (fspf_path is ${fspf.path})`,
      { hint: 'use the session veil apply or veil sconify generated for the image' },
    );
  }
  return { from, into: from.slice(CONTAINER_SHIELD_ROOT.length) || '/' };
}

/** Mount points and their file-system types, from /proc/self/mountinfo. */
export function readMounts(text = readFileSync('/proc/self/mountinfo', 'utf8')): Map<string, string> {
  const mounts = new Map<string, string>();
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const mountPoint = left.split(' ')[4]!.replace(/\\040/g, ' ');
    mounts.set(mountPoint, right.split(' ')[0]!);
  }
  return mounts;
}

/** A file may be written only where the file system that holds it (its longest mount prefix) is memory. */
function requireMemory(file: string, mounts: Map<string, string>): void {
  const path = posix.normalize(file);
  const mountPoint = [...mounts.keys()]
    .filter((m) => m === '/' || path === m || path.startsWith(`${m}/`))
    .sort((a, b) => b.length - a.length)[0];
  const type = mountPoint ? mounts.get(mountPoint) : undefined;
  if (type === 'tmpfs' || type === 'ramfs') return;
  const dir = posix.dirname(path);
  throw new RuntimeError(
    'RUNTIME_NAMESPACE',
    `${dir} is not on a memory file system (${type ? `${mountPoint} is ${type}` : 'nothing is mounted there'}): ${path} would reach a disk`,
    {
      hint: `mount a memory-backed volume at ${dir} (Kubernetes: emptyDir with medium: Memory; the charts Veil writes do)`,
    },
  );
}

/** Starts the measured file (passed on as fd 3) with the policy's argv[0], arguments, environment and directory. */
function start(config: RuntimeConfig, programFd: number): Promise<number> {
  const [argv0, ...args] = config.command;
  const child = spawn('/proc/self/fd/3', args, {
    argv0: argv0!,
    cwd: config.pwd,
    env: config.environment,
    stdio: ['inherit', 'inherit', 'inherit', programFd],
  });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of SIGNALS) process.on(signal, forward);
  return new Promise((resolve, reject) => {
    child.on('error', (err) =>
      reject(
        new RuntimeError('RUNTIME_PROGRAM', `cannot start ${argv0}: ${err.message}`, {
          hint: 'the image lacks a library or the program is not executable here',
          cause: err,
        }),
      ),
    );
    child.on('exit', (code, signal) => {
      for (const s of SIGNALS) process.off(s, forward);
      resolve(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
}
