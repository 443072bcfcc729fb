import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/**
 * TCP ports on which a process or any of its descendants listens, read from /proc: how `veil up` knows a
 * service is ready without being told its port (the program is unmodified and says nothing to us).
 */
export function listeningPorts(root: number): number[] {
  const inodes = new Set(descendants(root).flatMap(socketInodes));
  if (inodes.size === 0) return [];
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const entry of listenEntries(table)) if (inodes.has(entry.inode)) ports.add(entry.port);
  }
  return [...ports].sort((a, b) => a - b);
}

/** `root` and every process below it (one pass over /proc/*\/stat). */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of safeReaddir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const ppid = parentOf(Number(name));
    if (ppid !== undefined) children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields resume after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[1]);
  } catch {
    return undefined; // the process ended meanwhile
  }
}

function socketInodes(pid: number): string[] {
  return safeReaddir(`/proc/${pid}/fd`).flatMap((fd) => {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      return match ? [match[1]!] : [];
    } catch {
      return [];
    }
  });
}

/** The IPv4 addresses with a listening TCP socket on them, from /proc/net/tcp (every process's, not only ours). */
export function listeningAddresses(table = '/proc/net/tcp'): Set<string> {
  return new Set(listenEntries(table).map((e) => e.address));
}

/** /proc/net/tcp writes an IPv4 address as 8 hex digits in host (little-endian) order: 0100007F is 127.0.0.1. */
function ipv4(hex: string): string {
  return [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
}

function listenEntries(table: string): Array<{ port: number; inode: string; address: string }> {
  let text: string;
  try {
    text = readFileSync(table, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .slice(1)
    .flatMap((line) => {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A') return []; // 0A: LISTEN
      const [address, port] = f[1]!.split(':') as [string, string];
      return [{ port: parseInt(port, 16), inode: f[9]!, address: address.length === 8 ? ipv4(address) : address }];
    });
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
