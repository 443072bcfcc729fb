import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { curl, opensslIdentity, simulationHost, startCas, tempDir, veil, type CasProcess } from './harness.js';
import { distinct, staleOrBroken, startWatched, waitForRenewals, watcherCommand, type Watched } from './renewal-kit.js';

/**
 * The whole journey with a real CAS: an x509 secret valid for 12 s, two long-running programs under veil run
 * that read their injected certificate every second — one rewritten in place, one restarted (renewal: restart).
 * Nobody sends them a request: the notAfter each prints changes before the old certificate expires.
 */
const VALID_FOR_S = 12;

describe('veil run keeps certificates from a real CAS fresh', () => {
  const dir = tempDir('veil-renewal-');
  let cas: CasProcess;
  let env: NodeJS.ProcessEnv;
  const watched: Watched[] = [];

  before(async () => {
    cas = await startCas(join(dir.path, 'data'), dir.path);
    const me = await opensslIdentity(dir.path, 'me');
    const measurement = (await veil(['measure', 'sh'], {})).stdout.trim();
    const host = await simulationHost(dir.path);
    const service = (name: string, renewal: string) => [
      `  - name: ${name}`,
      `    mrenclaves: [${measurement}]`,
      `    platforms: [${host.id}]`,
      `    command: ${JSON.stringify(watcherCommand('/tls/cert.pem'))}`,
      '    environment: {PATH: /usr/bin:/bin}',
      '    pwd: /',
      '    image_name: img',
      ...(renewal ? [`    renewal: ${renewal}`] : []),
    ];
    const session = [
      'name: renewal',
      'services:',
      ...service('rewrite', ''),
      ...service('restart', 'restart'),
      'images:',
      '  - name: img',
      '    injection_files:',
      '      - {path: /tls/cert.pem, content: "$$SCONE::svc.crt$$"}',
      '      - {path: /tls/key.pem, content: "$$SCONE::svc.key$$", permission: 0600}',
      'secrets:',
      '  - {name: svc_key, kind: private-key}',
      '  - {name: ca_key, kind: private-key}',
      '  - {name: svc_ca, kind: x509-ca, private_key: ca_key}',
      `  - {name: svc, kind: x509, private_key: svc_key, issuer: svc_ca, valid_for: "${VALID_FOR_S}s"}`,
      'security: {attestation: {mode: none, tolerate: [debug-mode]}}',
      '',
    ].join('\n');
    const res = await curl(cas, `${cas.url}/v1/sessions`, { identity: me, data: session });
    assert.equal(res.status, 201, res.body);
    env = {
      SCONE_CAS_ADDR: new URL(cas.url).host,
      VEIL_CAS_FINGERPRINT: cas.fingerprint,
      PATH: '/usr/bin:/bin',
      ...host.env,
    };
  });
  after(async () => {
    await Promise.all(watched.map((w) => w.stop()));
    await cas?.stop();
    dir.cleanup();
  });

  it('rewrite and restart: the notAfter changes before expiry, with no traffic', async (t) => {
    const runs = Object.fromEntries(
      ['rewrite', 'restart'].map((name) => {
        const w = startWatched([], { ...env, SCONE_CONFIG_ID: `renewal/${name}` });
        watched.push(w);
        return [name, w];
      }),
    );
    await Promise.all(Object.values(runs).map((w) => waitForRenewals(w, 2, 2 * VALID_FOR_S * 1000)));
    for (const [name, w] of Object.entries(runs)) {
      const readings = w.readings();
      const pids = distinct(readings.map((r) => r.pid));
      const certs = distinct(readings.map((r) => r.notAfter));
      t.diagnostic(`${name}: ${readings.length} readings, ${certs.length} certificates, ${pids.length} PIDs`);
      assert.deepEqual(staleOrBroken(w), [], `${name}: a reading found no current certificate`);
      assert.equal(pids.length, name === 'restart' ? certs.length : 1, `${name}: PIDs ${pids.join(', ')}`);
      assert.match(w.stderr(), /certificates are renewed at/);
    }
  });
});
