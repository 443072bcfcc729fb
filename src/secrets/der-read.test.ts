import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { children, readTlv } from './der-read.js';

describe('der-read: DER only, never read another way than OpenSSL reads it', () => {
  it('reads one-byte tags and minimal definite lengths', () => {
    const short = Buffer.from('0403010203', 'hex');
    assert.deepEqual(readTlv(short, 0), { tag: 4, start: 2, end: 5, raw: short });
    const long = Buffer.concat([Buffer.from('048180', 'hex'), Buffer.alloc(0x80)]);
    assert.equal(readTlv(long, 0).end, 0x83);
    const seq = Buffer.from('30060201010201ff', 'hex');
    assert.deepEqual(
      children(seq, readTlv(seq, 0)).map((t) => t.tag),
      [2, 2],
    );
  });

  // 0x1f 0x02 is INTEGER to OpenSSL; taken as a one-byte tag, the reader would walk into the integer's content.
  it('refuses the multi-byte tag form', () => {
    assert.throws(() => readTlv(Buffer.from('1f020101', 'hex'), 0), /unsupported DER tag/);
    assert.throws(() => readTlv(Buffer.from('bf000101', 'hex'), 0), /unsupported DER tag/);
  });

  it('refuses indefinite and non-minimal lengths', () => {
    assert.throws(() => readTlv(Buffer.from('30800000', 'hex'), 0), /unsupported DER length/);
    assert.throws(() => readTlv(Buffer.from('04810101', 'hex'), 0), /non-minimal DER length/);
    assert.throws(
      () => readTlv(Buffer.concat([Buffer.from('0482008001', 'hex'), Buffer.alloc(0x80)]), 0),
      /non-minimal/,
    );
  });
});
