import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { curl, opensslIdentity, run, startCas, tempDir, type CasProcess } from './harness.js';

type Identity = { cert: string; key: string };

describe('CAS access control, predecessors and namespaces (curl, two identities)', () => {
  const dir = tempDir();
  let cas: CasProcess;
  let alice: Identity;
  let bob: Identity;
  let bobKeyHash: string;

  const post = (who: Identity | undefined, yaml: string) =>
    curl(cas, `${cas.url}/v1/sessions`, { ...(who ? { identity: who } : {}), data: yaml });
  const read = (who: Identity, name: string, hash?: string) =>
    curl(cas, `${cas.url}/v1/sessions/${name}${hash ? `?hash=${hash}` : ''}`, { identity: who });

  before(async () => {
    cas = await startCas(join(dir.path, 'data'), dir.path);
    alice = await opensslIdentity(dir.path, 'alice');
    bob = await opensslIdentity(dir.path, 'bob');
    const spki = await run('sh', [
      '-c',
      `openssl x509 -in ${bob.cert} -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r`,
    ]);
    bobKeyHash = spki.stdout.split(' ')[0]!;
  });
  after(async () => {
    await cas?.stop();
    dir.cleanup();
  });

  it('lets only the creator read and update by default', async () => {
    const created = await post(alice, 'name: private-one\nversion: "0.3"\n');
    assert.equal(created.status, 201, created.body);
    assert.equal((await read(alice, 'private-one')).status, 200);
    const denied = await read(bob, 'private-one');
    assert.equal(denied.status, 403);
    assert.equal(denied.json().error.code, 'CAS_FORBIDDEN');
    const hash = created.json().hash;
    const update = await post(bob, `name: private-one\nversion: "0.3"\npredecessor: ${hash}\n`);
    assert.equal(update.status, 403);
  });

  it('grants access to a PEM certificate and to a key hash named in the policy', async () => {
    const pem = readFileSync(bob.cert, 'utf8')
      .trim()
      .split('\n')
      .map((l) => `      ${l}`)
      .join('\n');
    const yaml = `name: shared-pem\nversion: "0.3"\naccess_policy:\n  read:\n    - CREATOR\n    - |\n${pem}\n  update: [CREATOR]\n`;
    assert.equal((await post(alice, yaml)).status, 201);
    assert.equal((await read(bob, 'shared-pem')).status, 200);

    const byHash = `name: shared-hash\nversion: "0.3"\naccess_policy:\n  read: [CREATOR]\n  update: [CREATOR, ${bobKeyHash}]\n`;
    const created = await post(alice, byHash);
    assert.equal(created.status, 201, created.body);
    assert.equal((await read(bob, 'shared-hash')).status, 403);
    const updated = await post(bob, `${byHash}predecessor: ${created.json().hash}\n`);
    assert.equal(updated.status, 200, updated.body);
    // The creator stays the creator: bob's update does not take the session over.
    assert.equal((await read(alice, 'shared-hash')).status, 200);
  });

  it('honours ANY and NONE', async () => {
    const created = await post(
      alice,
      'name: open-read\nversion: "0.3"\naccess_policy:\n  read: [ANY]\n  update: [NONE]\n',
    );
    assert.equal(created.status, 201, created.body);
    assert.equal((await read(bob, 'open-read')).status, 200);
    const frozen = await post(alice, `name: open-read\nversion: "0.3"\npredecessor: ${created.json().hash}\n`);
    assert.equal(frozen.status, 403, 'NONE forbids updates even to the creator');
    const anon = await curl(cas, `${cas.url}/v1/sessions/open-read`);
    assert.equal(anon.status, 401);
    assert.equal(anon.json().error.code, 'CAS_UNAUTHENTICATED');
  });

  it('enforces the predecessor rules and keeps every version', async () => {
    const first = await post(alice, 'name: versions\nversion: "0.3"\nsecrets:\n  - name: pw\n    kind: ascii\n');
    assert.equal(first.status, 201);
    const again = await post(alice, 'name: versions\nversion: "0.3"\n');
    assert.equal(again.status, 409);
    assert.equal(again.json().error.code, 'CAS_SESSION_EXISTS');
    assert.match(again.json().error.message, new RegExp(first.json().hash));
    const h1 = first.json().hash;
    const second = await post(
      alice,
      `name: versions\nversion: "0.3"\npredecessor: ${h1}\nsecrets:\n  - name: pw\n    kind: ascii\n`,
    );
    assert.equal(second.status, 200, second.body);
    const h2 = second.json().hash;
    assert.notEqual(h1, h2);
    const stale = await post(alice, `name: versions\nversion: "0.3"\npredecessor: ${h1}\n`);
    assert.equal(stale.status, 409);
    assert.equal(stale.json().error.code, 'CAS_STALE_PREDECESSOR');
    assert.match(stale.json().error.message, new RegExp(h2));
    assert.equal((await read(alice, 'versions', h1)).json().hash, h1);
    assert.equal((await read(alice, 'versions')).json().hash, h2);
    const missing = await post(alice, `name: never-created\nversion: "0.3"\npredecessor: ${h1}\n`);
    assert.equal(missing.status, 409);
  });

  it('requires create_sessions on the parent to create a session in a namespace', async () => {
    const orphan = await post(alice, 'name: team/app\nversion: "0.3"\n');
    assert.equal(orphan.status, 404);
    assert.match(orphan.json().error.message, /namespace session 'team'/);
    assert.equal((await post(alice, 'name: team\nversion: "0.3"\n')).status, 201);
    assert.equal((await post(bob, 'name: team/bobs\nversion: "0.3"\n')).status, 403);
    assert.equal((await post(alice, 'name: team/app\nversion: "0.3"\n')).status, 201);
    assert.equal(
      (await post(alice, 'name: open\nversion: "0.3"\naccess_policy:\n  create_sessions: [ANY]\n')).status,
      201,
    );
    assert.equal((await post(bob, 'name: open/bobs\nversion: "0.3"\n')).status, 201);
    assert.equal((await read(alice, 'open/bobs')).status, 403, 'the namespace owner does not read what bob created');
  });

  it('lists only the sessions a client may read', async () => {
    const res = await curl(cas, `${cas.url}/v1/sessions`, { identity: bob });
    const names = res.json().sessions.map((s: { name: string }) => s.name);
    assert.ok(names.includes('open-read') && names.includes('open/bobs'));
    assert.ok(!names.includes('private-one'));
  });
});
