import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../e2e/harness.js';
import { memoryTsm } from '../e2e/tsm-standin.js';
import type { AttestationError } from './errors.js';
import {
  ZERO_RTMR,
  expectedRtmr3,
  extendRtmr,
  extendRtmrThroughKernel,
  readRtmr,
  replayRtmr,
  rtmrInterfacePresent,
  veilRtmr3Events,
} from './rtmr.js';

/** An independent SHA-384: openssl's, over the bytes given on stdin. */
function opensslSha384(...parts: Array<Buffer | string>): Buffer {
  return execFileSync('openssl', ['dgst', '-sha384', '-binary'], {
    input: Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'ascii') : p))),
  });
}

const runtimeDigest = Buffer.alloc(32, 0x11);
const programSha = Buffer.alloc(32, 0x22);

describe('RTMR extension and replay', () => {
  it('extends as SHA-384(value ‖ digest), checked against openssl', () => {
    const value = Buffer.alloc(48, 0x01);
    const digest = Buffer.alloc(48, 0x02);
    assert.deepEqual(extendRtmr(value, digest), opensslSha384(value, digest));
  });

  it("defines Veil's two RTMR3 events as SHA-384 over a label and the value, checked against openssl", () => {
    const [runtime, program] = veilRtmr3Events(runtimeDigest, programSha);
    assert.deepEqual(runtime, {
      index: 3,
      digest: opensslSha384('veil-rtmr3-runtime-v1\0', runtimeDigest).toString('hex'),
      description: `veil-runtime sha256:${'11'.repeat(32)}`,
    });
    assert.deepEqual(program, {
      index: 3,
      digest: opensslSha384('veil-rtmr3-program-v1\0', programSha).toString('hex'),
      description: `program sha256:${'22'.repeat(32)}`,
    });
  });

  it('replays the log from zero to the expected RTMR3 (openssl, step by step)', () => {
    const events = veilRtmr3Events(runtimeDigest, programSha);
    const step1 = opensslSha384(ZERO_RTMR, Buffer.from(events[0]!.digest, 'hex'));
    const step2 = opensslSha384(step1, Buffer.from(events[1]!.digest, 'hex'));
    assert.deepEqual(expectedRtmr3(runtimeDigest, programSha), step2);
    assert.deepEqual(replayRtmr(events), step2);
    // Hand-checked with a shell pipeline (printf label; 32 bytes of 0x11 / 0x22 | openssl dgst -sha384 -binary,
    // then the two extensions from 48 zero bytes): the value is fixed by the definition, not by this code.
    assert.equal(
      events[0]!.digest,
      '30e97db0971dd48bca151254651c8cdd487716f7fb116904fef71fcf0246cf667798a4d6d023baec33babe1f0590fdcb',
    );
    assert.equal(
      events[1]!.digest,
      '22900b086466238751a9157bfa74296d48ef2614efaa7573fdbb9c48fab53b45bfc60c794e7a3653e1f8f7649d6824b3',
    );
    assert.equal(
      step2.toString('hex'),
      '60b9e810a90614cf66394daf4bab48d6b46862004e812f882458c60e47e90c47881972ce1133ffb7eb7ffbdb5da99eb4',
    );
  });

  it('replays only the events of the register asked for, from a given start', () => {
    const other = { index: 2, digest: 'ff'.repeat(48), description: 'not ours' };
    const events = veilRtmr3Events(runtimeDigest, programSha);
    assert.deepEqual(replayRtmr([other, ...events]), replayRtmr(events));
    assert.deepEqual(replayRtmr([other], ZERO_RTMR, 2), extendRtmr(ZERO_RTMR, Buffer.alloc(48, 0xff)));
    assert.deepEqual(replayRtmr([]), ZERO_RTMR);
  });

  it('refuses digests of the wrong size', () => {
    assert.throws(
      () => replayRtmr([{ index: 3, digest: 'ab'.repeat(32), description: 'sha256?' }]),
      (err: AttestationError) => err.code === 'ATTESTATION_MALFORMED',
    );
    assert.throws(() => extendRtmr(ZERO_RTMR, Buffer.alloc(32)), /48 bytes, not 32/);
    assert.throws(() => veilRtmr3Events(Buffer.alloc(48), programSha), /32 bytes/);
  });

  /*
   * Replay against real quotes: no TDX vector in testdata/vectors/tdx carries an event log for RTMR3 (the
   * go-tdx-guest, Phala, trustee, dcap-rs and Open Enclave quotes come without one; trustee's
   * parse_tdx_claims_expected.json lists 5 firmware events for RTMR0/1 that are not the complete log, so they
   * do not replay to the quoted values). What the vectors do show: none of those TDs extended RTMR3, which
   * reads zeros at TD body offset 472 — the replay of an empty log. That is all that is checked here.
   */
  it('reads zeros in RTMR3 of every TDX vector, the replay of an empty log (none carries an RTMR3 event log)', () => {
    const dir = join(ROOT, 'testdata', 'vectors', 'tdx');
    const quotes = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) =>
      /quote.*\.dat$|tdx_quote_\d\.dat$/.test(f),
    );
    assert.ok(quotes.length >= 5, quotes.join(', '));
    for (const file of quotes) {
      const quote = readFileSync(join(dir, file));
      const body = quote.readUInt16LE(0) === 5 ? 48 + 6 : 48; // v5: a 6-byte body descriptor precedes the body
      assert.deepEqual(quote.subarray(body + 472, body + 520), replayRtmr([]), file);
    }
  });
});

describe('the kernel RTMR interface (in-memory stand-in of sysfs rtmr3:sha384)', () => {
  it('extends by writing 48 bytes and reads the value back', async () => {
    const tsm = memoryTsm({ provider: 'tdx_guest', outblob: Buffer.alloc(1), rtmr: true });
    const base = tsm.paths.measurements;
    assert.equal(await rtmrInterfacePresent(tsm.fs, base), true);
    const events = veilRtmr3Events(runtimeDigest, programSha);
    for (const e of events) await extendRtmrThroughKernel(tsm.fs, Buffer.from(e.digest, 'hex'), base);
    assert.deepEqual(await readRtmr(tsm.fs, base), expectedRtmr3(runtimeDigest, programSha));
  });

  it('says when the interface is absent, and names the path and errno of a failed extension', async () => {
    const tsm = memoryTsm({ provider: 'tdx_guest', outblob: Buffer.alloc(1) });
    assert.equal(await rtmrInterfacePresent(tsm.fs, tsm.paths.measurements), false);
    await assert.rejects(
      extendRtmrThroughKernel(tsm.fs, Buffer.alloc(48), tsm.paths.measurements),
      (err: AttestationError) => {
        assert.equal(err.code, 'ATTESTATION_COLLECT');
        assert.match(err.message, /^TDX RTMR: cannot extend \/tdx_guest\/measurements\/rtmr3:sha384 \(ENOENT\)$/);
        return true;
      },
    );
  });
});
