import { createHash } from 'node:crypto';

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
