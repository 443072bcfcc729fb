/** Text encodings of secret bytes (placeholder suffixes) and PEM armour. */
export type ByteEncoding = 'hex' | 'base64' | 'base64url' | 'base32' | 'base32nopad';

export function encodeBytes(bytes: Buffer, encoding: ByteEncoding): string {
  switch (encoding) {
    case 'base32':
      return base32(bytes);
    case 'base32nopad':
      return base32(bytes, false);
    default:
      return bytes.toString(encoding);
  }
}

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 §6 base32, padded to a multiple of 8 characters unless `pad` is false. */
export function base32(data: Buffer, pad = true): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of data) {
    value = ((value << 8) | byte) & 0xfff; // at most 12 bits are ever pending
    bits += 8;
    for (; bits >= 5; bits -= 5) out += B32[(value >>> (bits - 5)) & 31];
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return pad ? out.padEnd(Math.ceil(out.length / 8) * 8, '=') : out;
}

/** RFC 4648 base32 back to bytes; padding optional, case-insensitive; undefined when not base32. */
export function base32Decode(text: string): Buffer | undefined {
  const body = text.replace(/=+$/, '').toUpperCase();
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of body) {
    const digit = B32.indexOf(ch);
    if (digit < 0) return undefined;
    value = ((value << 5) | digit) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

export function pemEncode(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export interface PemBlock {
  label: string;
  der: Buffer;
}

const PEM = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

/** Every PEM block of `text`, in order (explanatory text between blocks is ignored, as openssl does). */
export function pemBlocks(text: string): PemBlock[] {
  return [...text.matchAll(PEM)].map((m) => ({ label: m[1]!, der: Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64') }));
}

/** Every PEM block of `text` with the given label, as DER. */
export function pemDecodeAll(text: string, label: string): Buffer[] {
  return pemBlocks(text)
    .filter((b) => b.label === label)
    .map((b) => b.der);
}

/** The first PEM block with the given label, as DER. */
export function pemDecode(text: string, label: string): Buffer | undefined {
  return pemDecodeAll(text, label)[0];
}
