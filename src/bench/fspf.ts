/**
 * `npm run bench:fspf`: shield encrypt and decrypt throughput of a 256 MiB tree, beside node's own
 * AES-256-GCM (one core) and `openssl speed -evp aes-256-gcm` (one core) measured in the same run. Decryption
 * goes where `veil run` decrypts: into a tmpfs mounted with the options the runtime's launch plan gives the
 * shield's (sized from the tree, large folios where the kernel has them) — so the bench runs itself in a
 * private mount namespace (`unshare`) — and, for comparison, into the host's /dev/shm. It is measured on the
 * main thread alone and with worker threads, interleaved, with the cores each used and its CPU time per MiB
 * (process CPU time, worker threads included); then both on small trees, for the size from which the
 * threads pay for their start (THREADS_FROM). Last the issue's goal (≥ 50% of openssl on two cores).
 * BENCH_FSPF_MIB sets the tree's size, BENCH_FSPF_RUNS the runs per design (median reported).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { THREADS_FROM, type Threads, decryptTree, encryptTree } from '../fsshield/index.js';
import { launchPlan, tmpfsOptions } from '../runtime/index.js';

const TOTAL_MIB = Number(process.env['BENCH_FSPF_MIB'] ?? 256);
const RUNS = Number(process.env['BENCH_FSPF_RUNS'] ?? 3);
const SMALL_MIB = [4, 16, 32, 64, 128];
const MAIN: Threads = { from: Number.POSITIVE_INFINITY };
const WORKERS: Threads = { from: 0 };

interface Run {
  seconds: number;
  cpu: number;
  threads: number;
}

/** `mib` MiB in files of at most 16 MiB (the last one shorter), as an application tree would hold. */
function makeTree(root: string, mib: number): void {
  const chunk = randomBytes(1024 * 1024);
  mkdirSync(join(root, 'big'), { recursive: true });
  for (let i = 0, left = mib; left > 0; i++, left -= 16) {
    const n = Math.min(16, left);
    writeFileSync(join(root, 'big', `f${i}.bin`), Buffer.concat(Array.from({ length: n }, () => chunk)));
  }
}

function time<T>(f: () => T): { seconds: number; result: T } {
  const started = process.hrtime.bigint();
  const result = f();
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, result };
}

/** One decryption into a fresh directory under `into`. */
async function decryptOnce(into: string, enc: string, shield: { key: string; tag: string }, threads: Threads) {
  const out = mkdtempSync(join(into, 'veil-bench-'));
  try {
    const cpu = process.cpuUsage();
    const started = process.hrtime.bigint();
    const result = await decryptTree(enc, out, shield, { threads });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const used = process.cpuUsage(cpu);
    return { seconds, cpu: (used.user + used.system) / 1e6, threads: result.threads };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** Both designs, interleaved so that the machine's other load falls on both alike; the median of each. */
async function compare(into: string, enc: string, shield: { key: string; tag: string }, runs: number) {
  const main: Run[] = [];
  const workers: Run[] = [];
  for (let i = 0; i < runs; i++) {
    main.push(await decryptOnce(into, enc, shield, MAIN));
    workers.push(await decryptOnce(into, enc, shield, WORKERS));
  }
  const median = (all: Run[]) => [...all].sort((a, b) => a.seconds - b.seconds)[Math.floor(all.length / 2)]!;
  return { main: median(main), workers: median(workers) };
}

function opensslGcm(): number | undefined {
  try {
    const out = execFileSync(
      'openssl',
      ['speed', '-seconds', '2', '-bytes', String(1024 * 1024), '-evp', 'aes-256-gcm'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const line = out.split('\n').find((l) => /^aes-256-gcm/i.test(l.trim()));
    const kbps = line?.trim().split(/\s+/).pop()?.replace(/k$/, '');
    return kbps ? (Number(kbps) * 1000) / 1e6 : undefined;
  } catch {
    return undefined;
  }
}

/** Node's own AES-256-GCM on 1 MiB buffers: the ceiling of a JavaScript shield on one core. */
function nodeGcm(): number {
  const key = randomBytes(32);
  const data = randomBytes(1024 * 1024);
  const { seconds } = time(() => {
    for (let i = 0; i < 256; i++) createCipheriv('aes-256-gcm', key, randomBytes(12)).update(data);
  });
  return (256 * 1.048576) / seconds;
}

/**
 * The runtime's tmpfs for the shielded tree at `enc`, mounted at `at` in this (private) mount namespace with
 * the options of the launch plan's own step; undefined where no namespace could be had.
 */
function runtimeTmpfs(enc: string, at: string): string | undefined {
  if (process.env['VEIL_BENCH_FSPF_NS'] !== '1') return undefined;
  const plan = launchPlan(
    {
      command: ['x'],
      environment: {},
      pwd: '/',
      injectionFiles: [],
      fspf: { path: join(enc, 'fs.fspf'), key: 'k', tag: 't' },
    },
    { secure: true, uid: 0, tmp: at },
  );
  const step = plan.find((s) => s.op === 'tmpfs' && s.path.endsWith('.veil-fspf-staging'));
  if (step?.op !== 'tmpfs') throw new Error('the launch plan has no tmpfs for the shield');
  mkdirSync(step.path, { recursive: true });
  const options = `mode=0755,${tmpfsOptions(step)}`;
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', step.path]);
  return `${step.path} (${options})`;
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'veil-bench-fspf-'));
  try {
    makeTree(join(root, 'src'), TOTAL_MIB);
    const enc = time(() => encryptTree(join(root, 'src'), join(root, 'enc')));
    // Flush the encrypted tree first: decryption measured while the kernel writes it back would measure the disk.
    execFileSync('sync');
    const mounted = runtimeTmpfs(join(root, 'enc'), join(root, 'mnt'));
    const runtime = mounted ? mounted.split(' ')[0]! : undefined;
    const shm = existsSync('/dev/shm') ? '/dev/shm' : root;
    const big = await compare(runtime ?? shm, join(root, 'enc'), enc.result, RUNS);
    const host = runtime ? await compare(shm, join(root, 'enc'), enc.result, RUNS) : undefined;
    const small: Array<{ mib: number; main: Run; workers: Run }> = [];
    for (const mib of SMALL_MIB.filter((m) => m < TOTAL_MIB)) {
      makeTree(join(root, `src${mib}`), mib);
      const shield = encryptTree(join(root, `src${mib}`), join(root, `enc${mib}`));
      small.push({ mib, ...(await compare(runtime ?? shm, join(root, `enc${mib}`), shield, Math.max(RUNS, 5))) });
    }
    const bound = opensslGcm();
    const node = nodeGcm();
    const mbs = (mib: number, s: number) => (mib * 1.048576) / s;
    const pct = (rate: number, of: number | undefined) => (of ? `${Math.round((100 * rate) / of)}%` : 'n/a');
    const line = (name: string, run: Run) => {
      const rate = mbs(TOTAL_MIB, run.seconds);
      return (
        `  ${name}: ${pct(rate, bound)} of openssl, ${pct(rate, node)} of node; ` +
        `${((1000 * run.cpu) / TOTAL_MIB).toFixed(2)} ms CPU/MiB on ${(run.cpu / run.seconds).toFixed(2)} cores ` +
        `(${run.threads ? `${run.threads} worker threads + main` : 'main thread'}); ${Math.round(rate)} MB/s`
      );
    };
    console.log(
      `veil file-system shield benchmark (${TOTAL_MIB} MiB tree, node ${process.version}, ${availableParallelism()} cores)`,
    );
    console.log(
      `  bounds, one core, same run: openssl speed -evp aes-256-gcm ${bound ? Math.round(bound) : 'unavailable'} MB/s; node's aes-256-gcm ${Math.round(node)} MB/s (1 MiB buffers)`,
    );
    console.log(
      `  decrypt (verify + write, median of ${RUNS}, interleaved) into ${mounted ? `the runtime's tmpfs: ${mounted}` : `${shm} (no private mount namespace here: not the runtime's tmpfs)`}:`,
    );
    console.log(line('main thread   ', big.main));
    console.log(line('worker threads', big.workers));
    console.log(`  workers ÷ main thread: ${(big.main.seconds / big.workers.seconds).toFixed(2)}× throughput`);
    if (host) {
      console.log(`  for comparison, into the host's ${shm} (4 KiB pages):`);
      console.log(line('main thread   ', host.main));
      console.log(line('worker threads', host.workers));
    }
    console.log(`  encrypt (one core): ${Math.round(mbs(TOTAL_MIB, enc.seconds))} MB/s`);
    console.log(`  smaller trees (median of ${Math.max(RUNS, 5)}): wall ms main thread / worker threads`);
    for (const s of small) {
      const ms = (run: Run) => (1000 * run.seconds).toFixed(1);
      const faster = s.workers.seconds < s.main.seconds ? 'workers faster' : 'main thread faster';
      console.log(`    ${String(s.mib).padStart(3)} MiB: ${ms(s.main)} / ${ms(s.workers)} — ${faster}`);
    }
    console.log(
      `  default (THREADS_FROM): ${Number.isFinite(THREADS_FROM) ? `worker threads from ${THREADS_FROM / 1024 / 1024} MiB of plaintext` : 'the main thread alone, at every size'}`,
    );
    const best = Math.max(mbs(TOTAL_MIB, big.main.seconds), mbs(TOTAL_MIB, big.workers.seconds));
    const cores = Math.min(2, availableParallelism());
    const met = bound !== undefined && best >= 0.5 * bound && TOTAL_MIB >= 256;
    console.log(
      `  goal: decrypt of a 256 MiB tree ≥ 50% of single-core openssl on two cores: ${pct(best, bound)} on ${cores} cores — ${bound ? (met ? 'met' : 'NOT met') : 'unknown (no openssl)'}`,
    );
  } finally {
    if (process.env['VEIL_BENCH_FSPF_NS'] === '1') spawnSync('umount', [join(root, 'mnt', '.veil-fspf-staging')]);
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * The runtime's tmpfs exists only in a private mount namespace: the bench runs itself in one (as root, or
 * mapped to root in a user namespace) and measures /dev/shm alone where none can be had.
 */
if (process.env['VEIL_BENCH_FSPF_NS'] === undefined) {
  const flags = process.getuid?.() === 0 ? [] : ['--map-root-user'];
  const self = fileURLToPath(import.meta.url);
  const child = spawnSync('unshare', [...flags, '--mount', '--propagation', 'private', process.execPath, self], {
    stdio: 'inherit',
    env: { ...process.env, VEIL_BENCH_FSPF_NS: '1' },
  });
  if (child.status === null || child.error) {
    console.log('  (no private mount namespace: measuring /dev/shm only)');
    process.env['VEIL_BENCH_FSPF_NS'] = '0';
    await main();
  } else process.exitCode = child.status;
} else await main();
