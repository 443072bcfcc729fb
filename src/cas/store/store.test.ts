import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { after, describe, it } from 'node:test';
import { type StoreError, loadMasterKey, openSqliteStore } from './index.js';
import { record, storeContract, testReaders } from './contract-cases.js';
import { renewalContract } from './renewal-cases.js';

const root = mkdtempSync(join(tmpdir(), 'veil-store-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `d${n++}`);

storeContract('SQLite', async () => {
  const dataDir = freshDir();
  return { open: async (masterKey) => openSqliteStore({ dataDir, masterKey, readers: testReaders }) };
});

renewalContract('SQLite', async () => {
  const dataDir = freshDir();
  return { open: async (masterKey) => openSqliteStore({ dataDir, masterKey, readers: testReaders }) };
});

describe('SQLite store', () => {
  it('writes no session text or secret value in plaintext', async () => {
    const dataDir = freshDir();
    const store = openSqliteStore({ dataDir, masterKey: loadMasterKey({ dataDir }) });
    await store.append(record('plain', 'h1'), null);
    for (const f of readdirSync(dataDir).filter((x) => x.startsWith('cas.db'))) {
      const bytes = readFileSync(join(dataDir, f));
      assert.ok(!bytes.includes('SECRET-VALUE'), f);
      assert.ok(!bytes.includes('SECRET-TEXT'), f);
    }
    await store.close();
  });

  it('detects a wrong master key at open, and a tampered ciphertext at read', async () => {
    const dataDir = freshDir();
    const key = loadMasterKey({ dataDir });
    const store = openSqliteStore({ dataDir, masterKey: key });
    await store.append(record('t', 'h1'), null);
    await store.close();
    assert.throws(
      () => openSqliteStore({ dataDir, masterKey: randomBytes(32) }),
      (e: StoreError) => e.code === 'STORE_MASTER_KEY',
    );
    const db = new Database(join(dataDir, 'cas.db'));
    const row = db.prepare('SELECT secrets FROM versions').get() as { secrets: Buffer };
    row.secrets[40] = row.secrets[40]! ^ 1;
    db.prepare('UPDATE versions SET secrets = ?').run(row.secrets);
    db.close();
    const reopened = openSqliteStore({ dataDir, masterKey: key });
    await assert.rejects(
      () => reopened.current('t'),
      (e: StoreError) => e.code === 'STORE_CORRUPT' && /session 't'/.test(e.message),
    );
    await reopened.close();
  });

  it('creates the master key 0600 and refuses one others can read', async () => {
    const dataDir = freshDir();
    loadMasterKey({ dataDir });
    assert.equal(statSync(join(dataDir, 'master.key')).mode & 0o777, 0o600);
    const loose = join(root, 'loose.key');
    writeFileSync(loose, randomBytes(32).toString('hex'));
    chmodSync(loose, 0o644);
    assert.throws(
      () => loadMasterKey({ dataDir, file: loose }),
      (e: StoreError) => e.code === 'STORE_MASTER_KEY' && /chmod 600/.test(e.hint ?? ''),
    );
    assert.throws(
      () => loadMasterKey({ dataDir, env: 'abcd' }),
      (e: StoreError) => e.code === 'STORE_MASTER_KEY',
    );
  });

  it('keeps every acknowledged append when the writer is killed with SIGKILL', async () => {
    const dataDir = freshDir();
    const key = loadMasterKey({ dataDir });
    const storeUrl = new URL('./index.js', import.meta.url).href;
    const script = join(root, 'writer.mjs');
    writeFileSync(
      script,
      `import { openSqliteStore } from ${JSON.stringify(storeUrl)};
const store = openSqliteStore({ dataDir: process.argv[2], masterKey: Buffer.from(process.argv[3], 'hex') });
for (let i = 0; ; i++) {
  const name = 's' + process.argv[4] + '-' + i;
  await store.append({ name, hash: 'h', predecessor: null, text: 'x'.repeat(3000), creator: 'c', createdAt: i, secrets: { v: 'y'.repeat(2000) } }, null);
  process.stdout.write(name + '\\n');
}`,
    );
    for (let round = 0; round < 3; round++) {
      const child = spawn(process.execPath, [script, dataDir, key.toString('hex'), String(round)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.split('\n').length > 50 + round * 37) child.kill('SIGKILL');
      });
      await new Promise((r) => child.once('exit', r));
      const acknowledged = out.split('\n').filter(Boolean);
      const store = openSqliteStore({ dataDir, masterKey: key });
      for (const name of acknowledged) assert.equal((await store.current(name))?.text.length, 3000, name);
      for (const entry of await store.list()) assert.ok((await store.current(entry.name))?.secrets['v']);
      await store.close();
    }
  });
});
