import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startCas, type RunningCas } from '../cas/server.js';
import { generatePrivateKey, issueCertificate, pemEncode } from '../secrets/index.js';
import { expiringLines } from './commands/session-expiring.js';
import { pinCas } from './home.js';
import { main } from './main.js';
import { capture } from './test-io.js';

const root = mkdtempSync(join(tmpdir(), 'veil-expiring-'));
const home = join(root, 'home');

/** An explicit certificate (its own value in the policy): the CAS does not renew it. */
function explicitPem(lifetimeMs: number): { cert: string; key: string } {
  const key = generatePrivateKey();
  const now = Date.now();
  const der = issueCertificate({
    subjectKey: key,
    commonName: 'given',
    isCa: false,
    notBefore: new Date(now - 1_000),
    notAfter: new Date(now + lifetimeMs),
  });
  return { cert: pemEncode('CERTIFICATE', der), key: pemEncode('PRIVATE KEY', key.pkcs8) };
}

describe('veil session read --expiring', () => {
  let cas: RunningCas;
  before(async () => {
    cas = await startCas({ host: '127.0.0.1', port: 0, dataDir: join(root, 'data'), logLevel: 'silent' });
    pinCas(home, { url: cas.url, fingerprint: cas.identity.fingerprint, caPem: cas.identity.caCertPem });
    const given = explicitPem(3_600_000);
    const session = [
      'name: exp',
      'secrets:',
      '  - {name: key, kind: private-key}',
      '  - {name: short, kind: x509, private_key: key, valid_for: 3 hours}',
      '  - {name: long, kind: x509-ca, private_key: key, valid_for: 1 year}',
      `  - {name: given_key, kind: private-key, value: ${JSON.stringify(given.key)}}`,
      `  - {name: given, kind: x509, private_key: given_key, value: ${JSON.stringify(given.cert)}}`,
      '',
    ].join('\n');
    writeFileSync(join(root, 'exp.yaml'), session);
    const io = capture({ VEIL_HOME: home });
    assert.equal(await main(['session', 'create', join(root, 'exp.yaml')], io), 0, io.stderr);
  });
  after(async () => {
    await cas?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('lists the certificates expiring within the window, soonest first, and what renews each', async (t) => {
    const io = capture({ VEIL_HOME: home });
    assert.equal(await main(['session', 'read', 'exp', '--expiring', '--within', '4h'], io), 1, io.stderr);
    const lines = io.stdout.trim().split('\n');
    t.diagnostic(`expiring: ${lines.length}`);
    assert.equal(lines.length, 2, io.stdout);
    assert.match(lines[0]!, /^given \(x509\): expires at \S+ \(in 60 min\); not renewed by the CAS \(an explicit/);
    assert.match(
      lines[1]!,
      /^short \(x509\): expires at \S+ \(in 3 h\); renewed by the CAS \(from \S+\) when a service/,
    );
    const none = capture({ VEIL_HOME: home });
    assert.equal(await main(['session', 'read', 'exp', '--expiring', '--within', '10 minutes'], none), 0);
    assert.match(none.stdout, /no certificate of session 'exp' expires within 600 s/);
    const all = capture({ VEIL_HOME: home });
    assert.equal(await main(['session', 'read', 'exp', '--expiring', '--within', '400d'], all), 1);
    assert.equal(all.stdout.trim().split('\n').length, 3);
  });

  it('refuses --within without --expiring, and a --within that is no duration', async () => {
    const io = capture({ VEIL_HOME: home });
    assert.equal(await main(['session', 'read', 'exp', '--within', '1d'], io), 2);
    assert.match(io.stderr, /--within needs --expiring/);
    const bad = capture({ VEIL_HOME: home });
    assert.equal(await main(['session', 'read', 'exp', '--expiring', '--within', 'soon'], bad), 2);
    assert.match(bad.stderr, /--within 'soon' is not a duration/);
  });

  it('a plain read is unchanged: the session text only', async () => {
    const io = capture({ VEIL_HOME: home });
    assert.equal(await main(['session', 'read', 'exp'], io), 0, io.stderr);
    assert.match(io.stdout, /^name: exp/);
  });

  it('says an expired certificate expired, and a due renewal is due', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    const cert = {
      name: 'c',
      kind: 'x509' as const,
      expires: '2029-12-31T23:59:00.000Z',
      renew: '2029-12-31T00:00:00.000Z',
    };
    assert.deepEqual(expiringLines([cert], 60, now), [
      'c (x509): expired at 2029-12-31T23:59:00.000Z; renewed by the CAS (now due) when a service using it attests ' +
        '(veil run attests again on time) or it is read as a public value',
    ]);
  });
});
