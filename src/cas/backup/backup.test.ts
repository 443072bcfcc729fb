import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openSqliteStore } from '../store/sqlite.js';
import type { StoreError } from '../store/index.js';
import {
  type BackupError,
  decryptBackup,
  encryptBackup,
  readBackupFile,
  restoreBackupFile,
  verifyBackupFile,
  writeBackupFile,
} from './index.js';
import { bytesOf, collect, filledStore, flipped, layout, once, tempRoot } from './test-backup.js';

const root = tempRoot('veil-backup-');
after(() => root.cleanup());
const key = randomBytes(32);

describe('a backup', () => {
  it('round-trips every version, head and blob, over many chunks, in the order of the dump', async () => {
    const store = await filledStore(root.dir(), key, 30);
    const counts = { versions: 0, heads: 0, blobs: 0, audits: 0 };
    const bytes = await bytesOf(encryptBackup(store.dump(), key, { chunkBytes: 1024, counts }));
    assert.deepEqual(counts, { versions: 60, heads: 30, blobs: 2, audits: 0 });
    assert.ok(layout(bytes).length > 10, 'many chunks');
    assert.ok(layout(bytes).every((c, i, all) => c.final === (i === all.length - 1)));
    const read = { versions: 0, heads: 0, blobs: 0, audits: 0 };
    const items = await collect(decryptBackup(once(bytes), key, { counts: read }));
    assert.deepEqual(items, await collect(store.dump()));
    assert.deepEqual(read, counts);
    await store.close();
  });

  it('holds no session text, secret value or blob in plaintext', async () => {
    const store = await filledStore(root.dir(), key, 3);
    const bytes = await bytesOf(encryptBackup(store.dump(), key));
    for (const secret of ['SECRET-VALUE', 'SECRET-TEXT', 'CA-KEY-BLOB', 'ns/s1', 'BEGIN CERTIFICATE']) {
      assert.ok(!bytes.includes(secret), secret);
      assert.ok(!bytes.includes(Buffer.from(secret).toString('base64').slice(0, 8)), `${secret} in base64`);
    }
    await store.close();
  });

  it('of an empty store restores to an empty store', async () => {
    const empty = openSqliteStore({ dataDir: root.dir(), masterKey: key });
    const bytes = await bytesOf(encryptBackup(empty.dump(), key));
    const target = openSqliteStore({ dataDir: root.dir(), masterKey: key });
    assert.deepEqual(await target.load(decryptBackup(once(bytes), key)), {
      versions: 0,
      heads: 0,
      blobs: 0,
      audits: 0,
    });
    await empty.close();
    await target.close();
  });

  it('large records (over a chunk) come back whole', async () => {
    const store = openSqliteStore({ dataDir: root.dir(), masterKey: key });
    const big = randomBytes(300_000);
    await store.putBlobIfAbsent('big', big);
    const bytes = await bytesOf(encryptBackup(store.dump(), key, { chunkBytes: 1024 }));
    const items = await collect(decryptBackup(once(bytes), key));
    assert.deepEqual(items, [{ type: 'blob', key: 'big', value: big }]);
    await store.close();
  });
});

describe('a backup file', () => {
  it('is written 0600 (whatever the umask) and atomically: no temporary file is left', async () => {
    const store = await filledStore(root.dir(), key, 5);
    const out = join(root.path, 'one.vbk');
    const old = process.umask(0o000);
    try {
      const written = await writeBackupFile(store, key, out);
      assert.equal(written.versions, 10);
      assert.equal(written.bytes, statSync(out).size);
    } finally {
      process.umask(old);
    }
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.deepEqual(
      readdirSync(root.path).filter((f) => f.includes('one.vbk')),
      ['one.vbk'],
    );
    assert.deepEqual(await verifyBackupFile(out, key), { versions: 10, heads: 5, blobs: 2, audits: 0 });
    await store.close();
  });

  it('replaces an older backup only once the new one is whole', async () => {
    const out = join(root.path, 'replaced.vbk');
    writeFileSync(out, 'previous backup');
    const store = await filledStore(root.dir(), key, 2);
    const failing = { ...store, dump: () => failingDump(store.dump()) } as typeof store;
    await assert.rejects(() => writeBackupFile(failing, key, out), /dump failed/);
    assert.equal(readFileSync(out, 'utf8'), 'previous backup');
    assert.deepEqual(
      readdirSync(root.path).filter((f) => f.includes('replaced.vbk')),
      ['replaced.vbk'],
    );
    await writeBackupFile(store, key, out);
    assert.equal((await verifyBackupFile(out, key)).heads, 2);
    await store.close();
  });

  it('restores into an empty store: the same sessions, versions, blobs and read index', async () => {
    const source = await filledStore(root.dir(), key, 4);
    const out = join(root.path, 'restore.vbk');
    await writeBackupFile(source, key, out);
    const dataDir = root.dir();
    const counts = await restoreBackupFile(out, key, async () => openSqliteStore({ dataDir, masterKey: key }));
    const { header, ...restored } = counts;
    assert.deepEqual(restored, { versions: 8, heads: 4, blobs: 2, audits: 0 });
    assert.match(header, /^[0-9a-f]{64}$/);
    const target = openSqliteStore({ dataDir, masterKey: key });
    assert.deepEqual(await collect(target.dump()), await collect(source.dump()));
    assert.deepEqual(await target.list(), await source.list());
    assert.deepEqual(await target.listReadable(undefined), await source.listReadable(undefined));
    assert.equal((await target.version('ns/s2', 'h2a'))?.text, (await source.version('ns/s2', 'h2a'))?.text);
    await source.close();
    await target.close();
  });

  it('is refused by a store that is not empty, which keeps what it held', async () => {
    const source = await filledStore(root.dir(), key, 2);
    const out = join(root.path, 'notempty.vbk');
    await writeBackupFile(source, key, out);
    const dataDir = root.dir();
    const other = await filledStore(dataDir, key, 1);
    const before = await collect(other.dump());
    await other.close();
    await assert.rejects(
      () => restoreBackupFile(out, key, async () => openSqliteStore({ dataDir, masterKey: key })),
      (e: StoreError) => e.code === 'STORE_NOT_EMPTY',
    );
    const after = openSqliteStore({ dataDir, masterKey: key });
    assert.deepEqual(await collect(after.dump()), before);
    await after.close();
    await source.close();
  });

  it('that is tampered is refused before the target is even opened', async () => {
    const source = await filledStore(root.dir(), key, 2);
    const out = join(root.path, 'tampered.vbk');
    await writeBackupFile(source, key, out);
    const bytes = readFileSync(out);
    writeFileSync(out, flipped(bytes, layout(bytes).at(-1)!.end - 1));
    let opened = false;
    await assert.rejects(
      () =>
        restoreBackupFile(out, key, async () => {
          opened = true;
          return openSqliteStore({ dataDir: root.dir(), masterKey: key });
        }),
      (e: BackupError) => e.code === 'BACKUP_TAMPERED' && e.message.includes(out) && e.hint !== undefined,
    );
    assert.equal(opened, false);
    await source.close();
  });

  it('that changes between its verification and its load is refused by the load, which writes nothing', async () => {
    const source = await filledStore(root.dir(), key, 3);
    const out = join(root.path, 'changed.vbk');
    await writeBackupFile(source, key, out);
    const bytes = readFileSync(out);
    const dataDir = root.dir();
    await assert.rejects(
      () =>
        restoreBackupFile(out, key, async () => {
          writeFileSync(out, bytes.subarray(0, layout(bytes).at(-1)!.start));
          return openSqliteStore({ dataDir, masterKey: key });
        }),
      (e: BackupError) => e.code === 'BACKUP_TRUNCATED',
    );
    const target = openSqliteStore({ dataDir, masterKey: key });
    assert.deepEqual(await collect(target.dump()), []);
    await target.close();
    await source.close();
  });

  it('that cannot be read or written is BACKUP_IO, naming the file', async () => {
    const missing = join(root.path, 'no-such.vbk');
    await assert.rejects(
      () => verifyBackupFile(missing, key),
      (e: BackupError) => e.code === 'BACKUP_IO' && e.message.includes(missing),
    );
    const store = openSqliteStore({ dataDir: root.dir(), masterKey: key });
    const out = join(root.path, 'no-dir', 'x.vbk');
    await assert.rejects(
      () => writeBackupFile(store, key, out),
      (e: BackupError) => e.code === 'BACKUP_IO' && e.message.includes(out),
    );
    assert.equal(existsSync(join(root.path, 'no-dir')), false);
    await collect(readBackupFile(join(root.path, 'one.vbk'), key));
    await store.close();
  });
});

async function* failingDump<T>(items: AsyncIterable<T>): AsyncGenerator<T> {
  let n = 0;
  for await (const item of items) {
    if (n++ === 3) throw new Error('dump failed');
    yield item;
  }
}
