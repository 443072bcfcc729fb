import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { base32, base32Decode, encodeBytes, pemBlocks, pemDecode, pemDecodeAll, pemEncode } from './encodings.js';

// RFC 4648 §10 test vectors.
const VECTORS: Array<[string, { base16: string; base32: string; base64: string }]> = [
  ['', { base16: '', base32: '', base64: '' }],
  ['f', { base16: '66', base32: 'MY======', base64: 'Zg==' }],
  ['fo', { base16: '666F', base32: 'MZXQ====', base64: 'Zm8=' }],
  ['foo', { base16: '666F6F', base32: 'MZXW6===', base64: 'Zm9v' }],
  ['foob', { base16: '666F6F62', base32: 'MZXW6YQ=', base64: 'Zm9vYg==' }],
  ['fooba', { base16: '666F6F6261', base32: 'MZXW6YTB', base64: 'Zm9vYmE=' }],
  ['foobar', { base16: '666F6F626172', base32: 'MZXW6YTBOI======', base64: 'Zm9vYmFy' }],
];

describe('byte encodings', () => {
  it('match the RFC 4648 test vectors', () => {
    for (const [input, expected] of VECTORS) {
      const bytes = Buffer.from(input);
      assert.equal(encodeBytes(bytes, 'hex'), expected.base16.toLowerCase(), input);
      assert.equal(encodeBytes(bytes, 'base32'), expected.base32, input);
      assert.equal(encodeBytes(bytes, 'base32nopad'), expected.base32.replace(/=+$/, ''), input);
      assert.equal(encodeBytes(bytes, 'base64'), expected.base64, input);
      assert.deepEqual(base32Decode(expected.base32), bytes, input);
      assert.deepEqual(base32Decode(expected.base32.replace(/=+$/, '').toLowerCase()), bytes, input);
    }
  });

  it('base64url uses the URL alphabet without padding', () => {
    const bytes = Buffer.from([0xfb, 0xff, 0xbf, 0xfe]);
    assert.equal(encodeBytes(bytes, 'base64'), '+/+//g==');
    assert.equal(encodeBytes(bytes, 'base64url'), '-_-__g');
  });

  it('base32 round-trips random data of every length mod 5', () => {
    for (let n = 0; n < 40; n++) {
      const bytes = randomBytes(n);
      const text = base32(bytes);
      assert.equal(text.length % 8, 0);
      assert.deepEqual(base32Decode(text), bytes);
      assert.deepEqual(base32Decode(base32(bytes, false)), bytes);
    }
    assert.equal(base32Decode('MZ1W'), undefined, 'not in the alphabet');
  });
});

describe('PEM', () => {
  it('wraps at 64 columns and unwraps every block, skipping text between', () => {
    const a = randomBytes(100);
    const b = randomBytes(3);
    const pem = pemEncode('CERTIFICATE', a);
    assert.ok(pem.split('\n').every((line) => line.length <= 64));
    assert.match(pem, /^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/);
    const text = `subject=CN = x\n${pem}some comment\n${pemEncode('PRIVATE KEY', b)}${pemEncode('CERTIFICATE', b)}`;
    assert.deepEqual(pemDecodeAll(text, 'CERTIFICATE'), [a, b]);
    assert.deepEqual(pemDecode(text, 'PRIVATE KEY'), b);
    assert.deepEqual(
      pemBlocks(text).map((blk) => blk.label),
      ['CERTIFICATE', 'PRIVATE KEY', 'CERTIFICATE'],
    );
    assert.equal(pemDecode(text, 'PUBLIC KEY'), undefined);
  });

  it('accepts CRLF line ends', () => {
    const der = randomBytes(80);
    assert.deepEqual(pemDecode(pemEncode('CERTIFICATE', der).replace(/\n/g, '\r\n'), 'CERTIFICATE'), der);
  });
});
