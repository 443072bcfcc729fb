/**
 * A minimal DER writer: enough for keys and certificates. Node's own DER export/import is the bottleneck of
 * certificate issuance (measured: 6k SPKI exports/s against 30k signatures/s), so keys and certificates are
 * assembled here and checked against openssl in the tests. Every element is written with one allocation.
 */
export function tlv(tag: number, ...content: Buffer[]): Buffer {
  let size = 0;
  for (const part of content) size += part.length;
  const out = Buffer.allocUnsafe(1 + headerLength(size) + size);
  out[0] = tag;
  let at = writeLength(out, 1, size);
  for (const part of content) at += part.copy(out, at);
  return out;
}

/** Bytes the length field takes: one below 128, else a count byte and the big-endian length. */
function headerLength(n: number): number {
  if (n < 0x80) return 1;
  let bytes = 1;
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes++;
  return bytes;
}

function writeLength(out: Buffer, at: number, n: number): number {
  if (n < 0x80) {
    out[at] = n;
    return at + 1;
  }
  const count = headerLength(n) - 1;
  out[at] = 0x80 | count;
  for (let i = count, v = n; i >= 1; i--, v = Math.floor(v / 256)) out[at + i] = v & 0xff;
  return at + 1 + count;
}

export const seq = (...items: Buffer[]) => tlv(0x30, ...items);
export const set = (...items: Buffer[]) => tlv(0x31, ...items);
export const octets = (b: Buffer) => tlv(0x04, b);
/** A BIT STRING of whole bytes (no unused bits), as keys and signatures are. */
export const bitString = (b: Buffer) => tlv(0x03, ZERO, b);
export const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
/** Context-specific constructed [n] (EXPLICIT tagging and constructed IMPLICIT fields). */
export const ctx = (n: number, ...items: Buffer[]) => tlv(0xa0 + n, ...items);
/** Context-specific primitive [n] (IMPLICIT tagging of a primitive value, e.g. a SAN dNSName). */
export const implicit = (n: number, bytes: Buffer) => tlv(0x80 + n, bytes);
export const NULL = Buffer.from([0x05, 0x00]);
export const TRUE = Buffer.from([0x01, 0x01, 0xff]);
const ZERO = Buffer.from([0]);

/** A non-negative INTEGER from big-endian bytes (a leading zero keeps the sign bit clear). */
export function uint(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const trimmed = bytes.subarray(i);
  return trimmed.length > 0 && trimmed[0]! & 0x80 ? tlv(0x02, ZERO, trimmed) : tlv(0x02, trimmed);
}

/** A small non-negative INTEGER (versions). */
export function int(n: number): Buffer {
  return uint(Buffer.from([n]));
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const bytes = [40 * parts[0]! + parts[1]!];
  for (const part of parts.slice(2)) bytes.push(...base128(part));
  return tlv(0x06, Buffer.from(bytes));
}

function base128(n: number): number[] {
  const out = [n & 0x7f];
  for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) out.unshift(0x80 | (v & 0x7f));
  return out;
}

/** RFC 5280 §4.1.2.5: UTCTime for 1950–2049, GeneralizedTime otherwise; whole seconds, always Zulu. */
export function time(date: Date): Buffer {
  const year = date.getUTCFullYear();
  const rest = [
    date.getUTCMonth() + 1,
    date.getUTCDate(),
    date.getUTCHours(),
    date.getUTCMinutes(),
    date.getUTCSeconds(),
  ];
  const digits = rest.map((n) => String(n).padStart(2, '0')).join('') + 'Z';
  if (year >= 1950 && year < 2050)
    return tlv(0x17, Buffer.from(String(year % 100).padStart(2, '0') + digits, 'latin1'));
  return tlv(0x18, Buffer.from(String(year).padStart(4, '0') + digits, 'latin1'));
}
