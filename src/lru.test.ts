import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Lru } from './lru.js';

describe('Lru', () => {
  it('keeps at most its count, the least recently used out first', () => {
    const lru = new Lru<number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    assert.equal(lru.get('a'), 1);
    lru.set('c', 3);
    assert.deepEqual([lru.get('a'), lru.get('b'), lru.get('c')], [1, undefined, 3]);
  });

  it('with a byte budget, evicts the oldest until the sizes fit, and counts replaced entries once', () => {
    const lru = new Lru<string>(100, { bytes: 10, maxEntryBytes: 6 });
    lru.set('a', 'A', 4);
    lru.set('b', 'B', 4);
    lru.set('b', 'B2', 5);
    assert.equal(lru.bytes, 9);
    lru.set('c', 'C', 3);
    assert.equal(lru.get('a'), undefined);
    assert.deepEqual([lru.get('b'), lru.get('c')], ['B2', 'C']);
    assert.equal(lru.bytes, 8);
    assert.equal(lru.size, 2);
  });

  it('does not keep a value larger than its share of the budget, nor the entry it would have replaced', () => {
    const lru = new Lru<string>(100, { bytes: 10, maxEntryBytes: 6 });
    lru.set('a', 'A', 3);
    lru.set('b', 'B', 3);
    lru.set('b', 'HUGE', 7);
    assert.equal(lru.get('b'), undefined);
    assert.equal(lru.get('a'), 'A');
    assert.equal(lru.bytes, 3);
  });

  it('clear empties the byte count too', () => {
    const lru = new Lru<string>(100, { bytes: 10, maxEntryBytes: 6 });
    lru.set('a', 'A', 5);
    lru.clear();
    assert.equal(lru.bytes, 0);
    lru.set('b', 'B', 6);
    lru.set('c', 'C', 4);
    assert.deepEqual([lru.get('b'), lru.get('c')], ['B', 'C']);
  });
});
