import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NonceStore } from './nonces.js';

describe('attestation nonces', () => {
  it('are single use, good only for the key they were issued to, and expire', () => {
    let t = 0;
    const store = new NonceStore(() => new Date(t), 1000);
    const a = store.issue('a').toString('hex');
    assert.equal(store.consume(a, 'a'), 'ok');
    assert.equal(store.consume(a, 'a'), 'used');
    const other = store.issue('a').toString('hex');
    assert.equal(store.consume(other, 'b'), 'unknown', 'issued to another key');
    assert.equal(store.consume(other, 'a'), 'used', 'presenting it with another key spent it');
    const late = store.issue('a').toString('hex');
    t = 1001;
    assert.equal(store.consume(late, 'a'), 'expired');
  });

  it('refuses nonces this CAS did not issue, or altered ones', () => {
    const store = new NonceStore(() => new Date(0));
    const other = new NonceStore(() => new Date(0));
    assert.equal(store.consume(other.issue('a').toString('hex'), 'a'), 'unknown');
    const mine = store.issue('a');
    for (const i of [0, 7, 8, 15, 16, 31]) {
      const changed = Buffer.from(mine);
      changed[i]! ^= 1;
      assert.equal(store.consume(changed.toString('hex'), 'a'), 'unknown', `byte ${i}`);
    }
    assert.equal(store.consume('zz', 'a'), 'unknown');
    assert.equal(store.consume(mine.toString('hex'), 'a'), 'ok');
  });

  it('issuing stores nothing: a flood of keys cannot stall anyone', () => {
    const store = new NonceStore(() => new Date(0));
    const victim = store.issue('victim').toString('hex');
    for (let i = 0; i < 50_000; i++) store.issue(`attacker-${i}`);
    assert.equal(store.consume(victim, 'victim'), 'ok');
  });

  it('remembers used nonces until they expire, within a bound', () => {
    let t = 0;
    const store = new NonceStore(() => new Date(t), 1000, 3);
    const spent = [0, 1, 2].map(() => store.issue('k').toString('hex'));
    for (const n of spent) assert.equal(store.consume(n, 'k'), 'ok');
    const fourth = store.issue('k').toString('hex');
    assert.equal(store.consume(fourth, 'k'), 'ok');
    assert.equal(store.consume(spent[1]!, 'k'), 'used');
    assert.equal(store.consume(fourth, 'k'), 'used');
    t = 2000;
    const fresh = store.issue('k').toString('hex');
    assert.equal(store.consume(fresh, 'k'), 'ok');
  });
});
