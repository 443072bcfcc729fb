import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { ImageError } from './errors.js';

export const ENGINES = ['podman', 'docker'] as const;
export type EngineName = (typeof ENGINES)[number];

/** What a spawned engine command gave: its exit status and the tails of its output. */
export interface SpawnResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * How engine commands are started: a parameter, so units test the build without an engine. `timeoutMs` ends
 * the command with SIGKILL; `input`, when given, is written to its stdin (otherwise stdin is closed).
 */
export type Spawner = (
  file: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; timeoutMs: number; input?: Buffer | undefined },
) => Promise<SpawnResult>;

export interface Engine {
  name: EngineName;
  /** The executable, found on PATH. */
  path: string;
  spawn: Spawner;
}

/** Output kept of each engine command: its end says why it failed; a build log can be long. */
export const OUTPUT_TAIL_BYTES = 64 * 1024;

/** The one real spawner: no shell, output tails kept, killed at the timeout. */
export const spawnProcess: Spawner = (file, args, opts) =>
  new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env, stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    // A command that exits before reading all of it is answered by its exit status, not by EPIPE.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input);
    const out = tail();
    const err = tail();
    child.stdout!.on('data', out.add);
    child.stderr!.on('data', err.add);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: out.text(), stderr: err.text() });
    });
  });

function tail(): { add: (chunk: Buffer) => void; text: () => string } {
  let kept = Buffer.alloc(0);
  return {
    add: (chunk) => {
      kept = Buffer.concat([kept, chunk]);
      if (kept.length > OUTPUT_TAIL_BYTES) kept = kept.subarray(kept.length - OUTPUT_TAIL_BYTES);
    },
    text: () => kept.toString('utf8'),
  };
}

/** An executable of that name in one of PATH's directories. */
export function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

export const INSTALL_HINT =
  'install podman (Debian: apt-get install podman runc) or docker, or set VEIL_CONTAINER_ENGINE=podman|docker';

/**
 * The container engine that runs `build.run` and `requirements`: `VEIL_CONTAINER_ENGINE` (podman, docker, or none
 * to build without one), else podman, then docker, on PATH. Undefined: there is none (or none was wanted).
 */
export function findEngine(
  env: NodeJS.ProcessEnv,
  opts: { lookup?: (name: string, env: NodeJS.ProcessEnv) => string | undefined; spawn?: Spawner } = {},
): Engine | undefined {
  const lookup = opts.lookup ?? onPath;
  const spawner = opts.spawn ?? spawnProcess;
  const wanted = env.VEIL_CONTAINER_ENGINE;
  if (wanted === 'none') return undefined;
  if (wanted !== undefined && wanted !== '') {
    if (!(ENGINES as readonly string[]).includes(wanted))
      throw new ImageError('IMAGE_ENGINE', `VEIL_CONTAINER_ENGINE is '${wanted}', not podman, docker or none`, {
        hint: 'set it to podman, docker or none (none: build.run and requirements are skipped)',
      });
    const path = lookup(wanted, env);
    if (!path)
      throw new ImageError('IMAGE_ENGINE', `VEIL_CONTAINER_ENGINE is ${wanted}, which is not on PATH`, {
        hint: INSTALL_HINT,
      });
    return { name: wanted as EngineName, path, spawn: spawner };
  }
  for (const name of ENGINES) {
    const path = lookup(name, env);
    if (path) return { name, path, spawn: spawner };
  }
  return undefined;
}

/** `VEIL_BUILD_NETWORK`: the steps' network — the engine's default (as `docker build`), none, or host. */
export function buildNetwork(env: NodeJS.ProcessEnv): string {
  const network = env.VEIL_BUILD_NETWORK || 'default';
  if (!['default', 'none', 'host'].includes(network))
    throw new ImageError('IMAGE_ENGINE', `VEIL_BUILD_NETWORK is '${network}', not default, none or host`, {
      hint: 'unset it (the engine default network), or set none (no network) or host',
    });
  return network;
}
