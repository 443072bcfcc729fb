import { randomBytes } from 'node:crypto';
import { closeSync, constants, fchmodSync, openSync, renameSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { posix } from 'node:path';
import type { RuntimeConfig } from './attest.js';
import { RuntimeError } from './errors.js';

const TMPFS_MAGIC = 0x01021994;

/**
 * Replaces `path` atomically: the new bytes go to a fresh temporary file in the same directory (O_EXCL,
 * O_NOFOLLOW: never through a link someone left there), which is then renamed over the old one. A reader opens
 * either the old file or the new one, never a partial one. `memoryOnly` refuses a directory that is not a tmpfs,
 * so a renewed secret never reaches a disk.
 */
export function replaceFile(path: string, content: Buffer, mode: number, memoryOnly: boolean): void {
  const dir = posix.dirname(path);
  if (memoryOnly && statfsSync(dir).type !== TMPFS_MAGIC) {
    throw new RuntimeError('RUNTIME_NAMESPACE', `${dir} is no longer a memory file system: not rewriting ${path}`, {
      hint: 'the program must leave the directories veil run mounts for its injected files in place',
    });
  }
  const temporary = posix.join(dir, `.${posix.basename(path)}.veil-${randomBytes(6).toString('hex')}`);
  const flags = constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW;
  const fd = openSync(temporary, flags, mode & 0o7777);
  try {
    for (let at = 0; at < content.length; ) at += writeSync(fd, content, at);
    fchmodSync(fd, mode & 0o7777);
  } catch (err) {
    closeSync(fd);
    unlinkSync(temporary);
    throw err;
  }
  closeSync(fd);
  renameSync(temporary, path);
}

/**
 * The program's injected files, renewed where the program sees them. In its namespace they are reached
 * through /proc/<pid>/root (its root: the private root when there is one, with its mounts); the caller waits
 * until the helper has exec'd the program, so every mount is in place. Without a namespace: on the host.
 */
export function rewriteInjected(files: RuntimeConfig['injectionFiles'], pid: number | undefined): void {
  const root = pid === undefined ? '' : `/proc/${pid}/root`;
  for (const file of files) {
    replaceFile(`${root}${file.path}`, Buffer.from(file.content, 'base64'), file.mode, pid !== undefined);
  }
}
