import { memoryAuditLog, type MemoryAuditLog } from './audit-testing.js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { identityFromPem } from './identity-of.js';
import {
  LEAF_SECRETS,
  casOf,
  clock,
  certOf,
  policy,
  racing,
  sharedDir,
  simulationFor,
  spkiOf,
  twoThirds,
} from './renewal-kit.js';
import { writeSession } from './sessions.js';
import { loadMasterKey, openSqliteStore } from './store/index.js';
import { ephemeral, post } from './testing.js';
import { startCas, type RunningCas } from './server.js';
import { publicValue, publicValues } from './values.js';

const owner = identityFromPem(ephemeral().certPem);
const scratch = mkdtempSync(join(tmpdir(), 'veil-renewal-pem-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let files = 0;

/** openssl verify at a given time (ms), the chain given as PEM texts: true iff it verifies. */
function verifies(at: number, caPem: string, leafPem: string): boolean {
  const ca = join(scratch, `ca${files}.pem`);
  const leaf = join(scratch, `leaf${files++}.pem`);
  writeFileSync(ca, caPem);
  writeFileSync(leaf, leafPem);
  try {
    const args = ['verify', '-attime', String(Math.floor(at / 1000)), '-CAfile', ca, leaf];
    return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).includes('OK');
  } catch {
    return false;
  }
}

const FILES = { '/tls/ca.crt': '$$SCONE::ca.crt$$', '/tls/api.crt': '$$SCONE::leaf.crt$$' };

describe('certificate renewal at attestation', () => {
  const time = clock();
  const shared = sharedDir('veil-renewal-');
  const cas = shared.open(time);

  it('renews only from two thirds of the lifetime on, with the same key, and the chain verifies', async (t) => {
    await writeSession(cas.ctx, policy('leaf', LEAF_SECRETS, FILES), owner);
    const first = await cas.attestApi('leaf');
    const leaf = first.files['/tls/api.crt']!;
    assert.deepEqual(first.renewed, []);
    const due = twoThirds(leaf);
    assert.equal(first.renewAt, Math.floor(due));
    time.at = due - 1_000;
    const before = await cas.attestApi('leaf');
    assert.deepEqual(before.renewed, [], 'not renewed before two thirds of its lifetime');
    assert.equal(before.files['/tls/api.crt'], leaf);
    time.at = due + 1;
    const renewed = await cas.attestApi('leaf');
    const next = renewed.files['/tls/api.crt'];
    assert.deepEqual(renewed.renewed, ['leaf']);
    const release = (cas.ctx.audit as MemoryAuditLog).events('attestation.released').at(-1);
    assert.deepEqual(release?.renewed, ['leaf'], 'the audit entry of the release names the renewal');
    assert.notEqual(next, leaf);
    assert.equal(spkiOf(next), spkiOf(leaf), 'the same key');
    assert.equal(certOf(next).subject, certOf(leaf).subject);
    assert.equal(certOf(next).subjectAltName, 'DNS:api');
    assert.ok(renewed.renewAt! > time.at, 'the next renewal lies ahead');
    const expired = Date.parse(certOf(leaf).validTo) + 1_000;
    assert.equal(verifies(expired, renewed.files['/tls/ca.crt']!, leaf), false, 'the old one expired');
    assert.equal(verifies(expired, renewed.files['/tls/ca.crt']!, next!), true, 'the renewed one verifies');
    t.diagnostic(`renewed at ${Math.round((time.at - Date.parse(certOf(leaf).validFrom)) / 1000)} s of 33 s`);
    // Released again, the renewal is what every later attestation receives, until it is due itself.
    assert.deepEqual(await cas.attestApi('leaf'), { ...renewed, renewed: [] });
  });

  it('renews a CA with its key and subject, so the certificates it issued still verify', async () => {
    const secrets = [
      '{name: ca_key, kind: private-key}',
      '{name: ca, kind: x509-ca, private_key: ca_key, valid_for: 30s}',
      '{name: leaf_key, kind: private-key}',
      '{name: leaf, kind: x509, private_key: leaf_key, issuer: ca, dns: [api], valid_for: 1 hour}',
    ];
    await writeSession(cas.ctx, policy('ca', secrets, FILES), owner);
    time.at = Date.now();
    const first = await cas.attestApi('ca');
    const [ca, leaf] = [first.files['/tls/ca.crt']!, first.files['/tls/api.crt']!];
    assert.equal(first.renewAt, Math.floor(twoThirds(ca)), 'the CA is due first');
    time.at = twoThirds(ca) + 1;
    const renewed = await cas.attestApi('ca');
    assert.deepEqual(renewed.renewed, ['ca'], 'the leaf is not due yet');
    const newCa = renewed.files['/tls/ca.crt']!;
    assert.equal(renewed.files['/tls/api.crt'], leaf);
    assert.equal(spkiOf(newCa), spkiOf(ca));
    assert.equal(certOf(newCa).subject, certOf(ca).subject);
    const afterOldCa = Date.parse(certOf(ca).validTo) + 1_000;
    assert.equal(verifies(afterOldCa, ca, leaf), false);
    assert.equal(verifies(afterOldCa, newCa, leaf), true, 'the old leaf verifies against the renewed CA');
  });

  it("renews an imported certificate in its exporter's session, for the importer and the exporter alike", async () => {
    time.at = Date.now();
    const exporter = [
      '{name: ca_key, kind: private-key}',
      '{name: ca, kind: x509-ca, private_key: ca_key, valid_for: 30s, export: [{session: imp}]}',
    ];
    await writeSession(cas.ctx, policy('exp', exporter, { '/ca.crt': '$$SCONE::ca.crt$$' }), owner);
    const importer = ['{name: theirs, import: {session: exp, secret: ca}}'];
    await writeSession(cas.ctx, policy('imp', importer, { '/ca.crt': '$$SCONE::theirs.crt$$' }), owner);
    const ca = (await cas.attestApi('imp')).files['/ca.crt']!;
    time.at = twoThirds(ca) + 1;
    const renewed = await cas.attestApi('imp');
    assert.deepEqual(renewed.renewed, ['exp::ca']);
    assert.notEqual(renewed.files['/ca.crt'], ca);
    assert.equal(spkiOf(renewed.files['/ca.crt']), spkiOf(ca));
    const theExporter = await cas.attestApi('exp');
    assert.deepEqual([theExporter.files['/ca.crt'], theExporter.renewed], [renewed.files['/ca.crt'], []]);
  });

  it('a certificate whose issuer key is withdrawn is released as it is, and does not make renew_at "now"', async () => {
    time.at = Date.now();
    const exporter = (keyExport: string) => [
      `{name: ca_key, kind: private-key, migrate: true${keyExport}}`,
      '{name: ca, kind: x509-ca, private_key: ca_key, valid_for: 1 hour, export: [{session: wd}]}',
    ];
    const files = { '/ca.crt': '$$SCONE::ca.crt$$' };
    const first = await writeSession(cas.ctx, policy('wdx', exporter(', export: [{session: wd}]'), files), owner);
    const importer = [
      '{name: ca, import: {session: wdx, secret: ca}}',
      '{name: key, kind: private-key}',
      '{name: leaf, kind: x509, private_key: key, issuer: ca, valid_for: 30s}',
    ];
    await writeSession(cas.ctx, policy('wd', importer, { '/leaf.crt': '$$SCONE::leaf.crt$$' }), owner);
    const leaf = (await cas.attestApi('wd')).files['/leaf.crt']!;
    const update = `${policy('wdx', exporter(''), files)}predecessor: ${first.hash}\n`;
    await writeSession(cas.ctx, update, owner);
    time.at = twoThirds(leaf) + 1;
    const released = await cas.attestApi('wd');
    assert.deepEqual([released.files['/leaf.crt'], released.renewed], [leaf, []]);
    // The exporter's CA (its own key at hand) still counts: its renewal point, not "now".
    assert.ok(released.renewAt! > time.at, `renew_at ${released.renewAt} lies ahead of ${time.at}`);
  });

  it('two replicas renewing at once agree on one certificate', async () => {
    const wrap = racing(2);
    const [a, b] = [shared.open(time, wrap), shared.open(time, wrap)];
    time.at = Date.now();
    await writeSession(a.ctx, policy('race', LEAF_SECRETS, FILES), owner);
    const leaf = (await a.attestApi('race')).files['/tls/api.crt'];
    time.at = twoThirds(leaf) + 1;
    const [x, y] = await Promise.all([a.attestApi('race'), b.attestApi('race')]);
    assert.notEqual(x.files['/tls/api.crt'], leaf);
    assert.equal(x.files['/tls/api.crt'], y.files['/tls/api.crt']);
    assert.deepEqual([x.renewed, y.renewed], [['leaf'], ['leaf']]);
    assert.equal((await cas.attestApi('race')).files['/tls/api.crt'], x.files['/tls/api.crt']);
  });

  it('a session update starts over from its own certificates; a backup keeps the renewal', async () => {
    time.at = Date.now();
    const { hash } = await writeSession(cas.ctx, policy('upd', LEAF_SECRETS, FILES), owner);
    const leaf = (await cas.attestApi('upd')).files['/tls/api.crt'];
    time.at = twoThirds(leaf) + 1;
    const renewed = (await cas.attestApi('upd')).files['/tls/api.crt'];
    const dataDir = join(scratch, 'restored');
    const restored = openSqliteStore({ dataDir, masterKey: loadMasterKey({ dataDir }) });
    after(() => restored.close());
    await restored.load(cas.ctx.store.dump());
    const fromBackup = await casOf({ store: restored, now: time.now, audit: memoryAuditLog() }).attestApi('upd');
    assert.deepEqual([fromBackup.files['/tls/api.crt'], fromBackup.renewed], [renewed, []]);
    const update = `${policy('upd', LEAF_SECRETS, FILES)}predecessor: ${hash}\n`;
    await writeSession(cas.ctx, update, owner);
    const updated = await cas.attestApi('upd');
    assert.deepEqual(updated.renewed, []);
    assert.notEqual(updated.files['/tls/api.crt'], renewed);
    assert.notEqual(spkiOf(updated.files['/tls/api.crt']), spkiOf(renewed), 'an update issues with a new key');
    assert.ok(Date.parse(certOf(updated.files['/tls/api.crt']).validFrom) > Date.parse(certOf(leaf).validFrom));
  });
});

describe('public certificates renewed when read', () => {
  const time = clock();
  const cas = sharedDir('veil-renewal-public-').open(time);

  it('GET /v1/values gives expires and renew, and renews a certificate read past two thirds', async () => {
    const secrets = [
      '{name: key, kind: private-key}',
      '{name: pub, kind: x509-ca, private_key: key, valid_for: 30s, export_public: true}',
      '{name: pw, kind: ascii, export_public: true}',
    ];
    await writeSession(cas.ctx, policy('pub', secrets, { '/pw': '$$SCONE::pw$$' }), owner);
    const first = (await publicValues(cas.ctx, 'pub')).values;
    const pub = first['pub']!;
    assert.equal(pub.expires, new Date(certOf(pub.value).validTo).toISOString());
    assert.equal(pub.renew, new Date(Math.floor(twoThirds(pub.value))).toISOString());
    assert.deepEqual([first['pw']?.expires, first['pw']?.renew], [null, null]);
    time.at = twoThirds(pub.value) - 1_000;
    assert.equal((await publicValue(cas.ctx, 'pub', 'pub')).value, pub.value);
    time.at = twoThirds(pub.value) + 1;
    const renewed = await publicValue(cas.ctx, 'pub', 'pub');
    assert.notEqual(renewed.value, pub.value);
    assert.equal(spkiOf(renewed.value), spkiOf(pub.value));
    assert.ok(Date.parse(renewed.renew!) > time.at);
    assert.equal((await publicValues(cas.ctx, 'pub')).values['pub']?.value, renewed.value);
  });
});

describe('renew_at over HTTP', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-renew-at-'));
  let cas: RunningCas | undefined;
  after(async () => {
    await cas?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the answer carries renew_at: when the first certificate released is at 2/3 of its lifetime', async () => {
    cas = await startCas({ host: '127.0.0.1', port: 0, dataDir: dir, logLevel: 'silent' });
    const who = ephemeral();
    const created = await post(cas, who, '/v1/sessions', policy('http', LEAF_SECRETS, FILES));
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const rt = ephemeral();
    const nonce = (await post(cas, rt, '/v1/attest/nonce', '')).json.nonce as string;
    const evidence = simulationFor(nonce, rt.spki);
    const res = await post(cas, rt, '/v1/attest', JSON.stringify({ config_id: 'http/api', nonce, evidence }));
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const files = new Map<string, string>(
      res.json.injectionFiles.map((f: { path: string; content: string }) => [
        f.path,
        Buffer.from(f.content, 'base64').toString(),
      ]),
    );
    assert.equal(res.json.renew_at, Math.floor(twoThirds(files.get('/tls/api.crt'))));
  });
});
