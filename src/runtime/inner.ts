/**
 * Runs inside the private mount namespace that `veil run` made: puts the injection files on tmpfs mounts
 * (so they never touch a disk and nothing outside the namespace sees them), then starts the program — the
 * very file the runtime measured, inherited as fd 4 — with the policy's arguments, environment and working
 * directory, forwarding signals and passing its exit status on. The configuration arrives on fd 3.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { RuntimeConfig } from './attest.js';

const CONFIG_FD = 3;
const PROGRAM_FD = 4;
const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

function fail(message: string): never {
  process.stderr.write(`[VEIL|FATAL] ${message}\n`);
  process.exit(126);
}

function mountTmpfs(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const result = spawnSync('mount', ['-t', 'tmpfs', '-o', 'mode=0755,size=64m', 'tmpfs', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (result.status !== 0) fail(`cannot mount tmpfs at ${dir}: ${result.stderr?.toString().trim()}`);
}

/**
 * The shielded tree is verified and decrypted into a fresh tmpfs, which is then mounted over the encrypted
 * directory: the program finds its code in plaintext where the policy's paths say, only in this namespace.
 */
async function unshield(config: RuntimeConfig, secure: boolean): Promise<void> {
  const fspf = config.fspf;
  if (!fspf?.path) return;
  if (!fspf.key || !fspf.tag) fail(`the policy names fspf_path ${fspf.path} without fspf_key and fspf_tag`);
  if (!secure) fail('a shielded file system needs a private namespace; it cannot be used with --INSECURE-no-namespace');
  const shieldDir = dirname(fspf.path);
  // One fixed mount point: each namespace mounts its own tmpfs there, so runs leave nothing behind on the host.
  const staging = join(tmpdir(), '.veil-fspf-staging');
  mountTmpfs(staging);
  // Loaded only when needed: this process sits on the launch path.
  const { decryptTree } = await import('../fsshield/index.js');
  try {
    decryptTree(shieldDir, staging, { key: fspf.key, tag: fspf.tag });
  } catch (err) {
    fail(`file-system shield: ${(err as Error).message}`);
  }
  const bind = spawnSync('mount', ['--bind', staging, shieldDir], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (bind.status !== 0) fail(`cannot mount the decrypted tree at ${shieldDir}: ${bind.stderr?.toString().trim()}`);
}

function inject(config: RuntimeConfig, secure: boolean): void {
  const dirs = [...new Set(config.injectionFiles.map((f) => dirname(f.path)))];
  if (secure) dirs.forEach(mountTmpfs);
  for (const file of config.injectionFiles) {
    mkdirSync(dirname(file.path), { recursive: true });
    writeFileSync(file.path, Buffer.from(file.content, 'base64'), { mode: file.mode });
    chmodSync(file.path, file.mode);
  }
}

/** The namespace's own /etc/hosts: the host's entries plus the mesh's names on loopback addresses. */
function mapHosts(hosts: Record<string, string> | undefined): void {
  if (!hosts || Object.keys(hosts).length === 0) return;
  const dir = join(tmpdir(), '.veil-hosts');
  mountTmpfs(dir);
  const lines = Object.entries(hosts).map(([name, address]) => `${address}\t${name}`);
  writeFileSync(join(dir, 'hosts'), `${readFileSync('/etc/hosts', 'utf8')}\n# veil run\n${lines.join('\n')}\n`, { mode: 0o644 });
  const bind = spawnSync('mount', ['--bind', join(dir, 'hosts'), '/etc/hosts'], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (bind.status !== 0) fail(`cannot map host names in /etc/hosts: ${bind.stderr?.toString().trim()}`);
}

async function main(): Promise<void> {
  const config = JSON.parse(readFileSync(CONFIG_FD, 'utf8')) as RuntimeConfig & { hosts?: Record<string, string> };
  const secure = process.env['VEIL_INNER_INSECURE'] !== '1';
  if (secure) mapHosts(config.hosts);
  else if (config.hosts) fail('host name mapping needs a private namespace');
  await unshield(config, secure);
  inject(config, secure);
  const [argv0, ...args] = config.command;
  const child = spawn(`/proc/self/fd/${PROGRAM_FD}`, args, {
    argv0: argv0 ?? 'program',
    cwd: config.pwd,
    env: config.environment,
    stdio: ['inherit', 'inherit', 'inherit', 'ignore', PROGRAM_FD],
  });
  child.on('error', (err) => fail(`cannot start ${argv0}: ${err.message}`));
  for (const signal of SIGNALS) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (signal ? signalNumber(signal) : 0)));
}

function signalNumber(signal: NodeJS.Signals): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15 };
  return numbers[signal] ?? 0;
}

await main();
