import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RuntimeConfig } from './attest.js';
import { RuntimeError } from './errors.js';

const INNER = fileURLToPath(new URL('./inner.js', import.meta.url));
const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/** unshare's arguments for a private mount namespace (inside a user namespace when not root). */
function unshareArgs(): string[] {
  const base = ['--mount', '--propagation', 'private'];
  return process.getuid?.() === 0 ? base : ['--user', '--map-root-user', ...base];
}

export function namespacesWork(): boolean {
  return spawnSync('unshare', [...unshareArgs(), 'true'], { stdio: 'ignore' }).status === 0;
}

/**
 * Starts the program through the namespace helper and resolves with its exit status. Without namespaces
 * it refuses, unless the caller passed the explicitly insecure flag.
 */
export function launch(config: RuntimeConfig, programFd: number, opts: { insecureNoNamespace: boolean; hosts?: Record<string, string> }): Promise<number> {
  const secure = namespacesWork();
  if (!secure && !opts.insecureNoNamespace) {
    throw new RuntimeError('RUNTIME_NAMESPACE', 'cannot create a private mount namespace for the injected files', {
      hint: 'run as root or enable unprivileged user namespaces; --INSECURE-no-namespace writes secrets to the host file system',
    });
  }
  const command = secure ? ['unshare', [...unshareArgs(), '--', process.execPath, INNER]] as const : [process.execPath, [INNER]] as const;
  const child = spawn(command[0], [...command[1]], {
    stdio: ['inherit', 'inherit', 'inherit', 'pipe', programFd],
    env: { ...(secure ? {} : { VEIL_INNER_INSECURE: '1' }), PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
  });
  const pipe = child.stdio[3] as NodeJS.WritableStream;
  pipe.end(JSON.stringify(opts.hosts ? { ...config, hosts: opts.hosts } : config));
  for (const signal of SIGNALS) process.on(signal, () => child.kill(signal));
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + 15 : 1))));
}
