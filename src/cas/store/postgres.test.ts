import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type Postgres } from '../../e2e/postgres.js';
import { record, storeContract, testReaders } from './contract-cases.js';
import { renewalContract } from './renewal-cases.js';
import { openPostgresStore, type StoreError } from './index.js';
import { MIGRATIONS } from './postgres-schema.js';
import { PgFailures } from './postgres-errors.js';

/** The PostgreSQL store against a real server (a fresh cluster in a temporary directory, one database per case). */
let server: Postgres;
let databases = 0;
before(async () => {
  server = await startPostgres();
});
after(async () => server?.stop());

const newDatabase = () => server.createDatabase(`contract${databases++}`);
const open = (url: string, masterKey: Buffer) =>
  openPostgresStore({ url, password: server.password, masterKey, readers: testReaders });

storeContract('PostgreSQL', async () => {
  const url = await newDatabase();
  return { open: (masterKey) => open(url, masterKey) };
});

renewalContract('PostgreSQL', async () => {
  const url = await newDatabase();
  return { open: (masterKey) => open(url, masterKey) };
});

describe('PostgreSQL store', () => {
  it('writes no session text or secret value in plaintext', async () => {
    const url = await newDatabase();
    const store = await open(url, randomBytes(32));
    await store.append(record('plain', 'h1'), null);
    await store.putBlobIfAbsent('k', Buffer.from('SECRET-BLOB'));
    const db = url.slice(url.lastIndexOf('/') + 1);
    const rows = await server.query<{ t: string }>(
      `SELECT string_agg(encode(text, 'escape') || encode(secrets, 'escape'), '') AS t FROM versions
       UNION ALL SELECT string_agg(encode(value, 'escape'), '') FROM blobs`,
      [],
      db,
    );
    const all = rows.map((r) => r.t).join('');
    assert.ok(all.length > 0);
    for (const word of ['SECRET-VALUE', 'SECRET-TEXT', 'SECRET-BLOB']) assert.ok(!all.includes(word), word);
    await store.close();
  });

  it('migrates once when replicas start at once, and records the schema version', async () => {
    const url = await newDatabase();
    const key = randomBytes(32);
    const stores = await Promise.all([1, 2, 3, 4].map(() => open(url, key)));
    const db = url.slice(url.lastIndexOf('/') + 1);
    const versions = await server.query<{ version: number }>('SELECT version FROM schema_version', [], db);
    assert.deepEqual(
      versions.map((v) => v.version),
      MIGRATIONS.map((_, i) => i + 1),
    );
    await Promise.all(stores.map((s) => s.close()));
  });

  it('refuses a schema newer than this CAS knows, naming both versions', async () => {
    const url = await newDatabase();
    await (await open(url, randomBytes(32))).close();
    const db = url.slice(url.lastIndexOf('/') + 1);
    await server.query('INSERT INTO schema_version (version) VALUES ($1)', [MIGRATIONS.length + 1], db);
    await assert.rejects(
      open(url, randomBytes(32)),
      (e: StoreError) => e.code === 'STORE_OPEN' && e.message.includes(`version ${MIGRATIONS.length + 1}`),
    );
  });

  it('answers STORE_UNAVAILABLE, without the password, when the server is unreachable', async () => {
    const password = `pw-${randomBytes(8).toString('hex')}`;
    const url = `postgres://veil:${password}@127.0.0.1:1/none`;
    await assert.rejects(
      openPostgresStore({ url, masterKey: randomBytes(32), limits: { connectTimeoutMs: 500 } }),
      (e: StoreError) => {
        assert.equal(e.code, 'STORE_UNAVAILABLE');
        assert.ok(!JSON.stringify({ m: e.message, h: e.hint }).includes(password), e.message);
        assert.match(e.message, /postgres:\/\/veil@127\.0\.0\.1:1\/none/);
        return true;
      },
    );
  });

  it('refuses a wrong password as STORE_OPEN, and never repeats it', async () => {
    const url = `${server.url('postgres')}`;
    const password = `wrong-${randomBytes(8).toString('hex')}`;
    await assert.rejects(openPostgresStore({ url, password, masterKey: randomBytes(32) }), (e: StoreError) => {
      assert.equal(e.code, 'STORE_OPEN');
      assert.ok(!`${e.message}${e.hint}`.includes(password));
      return true;
    });
  });

  it('cuts the password, from the URL or PGPASSWORD, out of every message', () => {
    const failures = new PgFailures('postgres://veil:p%40ss-URL@db:5432/cas?password=Q-PW', 'ENV-PW');
    const err = failures.of(new Error('boom p@ss-URL p%40ss-URL Q-PW ENV-PW'), 'read');
    for (const secret of ['p@ss-URL', 'p%40ss-URL', 'Q-PW', 'ENV-PW'])
      assert.ok(!err.message.includes(secret), err.message);
    assert.equal(failures.where, 'postgres://veil@db:5432/cas');
  });

  it('refuses what is not a postgres URL without echoing it', async () => {
    for (const url of ['mysql://u:SECRETPW@h/db', 'postgres://u:SECRETPW@h', 'not a url SECRETPW']) {
      await assert.rejects(openPostgresStore({ url, masterKey: randomBytes(32) }), (e: StoreError) => {
        assert.equal(e.code, 'STORE_OPEN');
        assert.ok(!e.message.includes('SECRETPW'), e.message);
        return true;
      });
    }
  });
});
