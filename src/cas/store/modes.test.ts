import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type StoreError, loadMasterKey, openSqliteStore, type SessionRecord } from './index.js';

const root = mkdtempSync(join(tmpdir(), 'veil-store-modes-'));
after(() => rmSync(root, { recursive: true, force: true }));
const modeOf = (path: string) => statSync(path).mode & 0o777;
const record: SessionRecord = {
  name: 'a',
  hash: 'h1',
  predecessor: null,
  text: 'name: a\n',
  creator: 'PEM',
  createdAt: 1,
  secrets: {},
};

describe('data directory files', () => {
  it("are the owner's only: directory 0700, database, -wal and -shm 0600 (whatever the umask)", async () => {
    const old = process.umask(0o022);
    try {
      const dataDir = join(root, 'fresh');
      const store = openSqliteStore({ dataDir, masterKey: loadMasterKey({ dataDir }) });
      await store.append(record, null);
      for (const f of ['cas.db', 'cas.db-wal', 'cas.db-shm', 'master.key']) {
        assert.equal(modeOf(join(dataDir, f)), 0o600, f);
      }
      assert.equal(modeOf(dataDir), 0o700);
      await store.close();
    } finally {
      process.umask(old);
    }
  });

  it('narrows a directory and database an older version left readable by others', async () => {
    const dataDir = join(root, 'wide');
    const key = loadMasterKey({ dataDir });
    openSqliteStore({ dataDir, masterKey: key }).close();
    chmodSync(dataDir, 0o755);
    chmodSync(join(dataDir, 'cas.db'), 0o644);
    const store = openSqliteStore({ dataDir, masterKey: key });
    await store.append(record, null);
    assert.equal(modeOf(dataDir), 0o700);
    for (const f of ['cas.db', 'cas.db-wal', 'cas.db-shm']) assert.equal(modeOf(join(dataDir, f)), 0o600, f);
    await store.close();
  });
});

describe('a missing master.key', () => {
  it('is refused, without writing a new key, when the directory holds a database', async () => {
    const dataDir = join(root, 'lost');
    const store = openSqliteStore({ dataDir, masterKey: loadMasterKey({ dataDir }) });
    await store.append(record, null);
    await store.close();
    renameSync(join(dataDir, 'master.key'), join(root, 'backup.key'));
    assert.throws(
      () => loadMasterKey({ dataDir }),
      (e: StoreError) =>
        e.code === 'STORE_MASTER_KEY' && /master\.key is missing/.test(e.message) && /backup/.test(e.hint ?? ''),
    );
    assert.equal(existsSync(join(dataDir, 'master.key')), false);
    assert.deepEqual(
      readdirSync(dataDir).filter((f) => f.includes('key')),
      [],
    );
    renameSync(join(root, 'backup.key'), join(dataDir, 'master.key'));
    const again = openSqliteStore({ dataDir, masterKey: loadMasterKey({ dataDir }) });
    assert.equal((await again.current('a'))?.hash, 'h1');
    await again.close();
  });

  it('is generated for an empty data directory', async () => {
    const dataDir = join(root, 'empty');
    mkdirSync(dataDir);
    assert.equal(loadMasterKey({ dataDir }).length, 32);
    assert.equal(modeOf(join(dataDir, 'master.key')), 0o600);
  });
});
