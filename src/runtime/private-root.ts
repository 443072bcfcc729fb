import { accessSync, constants, existsSync, readdirSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import type { Step } from './plan.js';

/**
 * Without root, a mount point that does not exist (say /tls) cannot be created on the host. Then the helper
 * builds a private root instead: a tmpfs whose entries are the host's own top-level directories bound in
 * (so the program sees the same system), where the missing directories can be made; it mounts everything
 * there and enters it with chroot before exec. Nothing of it outlives the namespace.
 */
export function needsPrivateRoot(steps: Step[], uid: number | undefined, canCreate = creatable): boolean {
  if (uid === 0) return false;
  return steps.some((s) => s.op === 'mkdir' && !canCreate(s.path));
}

function creatable(path: string): boolean {
  return existsSync(path) || writableParent(path);
}

function writableParent(path: string): boolean {
  let dir = posix.dirname(path);
  while (!existsSync(dir)) dir = posix.dirname(dir);
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The same steps, inside a private root at `root` (see above), entered just before the program starts. */
export function inPrivateRoot(steps: Step[], root: string, hostRoot = '/'): Step[] {
  const at = (path: string) => posix.join(root, path);
  const moved = steps.map((s): Step => {
    switch (s.op) {
      case 'mkdir':
      case 'tmpfs':
        return { ...s, path: at(s.path) };
      case 'write':
        return { ...s, path: at(s.path) };
      case 'bind':
        return { ...s, from: at(s.from), to: at(s.to) };
      case 'unshield':
        return { ...s, shield: at(s.shield), staging: at(s.staging) };
      default:
        return s;
    }
  });
  const start = moved.findIndex((s) => s.op === 'chdir');
  return [...rootSteps(root, hostRoot), ...moved.slice(0, start), { op: 'chroot', path: root }, ...moved.slice(start)];
}

/** The tmpfs root and the host's top level in it: directories bound (with what is mounted below them), links copied. */
function rootSteps(root: string, hostRoot: string): Step[] {
  const parts = root.split('/').filter(Boolean);
  const steps: Step[] = parts.map((_, i) => ({ op: 'mkdir', path: `/${parts.slice(0, i + 1).join('/')}` }));
  steps.push({ op: 'tmpfs', path: root });
  for (const entry of readdirSync(hostRoot, { withFileTypes: true })) {
    const host = posix.join(hostRoot, entry.name);
    const inside = posix.join(root, entry.name);
    if (entry.isSymbolicLink()) steps.push({ op: 'symlink', target: readlinkSync(host), path: inside });
    else if (entry.isDirectory()) steps.push({ op: 'mkdir', path: inside }, { op: 'rbind', from: host, to: inside });
  }
  return steps;
}
