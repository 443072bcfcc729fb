import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CasError } from './errors.js';
import { readSession, writeSession } from './sessions.js';
import { clientIdentity, tempStore } from './test-store.js';

describe('a session stored by an earlier Veil that this version refuses', () => {
  it('is a 4xx naming the session, telling nothing of it, not an internal error', async () => {
    const { store, ctx } = tempStore('veil-stored-');
    const owner = clientIdentity('owner');
    // What an earlier Veil took: `volumes` is now refused by name (not implemented).
    store.append(
      {
        name: 'old',
        hash: 'a'.repeat(64),
        predecessor: null,
        text: 'name: old\nversion: "0.3"\nvolumes:\n  - {name: v, fspf_key: SECRET-KEY-VALUE}\n',
        creator: owner.certPem,
        createdAt: Date.now(),
        secrets: {},
      },
      null,
    );
    for (const attempt of [
      () => readSession(ctx, 'old', undefined, owner),
      () => writeSession(ctx, 'name: old\nversion: "0.3"\npredecessor: ' + 'a'.repeat(64) + '\n', owner),
    ]) {
      await assert.rejects(
        async () => attempt(),
        (err: unknown) =>
          err instanceof CasError &&
          err.code === 'CAS_POLICY_INVALID' &&
          /session 'old' .* was stored by an earlier Veil/.test(err.message) &&
          !/SECRET-KEY-VALUE|volumes/.test(`${err.message} ${err.hint}`),
      );
    }
  });
});
