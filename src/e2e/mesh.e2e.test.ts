import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  watch,
  writeFileSync,
  type FSWatcher,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, VEIL_BIN, run, tempDir, veil, waitFor } from './harness.js';

const SEED_FORM =
  "fname=Jane&lname=Doe&address='123 Main Street'&city=Richmond&state=Washington&ssn=123-223-2345&email=nr@aaa.com&dob=01/01/2010&contactphone=123-234-3456&drugallergies='Sulpha, Penicillin, Tree Nut'&preexistingconditions='diabetes, hypertension, asthma'&dateadmitted=01/05/2010&insurancedetails='Primera Blue Cross'";
const MESH = join(ROOT, 'examples', 'flask-redis', 'mesh.yaml');

interface UpJson {
  cas_url: string;
  cas_fingerprint: string;
  ca_file: string;
  services: Record<string, { address: string; port: number }>;
}

/** The seed's user, end to end: `veil up` on the example, then what they do with curl and redis-cli. */
describe('veil up: the confidential patient-records mesh', () => {
  const dir = tempDir('veil-mesh-');
  const target = join(dir.path, 'target');
  const env = { VEIL_HOME: join(dir.path, 'home') };
  let upProcess: ChildProcess;
  let systemRedis: ChildProcess;
  let output = '';
  let info: UpJson;
  let apiCa: string;
  // What happened to target/up.json, as inotify saw it: written in place, a reader could find it half written.
  const upJsonEvents: string[] = [];
  let watcher: FSWatcher;

  const api = async (method: string, path: string, data?: string) => {
    const { address, port } = info.services['flask']!;
    const args = [
      '-sS',
      '--cacert',
      apiCa,
      '--resolve',
      `api:${port}:${address}`,
      '-w',
      '\n%{http_code}',
      '-X',
      method,
      ...(data ? ['-d', data] : []),
      `https://api:${port}${path}`,
    ];
    const r = await run('curl', args);
    assert.equal(r.code, 0, `curl: ${r.stderr}`);
    const cut = r.stdout.lastIndexOf('\n');
    return {
      status: Number(r.stdout.slice(cut + 1)),
      json: JSON.parse(r.stdout.slice(0, cut)) as Record<string, unknown>,
    };
  };

  before(async () => {
    // As on a fresh Debian machine, where installing redis-server starts the system's Redis on 127.0.0.1:6379.
    systemRedis = spawn('redis-server', ['--port', '6379', '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    mkdirSync(target);
    writeFileSync(join(target, 'up.json'), '{"left": "by an earlier run"}\n');
    watcher = watch(target, (event, name) => {
      if (name === 'up.json')
        upJsonEvents.push(`${event}: ${existsSync(join(target, 'up.json')) ? 'present' : 'gone'}`);
    });
    // A generous ready timeout: on a CI machine running other end-to-end tests beside this one a service may
    // take longer than the default 30 s to listen, and this test is about behaviour, not speed.
    const args = [VEIL_BIN, 'up', '-f', MESH, '-t', target, '--ready-timeout', '120'];
    upProcess = spawn(process.execPath, args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    upProcess.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    upProcess.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    // The stale up.json goes first (an event), so a reader that sees one now sees this run's.
    await waitFor(
      () => upJsonEvents.length > 0 || upProcess.exitCode !== null,
      90_000,
      () => `veil up did not remove the stale up.json:\n${output}`,
    );
    await waitFor(
      () => existsSync(join(target, 'up.json')) || upProcess.exitCode !== null,
      240_000,
      () => `veil up did not come up:\n${output}`,
    );
    assert.ok(existsSync(join(target, 'up.json')), `veil up ended:\n${output}`);
    info = JSON.parse(readFileSync(join(target, 'up.json'), 'utf8')) as UpJson;
    assert.ok(info.services['flask'], `this run's up.json:\n${readFileSync(join(target, 'up.json'), 'utf8')}`);
    apiCa = await fetchApiCa();
  });

  /** As the seed's user: the CAS's own CA (after attesting it), then api_ca_cert from /v1/values with curl. */
  const fetchApiCa = async () => {
    const attested = await veil(['cas', 'attest', info.cas_url, '-c', info.cas_fingerprint], env);
    assert.equal(attested.code, 0, `veil cas attest: ${attested.stderr}\nveil up:\n${output}`);
    const casCa = join(dir.path, 'cas-ca.pem');
    const shown = await veil(['cas', 'show-certificate', info.cas_url], env);
    assert.equal(shown.code, 0, `veil cas show-certificate: ${shown.stderr}`);
    writeFileSync(casCa, shown.stdout);
    const values = await run('curl', [
      '-sS',
      '--cacert',
      casCa,
      `${info.cas_url}/v1/values/session=patient-records/flask`,
    ]);
    assert.equal(values.code, 0, `curl /v1/values: ${values.stderr}\nveil up:\n${output}`);
    const cert = (JSON.parse(values.stdout) as { values: { api_ca_cert: { value: string } } }).values.api_ca_cert.value;
    assert.equal(cert, readFileSync(info.ca_file, 'utf8'), 'veil up wrote the same CA certificate');
    writeFileSync(join(dir.path, 'cacert.pem'), cert);
    return join(dir.path, 'cacert.pem');
  };
  after(async () => {
    watcher?.close();
    if (upProcess.exitCode === null) {
      upProcess.kill('SIGTERM');
      await new Promise((r) => upProcess.once('exit', r));
    }
    systemRedis?.kill('SIGKILL');
    dir.cleanup();
  });

  it('stores, reads and scores a patient over HTTPS verified with the CA from /v1/values', async () => {
    const posted = await api('POST', '/patient/patient_3', SEED_FORM);
    assert.equal(posted.status, 200);
    assert.equal(posted.json['id'], 'patient_3');
    assert.equal(posted.json['address'], "'123 Main Street'");
    const score = posted.json['score'] as number;
    assert.ok(score >= 0 && score < 1);
    const read = await api('GET', '/patient/patient_3');
    assert.deepEqual(read, { status: 200, json: posted.json });
    assert.deepEqual(await api('GET', '/score/patient_3'), { status: 200, json: { id: 'patient_3', score } });
    assert.equal((await api('POST', '/patient/patient_3', SEED_FORM)).status, 403);
    assert.equal((await api('GET', '/patient/nobody')).status, 404);
    assert.equal((await api('POST', '/patient/p4', 'fname=Jane')).status, 400);
  });

  it("prints where the CAS's metrics and audit log are; the metrics count the services' attestations", async () => {
    assert.match(output, new RegExp(`\\[veil\\] metrics: ${info.cas_url}/metrics `));
    assert.ok(output.includes(`veil audit export --cas ${info.cas_url} --out audit.jsonl`), output);
    const casCa = join(dir.path, 'cas-ca.pem');
    const metrics = await run('curl', ['-sS', '--cacert', casCa, `${info.cas_url}/metrics`]);
    const accepted = /^veil_cas_attestations_total\{result="accepted",[^}]*\} (\d+)$/m.exec(metrics.stdout);
    assert.ok(Number(accepted?.[1]) >= 2, `flask and redis attested:\n${metrics.stdout.slice(0, 2000)}`);
  });

  it('lets no client without the CAS-issued certificate talk to Redis', async () => {
    const { address, port } = info.services['redis']!;
    const r = await run('redis-cli', ['--tls', '--insecure', '-h', address, '-p', String(port), 'PING']);
    assert.doesNotMatch(r.stdout, /PONG/);
    const plain = await run('redis-cli', ['-h', address, '-p', String(port), 'PING']);
    assert.doesNotMatch(plain.stdout, /PONG/);
  });

  it('replaces up.json in one step (a reader never finds it half written), and removes it when the mesh stops', () => {
    // The stale one removed at the start, then this run's renamed into place: rename(2) is one "rename" event,
    // a write in place would be a "change" too.
    assert.deepEqual(upJsonEvents, ['rename: gone', 'rename: present']);
    assert.equal(statSync(join(target, 'up.json')).mode & 0o777, 0o644);
  });

  it('keeps the code and every secret value out of the target directory', () => {
    const code = readFileSync(join(ROOT, 'examples', 'flask-redis', 'flask', 'rest_api.py'));
    const needles = [code.subarray(0, 64), Buffer.from('def post_patient')];
    const keys = readdirSync(join(env.VEIL_HOME, 'shield-keys')).map((f) =>
      Buffer.from(readFileSync(join(env.VEIL_HOME, 'shield-keys', f), 'utf8').trim()),
    );
    for (const file of filesUnder(target)) {
      const bytes = readFileSync(file);
      for (const needle of [...needles, ...keys])
        assert.ok(!bytes.includes(needle), `${file} holds plaintext it must not`);
    }
  });

  it('updates the sessions when the mesh is applied again', async () => {
    const r = await veil(['apply', '-f', MESH, '-t', target, '--cas', info.cas_url, '--mode', 'debug'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /session patient-records\/flask: updated/);
    assert.match(r.stdout, /session patient-records\/redis: updated/);
    // Debug mode lists this host (veil host id), whose key signed the services' simulation evidence.
    const host = (await veil(['host', 'id'], env)).stdout.trim();
    assert.match(
      readFileSync(join(target, 'policies', 'patient-records', 'flask.yaml'), 'utf8'),
      new RegExp(`platforms:\\n\\s+- ${host}`),
    );
  });

  it('stops every service on SIGTERM, and exits with 128 + 15', async () => {
    upProcess.kill('SIGTERM');
    const code = await new Promise((r) => upProcess.once('exit', r));
    assert.equal(code, 143, output);
    assert.ok(!existsSync(join(target, 'up.json')), 'up.json is gone with the mesh');
    const { address, port } = info.services['redis']!;
    const r = await run('redis-cli', ['--tls', '--insecure', '-h', address, '-p', String(port), 'PING']);
    assert.match(r.stdout + r.stderr, /refused/i);
  });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}
