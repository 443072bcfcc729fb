import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CasError } from './errors.js';
import { NonceStore } from './nonces.js';

describe('attestation nonces', () => {
  it('are single use, bound to one key, and expire', () => {
    let t = 0;
    const store = new NonceStore(() => new Date(t), 1000);
    const a = store.issue('a').toString('hex');
    assert.equal(store.consume(a, 'a'), 'ok');
    assert.equal(store.consume(a, 'a'), 'unknown');
    const stolen = store.issue('a').toString('hex');
    assert.equal(store.consume(stolen, 'b'), 'other-key');
    assert.equal(store.consume(stolen, 'a'), 'unknown', 'a failed attempt from another key burns the nonce');
    const late = store.issue('a').toString('hex');
    t = 1001;
    assert.equal(store.consume(late, 'a'), 'expired');
  });

  it("one key's flood never evicts another key's nonce", () => {
    const store = new NonceStore(() => new Date(0), 60_000, 100, 4);
    const victim = store.issue('victim').toString('hex');
    for (let i = 0; i < 1000; i++) store.issue('attacker');
    assert.equal(store.consume(victim, 'victim'), 'ok');
  });

  it('past its own limit a key loses its own oldest nonce', () => {
    const store = new NonceStore(() => new Date(0), 60_000, 100, 2);
    const first = store.issue('k').toString('hex');
    const second = store.issue('k').toString('hex');
    store.issue('k');
    assert.equal(store.consume(first, 'k'), 'unknown');
    assert.equal(store.consume(second, 'k'), 'ok');
  });

  it('when full, refuses new nonces (429) instead of evicting', () => {
    const store = new NonceStore(() => new Date(0), 60_000, 3, 1);
    const held = ['a', 'b', 'c'].map((k) => store.issue(k).toString('hex'));
    assert.throws(() => store.issue('d'), (e: CasError) => e.code === 'CAS_BUSY' && e.status === 429);
    assert.equal(store.consume(held[0]!, 'a'), 'ok');
    assert.ok(store.issue('d'));
  });
});
