import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { curl, opensslIdentity, startCas, tempDir, veil } from './harness.js';
import { startPostgres, type Postgres } from './postgres.js';
import { sessionText } from './replicas.js';

/** `veil cas migrate` from a SQLite data directory into PostgreSQL, and what `veil cas serve --store` refuses. */
describe('veil cas migrate and serve --store', () => {
  const dir = tempDir('veil-migrate-');
  const dataDir = join(dir.path, 'data');
  let pgServer: Postgres;
  let me: { cert: string; key: string };
  before(async () => {
    pgServer = await startPostgres();
    me = await opensslIdentity(dir.path, 'me');
  });
  after(async () => {
    await pgServer?.stop();
    dir.cleanup();
  });
  const serve = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    veil(['cas', 'serve', '--listen', '127.0.0.1:0', ...args], { VEIL_HOME: join(dir.path, 'home'), ...env });

  it('moves every version, head and blob with hashes unchanged, and refuses a non-empty target', async () => {
    const sqlite = await startCas(dataDir, dir.path);
    const first = await curl(sqlite, `${sqlite.url}/v1/sessions`, { identity: me, data: sessionText('m', 'v1') });
    const second = await curl(sqlite, `${sqlite.url}/v1/sessions`, {
      identity: me,
      data: sessionText('m', 'v2', first.json().hash),
    });
    await curl(sqlite, `${sqlite.url}/v1/sessions`, { identity: me, data: sessionText('other', 'x') });
    await sqlite.stop();
    const url = await pgServer.createDatabase('migrated');
    const migrated = await veil(['cas', 'migrate', '--from', dataDir, '--to', url], pgServer.env());
    assert.equal(migrated.code, 0, migrated.stderr);
    assert.match(migrated.stdout, /^migrated 3 versions, 2 sessions and \d+ blobs from .* to postgres:\/\/veil@/);
    console.log(`# ${migrated.stdout.trim()}`);

    const keyFile = join(dataDir, 'master.key');
    const replica = await startCas(join(dir.path, 'x'), dir.path, ['--store', url, '--master-key-file', keyFile], {
      ...pgServer.env(),
    });
    try {
      assert.equal(replica.fingerprint, sqlite.fingerprint, 'the CA moved with the store');
      const read = await curl(replica, `${replica.url}/v1/sessions/m`, { identity: me });
      assert.equal(read.json().hash, second.json().hash);
      const old = await curl(replica, `${replica.url}/v1/sessions/m?hash=${first.json().hash}`, { identity: me });
      assert.equal(old.status, 200, old.body);
    } finally {
      await replica.stop();
    }
    const again = await veil(['cas', 'migrate', '--from', dataDir, '--to', url], pgServer.env());
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /STORE_NOT_EMPTY/);
  });

  it('refuses to serve on PostgreSQL without a master key given, and makes none', async () => {
    const url = await pgServer.createDatabase('nokey');
    const r = await serve(['--store', url, '--data', join(dir.path, 'nokey')], pgServer.env());
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /STORE_MASTER_KEY/);
    assert.match(r.stderr, /every replica must hold the same key/);
    assert.ok(!existsSync(join(dir.path, 'nokey', 'master.key')));
  });

  it('refuses a wrong master key at start, never printing the password of the URL', async () => {
    const url = await pgServer.createDatabase('keyed');
    const withPassword = url.replace('veil@', `veil:${pgServer.password}@`);
    const key = (name: string) => {
      const file = join(dir.path, name);
      writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
      return file;
    };
    const first = await startCas(join(dir.path, 'k1'), dir.path, [
      '--store',
      withPassword,
      '--master-key-file',
      key('a'),
    ]);
    await first.stop();
    assert.ok(!first.log().includes(pgServer.password));
    const r = await serve(['--store', withPassword, '--master-key-file', key('b')]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /STORE_MASTER_KEY/);
    assert.ok(!`${r.stdout}${r.stderr}`.includes(pgServer.password), r.stderr);
  });

  it('answers STORE_UNAVAILABLE when the database is unreachable, and CLI_USAGE for another scheme', async () => {
    const keyFile = join(dir.path, 'any.key');
    writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
    const down = await serve(['--master-key-file', keyFile], {
      VEIL_CAS_STORE: 'postgres://veil:SECRET-PW@127.0.0.1:1/cas',
    });
    assert.notEqual(down.code, 0);
    assert.match(down.stderr, /STORE_UNAVAILABLE/);
    assert.ok(!down.stderr.includes('SECRET-PW'), down.stderr);
    const other = await serve(['--store', 'mysql://u:SECRET-PW@h/db', '--master-key-file', keyFile]);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /CLI_USAGE/);
    assert.ok(!other.stderr.includes('SECRET-PW'));
  });
});
