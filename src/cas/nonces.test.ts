import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { CasError } from './errors.js';
import { NonceStore } from './nonces.js';

describe('attestation nonces', () => {
  it('are single use, good only for the key they were issued to, and expire', () => {
    let t = 0;
    const store = new NonceStore(() => new Date(t), { ttlMs: 1000 });
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

  const isBusy = (e: CasError) => e.code === 'CAS_BUSY' && e.status === 429;

  it("one client's flood never evicts another's nonce: its own cap refuses it with 429", () => {
    let t = 0;
    const store = new NonceStore(() => new Date(t), { ttlMs: 1000, perClient: 3, max: 100 });
    const victim = store.issue('b').toString('hex');
    const spentByB = store.issue('b').toString('hex');
    assert.equal(store.consume(spentByB, 'b'), 'ok');
    const flood = [0, 1, 2].map(() => store.issue('a').toString('hex'));
    for (const n of flood) assert.equal(store.consume(n, 'a'), 'ok');
    assert.throws(() => store.issue('a'), isBusy, 'over its own cap, at issue');
    t = 10;
    assert.equal(store.consume(victim, 'b'), 'ok', "b's earlier nonce still works");
    assert.equal(store.consume(spentByB, 'b'), 'used', "b's spent nonce is still remembered");
    t = 1001;
    assert.equal(store.consume(store.issue('a').toString('hex'), 'a'), 'ok', 'room again once its own expire');
  });

  it('a client over its cap when presenting a nonce is refused and the nonce stays unspent', () => {
    let t = 0;
    const store = new NonceStore(() => new Date(t), { ttlMs: 1000, perClient: 1, max: 100 });
    const first = store.issue('a').toString('hex');
    t = 500;
    const second = store.issue('a').toString('hex');
    assert.equal(store.consume(first, 'a'), 'ok');
    assert.throws(() => store.consume(second, 'a'), isBusy);
    t = 1001;
    assert.equal(store.consume(second, 'a'), 'ok', 'retried once the first expired');
    assert.equal(store.consume(second, 'a'), 'used');
  });

  it('the global cap refuses new nonces instead of forgetting spent ones', () => {
    let t = 0;
    const store = new NonceStore(() => new Date(t), { ttlMs: 1000, perClient: 2, max: 4 });
    const early = store.issue('victim').toString('hex');
    const spent = [0, 1, 2, 3].map((i) => {
      const n = store.issue(`k${i}`).toString('hex');
      assert.equal(store.consume(n, `k${i}`), 'ok');
      return [n, `k${i}`] as const;
    });
    assert.throws(() => store.issue('fresh'), isBusy);
    assert.throws(() => store.consume(early, 'victim'), isBusy);
    for (const [n, k] of spent) assert.equal(store.consume(n, k), 'used', 'no spent nonce was evicted');
    assert.equal(store.size, 4);
    t = 1001;
    assert.equal(store.consume(store.issue('fresh').toString('hex'), 'fresh'), 'ok');
    assert.equal(store.size, 1, 'expired entries are dropped');
  });

  it('junk and foreign nonces from many keys never take room from genuine ones, and stay burned', () => {
    const store = new NonceStore(() => new Date(0), { ttlMs: 1000, perClient: 2, max: 4, presented: 50 });
    const victim = store.issue('victim').toString('hex');
    const stolen = store.issue('owner').toString('hex');
    assert.equal(store.consume(stolen, 'thief'), 'unknown');
    for (let i = 0; i < 1000; i++) {
      assert.equal(store.consume(randomBytes(32).toString('hex'), `junk-${i}`), 'unknown');
      // Junk presented twice from its key: past the per-key cap, were it counted there.
      assert.equal(store.consume(randomBytes(32).toString('hex'), `junk-${i}`), 'unknown');
    }
    assert.equal(store.size, 0, 'none of it is in the spent set');
    assert.ok(store.burnedSize <= 50, `burned presentations bounded: ${store.burnedSize}`);
    assert.equal(store.consume(victim, 'victim'), 'ok');
    // Room for the rest of the genuine cap (4): none of it went to the junk.
    const fresh = [0, 1].map((i) => store.issue(`k${i}`).toString('hex'));
    for (const [i, n] of fresh.entries()) assert.equal(store.consume(n, `k${i}`), 'ok');
    const burned = store.issue('owner2').toString('hex');
    assert.equal(store.consume(burned, 'thief'), 'unknown');
    assert.equal(store.consume(burned, 'owner2'), 'used', 'presented from another key: burned for its owner too');
  });
});
