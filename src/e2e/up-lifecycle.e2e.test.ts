import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freeLoopbackAddresses } from '../mesh/addresses.js';
import { descendants } from '../mesh/procfs.js';
import { ROOT, VEIL_BIN, alive, commandLine, tempDir, waitFor } from './harness.js';

/**
 * What ends the processes `veil up` starts, with real processes: signals to its process group (as a terminal or a
 * supervisor sends them), and kill -9 of veil up or of a veil run, where only the kernel's parent-death signal
 * helps. The mesh is the smallest that starts a service: the example's Redis alone, on an address picked here
 * so that every run uses the same address and port.
 */
describe('veil up: every process it started ends when it ends', () => {
  const dir = tempDir('veil-up-life-');
  const address = freeLoopbackAddresses(1)[0]!;
  const meshFile = writeMesh(join(dir.path, 'mesh'), address);
  const target = join(dir.path, 'target');
  const env = { ...process.env, VEIL_HOME: join(dir.path, 'home') };
  const everyPid = new Set<number>();

  after(() => {
    for (const pid of everyPid) if (alive(pid)) process.kill(pid, 'SIGKILL');
    dir.cleanup();
  });

  /** veil up as the leader of its own process group (as `make demo` is in a terminal). */
  const start = () => {
    rmSync(join(target, 'up.json'), { force: true });
    const args = [VEIL_BIN, 'up', '-f', meshFile, '-t', target];
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    return { child, exited, output: () => output };
  };
  const startUp = async () => {
    const up = start();
    const done = () => existsSync(join(target, 'up.json')) || up.child.exitCode !== null;
    await waitFor(done, 60_000, () => `veil up did not come up:\n${up.output()}`);
    assert.ok(existsSync(join(target, 'up.json')), `veil up ended:\n${up.output()}`);
    const tree = processTree(up.child);
    for (const p of tree) everyPid.add(p.pid);
    return { ...up, tree };
  };
  const processTree = (child: ChildProcess) => descendants(child.pid!).map((pid) => ({ pid, cmd: commandLine(pid) }));

  it('SIGTERM to the process group, twice (a shell trap): exit 143, nothing remains, the port is free', async () => {
    const up = await startUp();
    assert.ok(
      up.tree.some((p) => p.cmd.startsWith('redis-server')),
      `redis-server runs: ${JSON.stringify(up.tree)}`,
    );
    assert.ok(
      up.tree.some((p) => p.cmd.includes(' run ')),
      'veil run runs',
    );
    process.kill(-up.child.pid!, 'SIGTERM');
    // The second one once the first is being handled (two at once are one pending signal to the kernel).
    await waitFor(
      () => /SIGTERM: stopping the mesh/.test(up.output()),
      10_000,
      () => `no stop:\n${up.output()}`,
    );
    signal(up.child.pid!, 'SIGTERM');
    assert.equal(await up.exited, 143, up.output());
    const left = up.tree.filter((p) => alive(p.pid));
    const names = up.tree.map((p) => p.cmd.split(' ')[0]).join(', ');
    console.log(`SIGTERM: ${up.tree.length} processes before (${names}), ${left.length} after`);
    assert.deepEqual(left, [], 'veil up waited for every service before it exited');
    assert.ok(await bindable(address, 6379), `${address}:6379 is free again`);
  });

  it('a second veil up on the same address and port comes up; SIGHUP (terminal closed): exit 129', async () => {
    const up = await startUp();
    const info = JSON.parse(readFileSync(join(target, 'up.json'), 'utf8')) as { services: Record<string, unknown> };
    assert.deepEqual(info.services['redis'], { address, port: 6379, names: ['redis'] });
    process.kill(-up.child.pid!, 'SIGHUP');
    assert.equal(await up.exited, 129, up.output());
    assert.deepEqual(
      up.tree.filter((p) => alive(p.pid)),
      [],
    );
  });

  it('SIGINT while the mesh comes up stops what was started: exit 130, nothing remains', async () => {
    const up = start();
    const started = () => descendants(up.child.pid!).length > 1 || up.child.exitCode !== null;
    await waitFor(started, 60_000, () => `no service started:\n${up.output()}`);
    const tree = processTree(up.child);
    for (const p of tree) everyPid.add(p.pid);
    const wasUp = existsSync(join(target, 'up.json'));
    process.kill(-up.child.pid!, 'SIGINT');
    assert.equal(await up.exited, 130, up.output());
    const left = tree.filter((p) => alive(p.pid)).length;
    console.log(`SIGINT ${wasUp ? 'after' : 'while'} the mesh came up, with ${tree.length} processes: ${left} left`);
    assert.deepEqual(
      tree.filter((p) => alive(p.pid)),
      [],
    );
  });

  it('kill -9 of veil up: the kernel ends its veil run and redis-server', async () => {
    const up = await startUp();
    const services = up.tree.filter((p) => p.pid !== up.child.pid);
    up.child.kill('SIGKILL');
    const ms = await untilGone(
      services.map((p) => p.pid),
      2000,
    );
    console.log(`kill -9 of veil up: ${services.map((p) => p.cmd.split(' ')[0]).join(', ')} gone after ${ms} ms`);
    assert.ok(await bindable(address, 6379), `${address}:6379 is free again`);
  });

  it("an earlier run's up.json is gone even when veil up fails before its CAS starts (an unusable host key)", async () => {
    // Left by a veil up that was killed outright: a script waiting for the next one must not take it as ready.
    mkdirSync(target, { recursive: true });
    writeFileSync(join(target, 'up.json'), '{"cas_url": "https://127.0.0.1:1"}\n');
    const keyDir = join(dir.path, 'open-key');
    mkdirSync(keyDir, { mode: 0o755 });
    chmodSync(keyDir, 0o755);
    const args = [VEIL_BIN, 'up', '-f', meshFile, '-t', target];
    const child = spawn(process.execPath, args, {
      env: { ...env, VEIL_HOST_KEY: join(keyDir, 'host-key.pem') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    assert.notEqual(code, 0, output);
    assert.match(output, /host key/, 'it failed on the host key, before starting a CAS');
    assert.equal(existsSync(join(target, 'up.json')), false, 'the stale up.json was removed first of all');
  });

  it('kill -9 of a veil run: its program dies, and veil up stops the mesh (exit 1)', async () => {
    const up = await startUp();
    const run = up.tree.find((p) => p.cmd.includes(' run '))!;
    const redis = up.tree.find((p) => p.cmd.startsWith('redis-server'))!;
    process.kill(run.pid, 'SIGKILL');
    const ms = await untilGone([redis.pid], 2000);
    console.log(`kill -9 of veil run: redis-server (pid ${redis.pid}) gone after ${ms} ms`);
    assert.equal(await up.exited, 1, up.output());
    assert.match(up.output(), /veil up: redis ended \(killed by SIGKILL\); stopping the mesh/);
    assert.deepEqual(
      up.tree.filter((p) => alive(p.pid)),
      [],
    );
  });
});

/** The example's Redis as a mesh of one, pinned to `address` (the mesh env may set a service's {{address}}). */
function writeMesh(dir: string, address: string): string {
  mkdirSync(join(dir, 'redis'), { recursive: true });
  copyFileSync(join(ROOT, 'examples', 'flask-redis', 'redis', 'service.yaml'), join(dir, 'redis', 'service.yaml'));
  const mesh = [
    'apiVersion: scone/5.8',
    'kind: mesh',
    'cas:',
    '  - {name: cas, alias: [image, security, access, attestation], cas_url: "localhost:8081", mode: Upload}',
    'policy: {namespace: lifecycle, tolerate: "hyperthreading, outdated-tcb", ignore_advisories: "*"}',
    'env:',
    '  - service: redis',
    `    env: [{name: address, value: "${address}"}]`,
    'services:',
    '  - {name: redis, image: "veil/redis:7"}',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'mesh.yaml'), mesh);
  return join(dir, 'mesh.yaml');
}

/** Polls /proc until none of `pids` is alive; the milliseconds it took, or a failure after `ms`. */
async function untilGone(pids: number[], ms: number): Promise<number> {
  const started = Date.now();
  const left = () =>
    pids
      .filter(alive)
      .map((p) => `${p} ${commandLine(p)}`)
      .join('; ');
  await waitFor(
    () => pids.every((p) => !alive(p)),
    ms,
    () => `still running after ${ms} ms: ${left()}`,
  );
  return Date.now() - started;
}

/** Tolerates a process that ended (and was reaped) meanwhile. */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

function bindable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
