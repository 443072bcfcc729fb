import assert from 'node:assert/strict';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { curl, opensslIdentity, simulationHost, startCas, tempDir, veil, type CasProcess } from './harness.js';

const PEM = /-----BEGIN ([A-Z ]+)-----\n([\s\S]+?)\n-----END \1-----/g;

/**
 * Every form a secret could be logged in: the value itself, and for a private key its PEM lines, its DER in
 * base64 and hex, and its private scalar (JWK `d`) in base64url and hex. Certificates are public: left out.
 */
function formsOf(value: string): string[] {
  const forms = [value.trim()];
  for (const [pem, label, body] of value.matchAll(PEM)) {
    if (!/PRIVATE KEY/.test(label!)) continue;
    const der = Buffer.from(body!.replace(/\s+/g, ''), 'base64');
    forms.push(pem, ...body!.split('\n'), der.toString('base64'), der.toString('hex'));
    const d = createPrivateKey(pem).export({ format: 'jwk' }).d;
    if (d) forms.push(d, Buffer.from(d, 'base64url').toString('hex'));
  }
  return forms.filter((f) => f.length >= 12);
}

/** The seed's journey against a CAS logging at debug, then every log line searched for every secret of it. */
describe('no log line holds a secret', () => {
  const dir = tempDir('veil-log-secrets-');
  const inject = join(dir.path, 'inject');
  const explicit = `explicit-${randomBytes(12).toString('hex')}`;
  const refusedValue = `refused-${randomBytes(12).toString('hex')}`;
  const queryValue = `query-${randomBytes(12).toString('hex')}`;
  let cas: CasProcess;
  let me: { cert: string; key: string };
  let env: NodeJS.ProcessEnv;
  let program = '';
  const runStderr: string[] = [];
  const files = ['pw', 'explicit', 'key', 'ca', 'cert', 'certkey', 'bin'];
  const policy = (measurement: string, host: string) =>
    [
      'name: journey',
      'version: "0.3"',
      'services:',
      '  - name: app',
      '    image_name: img',
      `    mrenclaves: [${measurement}]`,
      `    platforms: [${host}]`,
      `    command: [sh, -c, "for f in ${files.join(' ')}; do cat ${inject}/$f; echo; echo ==; done"]`,
      '    environment: {PW: "$$SCONE::pw$$"}',
      `    pwd: ${dir.path}`,
      'images:',
      '  - name: img',
      '    injection_files:',
      `      - {path: ${inject}/pw, content: "$$SCONE::pw$$"}`,
      `      - {path: ${inject}/explicit, content: "$$SCONE::explicit$$"}`,
      `      - {path: ${inject}/key, content: "$$SCONE::app_key$$"}`,
      `      - {path: ${inject}/ca, content: "$$SCONE::app_ca.chain$$"}`,
      `      - {path: ${inject}/cert, content: "$$SCONE::app_cert.crt$$"}`,
      `      - {path: ${inject}/certkey, content: "$$SCONE::app_cert.key$$"}`,
      `      - {path: ${inject}/bin, content: "$$SCONE::blob:hex$$"}`,
      'secrets:',
      '  - {name: pw, kind: ascii, size: 24}',
      `  - {name: explicit, kind: ascii, value: ${explicit}}`,
      '  - {name: blob, kind: binary, size: 32}',
      '  - {name: app_key, kind: private-key}',
      '  - {name: app_ca_key, kind: private-key}',
      '  - {name: app_ca, kind: x509-ca, private_key: app_ca_key, export_public: true}',
      '  - {name: app_cert, kind: x509, private_key: app_key, issuer: app_ca, dns: [app]}',
      'security: {attestation: {mode: none, tolerate: [debug-mode]}}',
      '',
    ].join('\n');

  before(async () => {
    cas = await startCas(join(dir.path, 'data'), dir.path, ['--log-level', 'debug']);
    me = await opensslIdentity(dir.path, 'me');
    const host = await simulationHost(dir.path);
    const measurement = (await veil(['measure', 'sh'], {})).stdout.trim();
    env = { SCONE_CAS_ADDR: new URL(cas.url).host, VEIL_CAS_FINGERPRINT: cas.fingerprint, ...host.env };
    const text = policy(measurement, host.id);
    const created = await curl(cas, `${cas.url}/v1/sessions`, { identity: me, data: text });
    assert.equal(created.status, 201, created.body);
    const run = await veil(['run', '--mode', 'debug', '--', 'sh'], { ...env, SCONE_CONFIG_ID: 'journey/app' });
    assert.equal(run.code, 0, run.stderr);
    program = run.stdout;
    runStderr.push(run.stderr);
    assert.equal((await curl(cas, `${cas.url}/v1/sessions/journey`, { identity: me })).status, 200);
    assert.equal((await curl(cas, `${cas.url}/v1/values/session=journey`)).status, 200);
    await refusedRequests(text);
  });
  after(async () => {
    await cas?.stop();
    dir.cleanup();
  });

  /** Requests the CAS refuses, each carrying a secret where a careless log would print it. */
  const refusedRequests = async (text: string) => {
    const again = await curl(cas, `${cas.url}/v1/sessions`, {
      identity: me,
      data: text.replace(explicit, refusedValue),
    });
    assert.equal(again.status, 409, again.body);
    const unknownField = `name: other\nsecrets:\n  - {name: s, kind: ascii, value: ${refusedValue}, bogus: 1}\n`;
    assert.equal((await curl(cas, `${cas.url}/v1/sessions`, { identity: me, data: unknownField })).status, 400);
    const anonymous = await curl(cas, `${cas.url}/v1/sessions`, { data: `name: x\n# ${refusedValue}\n` });
    assert.equal(anonymous.status, 401);
    const attest = `{"config_id": "journey/app", "nonce": "${refusedValue}", "evidence": {"type": "simulation"}}`;
    assert.equal((await curl(cas, `${cas.url}/v1/attest`, { identity: me, data: attest })).status, 400);
    const query = await curl(cas, `${cas.url}/v1/values/session=journey?password=${queryValue}`);
    assert.equal(query.status, 400, query.body);
    const badPath = await curl(cas, `${cas.url}/v1/nothing-here?token=${queryValue}`);
    assert.equal(badPath.status, 404);
  };

  const secrets = () => {
    const injected = program.split('\n==\n').filter((part) => part.trim().length > 0);
    assert.equal(injected.length, files.length, program);
    const masterKey = readFileSync(join(dir.path, 'data', 'master.key'), 'utf8').trim();
    const keyFiles = [me.key, join(dir.path, 'host', 'host-key.pem')].map((f) => readFileSync(f, 'utf8'));
    const values = [...injected, explicit, refusedValue, queryValue, ...keyFiles];
    const forms = [...values.flatMap(formsOf), masterKey, Buffer.from(masterKey, 'hex').toString('base64')];
    // The certificates the program received are public; only what is secret is searched for.
    return forms.filter((f) => !/^-----BEGIN CERTIFICATE/.test(f));
  };

  it('in the CAS log (stdout and stderr) or in veil run messages', (t) => {
    const needles = secrets();
    const logs = { cas: cas.log(), 'veil run': runStderr.join('') };
    let lines = 0;
    for (const [where, log] of Object.entries(logs)) {
      for (const line of log.split('\n')) {
        lines++;
        const found = needles.find((n) => line.includes(n));
        assert.equal(found, undefined, `${where} logged a secret: ${line.slice(0, 300)}`);
      }
    }
    t.diagnostic(`${needles.length} secret forms searched in ${lines} log lines: found 0`);
  });

  it('and every CAS log line is JSON, request lines carrying a reqId, debug lines included', (t) => {
    const stdout = cas.log().split('\n');
    const json = stdout.filter((l) => l.startsWith('{'));
    const other = stdout.filter((l) => l && !l.startsWith('{'));
    for (const line of other) assert.match(line, /^(CAS listening at|CA fingerprint|\[VEIL\|(NOTE|INFO)\])/, line);
    const entries = json.map((l) => JSON.parse(l) as { level: number; reqId?: string; req?: unknown; res?: unknown });
    const requests = entries.filter((e) => e.req || e.res);
    assert.ok(requests.length >= 20, `${requests.length} request lines`);
    for (const e of requests) assert.equal(typeof e.reqId, 'string', JSON.stringify(e));
    assert.ok(
      entries.some((e) => e.level === 20),
      'debug lines are there',
    );
    t.diagnostic(`${entries.length} JSON lines, ${requests.length} about requests`);
  });
});
