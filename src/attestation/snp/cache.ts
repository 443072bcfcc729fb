/**
 * A small bounded map for results that are pure functions of exact bytes (certificate parses, chain signature
 * checks). Keys are SHA-256 hex of those bytes, so a hit can only return what the same bytes produced before.
 * Least recently used entries go first; the bound keeps a flood of distinct certificates from growing memory.
 */
export class BoundedCache<V> {
  private readonly map = new Map<string, V>();

  constructor(private readonly max: number) {}

  get(key: string): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.max) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      this.map.delete(oldest.value);
    }
  }

  get size(): number {
    return this.map.size;
  }

  clear(): void {
    this.map.clear();
  }
}
