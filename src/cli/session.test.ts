import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sameSession } from './commands/session.js';

describe('veil session verify', () => {
  it('accepts the same hash and refuses another, naming both', () => {
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    assert.doesNotThrow(() => sameSession('s', 'f.yml', a, a));
    assert.throws(
      () => sameSession('s', 'f.yml', a, b),
      (err: Error & { code?: string }) =>
        err.code === 'CLI_SESSION_MISMATCH' &&
        err.message === `session 's' on the CAS (hash ${b}) is not the one in f.yml (hash ${a})`,
    );
  });
});
