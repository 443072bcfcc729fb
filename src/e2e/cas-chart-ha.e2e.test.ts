import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type PeerCertificate } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { fingerprintOf } from '../cas/identity.js';
import { type Doc, helmBinaries, helmTemplate } from '../helm/helm-kit.js';
import { casChartValues, writeCasChart } from '../helm/index.js';
import { VEIL_BIN, tempDir, waitFor } from './harness.js';
import { freePort, startPostgres, type Postgres } from './postgres.js';

/**
 * The HA CAS chart's pods, started as Kubernetes would start them: the Deployment rendered by the real Helm,
 * its container's args and env (secretKeyRef resolved from the test's Secrets), its Secret volumes written to
 * temporary directories, and `veil cas serve` run with exactly those args (the image's entrypoint is
 * `veil cas`) against a real PostgreSQL. Each pod has a network namespace of its own, so the one mapping is
 * the listen port: `0.0.0.0:8081` becomes a free loopback port per replica. Paths outside the mounts land in
 * a per-pod `rootfs`, which must stay empty: the HA form mounts no data volume.
 */

/** The CAS image's config (src/images/cas-image.ts): its env and working directory. */
const IMAGE_ENV = { VEIL_HOME: '/data/home' };
const IMAGE_WORKDIR = '/';
const SECRETS = { db: 'cas-postgres', key: 'cas-master-key' };

interface Container {
  args: string[];
  env: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }>;
  ports: Array<{ name: string; containerPort: number }>;
  readinessProbe: { httpGet: Probe };
  livenessProbe: { httpGet: Probe };
  volumeMounts: Array<{ name: string; mountPath: string }>;
}
interface Probe {
  path: string;
  port: string | number;
  scheme: string;
}
interface Pod {
  containers: Container[];
  volumes?: Array<{ name: string; secret?: { secretName: string; defaultMode?: number } }>;
}

const secretValue = (secrets: Record<string, Record<string, string>>, name: string, key: string): string => {
  const value = secrets[name]?.[key];
  assert.ok(value !== undefined, `the chart refers to key ${key} of Secret ${name}, which the test did not create`);
  return value;
};

/** A replica: its process, the port its probes reach, and its root file system (outside the mounts). */
interface Replica {
  child: ChildProcess;
  port: number;
  rootfs: string;
  out: () => string;
  stop(): Promise<void>;
}

async function startPod(pod: Pod, secrets: Record<string, Record<string, string>>, dir: string): Promise<Replica> {
  const [c] = pod.containers;
  assert.ok(c && pod.containers.length === 1, 'one container');
  const rootfs = join(dir, 'rootfs');
  mkdirSync(rootfs, { recursive: true });
  const mounts = new Map<string, string>();
  for (const m of c.volumeMounts) {
    const volume = pod.volumes?.find((v) => v.name === m.name);
    assert.ok(volume?.secret, `volume ${m.name} is a Secret volume (the HA form mounts nothing else)`);
    const local = join(dir, `mount-${m.name}`);
    mkdirSync(local);
    for (const [key, text] of Object.entries(secrets[volume.secret.secretName] ?? {}))
      writeFileSync(join(local, key), text, { mode: volume.secret.defaultMode ?? 0o644 });
    mounts.set(m.mountPath, local);
  }
  const inPod = (path: string): string => {
    for (const [mountPath, local] of mounts)
      if (path === mountPath || path.startsWith(`${mountPath}/`)) return local + path.slice(mountPath.length);
    return join(rootfs, path);
  };
  const api = c.ports.find((p) => p.name === 'api')!;
  const port = await freePort();
  const args = c.args.map((a) => {
    if (a === `0.0.0.0:${api.containerPort}`) return `127.0.0.1:${port}`;
    return a.startsWith('/') ? inPod(a) : a;
  });
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'], HOME: inPod('/root'), TMPDIR: inPod('/tmp') };
  for (const [name, value] of Object.entries(IMAGE_ENV)) env[name] = inPod(value);
  for (const e of c.env) {
    const ref = e.valueFrom?.secretKeyRef;
    env[e.name] = ref ? secretValue(secrets, ref.name, ref.key) : e.value;
  }
  const child = spawn(process.execPath, [VEIL_BIN, 'cas', ...args], {
    cwd: inPod(IMAGE_WORKDIR),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(
    () => /fingerprint/.test(out) || child.exitCode !== null,
    15_000,
    () => `CAS did not start: ${out}`,
  );
  assert.equal(child.exitCode, null, `the replica exited: ${out}`);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  return { child, port, rootfs, out: () => out, stop };
}

/** The CA the server presents (the last certificate of its chain), as a client pinning it by fingerprint sees it. */
function presentedCaFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      let cert = socket.getPeerCertificate(true) as PeerCertificate & { issuerCertificate?: PeerCertificate };
      while (cert.issuerCertificate && cert.issuerCertificate !== cert) cert = cert.issuerCertificate;
      socket.end();
      resolve(fingerprintOf(cert.raw));
    });
    socket.once('error', reject);
  });
}

const files = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => join(e.parentPath, e.name));

describe('the HA CAS chart’s replicas, started as its Deployment says, on a real PostgreSQL', () => {
  const dir = tempDir('veil-chart-ha-');
  // The kubelet probes HTTPS without verifying the certificate and without a client certificate.
  const kubelet = new Agent({ connect: { rejectUnauthorized: false }, headersTimeout: 5_000, bodyTimeout: 5_000 });
  let pgServer: Postgres;
  let pod: Pod;
  const replicas: Replica[] = [];

  before(async () => {
    const helm = await helmBinaries();
    const chart = join(dir.path, 'chart');
    writeCasChart(chart, casChartValues('registry.example/veil-cas:1'));
    const set: Array<[string, unknown]> = [
      ['store.type', 'postgres'],
      ['replicaCount', 2],
      ['store.postgres.existingSecret', SECRETS.db],
      ['masterKey.existingSecret', SECRETS.key],
    ];
    const pods: Pod[] = [];
    for (const helmBin of Object.values(helm)) {
      const rendered = await helmTemplate(helmBin, chart, 'veil', 'veil-system', { set }, dir.path);
      assert.ok(rendered.ok, rendered.ok ? '' : rendered.error);
      const deployment = rendered.docs.find((d) => d['kind'] === 'Deployment') as Doc | undefined;
      assert.ok(deployment, 'the HA form renders a Deployment');
      assert.equal((deployment['spec'] as { replicas: number }).replicas, 2);
      pods.push((deployment['spec'] as { template: { spec: Pod } }).template.spec);
    }
    assert.deepEqual(pods[0], pods[1], 'Helm 3 and Helm 4 render the same pod');
    pod = pods[0]!;
    pgServer = await startPostgres();
    await pgServer.createDatabase('cas');
    const url = `postgres://${pgServer.user}:${pgServer.password}@127.0.0.1:${pgServer.port}/cas`;
    const secrets: Record<string, Record<string, string>> = {
      [SECRETS.db]: { url },
      [SECRETS.key]: { 'master.key': `${randomBytes(32).toString('hex')}\n` },
    };
    // One after the other: the first creates the schema, as the first pod of a rollout would.
    for (const i of [0, 1]) {
      const podDir = join(dir.path, `pod-${i}`);
      mkdirSync(podDir);
      replicas.push(await startPod(pod, secrets, podDir));
    }
  });
  after(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await kubelet.close();
    await pgServer?.stop();
    dir.cleanup();
  });

  const probe = async (r: Replica, kind: 'readinessProbe' | 'livenessProbe') => {
    const { path, port, scheme } = pod.containers[0]![kind].httpGet;
    assert.equal(scheme, 'HTTPS');
    assert.equal(pod.containers[0]!.ports.find((p) => p.name === port)?.containerPort, 8081, 'probe port is api');
    const res = await request(`https://127.0.0.1:${r.port}${path}`, { dispatcher: kubelet });
    await res.body.text();
    return res.statusCode;
  };

  it('pass their readiness and liveness probes, and present one CA', async (t) => {
    for (const r of replicas) {
      assert.equal(await probe(r, 'readinessProbe'), 200, r.out());
      assert.equal(await probe(r, 'livenessProbe'), 200, r.out());
    }
    const presented = await Promise.all(replicas.map((r) => presentedCaFingerprint(r.port)));
    const logged = replicas.map((r) => /fingerprint \(SHA-256\): ([0-9a-f]{64})/.exec(r.out())![1]);
    assert.equal(new Set(presented).size, 1, 'both replicas present the same CA');
    assert.deepEqual(logged, presented, 'the fingerprint in the log is the CA presented');
    t.diagnostic(`${replicas.length} replicas ready and live, one CA ${presented[0]!.slice(0, 16)}…`);
  });

  it('write no file outside their mounts (the HA form has no data volume)', () => {
    for (const r of replicas) assert.deepEqual(files(r.rootfs), [], 'written outside the mounts');
  });

  it('turn unready (503), yet stay live, when PostgreSQL stops', async (t) => {
    await pgServer.stop();
    for (const r of replicas) {
      assert.equal(await probe(r, 'readinessProbe'), 503);
      assert.equal(await probe(r, 'livenessProbe'), 200, 'a database outage restarts no replica');
    }
    for (const r of replicas) assert.deepEqual(files(r.rootfs), [], 'written outside the mounts');
    t.diagnostic(`PostgreSQL stopped: ${replicas.length} replicas unready (503), live (200)`);
  });
});
