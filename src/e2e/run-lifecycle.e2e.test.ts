import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { descendants } from '../mesh/procfs.js';
import {
  ROOT,
  VEIL_BIN,
  alive,
  commandLine,
  curl,
  opensslIdentity,
  run,
  simulationHost,
  startCas,
  tempDir,
  veil,
  waitFor,
  type CasProcess,
} from './harness.js';

/**
 * kill -9 of `veil run`: no handler of it runs, only the kernel's parent-death signal ends its program. Both
 * ways the runtime starts a program are killed for real: as root (a mount namespace) and as a normal user
 * (a user namespace first, where the kernel could clear the request if it counted as a privilege change).
 */
describe('veil run: its program dies with it, even by kill -9', async () => {
  const rootless = await rootlessPossible();
  const dir = tempDir('veil-run-life-');
  let cas: CasProcess;
  let env: Record<string, string>;
  const started: ChildProcess[] = [];
  const programs: number[] = [];
  // Each user signs its simulation evidence with its own host key; the session lists both hosts.
  let nobodyKey: string | undefined;
  let nobodyDir: string | undefined;

  before(async () => {
    cas = await startCas(join(dir.path, 'data'), dir.path);
    const me = await opensslIdentity(dir.path, 'me');
    const measurement = (await veil(['measure', 'sh'], {})).stdout.trim();
    const host = await simulationHost(dir.path);
    const platforms = [host.id];
    if (rootless) {
      nobodyDir = mkdtempSync(join(tmpdir(), 'veil-run-life-host-'));
      const nobody = Number((await run('id', ['-u', 'nobody'])).stdout.trim());
      chownSync(nobodyDir, nobody, nobody);
      nobodyKey = join(nobodyDir, 'host-key.pem');
      const line = `cd ${ROOT} && env -i VEIL_HOST_KEY=${nobodyKey} PATH=/usr/bin:/bin ${process.execPath} bin/veil.js host id`;
      const id = await run('su', ['nobody', '-s', '/bin/sh', '-c', line]);
      assert.equal(id.code, 0, id.stderr);
      platforms.push(id.stdout.trim());
    }
    const session = [
      'name: life',
      'services:',
      '  - name: sh',
      `    mrenclaves: [${measurement}]`,
      `    platforms: [${platforms.join(', ')}]`,
      '    command: [sh, -c, "exec sleep 60"]',
      '    pwd: /',
      'security: {attestation: {mode: none, tolerate: [debug-mode]}}',
      '',
    ].join('\n');
    assert.equal((await curl(cas, `${cas.url}/v1/sessions`, { identity: me, data: session })).status, 201);
    env = {
      SCONE_CONFIG_ID: 'life/sh',
      SCONE_CAS_ADDR: new URL(cas.url).host,
      VEIL_CAS_FINGERPRINT: cas.fingerprint,
      PATH: '/usr/bin:/bin',
      ...host.env,
    };
  });
  after(async () => {
    for (const child of started) if (child.exitCode === null) child.kill('SIGKILL');
    for (const pid of programs) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await cas?.stop();
    dir.cleanup();
    if (nobodyDir) rmSync(nobodyDir, { recursive: true, force: true });
  });

  /** Starts `starter`, waits for veil run's program (sleep), kills veil run with SIGKILL, polls for the program. */
  const killRuntime = async (starter: ChildProcess, how: string) => {
    started.push(starter);
    let runtime: number | undefined;
    let program: number | undefined;
    await waitFor(
      () => {
        const tree = descendants(starter.pid!);
        runtime = tree.find((p) => commandLine(p).startsWith(`${process.execPath} `)); // not su, whose line names it too
        program = runtime && descendants(runtime).find((p) => commandLine(p).startsWith('sleep'));
        return program !== undefined || starter.exitCode !== null;
      },
      30_000,
      () => `${how}: the program did not start`,
    );
    assert.ok(program !== undefined, `${how}: veil run ended early`);
    programs.push(program);
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${program}/status`, 'utf8'))![1];
    process.kill(runtime!, 'SIGKILL');
    const t0 = Date.now();
    await waitFor(
      () => !alive(program!),
      2000,
      () => `${how}: the program (${program}) runs 2 s after veil run died`,
    );
    const ms = Date.now() - t0;
    console.log(`${how}: kill -9 of veil run (pid ${runtime}); its program (${program}, uid ${uid}) gone in ${ms} ms`);
  };

  it('as root: a private mount namespace', async () => {
    const child = spawn(process.execPath, [VEIL_BIN, 'run', '--mode', 'debug', '--', 'sh'], { env, stdio: 'ignore' });
    await killRuntime(child, 'root');
  });

  const skip = !rootless && 'needs root to become nobody, and unprivileged user namespaces';
  it('as a normal user: a user namespace, then the mount namespace', { skip }, async () => {
    const vars = Object.entries({ ...env, VEIL_HOST_KEY: nobodyKey! })
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    const line = `cd ${ROOT} && exec env -i ${vars} ${process.execPath} bin/veil.js run --mode debug -- sh`;
    const child = spawn('su', ['nobody', '-s', '/bin/sh', '-c', line], { stdio: 'ignore' });
    await killRuntime(child, 'nobody');
  });
});

async function rootlessPossible(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  return (await run('su', ['nobody', '-s', '/bin/sh', '-c', 'unshare --user --map-root-user --mount true'])).code === 0;
}
