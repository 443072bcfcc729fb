import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadSessions, sessionsRead } from './session-reader.js';
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
});
