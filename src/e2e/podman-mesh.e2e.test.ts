import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { freeLoopbackAddresses } from '../mesh/addresses.js';
import { DEFAULT_CAS_SERVICE } from '../helm/from-mesh.js';
import { ROOT, run, tempDir, veil } from './harness.js';
import { bareRedisBase, pushBase, pythonBase, redisBase } from './host-bases.js';
import { podmanAvailable, podmanIn, RLIMITS, runOptions, type Podman } from './podman.js';
import { freePort, startRegistry, type RegistryProcess } from './registry.js';

const SEED_FORM =
  "fname=Jane&lname=Doe&address='123 Main Street'&city=Richmond&state=Washington&ssn=123-223-2345&email=nr@aaa.com&dob=01/01/2010&contactphone=123-234-3456&drugallergies='Sulpha, Penicillin, Tree Nut'&preexistingconditions='diabetes, hypertension, asthma'&dateadmitted=01/05/2010&insurancedetails='Primera Blue Cross'";
const EXAMPLE = join(ROOT, 'examples', 'flask-redis');
const HOST_KEY_MOUNT = '/run/veil-host';
const REDIS = '/usr/bin/redis-server';

interface ChartService {
  image: string;
  configId: string;
  memoryVolumes: string[];
}
interface ChartValues {
  cas: { address: string; fingerprint: string | null };
  evidence: string;
  services: Record<string, ChartService>;
}

/**
 * The example's images run by a real engine: bases from this machine's packages, the CAS image and both service
 * images built by Veil and pushed to Debian's docker-registry, pulled and run by podman (runc, the host's network,
 * the chart's memory volumes as tmpfs), then the seed user's curl session against the containerised API.
 */
describe('the patient-records mesh as images run by podman', {
  skip: !podmanAvailable() && 'needs podman as root',
}, () => {
  const dir = tempDir('veil-podman-');
  const target = join(dir.path, 'target');
  const env = { VEIL_HOME: join(dir.path, 'home') };
  const [apiAddress, redisAddress] = freeLoopbackAddresses(2);
  let registry: RegistryProcess;
  let podman: Podman;
  let casUrl: string;
  let fingerprint = '';
  let apiPort: number;
  let redisPort: number;
  let apiCa: string;
  let chart: ChartValues;
  const bases: Record<string, string> = {};
  const timings: string[] = [];
  const timed = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
    const start = Date.now();
    const result = await work();
    timings.push(`${what} ${((Date.now() - start) / 1000).toFixed(1)} s`);
    return result;
  };

  before(async () => {
    registry = await startRegistry(dir.path);
    podman = podmanIn(join(dir.path, 'podman'));
    // The bases are built in this process while the CAS image is built by a veil process: two cores, both busy.
    const buildBases = timed('bases', async () => {
      bases['python'] = await pushBase(registry.address, 'python', await pythonBase());
      bases['redis'] = await pushBase(registry.address, 'redis', await redisBase());
      bases['bare'] = await pushBase(registry.address, 'redis-bare', await bareRedisBase());
    });
    [casUrl] = await Promise.all([timed('CAS image, pulled and started', startCasContainer), buildBases]);
    assert.equal((await veil(['cas', 'attest', casUrl, '-c', fingerprint], env)).code, 0);
    chart = await timed('service images and mesh applied', applyMesh);
    await timed('services pulled and started', () => startServices(chart));
    apiCa = await fetchApiCa();
  });
  after(async () => {
    await podman?.cleanup();
    await registry?.stop();
    dir.cleanup();
  });

  const startCasContainer = async () => {
    const ref = `${registry.address}/veil/cas:test`;
    const built = await veil(['cas', 'image', '--to', ref, '--push', '-t', target], env);
    assert.equal(built.code, 0, built.stderr);
    await podman.pull(ref);
    const port = await freePort();
    const cas = await podman.start({
      name: 'cas',
      image: ref,
      tmpfs: ['/data'],
      // As the CAS chart starts it for release `veil`: its certificate names the Service the mesh's pods dial.
      args: ['serve', '--listen', `127.0.0.1:${port}`, '--data', '/data', '--name', DEFAULT_CAS_SERVICE],
    });
    const log = await cas.waitForLog(/fingerprint \(SHA-256\): [0-9a-f]{64}/, 30_000);
    fingerprint = /fingerprint \(SHA-256\): ([0-9a-f]{64})/.exec(log)![1]!;
    return `https://127.0.0.1:${port}`;
  };

  /** `veil apply` of both services (built on the bases, pushed) and of the mesh: sessions uploaded, chart written. */
  const applyMesh = async (): Promise<ChartValues> => {
    [apiPort, redisPort] = [await freePort(), await freePort()];
    const images = {
      flask: `${registry.address}/patients/api:1`,
      redis: `${registry.address}/patients/redis:7`,
    };
    for (const [name, from, original] of [
      ['flask', bases['python']!, 'veil/python_flask_redis:latest'],
      ['redis', bases['redis']!, 'veil/redis:7'],
    ] as const) {
      mkdirSync(join(dir.path, name));
      const manifest = readFileSync(join(EXAMPLE, name, 'service.yaml'), 'utf8').replace(
        `  to: ${original}`,
        `  to: ${images[name]}\n  from: ${from}`,
      );
      writeFileSync(join(dir.path, name, 'service.yaml'), manifest);
      if (name === 'flask')
        writeFileSync(join(dir.path, name, 'rest_api.py'), readFileSync(join(EXAMPLE, name, 'rest_api.py')));
      const r = await veil(['apply', '-f', join(dir.path, name, 'service.yaml'), '-t', target], env);
      assert.equal(r.code, 0, r.stderr);
    }
    const mesh = join(dir.path, 'mesh.yaml');
    writeFileSync(mesh, meshYaml(images));
    const r = await veil(
      ['apply', '-f', mesh, '-t', target, '--cas', casUrl, '--mode', 'debug', '--release', 'demo'],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sessions for the images/);
    return parse(readFileSync(join(target, 'helm', 'values.yaml'), 'utf8')) as ChartValues;
  };

  const meshYaml = (images: { flask: string; redis: string }) =>
    readFileSync(join(EXAMPLE, 'mesh.yaml'), 'utf8')
      .replace('veil/python_flask_redis:latest', images.flask)
      .replace('veil/redis:7', images.redis)
      .replace(/value: 6379/, `value: ${redisPort}`)
      .replace(/value: 4996/, `value: ${apiPort}`)
      .replace(
        '      - name: REDIS_HOST\n        value: redis\n',
        `      - name: REDIS_HOST\n        value: redis\n      - name: address\n        value: ${apiAddress}\n` +
          `  - service: redis\n    env:\n      - name: address\n        value: ${redisAddress}\n`,
      );

  /** As the chart runs them: its image, config ID, CAS and memory volumes; this host's key for simulation evidence. */
  const startServices = async (values: ChartValues) => {
    assert.equal(values.cas.fingerprint, fingerprint);
    // The mesh names its CAS on loopback, which in a pod is the pod itself: the chart names the CAS chart's
    // Service instead (DEFAULT_CAS_SERVICE), which the containers here resolve to this host, as the cluster would.
    assert.equal(values.cas.address, `${DEFAULT_CAS_SERVICE}:${new URL(casUrl).port}`);
    assert.equal(values.evidence, 'simulation');
    for (const [name, hosts] of [
      ['redis', {}],
      ['flask', { redis: redisAddress!, api: apiAddress! }],
    ] as const) {
      assert.match(values.services[name]!.image, /@sha256:[0-9a-f]{64}$/);
      await podman.pull(values.services[name]!.image);
      const chart = asChartRunsIt(values, name);
      const container = await podman.start({ ...chart, hosts: { ...chart.hosts, ...hosts } });
      await container.waitForLog(name === 'redis' ? /Ready to accept connections/ : /Running on/, 60_000);
    }
  };

  const asChartRunsIt = (values: ChartValues, name: string) => {
    const svc = values.services[name]!;
    return {
      name,
      image: svc.image,
      env: {
        SCONE_CONFIG_ID: svc.configId,
        SCONE_CAS_ADDR: values.cas.address,
        VEIL_CAS_FINGERPRINT: values.cas.fingerprint!,
        VEIL_EVIDENCE: values.evidence,
        VEIL_HOST_KEY: `${HOST_KEY_MOUNT}/host-key.pem`,
      },
      tmpfs: svc.memoryVolumes,
      volumes: [`${join(env.VEIL_HOME, 'host')}:${HOST_KEY_MOUNT}:ro`],
      hosts: { [DEFAULT_CAS_SERVICE]: '127.0.0.1' } as Record<string, string>,
    };
  };

  const fetchApiCa = async () => {
    const casCa = join(dir.path, 'cas-ca.pem');
    writeFileSync(casCa, (await veil(['cas', 'show-certificate', casUrl], env)).stdout);
    const values = await run('curl', ['-sS', '--cacert', casCa, `${casUrl}/v1/values/session=patient-records/flask`]);
    assert.equal(values.code, 0, values.stderr);
    const cert = (JSON.parse(values.stdout) as { values: { api_ca_cert: { value: string } } }).values.api_ca_cert.value;
    writeFileSync(join(dir.path, 'cacert.pem'), cert);
    return join(dir.path, 'cacert.pem');
  };

  const api = async (method: string, path: string, data?: string) => {
    const r = await run('curl', [
      ...['-sS', '--cacert', apiCa, '--resolve', `api:${apiPort}:${apiAddress}`, '-w', '\n%{http_code}'],
      ...['-X', method, ...(data ? ['-d', data] : []), `https://api:${apiPort}${path}`],
    ]);
    assert.equal(r.code, 0, `curl: ${r.stderr}`);
    const cut = r.stdout.lastIndexOf('\n');
    return {
      status: Number(r.stdout.slice(cut + 1)),
      json: JSON.parse(r.stdout.slice(0, cut)) as Record<string, unknown>,
    };
  };

  it("answers the seed user's curl session from the containers, verified with the CA from /v1/values", async (t) => {
    const posted = await api('POST', '/patient/patient_3', SEED_FORM);
    assert.equal(posted.status, 200);
    assert.equal(posted.json['address'], "'123 Main Street'");
    const score = posted.json['score'] as number;
    assert.ok(score >= 0 && score < 1);
    assert.deepEqual(await api('GET', '/patient/patient_3'), { status: 200, json: posted.json });
    assert.deepEqual(await api('GET', '/score/patient_3'), { status: 200, json: { id: 'patient_3', score } });
    assert.equal((await api('POST', '/patient/patient_3', SEED_FORM)).status, 403);
    assert.equal((await api('GET', '/patient/nobody')).status, 404);
    assert.equal((await api('POST', '/patient/p4', 'fname=Jane')).status, 400);
    t.diagnostic(`podman: 3 containers (cas, redis, flask), 6 requests answered; ${timings.join(', ')}`);
  });

  it('lets no client without the CAS-issued certificate talk to the containerised Redis', async () => {
    const r = await run('redis-cli', ['--tls', '--insecure', '-h', redisAddress!, '-p', String(redisPort), 'PING']);
    assert.doesNotMatch(r.stdout, /PONG/);
  });

  it("refuses to write Redis' certificates and key where the chart's memory volume is missing", async () => {
    const spec = { ...asChartRunsIt(chart, 'redis'), name: 'redis-without-tmpfs', tmpfs: [] };
    const r = await podman.podman(['run', ...runOptions(spec), spec.image]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\/tls is not on a memory file system/);
    assert.doesNotMatch(r.stdout + r.stderr, /Ready to accept connections/);
  });

  it('cannot start redis-server from a base holding only its binary, and can from the host base', async () => {
    const version = (image: string) =>
      podman.podman(['run', '--rm', '--network', 'host', ...RLIMITS, '--entrypoint', REDIS, image, '--version']);
    await podman.pull(bases['bare']!);
    const bare = await version(bases['bare']!);
    assert.notEqual(bare.code, 0);
    assert.match(bare.stderr, /no such file or directory/i);
    await podman.pull(bases['redis']!);
    const full = await version(bases['redis']!);
    assert.equal(full.code, 0, full.stderr);
    assert.match(full.stdout, /Redis server v=/);
  });

  it('stops each container on podman stop: the runtime, PID 1, passes SIGTERM on to its program', async (t) => {
    const codes: string[] = [];
    for (const name of ['flask', 'redis', 'cas']) {
      const stop = await podman.podman(['stop', '-t', '20', name]);
      assert.equal(stop.code, 0, stop.stderr);
      const state = await podman.podman(['inspect', '-f', '{{.State.ExitCode}}', name]);
      assert.notEqual(state.stdout.trim(), '137', `${name} had to be killed`);
      codes.push(`${name} ${state.stdout.trim()}`);
    }
    t.diagnostic(`exit codes after podman stop: ${codes.join(', ')}`);
  });
});
