import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MemoryAuditLog } from './audit-testing.js';
import { identityFromPem } from './identity-of.js';
import { remoteCasList } from './remote-allow.js';
import { RELEASE_MEMO_MAX_ENTRY_BYTES, releaseMemoUse } from './release-memo.js';
import { LEAF_SECRETS, casOf, clock, policy, sharedDir, simulationFor, twoThirds } from './renewal-kit.js';
import { attest } from './attest.js';
import { NonceStore } from './nonces.js';
import { writeSession } from './sessions.js';
import { ephemeral } from './testing.js';

const owner = identityFromPem(ephemeral().certPem);
const SECRETS = [...LEAF_SECRETS, '{name: pw, kind: ascii, size: 16}'];
const FILES = { '/tls/api.crt': '$$SCONE::leaf.crt$$', '/pw': '$$SCONE::pw$$' };

describe('releases kept per exact input (release-memo.ts)', () => {
  const time = clock();
  const shared = sharedDir('veil-release-memo-');

  it('the second attestation of a service is served from the memo, with the same audit entry', async () => {
    const cas = shared.open(time);
    await writeSession(cas.ctx, policy('same', SECRETS, FILES), owner);
    const first = await cas.attestApi('same');
    assert.equal(releaseMemoUse(cas.ctx.store).entries, 1);
    const second = await cas.attestApi('same');
    assert.deepEqual(second, first);
    const [a, b] = (cas.ctx.audit as MemoryAuditLog).events('attestation.released').slice(-2);
    assert.deepEqual(b?.secrets, a?.secrets, 'a release from the memo names the secrets it releases');
    assert.deepEqual(b?.secrets, ['leaf', 'pw']);
    assert.ok(releaseMemoUse(cas.ctx.store).bytes < RELEASE_MEMO_MAX_ENTRY_BYTES);
  });

  it('an update of the session is released at once', async () => {
    const cas = shared.open(time);
    const { hash } = await writeSession(cas.ctx, policy('upd', SECRETS, { '/v': 'one' }), owner);
    assert.equal((await cas.attestApi('upd')).files['/v'], 'one');
    assert.equal((await cas.attestApi('upd')).files['/v'], 'one');
    await writeSession(cas.ctx, `${policy('upd', SECRETS, { '/v': 'two' })}predecessor: ${hash}\n`, owner);
    assert.equal((await cas.attestApi('upd')).files['/v'], 'two');
  });

  it('a renewal another replica stored is released by this one at once', async () => {
    const [a, b] = [shared.open(time), shared.open(time)];
    time.at = Date.now();
    await writeSession(a.ctx, policy('other', SECRETS, FILES), owner);
    const leaf = (await a.attestApi('other')).files['/tls/api.crt']!;
    time.at = twoThirds(leaf) + 1;
    const renewed = await b.attestApi('other');
    assert.deepEqual(renewed.renewed, ['leaf']);
    // Back before the old certificate's renewal point, so that only the stored renewal (a new generation) can
    // tell `a` that its memo entry is stale: the clock alone would not.
    time.at = twoThirds(leaf) - 1_000;
    assert.equal((await a.attestApi('other')).files['/tls/api.crt'], renewed.files['/tls/api.crt']);
  });

  it('a certificate that falls due is renewed although its release is kept', async () => {
    const cas = shared.open(time);
    time.at = Date.now();
    await writeSession(cas.ctx, policy('due', SECRETS, FILES), owner);
    const leaf = (await cas.attestApi('due')).files['/tls/api.crt']!;
    time.at = twoThirds(leaf) - 1;
    assert.equal((await cas.attestApi('due')).files['/tls/api.crt'], leaf);
    time.at = twoThirds(leaf) + 1;
    const renewed = await cas.attestApi('due');
    assert.deepEqual(renewed.renewed, ['leaf']);
    assert.notEqual(renewed.files['/tls/api.crt'], leaf);
  });

  it('secrets from another CAS are rendered as fetched each time, never from the memo', async () => {
    const dir = sharedDir('veil-release-memo-remote-');
    const local = dir.open(time);
    let value = 'first';
    const ctx = {
      ...local.ctx,
      remoteCas: remoteCasList([{ url: '127.0.0.1:1', key: 'ab'.repeat(32) }]),
      remote: async () => ({ kind: 'ascii' as const, value }),
    };
    const cas = casOf(ctx);
    const remote = `{name: token, import: {cas_url: "127.0.0.1:1", cas_key: ${'ab'.repeat(32)}, session: s, secret: t}}`;
    await writeSession(ctx, policy('remote', [remote], { '/token': '$$SCONE::token$$' }), owner);
    assert.equal((await cas.attestApi('remote')).files['/token'], 'first');
    value = 'second';
    assert.equal((await cas.attestApi('remote')).files['/token'], 'second');
    assert.equal(releaseMemoUse(ctx.store).entries, 0);
  });

  it('a kept release cannot be changed by whoever it is handed to', async () => {
    const cas = shared.open(time);
    time.at = Date.now();
    await writeSession(cas.ctx, policy('fixed', SECRETS, FILES), owner);
    const nonces = new NonceStore(cas.ctx.now);
    const release = async () => {
      const rt = identityFromPem(ephemeral().certPem);
      const nonce = nonces.issue(rt.keyHash).toString('hex');
      const request = { config_id: 'fixed/api', nonce, evidence: simulationFor(nonce, rt.spki) };
      return (await attest(cas.ctx, nonces, request, rt)).config;
    };
    await release();
    const kept = await release();
    assert.throws(() => {
      (kept.environment as Record<string, string>)['LD_PRELOAD'] = '/tmp/x.so';
    }, TypeError);
    assert.throws(() => (kept.injectionFiles as unknown[]).push({ path: '/etc/passwd' }), TypeError);
    assert.throws(() => {
      (kept.injectionFiles[0] as { path: string }).path = '/elsewhere';
    }, TypeError);
    assert.deepEqual((await release()).environment, kept.environment);
  });
});
