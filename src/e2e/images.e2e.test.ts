import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { assembleImage, buildLayer, parseReference, pushImage } from '../images/index.js';
import { ROOT, run, tempDir, veil } from './harness.js';
import { startRegistry, type RegistryProcess } from './registry.js';

/** `veil apply -f service.yaml` building an image, checked with skopeo and umoci against a real registry. */
describe('service images', () => {
  const dir = tempDir('veil-images-');
  const env = { VEIL_HOME: join(dir.path, 'home') };
  let registry: RegistryProcess;
  let image: string;
  const code = readFileSync(join(ROOT, 'examples', 'flask-redis', 'flask', 'rest_api.py'));

  before(async () => {
    registry = await startRegistry(dir.path);
    // A small base image, pushed first: Python's binary behind two symbolic links, as Debian lays it out.
    const base = await buildLayer([
      { type: 'file', path: '/usr/bin/python3.11', mode: 0o755, data: readFileSync('/usr/bin/python3.11') },
      { type: 'symlink', path: '/usr/bin/python3', target: 'python3.11' },
      { type: 'symlink', path: '/bin', target: 'usr/bin' },
    ]);
    await pushImage(
      parseReference(`${registry.address}/base/python:1`),
      assembleImage(undefined, [base], (c) => ({ ...c, Env: ['PATH=/bin'] }), ['test base']),
    );
    const redisBase = await buildLayer([
      { type: 'file', path: '/usr/bin/redis-server', mode: 0o755, data: readFileSync('/usr/bin/redis-server') },
    ]);
    await pushImage(
      parseReference(`${registry.address}/base/redis:1`),
      assembleImage(undefined, [redisBase], (c) => ({ ...c, Env: ['PATH=/usr/bin'] }), ['test base']),
    );
    const app = join(dir.path, 'app');
    mkdirSync(app);
    copyFileSync(join(ROOT, 'examples', 'flask-redis', 'flask', 'rest_api.py'), join(app, 'rest_api.py'));
    image = `${registry.address}/patients/api:1`;
    const manifest = readFileSync(join(ROOT, 'examples', 'flask-redis', 'flask', 'service.yaml'), 'utf8').replace(
      '  to: veil/python_flask_redis:latest',
      `  to: ${image}\n  from: ${registry.address}/base/python:1`,
    );
    writeFileSync(join(app, 'service.yaml'), manifest);
  });
  after(async () => {
    await registry?.stop();
    dir.cleanup();
  });

  const apply = async () => {
    const r = await veil(['apply', '-f', join(dir.path, 'app', 'service.yaml'), '-t', join(dir.path, 'target')], env);
    assert.equal(r.code, 0, r.stderr);
    return /^image \S+@(sha256:[0-9a-f]{64})/m.exec(r.stdout)![1]!;
  };

  it('pushes an image whose entrypoint is the runtime and whose config holds no secret', async () => {
    const digest = await apply();
    const inspect = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${image}`]);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.equal(JSON.parse(inspect.stdout).Digest, digest);
    const config = JSON.parse(
      (await run('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${image}`])).stdout,
    ) as { config: { Entrypoint: string[]; Cmd: string[]; Labels: Record<string, string>; Env: string[] } };
    assert.deepEqual(config.config.Entrypoint.slice(-4), ['/opt/veil/runtime/bin/veil.js', 'run', '--container', '--']);
    assert.deepEqual(config.config.Cmd, ['python3']);
    const bundle = JSON.parse(readFileSync(join(dir.path, 'target', 'services', 'flask', 'bundle.json'), 'utf8')) as {
      built: { measurement: string };
    };
    assert.equal(config.config.Labels['dev.veil.measurement'], bundle.built.measurement);
    assert.deepEqual(config.config.Env, ['PATH=/bin']);
  });

  it('gives the same digests when built again', async () => {
    const first = await apply();
    assert.equal(await apply(), first);
  });

  it('has no plaintext of the application, nor its key, in any layer (unpacked with umoci)', async () => {
    const layout = join(dir.path, 'pulled');
    assert.equal(
      (await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${image}`, `oci:${layout}:1`])).code,
      0,
    );
    const unpacked = join(dir.path, 'unpacked');
    const r = await run('umoci', ['unpack', '--rootless', '--image', `${layout}:1`, unpacked]);
    assert.equal(r.code, 0, r.stderr);
    const rootfs = join(unpacked, 'rootfs');
    assert.ok(existsSync(join(rootfs, 'opt', 'veil', 'runtime', 'bin', 'node')));
    assert.ok(existsSync(join(rootfs, 'opt', 'veil', 'shield', 'app', 'fs.fspf')));
    const keys = readdirSync(join(env.VEIL_HOME, 'shield-keys')).map((f) =>
      Buffer.from(readFileSync(join(env.VEIL_HOME, 'shield-keys', f), 'utf8').trim()),
    );
    const needles = [code.subarray(0, 64), Buffer.from('def post_patient'), ...keys];
    for (const blob of readdirSync(join(layout, 'blobs', 'sha256'))) {
      const bytes = readFileSync(join(layout, 'blobs', 'sha256', blob));
      const plain = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
      for (const needle of needles) assert.ok(!plain.includes(needle), `blob ${blob} holds plaintext it must not`);
    }
    for (const file of filesUnder(join(rootfs, 'opt', 'veil', 'shield')))
      for (const needle of needles) assert.ok(!readFileSync(file).includes(needle));
  });

  it('turns the mesh of images into sessions for the images and a chart whose manifests validate', async () => {
    const redis = join(dir.path, 'redis');
    mkdirSync(redis);
    writeFileSync(
      join(redis, 'service.yaml'),
      readFileSync(join(ROOT, 'examples', 'flask-redis', 'redis', 'service.yaml'), 'utf8').replace(
        '  to: veil/redis:7',
        `  to: ${registry.address}/patients/redis:7\n  from: ${registry.address}/base/redis:1`,
      ),
    );
    assert.equal(
      (await veil(['apply', '-f', join(redis, 'service.yaml'), '-t', join(dir.path, 'target')], env)).code,
      0,
    );
    const mesh = join(dir.path, 'mesh.yaml');
    writeFileSync(
      mesh,
      readFileSync(join(ROOT, 'examples', 'flask-redis', 'mesh.yaml'), 'utf8')
        .replace('veil/python_flask_redis:latest', image)
        .replace('veil/redis:7', `${registry.address}/patients/redis:7`),
    );
    const r = await veil(
      ['apply', '-f', mesh, '-t', join(dir.path, 'target'), '--dry-run', '-o', 'yaml', '--release', 'demo'],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sessions for the images/);
    const policy = readFileSync(join(dir.path, 'target', 'policies', 'patient-records', 'flask.yaml'), 'utf8');
    const label = JSON.parse((await run('skopeo', ['inspect', '--tls-verify=false', `docker://${image}`])).stdout)
      .Labels['dev.veil.measurement'] as string;
    assert.match(policy, new RegExp(`mrenclaves:\\n\\s+- ${label}`));
    assert.match(policy, /fspf_path: \/opt\/veil\/shield\/app\/fs\.fspf/);
    assert.match(policy, /pwd: \/app\n/);
    const { Deployment } = await import('kubernetes-models/apps/v1');
    const { Service } = await import('kubernetes-models/v1');
    const { parseAllDocuments } = await import('yaml');
    const docs = ['flask', 'redis'].flatMap((n) =>
      parseAllDocuments(readFileSync(join(dir.path, 'target', 'manifests', `${n}.yaml`), 'utf8')).map(
        (d) => d.toJS() as { kind: string; metadata: { name: string }; spec: unknown },
      ),
    );
    for (const doc of docs)
      (doc.kind === 'Deployment' ? new Deployment(doc as never) : new Service(doc as never)).validate();
    assert.deepEqual(
      docs.map((d) => `${d.kind}/${d.metadata.name}`),
      [
        'Deployment/demo-flask',
        'Service/demo-flask',
        'Service/flask',
        'Service/api',
        'Deployment/demo-redis',
        'Service/demo-redis',
        'Service/redis',
      ],
    );
    const deployment = docs[0]!.spec as {
      template: { spec: { containers: Array<{ image: string; volumeMounts: Array<{ mountPath: string }> }> } };
    };
    const flask = deployment.template.spec.containers[0]!;
    assert.match(flask.image, new RegExp(`^${image.replace(/[.]/g, '\\.')}@sha256:[0-9a-f]{64}$`));
    assert.deepEqual(
      flask.volumeMounts.map((m) => m.mountPath),
      ['/app', '/tls'],
    );
    assert.ok(existsSync(join(dir.path, 'target', 'helm', 'Chart.yaml')));
  });

  it('runs its own runtime inside the image, which measures the program as the label says', {
    skip: process.getuid?.() !== 0 && 'chroot needs root',
  }, async () => {
    const rootfs = join(dir.path, 'unpacked', 'rootfs');
    const entry = JSON.parse(
      (await run('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${image}`])).stdout,
    ) as { config: { Entrypoint: string[]; Labels: Record<string, string> } };
    const [loader, ...rest] = entry.config.Entrypoint.slice(0, -3);
    const r = await run('/usr/sbin/chroot', [rootfs, loader!, ...rest, 'measure', '/usr/bin/python3'], {
      env: { PATH: '/bin' },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), entry.config.Labels['dev.veil.measurement']);
  });
});

function filesUnder(path: string): string[] {
  return statSync(path).isDirectory() ? readdirSync(path).flatMap((n) => filesUnder(join(path, n))) : [path];
}
