import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateKey } from 'openpgp';
import { Agent, request } from 'undici';
import { simulationMeasurement } from '../attestation/index.js';
import { signedSimulation, testHost } from '../attestation/testing.js';
import { parseWrittenSession, sessionHash, substituteVariables } from '../policy/index.js';
import { identityFromPem } from './identity-of.js';
import { startCas, type RunningCas } from './server.js';
import { ephemeral, post, type Identity, type TestJson } from './testing.js';

const program = simulationMeasurement(Buffer.from('runtime'), Buffer.from('gpg'));
const host = testHost();
const fixture = (name: string, session: string, mrenclave = program) =>
  substituteVariables(readFileSync(`testdata/scone/kinds/${name}.yaml`, 'utf8'), {
    SESSION: session,
    MRENCLAVE: mrenclave,
    PLATFORM: host.id,
  });

describe('the CAS with pgp-key and config-fragment secrets', () => {
  const dir = mkdtempSync(join(tmpdir(), 'veil-kinds-'));
  let cas: RunningCas;
  const owner = ephemeral();
  const reader = ephemeral();
  const stranger = ephemeral();
  const upload = (who: Identity, text: string) => post(cas, who, '/v1/sessions', text);
  async function get(who: Identity | undefined, path: string): Promise<{ status: number; json: TestJson }> {
    const cert = who ? { cert: who.certPem, key: who.keyPem } : {};
    const agent = new Agent({ connect: { ca: cas.identity.caCertPem, ...cert } });
    try {
      const res = await request(`${cas.url}${path}`, { dispatcher: agent });
      return { status: res.statusCode, json: (await res.body.json()) as TestJson };
    } finally {
      await agent.close();
    }
  }
  async function attest(configId: string, measurement = program, by = host) {
    const rt = ephemeral();
    const nonce = (await post(cas, rt, '/v1/attest/nonce', '')).json.nonce as string;
    const evidence = signedSimulation(by, measurement, { nonce: Buffer.from(nonce, 'hex'), spki: rt.spki });
    return post(cas, rt, '/v1/attest', JSON.stringify({ config_id: configId, nonce, evidence }));
  }
  const file = (config: TestJson, path: string) =>
    Buffer.from(config.injectionFiles.find((f: { path: string }) => f.path === path).content, 'base64');

  before(async () => {
    cas = await startCas({ host: '127.0.0.1', port: 0, dataDir: dir });
  });
  after(async () => {
    await cas?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives an attesting service its pgp key, which GnuPG imports and signs with; never in a read-back', async () => {
    assert.equal((await upload(owner, fixture('pgp-key', 'pgp'))).status, 201);
    const res = await attest('pgp/signer');
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const armored = file(res.json, '/keys/private.asc').toString();
    assert.match(armored, /^-----BEGIN PGP PRIVATE KEY BLOCK-----/);
    assert.deepEqual(file(res.json, '/keys/bare.asc').toString(), armored);
    assert.equal(
      file(res.json, '/keys/private.b64').toString(),
      file(res.json, '/keys/private.gpg').toString('base64'),
    );
    assert.equal(res.json.environment.PUBLIC_KEY_BASE64, file(res.json, '/keys/public.gpg').toString('base64'));

    const home = mkdtempSync(join(tmpdir(), 'veil-kinds-gpg-'));
    after(() => rmSync(home, { recursive: true, force: true }));
    const gpg = (...args: string[]) =>
      execFileSync('gpg', ['--batch', '--yes', '--status-fd', '1', ...args], {
        env: { ...process.env, GNUPGHOME: home },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    writeFileSync(join(home, 'k.asc'), armored);
    writeFileSync(join(home, 'm'), 'signed in the enclave');
    gpg('--import', join(home, 'k.asc'));
    gpg('--detach-sign', '--output', join(home, 'm.sig'), join(home, 'm'));
    assert.match(gpg('--verify', join(home, 'm.sig'), join(home, 'm')), /GOODSIG/);

    const back = await get(owner, '/v1/sessions/pgp');
    assert.equal(back.status, 200);
    assert.doesNotMatch(back.json.session, /PGP (PRIVATE|PUBLIC) KEY/);
    // An update keeps the key (reference: "Migration on session update").
    const update = `${fixture('pgp-key', 'pgp')}predecessor: ${back.json.hash}\n`;
    assert.equal((await upload(owner, update)).status, 200);
    const again = await attest('pgp/signer');
    assert.equal(file(again.json, '/keys/private.asc').toString(), armored);
  });

  it('exports a pgp key to another session, which renders the same key from it', async () => {
    const exporter = 'name: pgp-exporter\nsecrets: [{name: k, kind: pgp-key, export: [{session: pgp-importer}]}]\n';
    assert.equal((await upload(owner, exporter)).status, 201);
    const importer = fixture('pgp-key', 'pgp-importer').replace(
      /secrets:\n {2}- name: signing_key\n {4}kind: pgp-key\n/,
      'secrets:\n  - {name: signing_key, import: {session: pgp-exporter, secret: k}}\n',
    );
    assert.match(importer, /import: \{session: pgp-exporter/);
    assert.equal((await upload(owner, importer)).status, 201);
    const res = await attest('pgp-importer/signer');
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.match(file(res.json, '/keys/public.asc').toString(), /^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    const other = await attest('pgp/signer');
    assert.notEqual(file(res.json, '/keys/private.asc').toString(), file(other.json, '/keys/private.asc').toString());
  });

  it('publishes only the public half of an export_public pgp key', async () => {
    const text = 'name: pgp-public\nsecrets: [{name: k, kind: pgp-key, export_public: true}]\n';
    assert.equal((await upload(owner, text)).status, 201);
    const value = await get(undefined, '/v1/values/session=pgp-public,secret=k');
    assert.equal(value.status, 200);
    assert.equal(value.json.kind, 'pgp-key');
    assert.match(value.json.value, /^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    assert.doesNotMatch(JSON.stringify(value.json), /PRIVATE/);
  });

  it('keeps an explicit pgp key out of read-backs, and keeps it when the read-back is uploaded again', async () => {
    const { privateKey } = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: 'e' }] });
    const indented = privateKey
      .trim()
      .split('\n')
      .map((l) => `      ${l}`)
      .join('\n');
    const text = `name: pgp-explicit\nsecrets:\n  - name: k\n    kind: pgp-key\n    value: |\n${indented}\n`;
    assert.equal((await upload(owner, text)).status, 201, 'created');
    const back = await get(owner, '/v1/sessions/pgp-explicit');
    assert.doesNotMatch(back.json.session, /PGP PRIVATE KEY/);
    assert.match(back.json.session, /value: <redacted>/);
    const again = back.json.session.replace(/^creator:[\s\S]*$/m, '') + `predecessor: ${back.json.hash}\n`;
    assert.equal((await upload(owner, again)).status, 200, 'the read-back uploaded as an update');
  });

  it('enforces an attestation section filled in by a config-fragment', async () => {
    assert.equal((await upload(owner, fixture('config-fragment-attestation', 'frag'))).status, 201);
    assert.equal((await attest('frag/api')).status, 200);
    const other = await attest('frag/api', 'cd'.repeat(32));
    assert.equal(other.status, 403);
    assert.match(other.json.error.message, new RegExp(`Unexpected enclave measurement .* Expected ${program}`));
    // The read-back shows the session as written: the fragment's value redacted, the section a placeholder.
    const back = (await get(owner, '/v1/sessions/frag')).json.session as string;
    assert.match(back, /attestation: \$\$SCONE::api_attestation\$\$/);
    assert.doesNotMatch(back, new RegExp(program));
  });

  it('enforces access_policy entries filled in by a config-fragment, in reads and in the listing', async () => {
    const text = [
      'name: acl',
      'access_policy: {read: [CREATOR, $$SCONE::readers$$], update: [$$SCONE::updaters$$]}',
      'secrets:',
      `  - {name: readers, kind: config-fragment, value: [${identityFromPem(reader.certPem).keyHash}]}`,
      '  - {name: updaters, kind: config-fragment, value: [NONE]}',
      '',
    ].join('\n');
    const created = await upload(owner, text);
    assert.equal(created.status, 201);
    assert.equal((await get(reader, '/v1/sessions/acl')).status, 200);
    assert.equal((await get(stranger, '/v1/sessions/acl')).status, 403);
    const listed = (await get(reader, '/v1/sessions')).json;
    assert.ok(JSON.stringify(listed).includes('"acl"'), JSON.stringify(listed));
    // update: [NONE] came from the fragment: not even the creator may update now.
    const update = await upload(owner, `${text}predecessor: ${created.json.hash}\n`);
    assert.equal(update.status, 403);
  });

  it('refuses a fragment whose section does not pass the schema, naming the fragment', async () => {
    const text = [
      'name: bad-frag',
      'security: $$SCONE::sec$$',
      'secrets: [{name: sec, kind: config-fragment, value: {attestation: {mode: none}, extra: 1}}]',
      '',
    ].join('\n');
    const res = await upload(owner, text);
    assert.equal(res.status, 400);
    assert.equal(res.json.error.code, 'CAS_POLICY_INVALID');
    assert.match(res.json.error.message, /extra.*with config-fragments 'sec' filled in/s);
  });

  it('fills in an imported config-fragment, fetched under the export rules', async () => {
    const exporter = [
      'name: measurements',
      'secrets:',
      '  - name: api_identity',
      '    kind: config-fragment',
      `    value: {mrenclave: ${program}}`,
      '    export: [{session: importer}]',
      '',
    ].join('\n');
    assert.equal((await upload(owner, exporter)).status, 201);
    const importer = (name: string) =>
      [
        `name: ${name}`,
        'services:',
        `  - {name: api, attestation: $$SCONE::id$$, platforms: [${host.id}], command: gpg}`,
        'secrets:',
        '  - {name: id, kind: config-fragment, import: {session: measurements, secret: api_identity}}',
        'security: {attestation: {mode: none}}',
        '',
      ].join('\n');
    assert.equal((await upload(owner, importer('importer'))).status, 201);
    assert.equal((await attest('importer/api')).status, 200);
    assert.equal((await attest('importer/api', 'ef'.repeat(32))).status, 403);
    // Not exported to this one: refused at upload, before anything is stored.
    const denied = await upload(owner, importer('elsewhere'));
    assert.equal(denied.status, 403);
    assert.equal(denied.json.error.code, 'CAS_IMPORT_DENIED');
  });

  it('judges an importer whose access_policy an imported fragment fills as one anyone may update', async () => {
    const acl = (name: string, pin = '') =>
      [
        `name: ${name}`,
        'secrets:',
        `  - {name: acl, kind: config-fragment, value: {read: [CREATOR]}, export: [{session: acl-user${pin}}]}`,
        '',
      ].join('\n');
    const user =
      'name: acl-user\naccess_policy: $$SCONE::acl$$\n' +
      'secrets: [{name: acl, kind: config-fragment, import: {session: acls, secret: acl}}]\n';
    assert.equal((await upload(owner, acl('acls'))).status, 201);
    // The same owner, exported by name: still refused, since the fragment could say update: [ANY].
    const refused = await upload(owner, user);
    assert.equal(refused.status, 403, JSON.stringify(refused.json));
    assert.match(refused.json.error.message, /does not trust/);
    // A session_hash pin names exactly the importer the exporter reviewed.
    assert.equal((await upload(owner, acl('acls-pinned'))).status, 201);
    const pinnedUser = user.replace('session: acls,', 'session: acls-pinned,');
    const userHash = sessionHash(parseWrittenSession(pinnedUser), identityFromPem(owner.certPem).keyHash);
    const current = (await get(owner, '/v1/sessions/acls-pinned')).json.hash as string;
    const pinned = `${acl('acls-pinned', `, session_hash: ${userHash}`)}predecessor: ${current}\n`;
    assert.equal((await upload(owner, pinned)).status, 200);
    assert.equal((await upload(owner, pinnedUser)).status, 201);
  });

  it('renders platform IDs given by binary, ascii and config-fragment secrets', async () => {
    const text = (name: string, entry: string, extra = '') =>
      [
        `name: ${name}`,
        'services:',
        `  - {name: api, mrenclaves: [${program}], platforms: ["${entry}"], command: gpg}`,
        'secrets:',
        `  - {name: bin, kind: binary, value: "${host.id}"}`,
        `  - {name: txt, kind: ascii, value: "${host.id}"}`,
        `  - {name: frag, kind: config-fragment, value: ["${host.id}"]}`,
        '  - {name: short, kind: ascii, value: "not-an-id"}',
        extra,
        'security: {attestation: {mode: none}}',
        '',
      ].join('\n');
    for (const [name, entry] of [
      ['p-bin', '$$SCONE::bin$$'],
      ['p-hex', '$$SCONE::bin:hex$$'],
      ['p-txt', '$$SCONE::txt$$'],
      ['p-frag', '$$SCONE::frag$$'],
    ] as const) {
      assert.equal((await upload(owner, text(name, entry))).status, 201, name);
      assert.equal((await attest(`${name}/api`)).status, 200, name);
      assert.equal((await attest(`${name}/api`, program, testHost())).status, 403, `${name}: another host`);
    }
    assert.equal((await upload(owner, text('p-short', '$$SCONE::short$$'))).status, 201);
    const short = await attest('p-short/api');
    assert.equal(short.json.error.code, 'CAS_RENDER_FAILED');
    assert.match(short.json.error.message, /platforms\[0\] .* does not give a platform ID/);
    assert.doesNotMatch(short.json.error.message, /not-an-id/);
    // Hardware evidence carries no platform ID to match: a service listing platforms refuses it, never ignores them.
    const rt = ephemeral();
    const nonce = (await post(cas, rt, '/v1/attest/nonce', '')).json.nonce as string;
    const evidence = { type: 'tdx', quote: Buffer.alloc(64).toString('base64') };
    const hw = await post(cas, rt, '/v1/attest', JSON.stringify({ config_id: 'p-bin/api', nonce, evidence }));
    assert.equal(hw.status, 403);
    assert.match(hw.json.error.message, /lists platforms, which are not supported by Veil for hardware evidence/);
    const key = await upload(owner, text('p-key', '$$SCONE::k$$', '  - {name: k, kind: private-key}'));
    assert.equal(key.status, 400);
    assert.match(key.json.error.message, /cannot give a platform ID/);
  });
});
