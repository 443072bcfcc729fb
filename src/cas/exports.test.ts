import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSession, sessionHash, type Secret } from '../policy/index.js';
import { renderConfig } from './config.js';
import type { CasError } from './errors.js';
import type { ClientIdentity } from './identity-of.js';
import { isExportedTo } from './secret-view.js';
import { readSession, writeSession } from './sessions.js';
import { clientIdentity, tempStore } from './test-store.js';

const { store, ctx } = tempStore('veil-exports-');

const identity = clientIdentity;
const owner = identity('owner');
const attacker = identity('attacker');
const team = identity('team');

/** The seed's Redis side: the client key exported by name to a Flask session that may not exist yet. */
const redis = (name: string, target: string, extra = '') =>
  [
    `name: ${name}`,
    extra,
    'secrets:',
    `  - {name: redis_client_key, kind: private-key, export: [{session: ${target}}]}`,
    '  - {name: redis_ca_key, kind: private-key}',
    `  - {name: redis_ca_cert, kind: x509-ca, private_key: redis_ca_key, export: [{session: ${target}}]}`,
    '',
  ].join('\n');

const flask = (name: string, from: string, extra = '') =>
  [
    `name: ${name}`,
    extra,
    'services:',
    '  - name: s',
    '    command: run $$SCONE::key$$',
    'secrets:',
    `  - {name: key, import: {session: ${from}, secret: redis_client_key}}`,
    '',
  ].join('\n');

const refusal = (re: RegExp) => (e: CasError) => e.code === 'CAS_IMPORT_DENIED' && re.test(e.message);
const RULE = new RegExp(
  'without session_hash reaches only a session whose creator and every identity in its ' +
    'access_policy.update the exporter trusts',
);

describe('exports by name cannot be squatted', () => {
  it('refuses the key to a Flask session a stranger created first, naming the rule', async () => {
    await writeSession(ctx, redis('redis', 'flask'), owner);
    await writeSession(ctx, flask('flask', 'redis'), attacker);
    await assert.rejects(() => renderConfig(store, 'flask', 's'), refusal(RULE));
  });

  it("releases it to the session the exporter's owner created (the seed's upload order)", async () => {
    await writeSession(ctx, redis('redis2', 'flask2'), owner);
    await writeSession(ctx, flask('flask2', 'redis2'), owner);
    assert.match((await renderConfig(store, 'flask2', 's')).command[1]!, /BEGIN PRIVATE KEY/);
  });

  it('refuses an importer that someone the exporter does not trust may update', async () => {
    await writeSession(ctx, redis('redis3', 'flask3'), owner);
    await writeSession(
      ctx,
      flask('flask3', 'redis3', `access_policy: {update: [CREATOR, ${attacker.keyHash}]}`),
      owner,
    );
    await assert.rejects(() => renderConfig(store, 'flask3', 's'), refusal(RULE));
    await writeSession(ctx, redis('redis4', 'flask4'), owner);
    await writeSession(ctx, flask('flask4', 'redis4', 'access_policy: {update: [ANY]}'), owner);
    await assert.rejects(() => renderConfig(store, 'flask4', 's'), refusal(RULE));
    await writeSession(ctx, redis('redis5', 'flask5'), owner);
    await writeSession(ctx, flask('flask5', 'redis5', 'access_policy: {update: [NONE]}'), owner);
    assert.match((await renderConfig(store, 'flask5', 's')).command[1]!, /BEGIN PRIVATE KEY/);
  });

  it('trusts the identities the exporter lets update it', async () => {
    await writeSession(ctx, redis('redis6', 'flask6', `access_policy: {update: [CREATOR, ${team.keyHash}]}`), owner);
    await writeSession(ctx, flask('flask6', 'redis6'), team);
    assert.match((await renderConfig(store, 'flask6', 's')).command[1]!, /BEGIN PRIVATE KEY/);
  });

  it('applies the rule to private keys reached through an imported certificate too', async () => {
    const caKey = '{name: redis_ca_key, kind: private-key';
    await writeSession(
      ctx,
      redis('redis7', 'flask7').replace(`${caKey}}`, `${caKey}, export: [{session: flask7}]}`),
      owner,
    );
    const leaf = [
      'name: flask7',
      'secrets:',
      '  - {name: ca, import: {session: redis7, secret: redis_ca_cert}}',
      '  - {name: k, kind: private-key}',
      '  - {name: mine, kind: x509, private_key: k, issuer: ca}',
      '',
    ].join('\n');
    await assert.rejects(writeSession(ctx, leaf, attacker), refusal(RULE));
    assert.equal((await writeSession(ctx, leaf, owner)).created, true);
  });
});

describe('session_hash pins', () => {
  const pinned = (target: string, hash: string) =>
    redis(`exp-${target}`, target).replaceAll(`{session: ${target}}`, `{session: ${target}, session_hash: ${hash}}`);

  it("release the secret only while the importer's current hash is the pinned one, whoever created it", async () => {
    const importer = flask('pin-a', 'exp-pin-a');
    const expected = sessionHash(parseSession(importer), team.keyHash); // veil session calculate-hash, as team
    await writeSession(ctx, pinned('pin-a', expected), owner);
    assert.equal((await writeSession(ctx, importer, team)).hash, expected);
    assert.match((await renderConfig(store, 'pin-a', 's')).command[1]!, /BEGIN PRIVATE KEY/);
    // A pin does not follow updates: the exporter reviews each new version and pins it again.
    await writeSession(ctx, `${importer}predecessor: ${expected}\n`, team);
    await assert.rejects(() => renderConfig(store, 'pin-a', 's'), refusal(/session_hash pin must equal/));
    const exporterHash = (await readSession(ctx, 'exp-pin-a', undefined, owner)).hash;
    const next = (await store.current('pin-a'))!.hash;
    await writeSession(ctx, `${pinned('pin-a', next)}predecessor: ${exporterHash}\n`, owner);
    assert.match((await renderConfig(store, 'pin-a', 's')).command[1]!, /BEGIN PRIVATE KEY/);
  });

  it('refuse a squatter whose session does not have the pinned hash, even when created first', async () => {
    const legit = flask('pin-b', 'exp-pin-b');
    await writeSession(ctx, pinned('pin-b', sessionHash(parseSession(legit), team.keyHash)), owner);
    await writeSession(ctx, flask('pin-b', 'exp-pin-b', 'security: {attestation: {mode: none}}'), attacker);
    await assert.rejects(() => renderConfig(store, 'pin-b', 's'), refusal(/session_hash pin must equal/));
  });

  it('refuse a squatter who uploads the pinned text itself, with values of his own: the pin names the owner', async () => {
    // Explicit values are not in the hash, so without the creator in it the squatter's copy would match.
    const legit = flask('pin-c', 'exp-pin-c');
    await writeSession(ctx, pinned('pin-c', sessionHash(parseSession(legit), team.keyHash)), owner);
    const copy = await writeSession(ctx, legit, attacker);
    assert.notEqual(copy.hash, sessionHash(parseSession(legit), team.keyHash));
    await assert.rejects(() => renderConfig(store, 'pin-c', 's'), refusal(/session_hash pin must equal/));
  });
});

describe('namespace exports and what import errors tell', () => {
  it('an export to namespace ns reaches ns/… only, never ns itself or ns-evil/…', async () => {
    const text = 'name: lib\nsecrets:\n  - {name: pw, kind: ascii, export: {namespace: ns}}\n';
    const spec = parseSession(text).secrets![0] as Secret;
    assert.equal(isExportedTo(spec, 'lib', 'ns/app'), true);
    assert.equal(isExportedTo(spec, 'lib', 'ns/deep/app'), true);
    assert.equal(isExportedTo(spec, 'lib', 'ns-evil/app'), false);
    assert.equal(isExportedTo(spec, 'lib', 'nsx'), false);
    assert.equal(isExportedTo(spec, 'lib', 'ns'), false);
  });

  it('tells why only to a reader of the exporter; one answer to others for missing, not exported, untrusted', async () => {
    const ca = (name: string, exports: string) =>
      [
        `name: ${name}`,
        'secrets:',
        `  - {name: ca_key, kind: private-key${exports}}`,
        `  - {name: ca, kind: x509-ca, private_key: ca_key${exports}}`,
        '',
      ].join('\n');
    await writeSession(ctx, ca('closed', ''), owner);
    await writeSession(ctx, ca('open', ', export: [{session: probe}]'), owner);
    const leaf = (from: string) =>
      [
        'name: probe',
        'secrets:',
        '  - {name: k, kind: private-key}',
        `  - {name: c, import: {session: ${from}, secret: ca}}`,
        '  - {name: l, kind: x509, private_key: k, issuer: c}',
        '',
      ].join('\n');
    const messageOf = async (from: string, who: ClientIdentity) => {
      try {
        await writeSession(ctx, leaf(from), who);
      } catch (e) {
        return (e as CasError).message.replaceAll(`'${from}'`, "'X'");
      }
      return 'accepted';
    };
    const stranger = await Promise.all(['nowhere', 'closed', 'open'].map((from) => messageOf(from, attacker)));
    assert.equal(new Set(stranger).size, 1, stranger.join('\n'));
    assert.match(stranger[0]!, RULE);
    assert.match(await messageOf('closed', owner), /'X' does not export it to 'probe'/);
  });
});
