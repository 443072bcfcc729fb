import { createHash } from 'node:crypto';

/**
 * Bounded memo for pure checks (chain and collateral signatures, parsing). Keys are SHA-256 digests of the
 * exact input bytes, so a changed byte is a miss and is checked afresh; only successes are stored, and nothing
 * that depends on the verification time.
 */
export class Lru<V> {
  private readonly map = new Map<string, V>();

  constructor(private readonly max: number) {}

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      // Refresh: Map iteration order is insertion order, so the first key is the least recently used.
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.max) {
      const oldest = this.map.keys().next().value;
      if (oldest === undefined) break;
      this.map.delete(oldest);
    }
  }

  get size(): number {
    return this.map.size;
  }

  clear(): void {
    this.map.clear();
  }

  memo(key: string, compute: () => V): V {
    const hit = this.get(key);
    if (hit !== undefined) return hit;
    const value = compute();
    this.set(key, value);
    return value;
  }
}

/** SHA-256 over length-prefixed parts, so that ("ab","c") and ("a","bc") differ. */
export function digestOf(...parts: (Buffer | string | undefined)[]): string {
  const h = createHash('sha256');
  for (const p of parts) {
    if (p === undefined) {
      h.update('\xff\xff\xff\xff', 'latin1');
      continue;
    }
    const b = typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    h.update(len).update(b);
  }
  return h.digest('hex');
}
