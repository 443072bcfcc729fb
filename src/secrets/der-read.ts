/**
 * Just enough DER reading to take keys and certificates apart. Malformed input throws a plain `Error`;
 * callers turn it into a SecretsError naming the secret, since only they know which one it was.
 */
export interface Tlv {
  tag: number;
  start: number; // first content byte
  end: number; // one past the last content byte
  raw: Buffer; // the whole element, header included
}

export function readTlv(buf: Buffer, offset: number): Tlv {
  if (offset + 2 > buf.length) throw new Error('truncated DER');
  const tag = buf[offset]!;
  // DER only: a tag in one byte (0x1f opens the multi-byte form, which OpenSSL reads as the same small tags —
  // a reader that took it for a tag of its own would walk into the element's content), definite and minimal
  // lengths. Anything else is refused rather than read another way than OpenSSL reads it.
  if ((tag & 0x1f) === 0x1f) throw new Error('unsupported DER tag');
  let len = buf[offset + 1]!;
  let start = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > buf.length) throw new Error('unsupported DER length');
    if (buf[start] === 0) throw new Error('non-minimal DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    if (len < 0x80) throw new Error('non-minimal DER length');
    start += n;
  }
  if (start + len > buf.length) throw new Error('truncated DER');
  return { tag, start, end: start + len, raw: buf.subarray(offset, start + len) };
}

export function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const child = readTlv(buf, at);
    if (child.end > parent.end) throw new Error('DER element overruns its parent');
    out.push(child);
    at = child.end;
  }
  return out;
}

export const content = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.start, t.end);

function expect(t: Tlv | undefined, tag: number): Tlv {
  if (!t || t.tag !== tag) throw new Error(`expected DER tag 0x${tag.toString(16)}`);
  return t;
}

export interface CertificateParts {
  /** The raw subject Name, which becomes the issuer Name of what this certificate signs. */
  subject: Buffer;
  spki: Buffer;
  /** The subjectKeyIdentifier extension's value, when present. */
  subjectKeyId: Buffer | undefined;
}

const SKI_OID = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x0e]);

export function certificateParts(der: Buffer): CertificateParts {
  const cert = expect(readTlv(der, 0), 0x30);
  const tbs = expect(children(der, cert)[0], 0x30);
  const fields = children(der, tbs);
  const at = fields[0]?.tag === 0xa0 ? 1 : 0; // the explicit version is optional
  const subject = expect(fields[at + 4], 0x30);
  const spki = expect(fields[at + 5], 0x30);
  const extensions = fields.slice(at + 6).find((f) => f.tag === 0xa3);
  return { subject: subject.raw, spki: spki.raw, subjectKeyId: extensions ? subjectKeyId(der, extensions) : undefined };
}

function subjectKeyId(der: Buffer, wrapper: Tlv): Buffer | undefined {
  const list = expect(children(der, wrapper)[0], 0x30);
  for (const ext of children(der, list)) {
    const parts = children(der, ext);
    if (!parts[0]?.raw.equals(SKI_OID)) continue;
    const value = expect(parts[parts.length - 1], 0x04);
    return content(der, expect(readTlv(der, value.start), 0x04));
  }
  return undefined;
}

/** The subjectPublicKey bits of a SubjectPublicKeyInfo (what RFC 5280's key identifier hashes). */
export function publicKeyBits(spki: Buffer): Buffer {
  const bits = expect(children(spki, readTlv(spki, 0))[1], 0x03);
  return spki.subarray(bits.start + 1, bits.end);
}
