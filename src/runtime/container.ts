import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, posix } from 'node:path';
import type { RuntimeConfig } from './attest.js';
import { RuntimeError } from './errors.js';

/** In images, the shielded copy of a directory D is at CONTAINER_SHIELD_ROOT + D; it is decrypted into D. */
export const CONTAINER_SHIELD_ROOT = '/opt/veil/shield';
const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/**
 * `veil run --container`: the container is the namespace. Nothing is mounted (a pod needs no capability):
 * every directory that receives secrets or decrypted code must already be a memory file system — the Helm
 * chart mounts `emptyDir: {medium: Memory}` there — or the runtime refuses, so nothing lands on a disk.
 */
export async function launchInContainer(config: RuntimeConfig, programFd: number, mounts = readMounts()): Promise<number> {
  const shield = config.fspf?.path ? shieldTarget(config) : undefined;
  const dirs = [...new Set([...config.injectionFiles.map((f) => posix.dirname(f.path)), ...(shield ? [shield.into] : [])])];
  for (const dir of dirs) requireMemory(dir, mounts);
  if (shield) {
    const { decryptTree } = await import('../fsshield/index.js');
    await decryptTree(shield.from, shield.into, { key: config.fspf!.key!, tag: config.fspf!.tag! }).catch((err: Error) => {
      throw new RuntimeError('RUNTIME_CONFIG', `file-system shield: ${err.message}`, { hint: 'the image was changed, or the session names another build', cause: err });
    });
  }
  for (const file of config.injectionFiles) {
    mkdirSync(dirname(file.path), { recursive: true });
    writeFileSync(file.path, Buffer.from(file.content, 'base64'), { mode: file.mode });
    chmodSync(file.path, file.mode);
  }
  return start(config, programFd);
}

function shieldTarget(config: RuntimeConfig): { from: string; into: string } {
  const fspf = config.fspf!;
  if (!fspf.key || !fspf.tag) throw new RuntimeError('RUNTIME_CONFIG', `the policy names fspf_path ${fspf.path} without fspf_key and fspf_tag`, { hint: "add the values 'veil fspf encrypt' printed" });
  const from = posix.dirname(fspf.path!);
  if (!from.startsWith(`${CONTAINER_SHIELD_ROOT}/`)) {
    throw new RuntimeError('RUNTIME_CONFIG', `in a container the shielded tree must be under ${CONTAINER_SHIELD_ROOT} (fspf_path is ${fspf.path})`, { hint: 'use the session veil apply generates for the image' });
  }
  return { from, into: from.slice(CONTAINER_SHIELD_ROOT.length) };
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

function requireMemory(dir: string, mounts: Map<string, string>): void {
  const type = mounts.get(posix.normalize(dir));
  if (type === 'tmpfs' || type === 'ramfs') return;
  throw new RuntimeError('RUNTIME_NAMESPACE', `${dir} is not a memory file system (${type ? `it is ${type}` : 'nothing is mounted there'}): secrets or decrypted code would reach a disk`, {
    hint: `mount a memory-backed volume at ${dir} (Kubernetes: emptyDir with medium: Memory; the chart veil apply writes does)`,
  });
}

/** Starts the measured file (passed on as fd 3) with the policy's argv[0], arguments, environment and directory. */
function start(config: RuntimeConfig, programFd: number): Promise<number> {
  const [argv0, ...args] = config.command;
  const child = spawn('/proc/self/fd/3', args, { argv0: argv0!, cwd: config.pwd, env: config.environment, stdio: ['inherit', 'inherit', 'inherit', programFd] });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of SIGNALS) process.on(signal, forward);
  return new Promise((resolve, reject) => {
    child.on('error', (err) => reject(new RuntimeError('RUNTIME_PROGRAM', `cannot start ${argv0}: ${err.message}`, { hint: 'the image lacks a library or the program is not executable here', cause: err })));
    child.on('exit', (code, signal) => {
      for (const s of SIGNALS) process.off(s, forward);
      resolve(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
}
