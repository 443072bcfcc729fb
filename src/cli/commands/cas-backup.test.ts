import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { verifyAuditExport } from '../../audit/verify.js';
import { exportLines } from '../../audit/export.js';
import { loadAuditKey, openAuditLog } from '../../cas/audit-log.js';
import { loadOrCreateCa } from '../../cas/identity.js';
import type { Store } from '../../cas/store/index.js';
import { openSqliteStore } from '../../cas/store/sqlite.js';
import { pemEncode } from '../../secrets/index.js';
import { main } from '../main.js';
import { capture } from '../test-io.js';

const root = mkdtempSync(join(tmpdir(), 'veil-backup-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));

async function veil(args: string[], env: NodeJS.ProcessEnv = {}) {
  const io = capture(env);
  const code = await main(args, io);
  return { code, out: io.stdout, err: io.stderr };
}

/** The store's audit log as an export, verified against its CA: the events, oldest first. */
async function verifiedEvents(store: Store): Promise<Array<{ type: string; backup?: string }>> {
  const key = await loadAuditKey(store, new Date());
  const log = await openAuditLog(store, () => new Date());
  let text = '';
  for await (const line of exportLines(log, { caFingerprint: key.caFingerprint, signer: key.signer, now: new Date() }))
    text += line;
  await log.close();
  const caPem = pemEncode('CERTIFICATE', (await loadOrCreateCa(store, new Date())).certDer);
  await verifyAuditExport(text, { caPem });
  return text
    .trimEnd()
    .split('\n')
    .slice(1, -1)
    .map((l) => JSON.parse(l).event);
}

describe('veil cas backup and restore', () => {
  const source = join(root, 'source');
  const keyFile = join(root, 'master.key');
  writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });

  it('back up with DIR/master.key and restore with --master-key-file, printing the counts', async () => {
    const store = openSqliteStore({ dataDir: source, masterKey: Buffer.alloc(32, 7) });
    await store.append(
      { name: 'a', hash: 'h', predecessor: null, text: 't', creator: 'c', createdAt: 1, secrets: {} },
      null,
    );
    await store.close();
    writeFileSync(join(source, 'master.key'), Buffer.alloc(32, 7).toString('hex'), { mode: 0o600 });
    const out = join(root, 'a.vbk');
    const b = await veil(['cas', 'backup', '--data', source, '--out', out]);
    assert.equal(b.code, 0, b.err);
    assert.match(b.out, /1 versions, 1 sessions \(heads\), 0 blobs/);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    const env = { VEIL_MASTER_KEY: Buffer.alloc(32, 7).toString('hex') };
    const r = await veil(['cas', 'restore', '--in', out, '--data', join(root, 'restored')], env);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /restored .* 1 versions, 1 sessions \(heads\), 0 blobs/);
    const foreign = await veil(['cas', 'restore', '--in', out, '--data', join(root, 'foreign')], {
      VEIL_MASTER_KEY: randomBytes(32).toString('hex'),
    });
    assert.match(foreign.err, /another master key.*\n.*nothing was written \[BACKUP_MASTER_KEY\]/);
    assert.equal(existsSync(join(root, 'foreign')), false, 'a refused restore creates no data directory');
  });

  it('record backup.made in the source and backup.restored after the restored chain, which still verifies', async () => {
    const dir = join(root, 'chained');
    const key = Buffer.alloc(32, 9);
    const store = openSqliteStore({ dataDir: dir, masterKey: key });
    const log = await openAuditLog(store, () => new Date());
    await log.record({ type: 'value.read', session: 'ns/a', secret: 'pw', actor: null });
    await log.close();
    await store.close();
    const env = { VEIL_MASTER_KEY: key.toString('hex') };
    const out = join(root, 'chained.vbk');
    const b = await veil(['cas', 'backup', '--data', dir, '--out', out], env);
    assert.match(b.out, /3 audit entries, .* recorded as audit entry 4/);
    const r = await veil(['cas', 'restore', '--in', out, '--data', join(root, 'chained-restored')], env);
    assert.match(r.out, /3 audit entries; recorded as audit entry 4/);
    const source = openSqliteStore({ dataDir: dir, masterKey: key });
    const restored = openSqliteStore({ dataDir: join(root, 'chained-restored'), masterKey: key });
    const [made, back] = [await verifiedEvents(source), await verifiedEvents(restored)];
    assert.deepEqual(
      made.map((e) => e.type),
      ['key.created', 'key.created', 'value.read', 'backup.made'],
    );
    assert.deepEqual(
      back.map((e) => e.type),
      ['key.created', 'key.created', 'value.read', 'backup.restored'],
    );
    assert.match(made[3]!.backup!, /^[0-9a-f]{64}$/);
    assert.equal(back[3]!.backup, made[3]!.backup, 'both name the one backup file');
    await Promise.all([source.close(), restored.close()]);
  });

  it('never make a master key: without one, restore refuses and creates nothing', async () => {
    const target = join(root, 'keyless');
    const r = await veil(['cas', 'restore', '--in', join(root, 'a.vbk'), '--data', target]);
    assert.equal(r.code, 1);
    assert.match(r.err, /master.key does not exist and no master key was given.*\[STORE_MASTER_KEY\]/s);
    assert.equal(existsSync(target), false);
  });

  it('name a missing data directory as such, before looking for its key', async () => {
    const r = await veil(['cas', 'backup', '--data', join(root, 'typo'), '--out', join(root, 'x.vbk')]);
    assert.match(r.err, /holds no CAS database.*\[STORE_OPEN\]/s);
    assert.equal(existsSync(join(root, 'typo')), false);
  });

  it('refuse a database that does not answer, without printing its password', async () => {
    const url = 'postgres://veil:S3CRET-PW@127.0.0.1:1/cas';
    const r = await veil(['cas', 'backup', '--store', url, '--master-key-file', keyFile, '--out', join(root, 'y')]);
    assert.match(r.err, /postgres:\/\/veil@127\.0\.0\.1:1\/cas.*\[STORE_UNAVAILABLE\]/s);
    assert.ok(!r.err.includes('S3CRET-PW'));
    const bare = await veil(['cas', 'restore', '--in', join(root, 'a.vbk'), '--store', url]);
    assert.match(bare.err, /--store needs the master key.*\[CLI_USAGE\]/s);
    assert.ok(!bare.err.includes('S3CRET-PW'));
  });

  it('take exactly one of --data and --store, and --out or --in', async () => {
    assert.equal((await veil(['cas', 'backup', '--out', 'x'])).code, 2);
    assert.equal((await veil(['cas', 'backup', '--data', source, '--store', 'postgres://h/d', '--out', 'x'])).code, 2);
    assert.equal((await veil(['cas', 'backup', '--data', source])).code, 2);
    assert.equal((await veil(['cas', 'restore', '--data', source])).code, 2);
    assert.deepEqual(
      readdirSync(root).filter((f) => f.endsWith('.tmp')),
      [],
    );
  });
});
