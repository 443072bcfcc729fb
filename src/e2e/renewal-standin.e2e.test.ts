import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generatePrivateKey, issueCertificate, pemEncode } from '../secrets/index.js';
import { simulationHost, tempDir } from './harness.js';
import { distinct, startWatched, waitForRenewals, watcherCommand, type Watched, staleOrBroken } from './renewal-kit.js';

/**
 * `veil run`'s renewal against a small HTTPS server that answers like a CAS which renews: every attestation
 * gets a freshly issued certificate valid for LIFETIME, and renew_at at two thirds of it. Real veil run
 * processes, real namespaces, a real program that reads its file every second; no traffic reaches it.
 */
const LIFETIME_MS = 6_000;
const HOUR = 3_600_000;

interface StandIn {
  port: number;
  fingerprint: string;
  /** Attestations answered, by service; refusals planned per service (the next N re-attestations). */
  answered: Map<string, number>;
  refuse: Map<string, number>;
  /** From now on an impostor answers: another CA, the same address. */
  impersonate(): void;
  close(): Promise<void>;
}

/** How each service is configured in the stand-in: where its files go and how it wants renewal. */
const SERVICES: Record<string, { dir: (tmp: string) => string; renewal?: 'restart' }> = {
  rewrite: { dir: () => '/tls' },
  restart: { dir: () => '/tls', renewal: 'restart' },
  insecure: { dir: (tmp) => join(tmp, 'insecure-tls') },
};

/** A CA and a server certificate for 127.0.0.1 that it signed: what a CAS presents. */
function serverChain() {
  const caKey = generatePrivateKey('P-256');
  const now = Date.now();
  const caDer = issueCertificate({
    subjectKey: caKey,
    commonName: 'stand-in CA',
    isCa: true,
    notBefore: new Date(now - HOUR),
    notAfter: new Date(now + HOUR),
  });
  const serverKey = generatePrivateKey('P-256');
  const serverDer = issueCertificate({
    subjectKey: serverKey,
    issuer: { certDer: caDer, key: caKey },
    commonName: 'stand-in CAS',
    ips: ['127.0.0.1'],
    isCa: false,
    endpoint: 'server',
    notBefore: new Date(now - HOUR),
    notAfter: new Date(now + HOUR),
  });
  const tls = {
    cert: pemEncode('CERTIFICATE', serverDer) + pemEncode('CERTIFICATE', caDer),
    key: pemEncode('PRIVATE KEY', serverKey.pkcs8),
  };
  return { caKey, caDer, tls };
}

async function startStandIn(tmp: string): Promise<StandIn> {
  const { caKey, caDer, tls } = serverChain();
  const answered = new Map<string, number>();
  const refuse = new Map<string, number>();
  const issue = () => {
    const key = generatePrivateKey('P-256');
    const notBefore = Date.now();
    const der = issueCertificate({
      subjectKey: key,
      issuer: { certDer: caDer, key: caKey },
      commonName: 'service',
      isCa: false,
      endpoint: 'server',
      notBefore: new Date(notBefore),
      notAfter: new Date(notBefore + LIFETIME_MS),
    });
    return { cert: pemEncode('CERTIFICATE', der), key: pemEncode('PRIVATE KEY', key.pkcs8), notBefore };
  };
  const attest = (service: string) => {
    const spec = SERVICES[service]!;
    const dir = spec.dir(tmp);
    const { cert, key, notBefore } = issue();
    return {
      command: watcherCommand(`${dir}/cert.pem`),
      environment: { PATH: '/usr/bin:/bin' },
      pwd: '/',
      injectionFiles: [
        { path: `${dir}/cert.pem`, mode: 0o644, content: Buffer.from(cert).toString('base64') },
        { path: `${dir}/key.pem`, mode: 0o600, content: Buffer.from(key).toString('base64') },
      ],
      ...(spec.renewal ? { renewal: spec.renewal } : {}),
      session: 'standin',
      service,
      attestation: { evidence: 'simulation', simulated: true },
      // Halfway: notAfter keeps whole seconds only (up to 1 s earlier), and a refused renewal needs its 1 s
      // retry before it; at two thirds a busy machine saw the refusal land after expiry (then 30 s retries).
      renew_at: notBefore + LIFETIME_MS / 2,
    };
  };
  const server: Server = createServer(tls, (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const send = (status: number, json: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      if (req.url === '/v1/attest/nonce') return send(200, { nonce: randomBytes(32).toString('hex') });
      const service = (JSON.parse(body) as { config_id: string }).config_id.split('/')[1]!;
      const count = answered.get(service) ?? 0;
      if (count > 0 && (refuse.get(service) ?? 0) > 0) {
        refuse.set(service, refuse.get(service)! - 1);
        return send(503, {
          error: { code: 'CAS_STORE_UNAVAILABLE', message: 'the stand-in refuses once', hint: 'wait' },
        });
      }
      answered.set(service, count + 1);
      send(200, attest(service));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    fingerprint: createHash('sha256').update(caDer).digest('hex'),
    answered,
    refuse,
    impersonate: () => server.setSecureContext(serverChain().tls),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('veil run renews injected certificates before they expire (stand-in CAS)', () => {
  const dir = tempDir('veil-renewal-standin-');
  let standIn: StandIn;
  let impostor: StandIn;
  let env: NodeJS.ProcessEnv;
  const watched: Watched[] = [];

  before(async () => {
    standIn = await startStandIn(dir.path);
    impostor = await startStandIn(dir.path);
    const host = await simulationHost(dir.path);
    env = {
      SCONE_CAS_ADDR: `127.0.0.1:${standIn.port}`,
      VEIL_CAS_FINGERPRINT: standIn.fingerprint,
      PATH: '/usr/bin:/bin',
      ...host.env,
    };
  });
  after(async () => {
    await Promise.all(watched.map((w) => w.stop()));
    await standIn?.close();
    await impostor?.close();
    dir.cleanup();
  });

  const start = (service: string, args: string[] = [], cas = standIn) => {
    const where = { SCONE_CAS_ADDR: `127.0.0.1:${cas.port}`, VEIL_CAS_FINGERPRINT: cas.fingerprint };
    const w = startWatched(args, { ...env, ...where, SCONE_CONFIG_ID: `standin/${service}` });
    watched.push(w);
    return w;
  };

  it('rewrite (the default), restart, and without a namespace: the notAfter changes, with no traffic', async () => {
    standIn.refuse.set('rewrite', 1); // the first renewal is refused: veil run says so and tries again
    const runs = {
      rewrite: start('rewrite'),
      restart: start('restart'),
      insecure: start('insecure', ['--INSECURE-no-namespace']),
    };
    // Re-attestation checks the CAS as the start did: after the first answer, another CA answers there.
    const fooled = start('rewrite', [], impostor);
    await waitForRenewals(fooled, 1, 2 * LIFETIME_MS);
    impostor.impersonate();
    await Promise.all(Object.values(runs).map((w) => waitForRenewals(w, 3, 4 * LIFETIME_MS)));
    for (const [name, w] of Object.entries(runs)) {
      const readings = w.readings();
      const pids = distinct(readings.map((r) => r.pid));
      const certs = distinct(readings.map((r) => r.notAfter));
      console.log(`# ${name}: ${readings.length} readings, ${certs.length} certificates, ${pids.length} PIDs`);
      assert.deepEqual(staleOrBroken(w), [], `${name}: a reading found no current certificate`);
      assert.equal(pids.length, name === 'restart' ? certs.length : 1, `${name}: PIDs ${pids.join(', ')}`);
      const order = certs.map((c) => Date.parse(c));
      assert.deepEqual(order, [...order].sort(), `${name}: each certificate is newer than the one before`);
      assert.doesNotMatch(w.stderr(), /PRIVATE KEY|BEGIN/, `${name}: stderr shows file contents`);
    }
    assert.match(runs.rewrite.stderr(), /renewal failed \(the stand-in refuses once\); retrying at/);
    assert.match(runs.restart.stderr(), /restarting the program \(the policy says renewal: restart\)/);
    assert.match(
      fooled.stderr(),
      /renewal failed \(the CAS at \S+ presents CA fingerprint [0-9a-f]{64}, not the expected/,
    );
    assert.equal(distinct(fooled.readings().map((r) => r.notAfter)).length, 1, 'nothing from the impostor');
    assert.equal(impostor.answered.get('rewrite'), 1);
  });
});
