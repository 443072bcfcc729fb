import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { TestJson } from '../cas/testing.js';

/** Shared plumbing of the end-to-end tests: real `veil` processes, real `curl` and `openssl`. */
export const ROOT = resolve(fileURLToPath(new URL('../../', import.meta.url)));
export const VEIL_BIN = join(ROOT, 'bin', 'veil.js');
const exec = promisify(execFile);

export function tempDir(prefix = 'veil-e2e-'): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export interface CasProcess {
  url: string;
  fingerprint: string;
  caFile: string;
  process: ChildProcess;
  log(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `veil cas serve` on a free loopback port and waits for the line that says where it listens. One
 * process unless the test asks for workers (--workers N or VEIL_CAS_WORKERS in `env`): the tests that count
 * a CAS's processes, entries or connections are about one CAS process.
 */
export async function startCas(
  dataDir: string,
  workDir: string,
  extraArgs: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<CasProcess> {
  const child = spawn(
    process.execPath,
    [VEIL_BIN, 'cas', 'serve', '--listen', '127.0.0.1:0', '--data', dataDir, ...extraArgs],
    {
      env: { ...process.env, VEIL_HOME: join(workDir, 'cas-home'), VEIL_CAS_WORKERS: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  await waitFor(
    () => /fingerprint/.test(out) || child.exitCode !== null,
    15_000,
    () => `CAS did not start: ${err}`,
  );
  if (child.exitCode !== null) throw new Error(`CAS exited: ${err}`);
  const url = /CAS listening at (\S+)/.exec(out)![1]!;
  const fingerprint = /fingerprint \(SHA-256\): ([0-9a-f]{64})/.exec(out)![1]!;
  const caFile = join(workDir, `cas-ca-${fingerprint.slice(0, 8)}.pem`);
  writeFileSync(caFile, await fetchCaPem(url));
  return {
    url,
    fingerprint,
    caFile,
    process: child,
    log: () => out + err,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/** The CA as a curl user gets it: the last certificate of the chain the server presents (checked by fingerprint in tests). */
async function fetchCaPem(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  const { stdout } = await run('sh', [
    '-c',
    `openssl s_client -connect ${hostname}:${port} -showcerts </dev/null 2>/dev/null`,
  ]);
  const pems = stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length < 2) throw new Error(`expected a chain of 2 certificates from ${url}, got ${pems.length}`);
  return `${pems[pems.length - 1]}\n`;
}

export async function waitFor(check: () => boolean, ms: number, message: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(message());
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function run(cmd: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}) {
  try {
    const { stdout, stderr } = await exec(cmd, args, { env: options.env ?? process.env, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** A client identity as SCONE users make one: a self-signed certificate from `openssl req -x509`. */
export async function opensslIdentity(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  const r = await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '365',
    '-subj',
    `/CN=${name}`,
    '-out',
    cert,
    '-keyout',
    key,
  ]);
  if (r.code !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  return { cert, key };
}

export interface CurlResult {
  status: number;
  body: string;
  json(): TestJson;
}

/** curl against the CAS, verifying it with its CA (never -k). */
export async function curl(
  cas: { caFile: string },
  url: string,
  opts: { identity?: { cert: string; key: string }; data?: string; dataFile?: string; method?: string } = {},
): Promise<CurlResult> {
  const args = ['-sS', '--cacert', cas.caFile, '-w', '\n%{http_code}'];
  if (opts.identity) args.push('--cert', opts.identity.cert, '--key', opts.identity.key);
  if (opts.method) args.push('-X', opts.method);
  if (opts.dataFile) args.push('--data-binary', `@${opts.dataFile}`);
  else if (opts.data !== undefined) args.push('--data-binary', opts.data);
  const r = await run('curl', [...args, url]);
  if (r.code !== 0) throw new Error(`curl failed (${r.code}): ${r.stderr}`);
  const cut = r.stdout.lastIndexOf('\n');
  const body = r.stdout.slice(0, cut);
  return { status: Number(r.stdout.slice(cut + 1)), body, json: () => JSON.parse(body) };
}

/** Runs the CLI as a user does. */
export async function veil(args: string[], env: NodeJS.ProcessEnv) {
  return run(process.execPath, [VEIL_BIN, ...args], { env: { ...process.env, ...env } });
}

export function readText(path: string): string {
  return readFileSync(path, 'utf8');
}

/** The example's policies with their `$VAR`s filled, as `envsubst` would (with SCONE='$SCONE'). */
export function seedPolicy(which: 'flask' | 'redis', vars: Record<string, string>): string {
  const text = readText(join(ROOT, 'examples', 'flask-redis', 'policies', `${which}-session.yaml`));
  return text.replace(/(?<!\$)\$([A-Z_][A-Z0-9_]*)/g, (m, name: string) => vars[name] ?? m);
}

/**
 * The host key a simulated `veil run` signs with (VEIL_HOST_KEY in `dir`) and its platform ID, from `veil host
 * id` as a user gets it: simulation policies list it in `platforms`, or the CAS refuses the evidence.
 */
export async function simulationHost(dir: string): Promise<{ env: { VEIL_HOST_KEY: string }; id: string }> {
  const env = { VEIL_HOST_KEY: join(dir, 'host', 'host-key.pem') };
  const r = await veil(['host', 'id'], env);
  if (r.code !== 0 || !/^[0-9a-f]{64}\n$/.test(r.stdout)) throw new Error(`veil host id failed: ${r.stderr}`);
  return { env, id: r.stdout.trim() };
}

/**
 * Some thread of it still runs. A zombie waiting to be reaped (state Z) does not count, but a process whose main
 * thread is a zombie while other threads still exit does: its sockets close with the last thread.
 */
export function alive(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).some((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
    });
  } catch {
    return false;
  }
}

/** A process's command line from /proc, '' once it has ended. */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}
