import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { AttestationError } from '../errors.js';
import { VECTORS, snpCases, type SnpSummary } from './fixtures.js';
import {
  SNP_REPORT_SIZE,
  decodePolicy,
  decodeTcb,
  parseSnpReport,
  productFromChipId,
  productFromCpuid,
} from './report.js';

const summary = JSON.parse(readFileSync(new URL('SUMMARY.json', VECTORS), 'utf8')) as {
  amd: Record<string, SnpSummary>;
};
const malformed = (field: string) => (e: unknown) =>
  e instanceof AttestationError && e.code === 'ATTESTATION_MALFORMED' && e.message.includes(field);

function edit(report: Buffer, f: (b: Buffer) => void): Buffer {
  const b = Buffer.from(report);
  f(b);
  return b;
}

describe('parseSnpReport', () => {
  const base = snpCases()[0]!.report;

  for (const c of snpCases()) {
    it(`reads every field of ${c.name} as SUMMARY.json lists it`, () => {
      const r = parseSnpReport(c.report);
      const s = summary.amd[c.summary]!.report;
      assert.equal(r.version, s.version);
      assert.equal(r.guestSvn, s.guestSvn);
      assert.equal(`0x${r.policy.toString(16)}`, s.policy);
      assert.equal(r.familyId.toString('hex'), s.familyId);
      assert.equal(r.imageId.toString('hex'), s.imageId);
      assert.equal(r.vmpl, s.vmpl);
      assert.equal(r.signatureAlgo, s.signatureAlgo);
      assert.equal(`0x${r.platformInfo.toString(16)}`, s.platformInfo);
      assert.equal(r.signingKey, s.signerInfo.signingKey === 0 ? 'vcek' : 'vlek');
      assert.equal(r.authorKeyEn, s.signerInfo.authorKeyEn === 1);
      assert.equal(r.maskChipKey, false);
      for (const k of [
        'reportData',
        'measurement',
        'hostData',
        'idKeyDigest',
        'authorKeyDigest',
        'reportId',
        'reportIdMa',
        'chipId',
      ] as const)
        assert.equal(r[k].toString('hex'), s[k], k);
      assert.deepEqual(decodeTcb(r.currentTcb, 'Milan'), s.currentTcb);
      assert.deepEqual(decodeTcb(r.reportedTcb, 'Milan'), s.reportedTcb);
      assert.deepEqual(decodeTcb(r.committedTcb, 'Milan'), s.committedTcb);
      assert.deepEqual(decodeTcb(r.launchTcb, 'Milan'), s.launchTcb);
      const v = r.currentVersion;
      assert.equal(`${v.major}.${v.minor}.${v.build}`, s.currentVersion);
      const cv = r.committedVersion;
      assert.equal(`${cv.major}.${cv.minor}.${cv.build}`, s.committedVersion);
      assert.deepEqual(r.cpuid, s.cpuid);
      assert.equal(r.product, s.cpuid ? 'Milan' : undefined);
      assert.equal(r.signature.length, 96);
    });
  }

  it('decodes the policy bits', () => {
    assert.deepEqual(decodePolicy(0xb0000n), {
      raw: '0xb0000',
      abi_minor: 0,
      abi_major: 0,
      smt: true,
      migrate_ma: false,
      debug: true,
      single_socket: false,
    });
    assert.deepEqual(decodePolicy(0x3001fn), {
      raw: '0x3001f',
      abi_minor: 0x1f,
      abi_major: 0,
      smt: true,
      migrate_ma: false,
      debug: false,
      single_socket: false,
    });
  });

  it('decodes TCB_VERSION per product (Turin moves the fields and adds FMC)', () => {
    const raw = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(decodeTcb(raw, 'Milan'), { bootloader: 1, tee: 2, snp: 7, microcode: 8 });
    assert.deepEqual(decodeTcb(raw, 'Genoa'), { bootloader: 1, tee: 2, snp: 7, microcode: 8 });
    assert.deepEqual(decodeTcb(raw, 'Turin'), { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 8 });
  });

  it('detects the product from CPUID and, for version 2, the Turin CHIP_ID shape', () => {
    assert.equal(productFromCpuid(0x19, 0x01), 'Milan');
    assert.equal(productFromCpuid(0x19, 0x11), 'Genoa');
    assert.equal(productFromCpuid(0x19, 0xa0), 'Genoa');
    assert.equal(productFromCpuid(0x1a, 0x02), 'Turin');
    assert.throws(
      () => productFromCpuid(0x17, 0x31),
      (e: AttestationError) => e.code === 'ATTESTATION_UNSUPPORTED',
    );
    assert.throws(
      () => productFromCpuid(0x19, 0x20),
      (e: AttestationError) => e.code === 'ATTESTATION_UNSUPPORTED',
    );
    assert.equal(productFromChipId(Buffer.concat([Buffer.alloc(8, 1), Buffer.alloc(56)])), 'Turin');
    assert.equal(productFromChipId(Buffer.alloc(64)), undefined);
    assert.equal(productFromChipId(Buffer.alloc(64, 1)), undefined);
    const v3 = parseSnpReport(snpCases()[2]!.report);
    assert.deepEqual(v3.cpuid, { family: 0x19, model: 1, stepping: 1 });
  });

  it('refuses wrong sizes, including report ‖ certificates', () => {
    assert.throws(() => parseSnpReport(base.subarray(0, SNP_REPORT_SIZE - 1)), malformed('exactly 1184'));
    assert.throws(
      () => parseSnpReport(Buffer.concat([base, Buffer.alloc(24)])),
      malformed('split report and certificate table'),
    );
    assert.throws(() => parseSnpReport(Buffer.alloc(0)), malformed('exactly 1184'));
    assert.throws(() => parseSnpReport('x' as unknown as Buffer), malformed('byte buffer'));
  });

  it('refuses unknown versions, algorithms, policy and signing keys', () => {
    for (const v of [0, 1, 6, 0xffffffff])
      assert.throws(() => parseSnpReport(edit(base, (b) => b.writeUInt32LE(v, 0))), malformed('VERSION'));
    assert.throws(() => parseSnpReport(edit(base, (b) => b.writeUInt32LE(2, 0x34))), malformed('SIGNATURE_ALGO'));
    assert.throws(() => parseSnpReport(edit(base, (b) => (b[0x0a] = 0x01))), malformed('reserved bit 17'));
    assert.throws(() => parseSnpReport(edit(base, (b) => (b[0x0b] = 0x04))), malformed('unknown bits'));
    assert.throws(() => parseSnpReport(edit(base, (b) => b.writeUInt32LE(4, 0x30))), malformed('VMPL'));
    assert.throws(() => parseSnpReport(edit(base, (b) => b.writeUInt32LE(7 << 2, 0x48))), malformed('SIGNING_KEY'));
    assert.throws(() => parseSnpReport(edit(base, (b) => b.writeUInt32LE(2 << 2, 0x48))), malformed('SIGNING_KEY'));
    assert.throws(() => parseSnpReport(edit(base, (b) => b.writeUInt32LE(1 << 5, 0x48))), malformed('signer info'));
  });

  it('refuses non-zero reserved bytes and signature padding', () => {
    for (const off of [0x4c, 0x188, 0x19f, 0x1eb, 0x1ef, 0x1f8, 0x29f]) {
      assert.throws(
        () => parseSnpReport(edit(base, (b) => (b[off] = 1))),
        malformed('must be zero'),
        `offset 0x${off.toString(16)}`,
      );
    }
    // version 3: 0x188..0x18a are CPUID, the rest stays reserved
    const v3 = snpCases()[2]!.report;
    assert.throws(() => parseSnpReport(edit(v3, (b) => (b[0x18b] = 1))), malformed('must be zero'));
    assert.throws(() => parseSnpReport(edit(base, (b) => (b[0x2a0 + 48] = 1))), malformed('R does not fit'));
    assert.throws(() => parseSnpReport(edit(base, (b) => (b[0x2a0 + 72 + 71] = 1))), malformed('S does not fit'));
    assert.throws(
      () => parseSnpReport(edit(base, (b) => (b[0x4a0 - 1] = 1))),
      malformed('reserved bytes after R and S'),
    );
  });

  it('reads the version 5 mitigation vectors', () => {
    const v5 = edit(snpCases()[2]!.report, (b) => {
      b.writeUInt32LE(5, 0);
      b.writeBigUInt64LE(3n, 0x1f8);
      b.writeBigUInt64LE(1n, 0x200);
    });
    const r = parseSnpReport(v5);
    assert.equal(r.launchMitVector, 3n);
    assert.equal(r.currentMitVector, 1n);
    assert.throws(() => parseSnpReport(edit(v5, (b) => (b[0x208] = 1))), malformed('must be zero'));
  });
});
