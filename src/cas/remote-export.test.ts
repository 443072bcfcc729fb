import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { parseSession, type Secret } from '../policy/index.js';
import { generatePrivateKey, issueCertificate, type PrivateKeyMaterial } from '../secrets/index.js';
import { renderConfig } from './config.js';
import type { CasError } from './errors.js';
import { fingerprintOf } from './identity.js';
import { callerFingerprint, exportSecret, releaseRemote } from './remote-export.js';
import { writeSession } from './sessions.js';
import { clientIdentity, tempStore } from './test-store.js';
import { remoteCasList } from './remote-allow.js';
import { cachedVersion } from './session-reader.js';

const DAY = 864e5;
const now = new Date();

function makeCa(commonName = 'importer CA'): { key: PrivateKeyMaterial; certDer: Buffer } {
  const key = generatePrivateKey('P-256');
  const certDer = issueCertificate({
    subjectKey: key,
    commonName,
    isCa: true,
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(now.getTime() + DAY),
  });
  return { key, certDer };
}

function leafOf(
  ca: { key: PrivateKeyMaterial; certDer: Buffer },
  opts: { endpoint?: 'client' | 'server'; days?: number } = {},
) {
  const notAfter = new Date(now.getTime() + (opts.days ?? 1) * DAY);
  return issueCertificate({
    subjectKey: generatePrivateKey('P-256'),
    issuer: ca,
    commonName: 'veil-cas-importer',
    isCa: false,
    endpoint: 'endpoint' in opts ? opts.endpoint : 'client',
    notBefore: new Date(now.getTime() - 2 * DAY),
    notAfter,
  });
}

const refusal = (f: () => unknown, pattern: RegExp) =>
  assert.throws(f, (err: CasError) => err.code === 'CAS_UNAUTHENTICATED' && pattern.test(err.message));

describe('the calling CAS, from the chain it presents', () => {
  const ca = makeCa();

  it('is the SHA-256 of its CA certificate when the CA signed its client certificate', async () => {
    assert.equal(callerFingerprint(leafOf(ca), ca.certDer, now), fingerprintOf(ca.certDer));
  });

  it('is refused when the leaf is not signed by the CA presented (a forged chain)', async () => {
    const other = makeCa('importer CA');
    refusal(() => callerFingerprint(leafOf(other), ca.certDer, now), /not signed by the CA it presented/);
  });

  it('is refused when what it presents as CA is no self-signed CA', async () => {
    const leaf = leafOf(ca);
    refusal(() => callerFingerprint(leaf, leaf, now), /no self-signed CA/);
    refusal(() => callerFingerprint(leaf, undefined, now), /no certificate chain/);
  });

  it('is refused for a leaf that is not for client authentication, or not current', async () => {
    refusal(() => callerFingerprint(leafOf(ca, { endpoint: 'server' }), ca.certDer, now), /clientAuth/);
    refusal(() => callerFingerprint(leafOf(ca, { days: -1 }), ca.certDer, now), /valid only from/);
  });

  it('names another CAS when its CA differs, even with the same subject', async () => {
    const twin = makeCa('importer CA');
    assert.notEqual(callerFingerprint(leafOf(twin), twin.certDer, now), fingerprintOf(ca.certDer));
    assert.equal(new X509Certificate(twin.certDer).subject, new X509Certificate(ca.certDer).subject);
  });
});

const F = 'f1'.repeat(32);
const G = 'a7'.repeat(32);
const H = '3c'.repeat(32);
const specWith = (exportYaml: string): Secret =>
  parseSession(`name: e\nsecrets:\n  - {name: s, kind: ascii, export: ${exportYaml}}\n`).secrets![0]!;

describe('the export rule for a session of another CAS', () => {
  const importer = { fingerprint: F, session: 'flask', hash: H };

  it('releases to the session an export names on the CAS it names by cas_key', async () => {
    assert.equal(releaseRemote(specWith(`[{session: flask, cas_key: ${F}}]`), importer), undefined);
    assert.equal(releaseRemote(specWith(`[{session: flask, cas_key: ${F.toUpperCase()}}]`), importer), undefined);
    assert.equal(releaseRemote(specWith(`["cas2.example/cas_key=${F},session=flask"]`), importer), undefined);
  });

  it('refuses another CAS (wrong fingerprint) and another session', async () => {
    assert.equal(releaseRemote(specWith(`[{session: flask, cas_key: ${G}}]`), importer), 'not-exported');
    assert.equal(releaseRemote(specWith(`[{session: flask2, cas_key: ${F}}]`), importer), 'not-exported');
    assert.equal(releaseRemote(specWith(`[{session: flas, cas_key: ${F}}]`), importer), 'not-exported');
  });

  it('never takes a local target (by session or namespace) for a session of another CAS', async () => {
    assert.equal(releaseRemote(specWith('[{session: flask}]'), importer), 'not-exported');
    assert.equal(releaseRemote(specWith('[{namespace: fl}]'), { ...importer, session: 'fl/ask' }), 'not-exported');
  });

  it('releases a pinned export only to the version whose hash the importing CAS sends', async () => {
    const pinned = specWith(`[{session: flask, cas_key: ${F}, session_hash: ${H}}]`);
    assert.equal(releaseRemote(pinned, importer), undefined);
    assert.equal(releaseRemote(pinned, { ...importer, hash: 'd4'.repeat(32) }), 'pin');
  });
});

describe('exporting to another CAS, from the store', () => {
  const { ctx } = tempStore('veil-remote-export-');
  const owner = clientIdentity('owner');
  const redis = [
    'name: redis',
    'secrets:',
    `  - {name: key, kind: private-key, export: [{session: flask, cas_key: ${F}}]}`,
    '  - {name: ca_key, kind: private-key}',
    '  - {name: ca, kind: x509-ca, private_key: ca_key}',
    `  - {name: cert, kind: x509, issuer: ca, private_key: key, export: [{session: flask, cas_key: ${F}}]}`,
    '  - {name: other_key, kind: private-key}',
    `  - {name: lone, kind: x509, issuer: ca, private_key: other_key, export: [{session: flask, cas_key: ${F}}]}`,
    '',
  ].join('\n');
  const ask = async (secret: string, fingerprint = F, session = 'flask') =>
    await exportSecret(ctx, { session: 'redis', secret, importer: { session, session_hash: H } }, fingerprint);

  it('gives a certificate with its chain, and its key when that key is exported too', async () => {
    await writeSession(ctx, redis, owner);
    const answer = (await ask('cert')).secret;
    assert.equal(answer.kind, 'x509');
    assert.ok(answer.kind === 'x509' && answer.chain.length === 1 && answer.private_key?.key_type === 'P-256');
    const lone = (await ask('lone')).secret;
    assert.ok(lone.kind === 'x509' && lone.private_key === undefined);
  });

  it('refuses, with one answer, a secret not exported, missing, or asked by another CAS or session', async () => {
    const denied = (f: () => Promise<unknown>) =>
      assert.rejects(f, (e: CasError) => e.code === 'CAS_IMPORT_DENIED' && /is not exported to it/.test(e.message));
    await denied(() => ask('ca_key'));
    await denied(() => ask('nothing'));
    await denied(() => ask('cert', G));
    await denied(() => ask('cert', F, 'other'));
  });

  it('fills the session cache only with an export released, never with a refused one', async () => {
    const { hash } = await writeSession(ctx, redis.replace('name: redis', 'name: redis-cold'), owner);
    const askCold = (fingerprint: string) =>
      exportSecret(
        ctx,
        { session: 'redis-cold', secret: 'cert', importer: { session: 'flask', session_hash: H } },
        fingerprint,
      );
    await assert.rejects(askCold(G), (e: CasError) => e.code === 'CAS_IMPORT_DENIED');
    assert.equal(cachedVersion(ctx.store, 'redis-cold'), undefined);
    await askCold(F);
    assert.equal(cachedVersion(ctx.store, 'redis-cold'), hash);
  });

  it('never releases a remote target to a local session of the same name', async () => {
    const flask = [
      'name: flask',
      'services: [{name: s, command: "run $$SCONE::k$$"}]',
      'secrets: [{name: k, import: {session: redis, secret: key}}]',
      '',
    ].join('\n');
    await writeSession(ctx, flask, owner);
    await assert.rejects(
      () => renderConfig(ctx.store, 'flask', 's'),
      (e: CasError) => e.code === 'CAS_IMPORT_DENIED',
    );
  });

  it('never resolves an import from another CAS against a local session of the same name', async () => {
    const local = 'name: lib\nsecrets:\n  - {name: key, kind: private-key, export: [{session: flask3}]}\n';
    await writeSession(ctx, local, owner);
    const flask = [
      'name: flask3',
      'services: [{name: s, command: "run $$SCONE::k$$"}]',
      `secrets: [{name: k, import: {cas_url: c.example, cas_key: ${G}, session: lib, secret: key}}]`,
      '',
    ].join('\n');
    await writeSession({ ...ctx, remoteCas: remoteCasList([{ url: 'c.example', key: G }]) }, flask, owner);
    await assert.rejects(
      () => renderConfig(ctx.store, 'flask3', 's'),
      (e: CasError) => e.code === 'CAS_POLICY_INVALID' && /imported from the CAS at c\.example/.test(e.message),
    );
  });
});
