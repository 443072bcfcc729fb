import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './harness.js';

/**
 * Podman as the tests use it: storage, run state, networks and volumes under a temporary directory (nothing of
 * the host's own containers is seen or touched), runc, and the host's network. This sandbox refuses the default
 * rlimits, so every container gets lowered `nofile` and `nproc` limits.
 */
export interface Podman {
  /** `podman <global options> ...args`. */
  podman(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Pulls from a loopback registry (plain HTTP) and returns the image ID; a warning about the image fails. */
  pull(reference: string): Promise<string>;
  start(spec: ContainerSpec): Promise<Container>;
  /** Removes every container and image, unmounts what the storage mounted, deletes the directory. */
  cleanup(): Promise<void>;
}

export interface ContainerSpec {
  name: string;
  image: string;
  env?: Record<string, string>;
  /** Memory file systems (`--tmpfs`), as the charts' `emptyDir: {medium: Memory}` volumes. */
  tmpfs?: string[];
  /** `host:container[:options]` bind mounts. */
  volumes?: string[];
  /** Names in the container's /etc/hosts. */
  hosts?: Record<string, string>;
  entrypoint?: string;
  args?: string[];
}

export interface Container {
  name: string;
  logs(): Promise<string>;
  /** Waits until the logs match `pattern` (or the container ends, which fails with its logs). */
  waitForLog(pattern: RegExp, ms: number): Promise<string>;
}

export const RLIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

/** Podman is usable here (as root: rootless podman needs subordinate IDs the test machine may not have). */
export function podmanAvailable(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('podman', ['--version'], { stdio: 'ignore' });
    execFileSync('runc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function podmanIn(dir: string, driver = process.env['VEIL_TEST_PODMAN_DRIVER'] ?? 'overlay'): Podman {
  for (const sub of ['root', 'runroot', 'tmp', 'networks', 'volumes']) mkdirSync(join(dir, sub), { recursive: true });
  const global = [
    ...['--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), '--tmpdir', join(dir, 'tmp')],
    ...['--network-config-dir', join(dir, 'networks'), '--volumepath', join(dir, 'volumes')],
    ...['--storage-driver', driver, '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', 'runc'],
  ];
  const podman = (args: string[]) => run('podman', [...global, ...args]);
  const must = async (args: string[]) => {
    const r = await podman(args);
    if (r.code !== 0) throw new Error(`podman ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r.stdout;
  };
  return {
    podman,
    pull: async (reference) => {
      const r = await podman(['pull', '--tls-verify=false', reference]);
      if (r.code !== 0 || /level=warn|WARN/i.test(r.stderr))
        throw new Error(`podman pull ${reference}: ${r.code === 0 ? 'warned' : `failed (${r.code})`}: ${r.stderr}`);
      return r.stdout.trim();
    },
    start: async (spec) => {
      await must(['run', '-d', ...runOptions(spec), spec.image, ...(spec.args ?? [])]);
      return container(spec.name, podman);
    },
    cleanup: async () => {
      await podman(['rm', '-af', '-t', '2']);
      await podman(['rmi', '-af']);
      unmountUnder(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function runOptions(spec: ContainerSpec): string[] {
  return [
    ...['--name', spec.name, '--network', 'host', '--runtime', 'runc', ...RLIMITS],
    ...Object.entries(spec.env ?? {}).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
    ...(spec.tmpfs ?? []).flatMap((path) => ['--tmpfs', path]),
    ...(spec.volumes ?? []).flatMap((v) => ['--volume', v]),
    ...Object.entries(spec.hosts ?? {}).flatMap(([name, address]) => ['--add-host', `${name}:${address}`]),
    ...(spec.entrypoint ? ['--entrypoint', spec.entrypoint] : []),
  ];
}

type PodmanRun = (args: string[]) => Promise<{ code: number; stdout: string; stderr: string }>;

function container(name: string, podman: PodmanRun): Container {
  // `podman logs` writes what the container wrote to stderr on its own stderr.
  const logs = async () => {
    const r = await podman(['logs', name]);
    return r.stdout + r.stderr;
  };
  const running = async () => (await podman(['inspect', '-f', '{{.State.Running}}', name])).stdout.trim() === 'true';
  return {
    name,
    logs,
    waitForLog: async (pattern, ms) => {
      const end = Date.now() + ms;
      for (;;) {
        const alive = await running();
        const text = await logs();
        if (pattern.test(text)) return text;
        if (!alive || Date.now() > end)
          throw new Error(`${name}: no ${pattern} in its logs${alive ? '' : ' (it ended)'}:\n${text}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
  };
}

/** Overlay storage leaves mounts under its root (the root itself is bind-mounted): lazily unmounted, deepest first. */
function unmountUnder(dir: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const mount of mounts) execFileSync('umount', ['-l', mount], { stdio: 'ignore' });
}
