import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { record } from './store/contract-cases.js';
import { loadSessions, movedSince, sessionsRead } from './session-reader.js';
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
