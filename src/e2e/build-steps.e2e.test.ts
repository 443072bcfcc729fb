import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, mkdirSync, rmSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { codeTreeDigest, simulationMeasurement } from '../attestation/index.js';
import { assembleImage, buildLayer, parseReference, pushImage, readImage, ImageLayout } from '../images/index.js';
import type { LayerEntry } from '../images/index.js';
import { RUNTIME_ROOT } from '../runtime/index.js';
import { run, tempDir, veil } from './harness.js';
import { startRegistry, type RegistryProcess } from './registry.js';

const PROGRAMS = ['/bin/dash', '/bin/mkdir', '/bin/cat', '/bin/cp', '/bin/rm', '/bin/pwd'];
/** Stands in for pip (the machine has none for Debian's Python): logs where it ran and the requirements it read. */
const STUB_PIP = `#!/bin/sh
[ "$1 $2 $3 $4" = "-m pip install --no-cache-dir" ] || exit 64
mkdir -p /usr/lib/veil-stub && { pwd; cat "$6"; } > /usr/lib/veil-stub/pip.log
`;

/** A base image from this machine's files: dash, a few coreutils with their libraries, a stub python3. */
async function baseLayer(): Promise<LayerEntry[]> {
  const libs = new Set<string>();
  for (const p of PROGRAMS)
    for (const m of execFileSync('ldd', [p], { encoding: 'utf8' }).matchAll(/(\/\S+) \(/g)) libs.add(m[1]!);
  return [
    ...PROGRAMS.map((p): LayerEntry => ({ type: 'file', path: `/usr${p}`, mode: 0o755, data: readFileSync(p) })),
    { type: 'symlink', path: '/usr/bin/sh', target: 'dash' },
    { type: 'file', path: '/usr/bin/python3', mode: 0o755, data: Buffer.from(STUB_PIP) },
    { type: 'file', path: '/opt/stub/python3', mode: 0o755, data: Buffer.from(`${STUB_PIP}# replaced\n`) },
    { type: 'symlink', path: '/bin', target: 'usr/bin' },
    { type: 'symlink', path: '/lib', target: 'usr/lib' },
    { type: 'symlink', path: '/lib64', target: 'usr/lib64' },
    ...[...libs].map(
      (l): LayerEntry => ({ type: 'file', path: `/usr${l.replace(/^\/usr/, '')}`, mode: 0o755, data: readFileSync(l) }),
    ),
  ];
}

const manifest = (registry: string, run: string[]) => `apiVersion: scone/5.8
kind: genservice
environment: {}
build:
  name: steps
  kind: python
  to: ${registry}/steps/app:1
  from: ${registry}/base/sh:1
  pwd: /app
  command: python3 /app/main.py
  copy: [main.py]
  requirements: requirements.txt
  run: ${JSON.stringify(run)}
`;
const STEPS = ['mkdir -p /opt/x && echo hi > /opt/x/f', 'cp /opt/stub/python3 /usr/bin/python3'];

/** build.run and requirements run by podman (its storage and configuration in a temporary directory). */
describe('build.run and requirements in a real engine', { skip: !hasPodman() && 'podman is not installed' }, () => {
  const dir = tempDir('veil-build-steps-');
  const storage = join(tmpdir(), `veil-podman-${randomBytes(6).toString('hex')}`);
  const engineEnv = {
    VEIL_CONTAINER_ENGINE: 'podman',
    VEIL_BUILD_NETWORK: 'none',
    CONTAINERS_STORAGE_CONF: join(dir.path, 'storage.conf'),
    // This sandbox refuses podman's default rlimits; containers.conf lowers them, as a user of such a host would.
    CONTAINERS_CONF: join(dir.path, 'containers.conf'),
  };
  let registry: RegistryProcess;
  before(async () => {
    mkdirSync(storage);
    writeFileSync(
      engineEnv.CONTAINERS_STORAGE_CONF,
      `[storage]\ndriver = "overlay"\ngraphroot = "${storage}/root"\nrunroot = "${storage}/run"\n`,
    );
    writeFileSync(
      engineEnv.CONTAINERS_CONF,
      '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n',
    );
    registry = await startRegistry(dir.path);
    const base = await buildLayer(await baseLayer());
    const image = assembleImage(undefined, [base], (c) => ({ ...c, Env: ['PATH=/usr/bin:/bin'] }), ['test base']);
    await pushImage(parseReference(`${registry.address}/base/sh:1`), image);
  });
  after(async () => {
    await run('podman', ['rm', '-a', '-f'], { env: { ...process.env, ...engineEnv } });
    // Not `system reset`: that would also remove the host's podman networks, which other tests may use.
    await run('podman', ['rmi', '-a', '-f'], { env: { ...process.env, ...engineEnv } });
    await registry?.stop();
    rmSync(storage, { recursive: true, force: true });
    dir.cleanup();
  });

  /** A checkout of the service: its own mtimes and umask. */
  const checkout = (name: string, steps: string[], mode = 0o644, mtime = 1_000_000) => {
    const src = join(dir.path, name);
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'service.yaml'), manifest(registry.address, steps));
    writeFileSync(join(src, 'main.py'), 'print("hello")\n');
    writeFileSync(join(src, 'requirements.txt'), '--no-index\nflask\n');
    chmodSync(join(src, 'main.py'), mode);
    for (const f of ['main.py', 'requirements.txt', 'service.yaml']) utimesSync(join(src, f), mtime, mtime);
    return src;
  };
  const apply = async (src: string, target: string, home = 'home', extra: NodeJS.ProcessEnv = {}) => {
    const env = { ...engineEnv, VEIL_HOME: join(dir.path, home), ...extra };
    const args = ['apply', '-f', join(src, 'service.yaml'), '-t', join(dir.path, target), '--no-push'];
    return veil(args, env);
  };
  const digestOf = (stdout: string) => /^image \S+@(sha256:[0-9a-f]{64})/m.exec(stdout)?.[1];

  it('runs the steps in the base image: their files are a layer, measured, and seen by a run', async () => {
    const r = await apply(checkout('src-a', STEPS), 'target-a');
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /not executed/);
    const layout = join(dir.path, 'target-a', 'oci', 'steps');
    const image = readImage(new ImageLayout(layout), '1');
    const label = image.config.config.Labels!['dev.veil.measurement'];
    const replaced = Buffer.from(`${STUB_PIP}# replaced\n`);
    assert.equal(label, simulationMeasurement(codeTreeDigest(RUNTIME_ROOT), replaced), 'the program after the steps');
    assert.equal(image.layers.length, 4, 'base, steps, runtime, shield');
    // podman names an oci: image by its path, which must be lower-case.
    const copy = join(storage, `layout-${randomBytes(4).toString('hex')}`);
    cpSync(layout, copy, { recursive: true });
    const seen = await run('podman', podmanRun(copy, 'cat /opt/x/f /usr/lib/veil-stub/pip.log'), {
      env: { ...process.env, ...engineEnv },
    });
    assert.equal(seen.code, 0, seen.stderr);
    assert.equal(seen.stdout, 'hi\n/\n--no-index\nflask\n', 'pip read the requirements on its stdin');
  });

  it('gives build.run nothing of the working directory (run from a home holding VEIL_HOME)', async (t) => {
    const src = checkout('src-i', [
      'mkdir -p /srv && { cat /.veil-build-context/.veil/shield-keys/build-secret /.veil-build-context/planted; cat; }' +
        ' > /srv/leak 2>/dev/null; echo tried >> /srv/leak',
    ]);
    const planted = `planted-${randomBytes(8).toString('hex')}`;
    writeFileSync(join(src, 'planted'), planted);
    const r = await apply(src, 'target-i', 'src-i/.veil');
    assert.equal(r.code, 0, r.stderr);
    const secret = readFileSync(join(src, '.veil', 'shield-keys', 'build-secret'), 'utf8');
    const layout = join(dir.path, 'target-i', 'oci', 'steps');
    const copy = join(storage, `layout-${randomBytes(4).toString('hex')}`);
    cpSync(layout, copy, { recursive: true });
    const seen = await run('podman', podmanRun(copy, 'cat /srv/leak'), { env: { ...process.env, ...engineEnv } });
    assert.equal(seen.code, 0, seen.stderr);
    assert.equal(seen.stdout, 'tried\n', 'no build secret, planted file or requirements reached the step');
    assert.ok(secret.length > 0 && !seen.stdout.includes(secret));
    t.diagnostic(`build.run read ${seen.stdout.length - 'tried\n'.length} bytes of the working directory and stdin`);
  });

  it('gives the same digests from two checkouts in two fresh target directories', async (t) => {
    const first = await apply(checkout('src-b', STEPS, 0o600, 5), 'target-b');
    const second = await apply(checkout('src-c', STEPS, 0o664, 9_000_000), 'target-c');
    assert.equal(first.code, 0, first.stderr);
    assert.equal(second.code, 0, second.stderr);
    assert.ok(digestOf(first.stdout));
    assert.equal(digestOf(second.stdout), digestOf(first.stdout));
    const fresh = await apply(checkout('src-d', STEPS), 'target-d', 'other-home');
    assert.equal(fresh.code, 0, fresh.stderr);
    const layers = (target: string) =>
      readImage(new ImageLayout(join(dir.path, target, 'oci', 'steps')), '1').layers.map((l) => l.descriptor.digest);
    const [b, d] = [layers('target-b'), layers('target-d')];
    assert.deepEqual(d.slice(0, 3), b.slice(0, 3), 'base, steps and runtime layers do not depend on VEIL_HOME');
    assert.notEqual(d[3], b[3], 'the shield layer is under this VEIL_HOME’s key');
    t.diagnostic(
      `same image digest from 2 fresh targets: ${digestOf(first.stdout)}; ${b.length - 1} of ${b.length} layers equal with a fresh VEIL_HOME`,
    );
  });

  it('names the failing step, its exit code and the end of its output', async () => {
    const r = await apply(checkout('src-e', ['echo one', 'echo broken >&2; exit 7', 'echo never']), 'target-e');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /build\.run\[1\] exited with 7: "echo broken >&2; exit 7"/);
    assert.match(r.stderr, /broken/);
    assert.match(r.stderr, /IMAGE_BUILD_STEP/);
    assert.doesNotMatch(r.stderr, /never/);
  });

  it('refuses steps that write where the decrypted application goes', async () => {
    const r = await apply(checkout('src-f', ['mkdir -p /app/cache']), 'target-f');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /changed \/app, \/app\/cache, under \/opt\/veil or \/app/);
    assert.match(r.stderr, /IMAGE_BUILD_CHANGES/);
    // A step that fetched a byte-identical copy (here written out by the step itself) is caught by accident's guard.
    const copied = await apply(
      checkout('src-h', ['mkdir -p /srv && echo \'print("hello")\' > /srv/main.py']),
      'target-h',
    );
    assert.equal(copied.code, 1);
    assert.match(copied.stderr, /wrote \/srv\/main\.py, which holds the plaintext of build\.copy's main\.py/);
  });

  it('without an engine, builds and warns that the steps were not run, saying how to get one', async () => {
    const r = await apply(checkout('src-g', STEPS), 'target-g', 'home', { VEIL_CONTAINER_ENGINE: 'none' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /build\.run and requirements are not executed: no container engine/);
    assert.match(r.stderr, /apt-get install podman runc/);
    const image = readImage(new ImageLayout(join(dir.path, 'target-g', 'oci', 'steps')), '1');
    assert.equal(image.layers.length, 3, 'base, runtime, shield');
  });
});

function podmanRun(layout: string, script: string): string[] {
  return ['run', '--rm', '--network', 'none', '--entrypoint', '/bin/sh', `oci:${layout}:1`, '-c', script];
}

function hasPodman(): boolean {
  try {
    execFileSync('podman', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
