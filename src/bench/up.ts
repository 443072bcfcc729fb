/**
 * `npm run bench:up`: from starting `veil up` on the example mesh (fresh target directory: bundles built,
 * code encrypted, sessions generated and uploaded, Redis and Flask attested and started) to the first
 * successful POST /patient request, verified with the CA from the CAS. Median of 3 runs.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { execFile } from 'node:child_process';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const exec = promisify(execFile);

async function once(): Promise<{ upJson: number; firstRequest: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'veil-bench-up-'));
  const target = join(dir, 'target');
  const started = process.hrtime.bigint();
  const since = () => Number(process.hrtime.bigint() - started) / 1e9;
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bin', 'veil.js'), 'up', '-f', join(ROOT, 'examples', 'flask-redis', 'mesh.yaml'), '-t', target],
    {
      env: { ...process.env, VEIL_HOME: join(dir, 'home') },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  try {
    while (!existsSync(join(target, 'up.json'))) {
      if (child.exitCode !== null) throw new Error('veil up ended before the mesh was up');
      await new Promise((r) => setTimeout(r, 10));
    }
    const upJson = since();
    const info = JSON.parse(readFileSync(join(target, 'up.json'), 'utf8')) as {
      ca_file: string;
      services: Record<string, { address: string; port: number }>;
    };
    const { address, port } = info.services['flask']!;
    const { stdout } = await exec('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--cacert',
      info.ca_file,
      '--resolve',
      `api:${port}:${address}`,
      '-X',
      'POST',
      `https://api:${port}/patient/bench`,
      '-d',
      'fname=a&lname=b&address=c&city=d&state=e&ssn=f&email=g&dob=h&contactphone=i&drugallergies=j&preexistingconditions=k&dateadmitted=l&insurancedetails=m',
    ]);
    if (stdout !== '200') throw new Error(`POST /patient answered ${stdout}`);
    return { upJson, firstRequest: since() };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const runs: Array<{ upJson: number; firstRequest: number }> = [];
  for (let i = 0; i < RUNS; i++) runs.push(await once());
  console.log(
    `veil up benchmark: the example mesh from nothing to its first request (median of ${RUNS}, node ${process.version})`,
  );
  console.log(`  mesh up (up.json written):      ${median(runs.map((r) => r.upJson)).toFixed(2)} s`);
  console.log(
    `  first successful POST /patient: ${median(runs.map((r) => r.firstRequest)).toFixed(2)} s   target ≤ 3 s`,
  );
  console.log("  (SCONE's tutorial builds and pushes images and installs a Helm chart first: minutes)");
}

await main();
