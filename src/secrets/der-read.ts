/** Just enough DER reading to take a certificate's subject and public key apart. */
export interface Tlv {
  tag: number;
  start: number; // first content byte
  end: number; // one past the last content byte
  raw: Buffer; // the whole element, header included
}

export function readTlv(buf: Buffer, offset: number): Tlv {
  const tag = buf[offset]!;
  let len = buf[offset + 1]!;
  let start = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    start += n;
  }
  if (start + len > buf.length) throw new Error('truncated DER');
  return { tag, start, end: start + len, raw: buf.subarray(offset, start + len) };
}

export function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const child = readTlv(buf, at);
    out.push(child);
    at = child.end;
  }
  return out;
}

/** The raw subject Name and SubjectPublicKeyInfo of a certificate. */
export function certificateParts(der: Buffer): { subject: Buffer; spki: Buffer } {
  const cert = readTlv(der, 0);
  const tbs = children(der, cert)[0]!;
  const fields = children(der, tbs);
  const offset = fields[0]!.tag === 0xa0 ? 1 : 0; // the explicit version is optional
  return { subject: fields[offset + 4]!.raw, spki: fields[offset + 5]!.raw };
}

/** The subjectPublicKey bits of a SubjectPublicKeyInfo (what RFC 5280's key identifier hashes). */
export function publicKeyBits(spki: Buffer): Buffer {
  const bits = children(spki, readTlv(spki, 0))[1]!;
  return spki.subarray(bits.start + 1, bits.end);
}
