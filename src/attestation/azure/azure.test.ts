import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { vector } from '../snp/fixtures.js';
import { SNP_WARNING } from '../snp/verify.js';
import { HCL_REPORT_SIZE, parseHclReport } from './hcl.js';
import { parseTpmsAttest } from './tpm.js';
import { AZURE_WARNING, parseAzureEvidence, verifyAzureVtpm, type AzureEvidence } from './verify.js';

import { code } from '../test-errors.js';
import { verifyHardware } from '../hardware.js';
import { vector as intelVector } from '../intel/fixtures.js';
import { verifyIntelQuote } from '../intel/index.js';
import type { CollateralProvider } from '../types.js';
import { cases, run, SNP, TDX, TDX_AT, tdxCollateral, tpmQuoteV1, verifyTdxQuote } from './azure-cases.js';

describe('verifyAzureVtpm: the vectors', () => {
  for (const c of cases) {
    it(`${c.name} verifies`, async () => {
      const e = c.evidence();
      const r = await run(c, e);
      assert.equal(r.type, c.type);
      if (r.type !== 'az-snp-vtpm' && r.type !== 'az-tdx-vtpm') return;
      const hcl = parseHclReport(e.hclReport);
      assert.equal(r.claims.runtime_data_hash, createHash('sha256').update(hcl.varData).digest('hex'));
      assert.deepEqual(r.claims.ak_pub, hcl.runtime.akPub);
      const q = parseTpmsAttest(e.tpmQuote.message);
      assert.equal(r.claims.tpm_nonce, q.extraData.toString('hex'));
      assert.ok(r.reportData.equals(q.extraData));
      assert.equal(r.claims.pcr_digest, q.pcrDigest.toString('hex'));
      assert.equal(Object.keys(r.claims.pcrs ?? {}).length, 24);
      assert.ok(r.warnings.includes(AZURE_WARNING));
      if (c.type === 'az-snp-vtpm') {
        assert.ok(r.warnings.includes(SNP_WARNING));
        assert.equal(r.chain.length, 3);
        assert.ok('measurement' in r.claims.hardware);
      } else {
        // The real DCAP verifier with full collateral: chain to the Intel root, revocation, TCB status.
        assert.ok('mrtd' in r.claims.hardware);
        assert.equal(r.claims.hardware.mrtd, hcl.hardware.subarray(512 + 16, 512 + 64).toString('hex'));
        assert.equal(r.chain.length, 3);
        assert.match(r.chain[0]!.subject, /Intel SGX PCK Certificate/);
        assert.match(r.chain.at(-1)!.subject, /Intel SGX Root CA/);
        assert.equal(r.revocation, 'checked');
        assert.equal(r.tcb?.status, 'OutOfDate');
        assert.deepEqual(r.tcb?.parts, { platform: 'OutOfDate', tdxModule: 'OutOfDate', qe: 'UpToDate' });
        assert.ok(!r.warnings.some((w) => /no collateral|nothing verified/.test(w)), r.warnings.join('; '));
      }
    });
  }

  it("carries trustee's nonce 'challenge' in the v0/v1 quotes", async () => {
    const r = await run(cases[1]!);
    assert.equal(r.reportData.toString(), 'challenge');
  });

  it('parses the TPMS_ATTEST fields', () => {
    const q = parseTpmsAttest(tpmQuoteV1(SNP).message);
    assert.equal(q.extraData.toString(), 'challenge');
    assert.deepEqual(q.pcrSelect, [{ hash: 0x000b, pcrs: Array.from({ length: 24 }, (_, i) => i) }]);
    assert.equal(q.pcrDigest.length, 32);
    assert.equal(q.qualifiedSigner.length, 34);
    assert.equal(typeof q.clock, 'bigint');
    // the trustee fragment that does not verify still parses
    const frag = parseTpmsAttest(vector(SNP + 'tpm-quote.msg'));
    assert.equal(frag.extraData.toString(), 'challenge');
  });
});

describe('verifyAzureVtpm: refusals', () => {
  const snp = cases[0]!;
  const tdx = cases[5]!;

  it("refuses trustee's tpm-quote.msg/.sig fragment (it verifies against none of the AKs)", async () => {
    for (const c of cases) {
      const e = {
        ...c.evidence(),
        tpmQuote: { message: vector(SNP + 'tpm-quote.msg'), signature: vector(SNP + 'tpm-quote.sig') },
      };
      await assert.rejects(run(c, e), code('ATTESTATION_SIGNATURE', 'HCLAkPub'));
    }
  });

  it('refuses every swap of HCL report (AK) and TPM quote between vectors', async () => {
    const ev = cases.map((c) => c.evidence());
    const hcl = (i: number) =>
      createHash('sha256').update(parseHclReport(ev[i]!.hclReport).runtime.akPub.n).digest('hex');
    let refused = 0;
    for (let i = 0; i < cases.length; i++) {
      for (let j = 0; j < cases.length; j++) {
        if (i === j || hcl(i) === hcl(j)) continue; // snp v0 and v1 share one AK: their quotes are interchangeable by design
        const mixed = { ...ev[i]!, tpmQuote: ev[j]!.tpmQuote };
        await assert.rejects(run(cases[i]!, mixed), code('ATTESTATION_SIGNATURE', 'TPM quote signature'));
        refused++;
      }
    }
    assert.ok(refused >= 40, String(refused));
  });

  it('refuses the wrong report type, and TDX without its quote or verifier', async () => {
    await assert.rejects(
      verifyAzureVtpm(snp.evidence(), { type: 'az-tdx-vtpm', now: snp.at, verifyTdxQuote }),
      code('ATTESTATION_UNSUPPORTED', 'SNP report'),
    );
    await assert.rejects(
      verifyAzureVtpm(tdx.evidence(), { type: 'az-snp-vtpm', now: tdx.at }),
      code('ATTESTATION_UNSUPPORTED', 'TDX report'),
    );
    await assert.rejects(
      verifyAzureVtpm(tdx.evidence(), { type: 'az-tdx-vtpm', now: tdx.at }),
      code('ATTESTATION_UNSUPPORTED', 'no TDX quote verifier'),
    );
    await assert.rejects(
      verifyAzureVtpm({ ...tdx.evidence(), tdQuote: undefined }, { type: 'az-tdx-vtpm', now: tdx.at, verifyTdxQuote }),
      code('ATTESTATION_MALFORMED', 'TD quote'),
    );
  });

  it('refuses a TD quote whose signed bytes were changed (the quote signature)', async () => {
    for (const at of [48 + 136, 48 + 520, 30]) {
      const q = Buffer.from(vector(TDX + 'td-quote.bin'));
      q[at] = q[at]! ^ 1; // MRTD, REPORTDATA, the header's user data
      await assert.rejects(
        run(tdx, { ...tdx.evidence(), tdQuote: q }),
        code('ATTESTATION_SIGNATURE', 'quote signature'),
      );
    }
  });

  it('refuses a genuine TD quote of another TD beside this HCL report (REPORTDATA and TDREPORT mismatch)', async () => {
    // Signed by a real TDX platform of the same FMSPC, so it passes the DCAP checks: only the binding refuses it.
    const other = intelVector('tdx/automata-dcap-rs/quote_tdx_00806f050000.dat');
    await verifyIntelQuote(other, { now: TDX_AT, tee: 'tdx', collateral: tdxCollateral });
    await assert.rejects(run(tdx, { ...tdx.evidence(), tdQuote: other }), code('ATTESTATION_BINDING', 'REPORTDATA'));
    const hcl = Buffer.from(tdx.evidence().hclReport);
    hcl[0x20 + 512 + 16] = hcl[0x20 + 512 + 16]! ^ 1; // the TDREPORT's MRTD, which no MAC covers here
    await assert.rejects(run(tdx, { ...tdx.evidence(), hclReport: hcl }), code('ATTESTATION_BINDING', 'MRTD'));
  });

  it('refuses the TD quote outside its collateral window, and says what is unchecked without collateral', async () => {
    await assert.rejects(run(tdx, tdx.evidence(), new Date('2025-03-20')), code('ATTESTATION_EXPIRED', 'TCB info'));
    await assert.rejects(run(tdx, tdx.evidence(), new Date('2023-06-01')), code('ATTESTATION_EXPIRED', 'PCK'));
    const bare = await verifyAzureVtpm(tdx.evidence(), {
      type: 'az-tdx-vtpm',
      now: TDX_AT,
      verifyTdxQuote: (quote, o) => verifyIntelQuote(quote, { now: o.now, tee: 'tdx' }),
    });
    assert.equal(bare.tcb, undefined);
    assert.equal(bare.revocation, 'unchecked');
    assert.ok(bare.warnings.some((w) => /no collateral/.test(w)));
  });

  it('is verified the same through verifyHardware, the CAS entry (its TDX verifier wired there)', async () => {
    const provider: CollateralProvider = { intel: tdxCollateral, amd: async () => undefined };
    const evidence = Buffer.from(vector(TDX + 'evidence-v1.json'));
    const r = await verifyHardware({ type: 'az-tdx-vtpm', evidence }, { now: TDX_AT, collateral: provider });
    assert.equal(r.type, 'az-tdx-vtpm');
    assert.equal(r.revocation, 'checked');
    assert.equal(r.tcb?.status, 'OutOfDate');
    await assert.rejects(
      verifyHardware({ type: 'az-tdx-vtpm', evidence }, { now: new Date('2025-03-20'), collateral: provider }),
      code('ATTESTATION_EXPIRED', 'TCB info'),
    );
  });

  it('refuses PCR values that do not hash to pcrDigest, and accepts a quote without PCR values (with a warning)', async () => {
    const e = snp.evidence();
    const pcrs = e.tpmQuote.pcrs!.map((p) => Buffer.from(p));
    pcrs[7]![0] = pcrs[7]![0]! ^ 1;
    await assert.rejects(
      run(snp, { ...e, tpmQuote: { ...e.tpmQuote, pcrs } }),
      code('ATTESTATION_SIGNATURE', 'pcrDigest'),
    );
    await assert.rejects(
      run(snp, { ...e, tpmQuote: { ...e.tpmQuote, pcrs: pcrs.slice(0, 10) } }),
      code('ATTESTATION_MALFORMED', 'PCR 10'),
    );
    const r = await run(snp, { ...e, tpmQuote: { message: e.tpmQuote.message, signature: e.tpmQuote.signature } });
    assert.ok(r.warnings.some((w) => w.includes('no PCR values')));
  });

  it('refuses the SNP evidence outside the VCEK window, and without the chain', async () => {
    for (const c of cases.slice(0, 5)) {
      await assert.rejects(
        run(c, c.evidence(), new Date(c.from.getTime() - 1000)),
        code('ATTESTATION_EXPIRED', 'SEV-VCEK'),
      );
      await assert.rejects(run(c, c.evidence(), new Date('2033-01-01')), code('ATTESTATION_EXPIRED'));
    }
    await assert.rejects(
      verifyAzureVtpm(cases[1]!.evidence(), { type: 'az-snp-vtpm', now: cases[1]!.at }),
      code('ATTESTATION_COLLATERAL', "no 'SEV-Milan'"),
    );
  });

  it('refuses malformed HCL reports and envelopes', async () => {
    const hcl = vector(SNP + 'hcl-report.bin');
    const bad = (f: (b: Buffer) => void, what: string) => {
      const b = Buffer.from(hcl);
      f(b);
      assert.throws(() => parseHclReport(b), code('ATTESTATION_MALFORMED', what), what);
    };
    assert.throws(() => parseHclReport(hcl.subarray(0, HCL_REPORT_SIZE - 1)), code('ATTESTATION_MALFORMED', '2600'));
    bad((b) => b.write('HCLB', 0), 'HCLA');
    bad((b) => b.writeUInt32LE(9, 4), 'version');
    bad((b) => b.writeUInt32LE(3, 12), 'request_type');
    bad((b) => b.writeUInt32LE(1, 16), 'status');
    bad((b) => (b[0x1f] = 1), 'header reserved');
    bad((b) => b.writeUInt32LE(3, 0x4c0 + 8), 'report_type');
    bad((b) => b.writeUInt32LE(2, 0x4c0 + 12), 'hash_type');
    bad((b) => b.writeUInt32LE(5000, 0x4c0 + 16), 'var_size');
    bad((b) => (b[HCL_REPORT_SIZE - 1] = 1), 'padding');
    assert.throws(() => parseAzureEvidence('{'), code('ATTESTATION_MALFORMED', 'not JSON'));
    assert.throws(() => parseAzureEvidence({ version: 3 }), code('ATTESTATION_MALFORMED', 'envelope'));
    assert.throws(
      () => parseAzureEvidence({ quote: { message: [256], signature: [] }, report: [] }),
      code('ATTESTATION_MALFORMED'),
    );
    await assert.rejects(
      verifyAzureVtpm({ hclReport: hcl } as AzureEvidence, { type: 'az-snp-vtpm', now: snp.at }),
      code('ATTESTATION_MALFORMED'),
    );
  });
});

// ---- mutations -----------------------------------------------------------------------------------------
