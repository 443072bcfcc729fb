/**
 * A bounded map, least recently used out first (Map iteration order is insertion order). Used for results that
 * are pure functions of their key: decoded signing keys, and in the verifiers parses and signature checks keyed
 * by the SHA-256 of the exact input bytes, so a hit can only return what the same bytes produced before. The
 * bound keeps a flood of distinct inputs from growing memory.
 *
 * Where values vary in size by orders of magnitude (decoded sessions: a few hundred bytes to megabytes), a count
 * alone does not bound memory, so a byte budget can be given too: `set` then takes each value's size, the oldest
 * entries leave until both bounds hold, and a value larger than `maxEntryBytes` is not kept at all (one huge
 * value would otherwise push out a whole working set of ordinary ones).
 */
export interface ByteBudget {
  /** The sum of the sizes of the values kept never exceeds this. */
  bytes: number;
  /** A value larger than this is not kept (and an entry it would have replaced is dropped). */
  maxEntryBytes: number;
}

export class Lru<V> {
  private readonly map = new Map<string, V>();
  private readonly sizes = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly max: number,
    private readonly budget?: ByteBudget,
  ) {}

  get(key: string): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  /** Keeps `value` under `key`; `bytes` is its size, counted against the byte budget when there is one. */
  set(key: string, value: V, bytes = 0): void {
    this.delete(key);
    if (this.budget && bytes > this.budget.maxEntryBytes) return;
    this.map.set(key, value);
    if (this.budget) {
      this.sizes.set(key, bytes);
      this.total += bytes;
    }
    while (this.map.size > this.max || (this.budget !== undefined && this.total > this.budget.bytes)) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      this.delete(oldest.value);
    }
  }

  delete(key: string): void {
    this.map.delete(key);
    const size = this.sizes.get(key);
    if (size !== undefined) {
      this.total -= size;
      this.sizes.delete(key);
    }
  }

  get size(): number {
    return this.map.size;
  }

  /** The sum of the sizes given to `set` for the values kept now. */
  get bytes(): number {
    return this.total;
  }

  clear(): void {
    this.map.clear();
    this.sizes.clear();
    this.total = 0;
  }

  memo(key: string, compute: () => V): V {
    const hit = this.get(key);
    if (hit !== undefined) return hit;
    const value = compute();
    this.set(key, value);
    return value;
  }
}
