import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { renderConfig } from '../cas/config.js';
import { loadMasterKey, openSqliteStore } from '../cas/store/index.js';
import { curl, opensslIdentity, run, seedPolicy, startCas, tempDir, type CasProcess } from './harness.js';

/** The seed's user journey with curl and openssl as the only clients, in both upload orders. */
for (const order of [
  ['redis', 'flask'],
  ['flask', 'redis'],
] as const) {
  describe(`the Confidential Flask Example's policies, uploaded ${order.join(' then ')}`, () => {
    const dir = tempDir();
    const dataDir = join(dir.path, 'data');
    let cas: CasProcess;
    let identity: { cert: string; key: string };
    const suffix = randomBytes(4).toString('hex');
    const vars = {
      FLASK_SESSION: `FlaskSession-${suffix}`,
      REDIS_SESSION: `RedisSession-${suffix}`,
      MRENCLAVE: randomBytes(32).toString('hex'),
      SCONE_FSPF_KEY: randomBytes(32).toString('hex'),
      SCONE_FSPF_TAG: randomBytes(16).toString('hex'),
    };

    before(async () => {
      cas = await startCas(dataDir, dir.path);
      identity = await opensslIdentity(dir.path, 'client');
    });
    after(async () => {
      await cas?.stop();
      dir.cleanup();
    });

    it('creates both sessions with curl and a self-signed openssl client certificate', async () => {
      for (const which of order) {
        const file = join(dir.path, `${which}.yaml`);
        writeFileSync(file, seedPolicy(which, vars));
        const res = await curl(cas, `${cas.url}/v1/sessions`, { identity, dataFile: file });
        assert.equal(res.status, 201, res.body);
        assert.match(res.json().hash, /^[0-9a-f]{64}$/);
      }
    });

    it('reads a session back with its creator and without any secret value', async () => {
      const res = await curl(cas, `${cas.url}/v1/sessions/${vars.FLASK_SESSION}`, { identity });
      assert.equal(res.status, 200, res.body);
      const { session, hash } = res.json();
      assert.match(hash, /^[0-9a-f]{64}$/);
      assert.match(session, /creator: /);
      assert.match(session, /BEGIN CERTIFICATE/); // the creator's certificate
      assert.doesNotMatch(session, /PRIVATE KEY/);
      assert.match(session, /\$\$SCONE::flask\.crt\$\$/);
    });

    it('serves api_ca_cert publicly, and the flask certificate verifies against it with openssl', async () => {
      const res = await curl(cas, `${cas.url}/v1/values/session=${vars.FLASK_SESSION}`);
      assert.equal(res.status, 200, res.body);
      const values = res.json().values;
      assert.deepEqual(Object.keys(values), ['api_ca_cert']);
      const caFile = join(dir.path, 'cacert.pem');
      writeFileSync(caFile, values.api_ca_cert.value);

      const config = await withStore(dataDir, (store) => renderConfig(store, vars.FLASK_SESSION, 'flask_restapi'));
      const files = new Map(config.injectionFiles.map((f) => [f.path, f.content]));
      const flaskCrt = join(dir.path, 'flask.crt');
      writeFileSync(flaskCrt, files.get('/tls/flask.crt')!);
      const verify = await run('openssl', ['verify', '-CAfile', caFile, flaskCrt]);
      assert.equal(verify.code, 0, verify.stderr + verify.stdout);
      const san = await run('openssl', ['x509', '-in', flaskCrt, '-noout', '-ext', 'subjectAltName']);
      assert.match(san.stdout, /DNS:api\b/);

      // The imported Redis client certificate and its key (exported to the flask session) verify too.
      const redisCa = join(dir.path, 'redis-ca.crt');
      const clientCrt = join(dir.path, 'client.crt');
      writeFileSync(redisCa, files.get('/tls/redis-ca.crt')!);
      writeFileSync(clientCrt, files.get('/tls/client.crt')!);
      assert.equal((await run('openssl', ['verify', '-CAfile', redisCa, clientCrt])).code, 0);
      assert.match(files.get('/tls/client.key')!.toString(), /BEGIN PRIVATE KEY/);
      assert.equal(config.fspf?.key, vars.SCONE_FSPF_KEY);
    });

    it('answers a JSON error for a secret that is not public', async () => {
      const res = await curl(cas, `${cas.url}/v1/values/session=${vars.FLASK_SESSION},secret=flask_key`);
      assert.equal(res.status, 404);
      assert.equal(res.json().error.code, 'CAS_NOT_PUBLIC');
      const one = await curl(cas, `${cas.url}/v1/values/session=${vars.FLASK_SESSION},secret=api_ca_cert`);
      assert.equal(one.status, 200);
      assert.equal(one.json().kind, 'x509-ca');
    });

    it('keeps secret values out of its log', async () => {
      const config = await withStore(dataDir, (store) => renderConfig(store, vars.FLASK_SESSION, 'flask_restapi'));
      const key = config.injectionFiles.find((f) => f.path === '/tls/flask.key')!.content.toString();
      const body = key.split('\n')[1]!;
      assert.ok(!cas.log().includes(body));
    });
  });
}

async function withStore<T>(dataDir: string, f: (store: ReturnType<typeof openSqliteStore>) => Promise<T>): Promise<T> {
  const store = openSqliteStore({ dataDir, masterKey: loadMasterKey({ dataDir }) });
  try {
    return await f(store);
  } finally {
    await store.close();
  }
}
