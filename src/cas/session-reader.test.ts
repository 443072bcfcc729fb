import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { StoredCertificate } from '../secrets/index.js';
import { encodeRenewal } from './renewed.js';
import { loadMasterKey, openSqliteStore } from './store/index.js';
import { record } from './store/contract-cases.js';
import {
  SESSION_CACHE_BYTES,
  SESSION_CACHE_ENTRIES,
  SESSION_CACHE_MAX_ENTRY_BYTES,
  cachedVersion,
  decodedSize,
  keepLoaded,
  loadSessions,
  movedSince,
  readerFor,
  sessionCacheUse,
  sessionsRead,
} from './session-reader.js';
import { tempStore } from './test-store.js';

describe('SessionReader', () => {
  const { store } = tempStore('veil-reader-');

  it('names the session, the extra names and every import source (relative ones resolved)', () => {
    const session = {
      name: 'org/app',
      secrets: [
        { import: { session: 'lib' } },
        { import: { session: '../other' } },
        {},
        { import: { session: 'lib' } },
      ],
    };
    assert.deepEqual(sessionsRead(session, ['org']), ['org/app', 'org', 'lib', 'org/other']);
  });

  it('answers for loaded names (absent ones as absent) and refuses any other name', async () => {
    const reader = await loadSessions(store, ['nothing-here']);
    assert.equal(reader.current('nothing-here'), undefined);
    assert.throws(() => reader.current('never-loaded'), { code: 'CAS_INTERNAL' });
  });

  it('lists what it loaded with the hashes read, and tells which of them moved since', async () => {
    await store.append(record('kept', 'k1'), null);
    await store.append(record('moves', 'm1'), null);
    const reader = await loadSessions(store, ['kept', 'moves', 'absent']);
    assert.deepEqual(
      [...reader.loaded()],
      [
        ['kept', 'k1'],
        ['moves', 'm1'],
        ['absent', null],
      ],
    );
    assert.equal(await movedSince(store, reader), undefined);
    await store.append(record('absent', 'a1'), null);
    assert.equal(await movedSince(store, reader), 'absent');
    await store.append(record('moves', 'm2', 'm1'), 'm1');
    assert.equal(await movedSince(store, await loadSessions(store, ['kept', 'moves'])), undefined);
    assert.equal(await movedSince(store, reader), 'moves');
  });
});

describe('SessionReader cache of decoded versions', () => {
  const { dir, store } = tempStore('veil-reader-cache-');
  const other = openSqliteStore({ dataDir: dir, masterKey: loadMasterKey({ dataDir: dir }) });
  after(() => other.close());

  /** A read by a caller found entitled to it: what the CAS does after an accepted attestation. */
  const kept = async (name: string) => {
    const reader = await readerFor(store, name);
    keepLoaded(reader);
    return reader;
  };

  it('serves an update appended by another Store on the same directory at once', async () => {
    await store.append(record('shared', 's1'), null);
    assert.equal((await kept('shared')).current('shared')?.hash, 's1');
    assert.equal(cachedVersion(store, 'shared'), 's1');
    assert.equal((await kept('shared')).current('shared')?.hash, 's1');
    await other.append(record('shared', 's2', 's1'), 's1');
    const now = (await readerFor(store, 'shared')).current('shared');
    assert.equal(now?.hash, 's2');
    assert.deepEqual(now?.secrets.pw, { kind: 'ascii', value: 'SECRET-VALUE-s2' });
  });

  it('applies a renewal written by another Store at once (renewals are not cached)', async () => {
    const cert = (v: string) => ({ kind: 'x509', value: v }) as unknown as StoredCertificate;
    const crtOf = async () => (await kept('renews')).current('renews')?.secrets.crt as { value: string };
    const base = { ...record('renews', 'r1'), secrets: { crt: cert('OWN') } };
    await store.append(base, null);
    assert.equal((await crtOf()).value, 'OWN');
    await other.putRenewal('renews', 'r1', 'crt', { generation: 1, value: encodeRenewal(cert('RENEWED-1')) });
    assert.equal((await crtOf()).value, 'RENEWED-1');
    await other.putRenewal('renews', 'r1', 'crt', { generation: 2, value: encodeRenewal(cert('RENEWED-2')) });
    assert.equal((await crtOf()).value, 'RENEWED-2');
  });

  it('is filled only by keepLoaded: reading alone (before a caller is judged) adds nothing', async () => {
    await store.append(record('lib', 'l1'), null);
    await store.append(
      {
        ...record('stranger', 't1'),
        text: 'name: stranger\nsecrets:\n  - {name: x, import: {session: lib, secret: pw}}\n',
      },
      null,
    );
    const before = sessionCacheUse(store).entries;
    const reader = await readerFor(store, 'stranger');
    assert.equal(reader.current('lib')?.hash, 'l1');
    assert.equal(cachedVersion(store, 'stranger'), undefined);
    assert.equal(cachedVersion(store, 'lib'), undefined);
    assert.equal(sessionCacheUse(store).entries, before);
    keepLoaded(reader);
    assert.equal(cachedVersion(store, 'stranger'), 't1');
    assert.equal(cachedVersion(store, 'lib'), 'l1');
  });

  it('holds at most SESSION_CACHE_BYTES of decoded sessions, the least recently used out first', async () => {
    // Large by its secrets (JSON.parse only), not its text (a YAML parse on every read).
    const big = (name: string) => ({
      ...record(name, `${name}-1`),
      secrets: { pw: { kind: 'ascii', value: 'x'.repeat(SESSION_CACHE_MAX_ENTRY_BYTES - 200) } },
    });
    const fit = Math.floor(SESSION_CACHE_BYTES / decodedSize(big('big-0')));
    for (let i = 0; i <= fit; i++) await store.append(big(`big-${i}`), null);
    for (let i = 0; i <= fit; i++) await kept(`big-${i}`);
    assert.ok(sessionCacheUse(store).bytes <= SESSION_CACHE_BYTES);
    assert.equal(cachedVersion(store, 'big-0'), undefined);
    assert.equal(cachedVersion(store, `big-${fit}`), `big-${fit}-1`);
    assert.equal(cachedVersion(store, 'big-1'), 'big-1-1');
  });

  it('never caches a session larger than SESSION_CACHE_MAX_ENTRY_BYTES, and still reads it', async () => {
    const huge = { ...record('huge', 'h1'), text: `name: huge\n#${'x'.repeat(SESSION_CACHE_MAX_ENTRY_BYTES)}\n` };
    await store.append(huge, null);
    for (let i = 0; i < 2; i++) {
      const reader = await kept('huge');
      assert.equal(reader.current('huge')?.text, huge.text);
      assert.equal(cachedVersion(store, 'huge'), undefined);
    }
    // A smaller version of the same name is judged afresh.
    await store.append(record('huge', 'h2', 'h1'), 'h1');
    await kept('huge');
    assert.equal(cachedVersion(store, 'huge'), 'h2');
  });

  it('has an entry cap and a byte budget with a per-entry share', () => {
    assert.equal(SESSION_CACHE_ENTRIES, 1024);
    assert.equal(SESSION_CACHE_BYTES, 64 * 1024 * 1024);
    assert.equal(SESSION_CACHE_MAX_ENTRY_BYTES, SESSION_CACHE_BYTES / 16);
  });
});
