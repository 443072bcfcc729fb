import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isAllowed } from './access.js';
import { renderConfig } from './config.js';
import type { CasError } from './errors.js';
import { identityFromPem, type ClientIdentity } from './identity-of.js';
import { listSessions, readSession, writeSession } from './sessions.js';
import { tempStore } from './test-store.js';
import { ephemeral } from './testing.js';
import { publicValues } from './values.js';

/** The CAS's access rules, each with a case that passes only while the rule holds. */
const { store, ctx } = tempStore('veil-access-rules-');
const someone = (): ClientIdentity => identityFromPem(ephemeral().certPem);
const [alice, bob, carol] = [someone(), someone(), someone()];
const code = (want: string, pattern?: RegExp) => (e: CasError) =>
  e.code === want && (!pattern || pattern.test(e.message));

describe('access: NONE, ANY and default deny', () => {
  const creator = alice.certPem;
  it('NONE denies everyone, the creator included, whatever else the list holds', async () => {
    for (const list of [['NONE'], ['ANY', 'NONE'], ['NONE', 'ANY'], ['CREATOR', 'NONE'], [bob.keyHash, 'NONE']]) {
      assert.equal(isAllowed({ read: list }, 'read', alice, creator), false, list.join(','));
      assert.equal(isAllowed({ read: list }, 'read', bob, creator), false, list.join(','));
    }
  });

  it('the session language refuses NONE or ANY beside other entries', async () => {
    for (const list of ['[CREATOR, NONE]', '[NONE, ANY]', '[ANY, CREATOR]']) {
      const mixed = `name: mixed\naccess_policy: {read: ${list}}\n`;
      await assert.rejects(writeSession(ctx, mixed, alice), code('CAS_POLICY_INVALID', /must be alone in its list/));
    }
  });

  it('without a policy only the creator may read or update; create_sessions follows update', async () => {
    for (const permission of ['read', 'update', 'create_sessions'] as const) {
      assert.equal(isAllowed(undefined, permission, alice, creator), true, permission);
      assert.equal(isAllowed(undefined, permission, bob, creator), false, permission);
      assert.equal(isAllowed({}, permission, bob, creator), false, permission);
      assert.equal(isAllowed(undefined, permission, undefined, creator), false, permission);
    }
    assert.equal(isAllowed({ update: [bob.keyHash] }, 'create_sessions', bob, creator), true);
    assert.equal(isAllowed({ update: [bob.keyHash] }, 'create_sessions', carol, creator), false);
  });

  it('an entry names one key: a key hash, a certificate; anything else names nobody', async () => {
    const policy = (entry: string) => ({ read: [entry] });
    assert.equal(isAllowed(policy(bob.keyHash), 'read', bob, creator), true);
    assert.equal(isAllowed(policy(bob.keyHash.toUpperCase()), 'read', bob, creator), true);
    assert.equal(isAllowed(policy(bob.keyHash), 'read', carol, creator), false);
    const sameLength = bob.keyHash.slice(0, -1) + (bob.keyHash.endsWith('0') ? '1' : '0');
    assert.equal(isAllowed(policy(sameLength), 'read', bob, creator), false, 'a hash one digit off');
    assert.equal(isAllowed(policy(bob.certPem), 'read', bob, creator), true);
    assert.equal(isAllowed(policy(bob.certPem), 'read', carol, creator), false);
    assert.equal(isAllowed(policy('bob'), 'read', bob, creator), false);
    assert.equal(isAllowed(policy('-----BEGIN CERTIFICATE-----\nbroken'), 'read', bob, creator), false);
  });

  it('ANY admits a client without a certificate only where it is listed', async () => {
    assert.equal(isAllowed({ read: ['ANY'] }, 'read', undefined, creator), true);
    assert.equal(isAllowed({ read: ['ANY'] }, 'update', undefined, creator), false);
  });
});

describe('access: reading sessions', () => {
  it('old versions are judged by the current read policy: revoking read access reaches them', async () => {
    const v1 = (await writeSession(ctx, `name: revoked\naccess_policy: {read: [CREATOR, ${bob.keyHash}]}\n`, alice))
      .hash;
    assert.equal((await readSession(ctx, 'revoked', v1, bob)).hash, v1);
    const v2 = (await writeSession(ctx, `name: revoked\npredecessor: ${v1}\naccess_policy: {read: [CREATOR]}\n`, alice))
      .hash;
    await assert.rejects(() => readSession(ctx, 'revoked', v1, bob), code('CAS_FORBIDDEN'));
    await assert.rejects(() => readSession(ctx, 'revoked', v2, bob), code('CAS_FORBIDDEN'));
    assert.equal((await readSession(ctx, 'revoked', v1, alice)).hash, v1);
  });

  it('granting read access now does not need an old version to have granted it', async () => {
    const v1 = (await writeSession(ctx, 'name: granted\n', alice)).hash;
    await writeSession(
      ctx,
      `name: granted\npredecessor: ${v1}\naccess_policy: {read: [CREATOR, ${bob.keyHash}]}\n`,
      alice,
    );
    assert.equal((await readSession(ctx, 'granted', v1, bob)).hash, v1);
  });

  it('the list shows only what the client may read', async () => {
    await writeSession(ctx, 'name: private-list\n', alice);
    assert.ok((await listSessions(ctx, alice)).some((s) => s.name === 'private-list'));
    assert.ok(!(await listSessions(ctx, bob)).some((s) => s.name === 'private-list'));
    assert.ok(!(await listSessions(ctx, undefined)).some((s) => s.name === 'private-list'));
  });

  it('only a client the update policy names may update', async () => {
    const v1 = (await writeSession(ctx, 'name: guarded\n', alice)).hash;
    const update = `name: guarded\npredecessor: ${v1}\n`;
    await assert.rejects(writeSession(ctx, update, bob), code('CAS_FORBIDDEN', /may not update/));
  });

  it('only a client the namespace names in create_sessions may create a session in it', async () => {
    await writeSession(ctx, `name: team\naccess_policy: {create_sessions: [CREATOR, ${carol.keyHash}]}\n`, alice);
    const refusal = code('CAS_FORBIDDEN', /may not create sessions in namespace 'team'/);
    await assert.rejects(writeSession(ctx, 'name: team/bobs\n', bob), refusal);
    assert.equal((await writeSession(ctx, 'name: team/carols\n', carol)).created, true);
  });

  it('an explicit value never appears in a read-back, of the current or an old version', async () => {
    const secret = 'Sup3r-s3cret-v4lue';
    const ascii = `  - {name: pw, kind: ascii, value: "${secret}"}\n`;
    const binary = `  - {name: bin, kind: binary, value: "${Buffer.from(secret).toString('hex')}"}\n`;
    const v1 = (await writeSession(ctx, `name: valued\nsecrets:\n${ascii}${binary}`, alice)).hash;
    const changed = ascii.replace(secret, `${secret}2`);
    const v2 = (await writeSession(ctx, `name: valued\npredecessor: ${v1}\nsecrets:\n${changed}`, alice)).hash;
    for (const hash of [undefined, v1, v2]) {
      const { session } = await readSession(ctx, 'valued', hash, alice);
      assert.ok(!session.includes(secret), `version ${hash ?? 'current'}`);
      assert.ok(!session.includes(Buffer.from(secret).toString('hex')), `version ${hash ?? 'current'}`);
      assert.match(session, /name: pw/);
    }
  });
});

describe('access: exports, imports and public values', () => {
  const lib = 'name: ns/lib\nsecrets:\n  - {name: pw, kind: ascii, value: "ns-only", export: [{namespace: ns}]}\n';
  const app = (name: string) =>
    `name: ${name}\nservices:\n  - {name: s, command: "run $$SCONE::pw$$"}\n` +
    'secrets:\n  - {name: pw, import: {session: ns/lib, secret: pw}}\n';

  it('an export to namespace ns reaches sessions in ns, and not ns-evil/…', async () => {
    await writeSession(ctx, 'name: ns\n', alice);
    await writeSession(ctx, lib, alice);
    await writeSession(ctx, app('ns/app'), alice);
    assert.deepEqual((await renderConfig(store, 'ns/app', 's')).command, ['run', 'ns-only']);
    // Created by the exporter's own owner, so that only the namespace rule stands between it and the secret.
    await writeSession(ctx, 'name: ns-evil\n', alice);
    await writeSession(ctx, app('ns-evil/app'), alice);
    const denied = code('CAS_IMPORT_DENIED', /is not exported to 'ns-evil\/app'/);
    await assert.rejects(() => renderConfig(store, 'ns-evil/app', 's'), denied);
    await writeSession(ctx, app('nsx'), alice);
    await assert.rejects(() => renderConfig(store, 'nsx', 's'), code('CAS_IMPORT_DENIED'));
  });

  it('an export to a session reaches that session only', async () => {
    await writeSession(
      ctx,
      'name: one-lib\nsecrets:\n  - {name: pw, kind: ascii, export: [{session: one-app}]}\n',
      alice,
    );
    const importer = (name: string) => app(name).replace('ns/lib', 'one-lib');
    await writeSession(ctx, importer('one-app'), alice);
    assert.equal((await renderConfig(store, 'one-app', 's')).command.length, 2);
    // Created by the exporter's own owner, so that only the name rule stands between it and the secret.
    await writeSession(ctx, importer('one-app2'), alice);
    await assert.rejects(() => renderConfig(store, 'one-app2', 's'), code('CAS_IMPORT_DENIED', /not exported to/));
  });

  it('/v1/values shows only secrets marked export_public', async () => {
    const secrets =
      '  - {name: open, kind: ascii, value: "o", export_public: true}\n' +
      '  - {name: closed, kind: ascii, value: "c"}\n';
    await writeSession(ctx, `name: pub\nsecrets:\n${secrets}`, alice);
    assert.deepEqual(Object.keys((await publicValues(ctx, 'pub')).values), ['open']);
  });

  it('a private key is never made public', async () => {
    const leaky = 'name: leaky\nsecrets:\n  - {name: k, kind: private-key, export_public: true}\n';
    await assert.rejects(
      writeSession(ctx, leaky, alice),
      code('CAS_POLICY_INVALID', /private key 'k' cannot be public/),
    );
  });
});
