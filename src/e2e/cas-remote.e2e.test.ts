import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import {
  ROOT,
  curl,
  opensslIdentity,
  readText,
  simulationHost,
  startCas,
  tempDir,
  veil,
  type CasProcess,
} from './harness.js';

/**
 * Policies on several CAS, as the seed puts it: the Redis policy on CAS 1 exports Redis's client certificate
 * (with its key) and CA to the Flask session on CAS 2, which a `veil run` attests to (simulation evidence).
 */
const fixture = (name: string, vars: Record<string, string>) =>
  readText(join(ROOT, 'testdata', 'scone', 'remote', `${name}.yaml`)).replace(
    /(?<!\$)\$([A-Z_][A-Z0-9_]*)/g,
    (m, v: string) => vars[v] ?? m,
  );

const hostOf = (cas: CasProcess) => new URL(cas.url).host;

/** A port nothing listens on: taken from the kernel, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('the Confidential Flask Example on two CAS', () => {
  const dir = tempDir();
  const tls = join(dir.path, 'tls');
  let cas1: CasProcess;
  let cas2: CasProcess;
  let me: { cert: string; key: string };
  let env: NodeJS.ProcessEnv;
  let hostId: string;
  let measurement: string;
  const suffix = randomBytes(4).toString('hex');
  const wrongKey = randomBytes(32).toString('hex');
  let closed: string;
  const vars: Record<string, string> = {
    REDIS_SESSION: `RedisSession-${suffix}`,
    FLASK_SESSION: `FlaskSession-${suffix}`,
    MRENCLAVE: randomBytes(32).toString('hex'),
  };

  /** The Flask fixture, run as `sh` checking what it got (the program differs, the secrets are the fixture's). */
  const flaskSession = (name: string, overrides: Record<string, string> = {}) => {
    const session = parse(fixture('flask-session', { ...vars, ...overrides, FLASK_SESSION: name }));
    const script =
      `openssl verify -CAfile ${tls}/redis-ca.crt ${tls}/client.crt && ` +
      `[ "$(openssl x509 -noout -pubkey -in ${tls}/client.crt)" = "$(openssl pkey -pubout -in ${tls}/client.key)" ]` +
      ' && echo FLASK-GOT-REDIS-CERT';
    session.services[0] = {
      name: 'flask_restapi',
      image_name: 'flask_restapi_image',
      mrenclaves: [measurement],
      platforms: [hostId],
      command: ['sh', '-c', script],
      environment: { PATH: '/usr/bin:/bin' },
      pwd: dir.path,
    };
    for (const file of session.images[0].injection_files) file.path = file.path.replace('/tls', tls);
    session.security = { attestation: { mode: 'none', tolerate: ['debug-mode'] } };
    return stringify(session);
  };
  const upload = async (cas: CasProcess, text: string) => {
    const res = await curl(cas, `${cas.url}/v1/sessions`, { identity: me, data: text });
    assert.equal(res.status, 201, res.body);
  };
  const run = (session: string) =>
    veil(['run', '--mode', 'debug', '--', 'sh'], { ...env, SCONE_CONFIG_ID: `${session}/flask_restapi` });

  before(async () => {
    cas1 = await startCas(join(dir.path, 'data1'), dir.path);
    closed = `127.0.0.1:${await closedPort()}`;
    // CAS 2 may fetch from CAS 1 (and, for the failures below, from CAS 1 under a wrong key and a closed port).
    const listed = [
      `${hostOf(cas1)}=${cas1.fingerprint}`,
      `${hostOf(cas1)}=${wrongKey}`,
      `${closed}=${cas1.fingerprint}`,
    ];
    cas2 = await startCas(
      join(dir.path, 'data2'),
      dir.path,
      listed.flatMap((l) => ['--remote-cas', l]),
    );
    me = await opensslIdentity(dir.path, 'me');
    measurement = (await veil(['measure', 'sh'], {})).stdout.trim();
    const host = await simulationHost(dir.path);
    hostId = host.id;
    env = { SCONE_CAS_ADDR: hostOf(cas2), VEIL_CAS_FINGERPRINT: cas2.fingerprint, ...host.env };
    Object.assign(vars, {
      REDIS_CAS_URL: hostOf(cas1),
      REDIS_CAS_KEY: cas1.fingerprint,
      FLASK_CAS_URL: hostOf(cas2),
      FLASK_CAS_KEY: cas2.fingerprint,
    });
    await upload(cas1, fixture('redis-session', vars));
  });
  after(async () => {
    await cas1?.stop();
    await cas2?.stop();
    dir.cleanup();
  });

  it("gives the Flask service Redis's client certificate, its key and the CA from the other CAS", async () => {
    await upload(cas2, flaskSession(vars.FLASK_SESSION!));
    const r = await run(vars.FLASK_SESSION!);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /FLASK-GOT-REDIS-CERT/);
    assert.ok(!cas1.log().includes('PRIVATE KEY') && !cas2.log().includes('PRIVATE KEY'));
  });

  it('fails with a wrong cas_key, naming the remote CAS', async () => {
    const wrong = wrongKey;
    const name = `${vars.FLASK_SESSION}-wrongkey`;
    await upload(cas2, flaskSession(name, { REDIS_CAS_KEY: wrong }));
    const r = await run(name);
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stdout, /FLASK-GOT/);
    assert.ok(r.stderr.includes(`the CAS at ${hostOf(cas1)} (cas_key ${wrong}) is not the CAS`), r.stderr);
    assert.ok(!r.stderr.includes(cas1.fingerprint), r.stderr);
  });

  it('fails for a secret the other CAS does not export to it, naming the remote CAS', async () => {
    const name = `${vars.FLASK_SESSION}-unexported`;
    const text = flaskSession(name).replace('secret: redis_client_cert', 'secret: redis_key');
    await upload(cas2, text);
    const r = await run(name);
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes(`the CAS at ${hostOf(cas1)} (cas_key ${cas1.fingerprint}) refused`), r.stderr);
    assert.match(r.stderr, /secret 'redis_key'/);
  });

  it('fails when the other CAS is unreachable, naming it', async () => {
    const name = `${vars.FLASK_SESSION}-unreachable`;
    await upload(cas2, flaskSession(name, { REDIS_CAS_URL: closed }));
    const r = await run(name);
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes(`cannot fetch an import from the CAS at ${closed}`), r.stderr);
    assert.doesNotMatch(r.stderr, /ECONNREFUSED/);
  });

  it('refuses at upload a session importing from a CAS not listed with --remote-cas', async () => {
    const unlisted = `127.0.0.1:${await closedPort()}`;
    const text = flaskSession(`${vars.FLASK_SESSION}-unlisted`, { REDIS_CAS_URL: unlisted });
    const res = await curl(cas2, `${cas2.url}/v1/sessions`, { identity: me, data: text });
    assert.equal(res.status, 422, res.body);
    assert.match(res.body, /CAS_REMOTE_NOT_ALLOWED/);
    assert.ok(res.body.includes(`the CAS at ${unlisted}`) && res.body.includes('--remote-cas'), res.body);
  });
});
