import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttestationError } from '../errors.js';
import { SUMMARY, prng, teeOf, vector } from './fixtures.js';
import { parseQuote, sgxReportFields, tdReportFields } from './quote.js';

function malformed(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AttestationError, String(err));
    assert.equal(err.code, 'ATTESTATION_MALFORMED');
    assert.match(err.message, message);
    return true;
  });
}

describe('parseQuote on the vectors', () => {
  for (const [path, e] of Object.entries(SUMMARY)) {
    it(path, () => {
      const q = parseQuote(vector(path));
      assert.equal(q.version, e.version);
      assert.equal(q.tee, teeOf(e));
      assert.equal(q.bodyType, e.bodyType);
      assert.equal(q.body.length, e.bodyLength);
      assert.equal(q.body.byteOffset - q.header.byteOffset, e.bodyOffset);
      assert.equal(q.trailing, e.trailingBytes);
      assert.equal(q.certType, 5);
      assert.equal(q.qeAuthData.length, 32);
      const reportData = q.tee === 'tdx' ? tdReportFields(q.body).reportData : sgxReportFields(q.body).reportData;
      assert.equal(reportData.toString('hex'), e.body['reportData']);
      assert.equal(sgxReportFields(q.qeReport).isvsvn, e.qe.isvSvn);
    });
  }
});

describe('parseQuote refuses malformed input', () => {
  const v3 = vector('sgx/phala-dcap-qvl/sgx_quote');
  const v5 = vector('tdx/go-tdx-guest/quote_v5_sample.dat');

  it('every truncation of a v3 and a v5 quote', () => {
    for (const q of [v3, v5]) {
      const end = q.length - parseQuote(q).trailing;
      for (let n = 0; n < end; n++)
        malformed(() => parseQuote(q.subarray(0, n)), /^quote: .* at offset \d+|^quote: signature_data_len/);
    }
  });

  it('header fields', () => {
    const set = (q: Buffer, off: number, bytes: number[]): Buffer => {
      const c = Buffer.from(q);
      for (const [i, b] of bytes.entries()) c[off + i] = b;
      return c;
    };
    malformed(() => parseQuote(set(v3, 0, [6, 0])), /version 6 at offset 0/);
    malformed(() => parseQuote(set(v3, 2, [3, 0])), /att_key_type 3 at offset 2 is not 2/);
    malformed(() => parseQuote(set(v3, 4, [0x81, 0, 0, 0])), /tee_type 0x81 at offset 4 .*v3 is SGX only/);
    malformed(() => parseQuote(set(v5, 4, [0x7f, 0, 0, 0])), /tee_type 0x7f at offset 4/);
    malformed(() => parseQuote(set(v3, 12, [0])), /qe_vendor_id .* at offset 12/);
    malformed(() => parseQuote(set(v5, 48, [9, 0])), /body type 9 at offset 48/);
    malformed(() => parseQuote(set(v5, 48, [2, 0])), /body size 648 at offset 50 is not 584 \(body type 2\)/);
    malformed(() => parseQuote(set(v5, 48, [1, 0])), /body type 1 at offset 48 does not fit tee_type 0x81/);
    malformed(() => parseQuote(Buffer.from('not a quote')), /header at offset 0 needs 48 bytes/);
  });

  it('lengths must add up', () => {
    const q = Buffer.from(v3);
    q.writeUInt32LE(q.readUInt32LE(432) - 1, 432);
    malformed(() => parseQuote(q), /unexplained|at offset/);
    const r = Buffer.from(v3);
    r.writeUInt32LE(0xffffffff, 432);
    malformed(() => parseQuote(r), /signature_data_len 4294967295 at offset 432 exceeds the quote/);
  });

  it('random garbage and random headers never throw anything but ATTESTATION_MALFORMED', () => {
    const rand = prng(7);
    for (let i = 0; i < 3000; i++) {
      const len = Math.floor(rand() * 1200);
      const b = Buffer.alloc(len);
      for (let j = 0; j < len; j++) b[j] = Math.floor(rand() * 256);
      // Half of them get a plausible header, so the fuzzing reaches the body and signature data.
      if (len >= 48 && i % 2 === 0) {
        v5.copy(b, 0, 0, 48);
        if (i % 4 === 0) {
          b.writeUInt16LE(3, 0);
          b.writeUInt32LE(0, 4);
        }
      }
      try {
        parseQuote(b);
      } catch (err) {
        assert.ok(
          err instanceof AttestationError && err.code === 'ATTESTATION_MALFORMED',
          `input ${i}: ${String(err)}`,
        );
      }
    }
  });
});
