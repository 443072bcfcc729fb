import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { assembleImage, buildLayer, parseReference, pushImage, type LayerEntry } from '../images/index.js';
import { ROOT, run, startCas, tempDir, veil, type CasProcess } from './harness.js';
import { startRegistry, type RegistryProcess } from './registry.js';

const SECRET = 'TOP SECRET patient data, never in a layer';

/** A native image: dash with the libraries it links, a secret in /app, and an exec-form command. */
async function nativeLayer(): Promise<LayerEntry[]> {
  const libs = execFileSync('ldd', ['/bin/dash'], { encoding: 'utf8' })
    .split('\n')
    .flatMap((l) => {
      const m = /(\/\S+)\s+\(/.exec(l);
      return m ? [m[1]!] : [];
    });
  return [
    { type: 'file', path: '/bin/dash', mode: 0o755, data: readFileSync('/bin/dash') },
    ...libs.map((lib): LayerEntry => ({ type: 'file', path: lib, mode: 0o755, data: readFileSync(lib) })),
    { type: 'file', path: '/app/secret.txt', mode: 0o640, data: Buffer.from(`${SECRET}\n`) },
    { type: 'directory', path: '/proc', mode: 0o555 },
  ];
}

describe('veil sconify', () => {
  const dir = tempDir('veil-sconify-');
  const env = { VEIL_HOME: join(dir.path, 'home') };
  let registry: RegistryProcess;
  let cas: CasProcess;
  let sessionName: string;
  let to: string;

  before(async () => {
    registry = await startRegistry(dir.path);
    cas = await startCas(join(dir.path, 'cas'), dir.path);
    assert.equal((await veil(['cas', 'attest', cas.url, '-c', cas.fingerprint], env)).code, 0);
    const image = assembleImage(
      undefined,
      [await buildLayer(await nativeLayer())],
      (c) => ({
        ...c,
        Env: ['PATH=/bin', 'GREETING=hello'],
        WorkingDir: '/app',
        Cmd: ['/bin/dash', '-c', 'read line < /app/secret.txt; echo "$GREETING: $line"'],
      }),
      ['native test image'],
    );
    await pushImage(parseReference(`${registry.address}/native/app:1`), image);
    to = `${registry.address}/confidential/app:1`;
  });
  after(async () => {
    await registry?.stop();
    await cas?.stop();
    dir.cleanup();
  });

  /** The native image's shell, its /app directory encrypted, into `to`; the build goes under target/. */
  const sconifyApp = (to: string) => [
    ...['sconify', '--from', `${registry.address}/native/app:1`, '--to', to],
    ...['--binary', '/bin/dash', '--dir', '/app', '-t', join(dir.path, 'target')],
  ];

  it('prints NAMESPACE/SESSION after uploading a session that carries the image command, environment and pwd', async () => {
    const r = await veil(
      [
        ...sconifyApp(to),
        ...['--mode', 'debug', '--cas', cas.url, '--namespace', 'clinic', '--create-namespace', '--push-image'],
      ],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    sessionName = r.stdout.trim();
    assert.match(sessionName, /^clinic\/[A-Za-z0-9_.~-]+$/);
    const read = await veil(['session', 'read', sessionName, '--cas', cas.url], env);
    assert.equal(read.code, 0, read.stderr);
    assert.match(read.stdout, /GREETING: hello/);
    assert.match(read.stdout, /pwd: \/app/);
    assert.match(read.stdout, /fspf_path: \/opt\/veil\/shield\/fs\.fspf/);
    // Debug mode lists this host: its key signs the simulation evidence the container sends.
    const host = await veil(['host', 'id'], env);
    assert.ok(read.stdout.includes(`platforms:\n      - ${host.stdout.trim()}`), read.stdout);
  });

  it("renders the script's session-template.yml: --secrets, --injectedfiles, --heap, --session", async () => {
    const template = join(ROOT, 'testdata', 'scone', 'sconify', 'session-template.yml');
    const secretsFile = join(dir.path, 'secrets.yml');
    writeFileSync(secretsFile, '- name: api_password\n  kind: ascii\n  size: 16\n');
    const sessionFile = join(dir.path, 'rendered', 'session.yml');
    const r = await veil(
      [
        ...sconifyApp(`${registry.address}/confidential/tpl:1`),
        ...['--mode', 'debug', '--cas', cas.url],
        ...['--namespace', 'clinic', '--name', 'templated', '--template', template, '--session', sessionFile],
        ...['--secrets', secretsFile, "--injectedfiles=- {path: /etc/pw, content: '$$SCONE::api_password$$'}"],
        ...['--heap', '1G', '--stack', '4M', '--dlopen', '1'],
        ...['--env', 'EXTRA=yes', '--log', '3', '--command', "/bin/dash -c 'echo templated'"],
      ],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'clinic/templated\n');
    assert.match(r.stderr, /fspf_path \/fspf\/fs\.fspf is \/opt\/veil\/shield\/fs\.fspf in Veil's image/);
    const read = await veil(['session', 'read', 'clinic/templated', '--cas', cas.url], env);
    assert.equal(read.code, 0, read.stderr);
    for (const expected of [/SCONE_HEAP: 1G/, /SCONE_STACK: 4M/, /SCONE_ALLOW_DLOPEN: "1"/, /SCONE_LOG: "3"/])
      assert.match(read.stdout, expected);
    assert.match(read.stdout, /name: api_password/);
    assert.match(read.stdout, /path: \/etc\/pw/);
    assert.match(read.stdout, /GREETING: hello/);
    assert.match(read.stdout, /EXTRA: yes/);
    assert.match(read.stdout, /command: .*echo templated/);
    const written = readFileSync(sessionFile, 'utf8');
    assert.match(written, /fspf_key: \$SCONE_FSPF_KEY/);
    assert.doesNotMatch(written, /fspf_key: [0-9a-f]{64}/);
    const bad = await veil(['sconify', '--from', 'x', '--to', 'y', '--binary', 'z', '--base', 'alpine:3.10'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^veil sconify: --base is not supported by Veil/);
    const las = await veil(['sconify', '--from', 'x', '--to', 'y', '--binary', 'z', '--las', 'las:18766'], env);
    assert.match(las.stderr, /^veil sconify: --las is not supported by Veil/);
  });

  it('gives the same image digest when sconified again', async () => {
    const args = [...sconifyApp(to), '--dry-run'];
    const digest = async () => /@(sha256:[0-9a-f]{64})/.exec((await veil(args, env)).stderr)![1];
    assert.equal(await digest(), await digest());
  });

  it('keeps the rest of the image but no plaintext of the encrypted directory in any layer', async () => {
    const layout = join(dir.path, 'pulled');
    assert.equal(
      (await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${to}`, `oci:${layout}:1`])).code,
      0,
    );
    for (const blob of readdirSync(join(layout, 'blobs', 'sha256'))) {
      const bytes = readFileSync(join(layout, 'blobs', 'sha256', blob));
      const plain = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
      assert.ok(!plain.includes(SECRET), `blob ${blob} holds the secret`);
    }
    const r = await run('umoci', ['unpack', '--rootless', '--image', `${layout}:1`, join(dir.path, 'unpacked')]);
    assert.equal(r.code, 0, r.stderr);
    const rootfs = join(dir.path, 'unpacked', 'rootfs');
    assert.ok(
      existsSync(join(rootfs, 'bin', 'dash')) &&
        existsSync(join(rootfs, 'app')) &&
        !existsSync(join(rootfs, 'app', 'secret.txt')),
    );
    assert.ok(existsSync(join(rootfs, 'opt', 'veil', 'shield', 'fs.fspf')));
  });

  it('runs: the image attests to the CAS, its session decrypts the tree into memory, and the program reads it', {
    skip: process.getuid?.() !== 0 && 'needs root to chroot and mount',
  }, async () => {
    const rootfs = join(dir.path, 'unpacked', 'rootfs');
    const config = JSON.parse(
      (await run('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${to}`])).stdout,
    ) as { config: { Entrypoint: string[]; Cmd: string[] } };
    const container = [...config.config.Entrypoint, ...config.config.Cmd].map((a) => `'${a}'`).join(' ');
    // A container as a runtime makes one: a private mount namespace, /proc, and a memory volume at /app.
    // …and this host's key directory, which the session lists (a debug deployment mounts it from the node).
    const hostKeys = `mkdir -p ${rootfs}/veil-host && mount --bind ${join(env.VEIL_HOME, 'host')} ${rootfs}/veil-host`;
    const script = `mount -t tmpfs tmpfs ${rootfs}/app && mount -t proc proc ${rootfs}/proc && ${hostKeys} && exec chroot ${rootfs} ${container}`;
    // Started as a debug deployment starts it (the chart of a --mode debug mesh sets VEIL_EVIDENCE): no TEE here.
    const r = await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
      env: {
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
        VEIL_EVIDENCE: 'simulation',
        VEIL_HOST_KEY: '/veil-host/host-key.pem',
        SCONE_CONFIG_ID: `${sessionName}/service`,
        SCONE_CAS_ADDR: new URL(cas.url).host,
        VEIL_CAS_FINGERPRINT: cas.fingerprint,
      },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `hello: ${SECRET}\n`);
  });
});
