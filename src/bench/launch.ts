/**
 * `npm run bench:launch`: time from starting `veil run` to the program's first output (attestation included),
 * beside starting the same program directly; medians of repeated runs.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { startCas } from '../cas/server.js';
import { loadHostKey, openProgram } from '../runtime/index.js';
import { selfSignedIdentity } from '../secrets/index.js';

const RUNS = Number(process.env['BENCH_RUNS'] ?? 15);
const VEIL = fileURLToPath(new URL('../../bin/veil.js', import.meta.url));

function firstOutput(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.once('data', () => resolve(Number(process.hrtime.bigint() - started) / 1e6));
    child.on('exit', (code) => code !== 0 && reject(new Error(`${cmd} failed: ${err}`)));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'veil-bench-launch-'));
  const cas = await startCas({ host: '127.0.0.1', port: 0, dataDir: join(dir, 'data') });
  try {
    const owner = selfSignedIdentity({
      commonName: 'bench',
      notBefore: new Date(Date.now() - 6e4),
      notAfter: new Date(Date.now() + 36e5),
    });
    const measurement = openProgram('sh', process.env['PATH'] ?? '').measurement;
    // The runtime signs with this host key (VEIL_HOST_KEY below); the session lists its ID.
    const hostKey = join(dir, 'host', 'host-key.pem');
    const host = await loadHostKey(hostKey);
    const session =
      `name: bench\nservices:\n  - name: sh\n    mrenclaves: [${measurement}]\n` +
      `    platforms: [${host.id}]\n    command: [sh, -c, "echo hi"]\n    pwd: /\nsecurity: {attestation: {mode: none}}\n`;
    const agent = new Agent({ connect: { ca: cas.identity.caCertPem, cert: owner.certPem, key: owner.keyPem } });
    await (await request(`${cas.url}/v1/sessions`, { method: 'POST', body: session, dispatcher: agent })).body.text();
    await agent.close();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      SCONE_CONFIG_ID: 'bench/sh',
      SCONE_CAS_ADDR: `127.0.0.1:${cas.port}`,
      VEIL_CAS_FINGERPRINT: cas.identity.fingerprint,
      VEIL_HOST_KEY: hostKey,
    };
    // NODE_EXTRA_CA_CERTS makes Node parse that bundle at start, before any of Veil's code runs (≈ 50 ms for
    // Debian's); Veil never uses it. Measured without it (as `veil up` starts services), and with it if set.
    const extraCa = env['NODE_EXTRA_CA_CERTS'];
    delete env['NODE_EXTRA_CA_CERTS'];
    const veil: number[] = [];
    const direct: number[] = [];
    const withExtraCa: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      veil.push(await firstOutput(process.execPath, [VEIL, 'run', '--mode', 'debug', '--', 'sh'], env));
      direct.push(await firstOutput('sh', ['-c', 'echo hi'], env));
      if (extraCa)
        withExtraCa.push(
          await firstOutput(process.execPath, [VEIL, 'run', '--mode', 'debug', '--', 'sh'], {
            ...env,
            NODE_EXTRA_CA_CERTS: extraCa,
          }),
        );
    }
    const [v, d] = [median(veil), median(direct)];
    console.log(`veil launch benchmark (median of ${RUNS} runs, node ${process.version})`);
    console.log(`  veil run -- sh (attestation, namespace, first output): ${v.toFixed(1)} ms`);
    console.log(`  sh directly:                                         ${d.toFixed(1)} ms`);
    console.log(`  added by veil run:                                   ${(v - d).toFixed(1)} ms   target ≤ 100 ms`);
    if (extraCa)
      console.log(
        `  the same with NODE_EXTRA_CA_CERTS set (node loads it at start): ${(median(withExtraCa) - d).toFixed(1)} ms added`,
      );
  } finally {
    await cas.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
