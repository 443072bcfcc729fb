import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { AttestationError } from '../errors.js';
import type { TdxClaims, VerificationResult, VerifyOptions } from '../types.js';
import { prng, vector } from '../snp/fixtures.js';
import { SNP_WARNING } from '../snp/verify.js';
import { HCL_REPORT_SIZE, parseHclReport } from './hcl.js';
import { parseTpmsAttest } from './tpm.js';
import { AZURE_WARNING, parseAzureEvidence, verifyAzureVtpm, type AzureEvidence } from './verify.js';

/**
 * STAND-IN for the Intel DCAP verifier (written elsewhere, wired by the lead): it checks NOTHING, it only reads
 * the TD quote v4 body at its offsets (header 48; REPORTDATA at +520, MRTD at +136, ...). With it these tests
 * cover only the Azure links: HCL var data ↔ REPORTDATA, TDREPORT ↔ quote, AK ↔ TPM quote.
 */
async function tdxStandIn(quote: Buffer, _opts: VerifyOptions): Promise<VerificationResult> {
  if (quote.length < 48 + 584 || quote.readUInt16LE(0) !== 4)
    throw new AttestationError('ATTESTATION_MALFORMED', 'stand-in: not a v4 quote');
  const b = quote.subarray(48, 48 + 584);
  const h = (o: number, l: number) => b.subarray(o, o + l).toString('hex');
  const claims: TdxClaims = {
    tee_tcb_svn: h(0, 16),
    mrseam: h(16, 48),
    mrsignerseam: h(64, 48),
    seamattributes: h(112, 8),
    tdattributes: h(120, 8),
    xfam: h(128, 8),
    mrtd: h(136, 48),
    mrconfigid: h(184, 48),
    mrowner: h(232, 48),
    mrownerconfig: h(280, 48),
    rtmr: [h(328, 48), h(376, 48), h(424, 48), h(472, 48)],
    debug: (b[120]! & 1) === 1,
  };
  return {
    type: 'tdx',
    claims,
    reportData: Buffer.from(b.subarray(520, 584)),
    tcb: undefined,
    chain: [],
    warnings: ['TDX stand-in: nothing verified'],
    simulated: false,
    revocation: 'unchecked',
  };
}

const SNP = 'azure/trustee-az-snp-vtpm/';
const TDX = 'azure/trustee-az-tdx-vtpm/';
const milanChain = vector('snp/go-sev-guest/ask_ark_milan.pem');
const genoaChain = vector('snp/go-sev-guest/ask_ark_genoa.pem');
const code =
  (c: string, ...parts: string[]) =>
  (e: unknown) => {
    assert.ok(e instanceof AttestationError, `not an AttestationError: ${String(e)}`);
    assert.equal(e.code, c, e.message);
    for (const p of parts) assert.ok(e.message.includes(p), `'${e.message}' does not mention '${p}'`);
    return true;
  };

function tpmQuoteV1(dir: string): AzureEvidence['tpmQuote'] {
  const j = JSON.parse(vector(dir + 'tpm-quote-v1.json').toString()) as {
    message: string;
    signature: string;
    pcrs: string[];
  };
  return {
    message: Buffer.from(j.message, 'hex'),
    signature: Buffer.from(j.signature, 'hex'),
    pcrs: j.pcrs.map((p) => Buffer.from(p, 'hex')),
  };
}

interface AzCase {
  name: string;
  evidence: () => AzureEvidence;
  type: 'az-snp-vtpm' | 'az-tdx-vtpm';
  at: Date;
  certs: Buffer[];
  from: Date;
}

const cases: AzCase[] = [
  {
    name: 'snp hcl-report.bin + tpm-quote-v1.json + vcek.pem',
    evidence: () => ({ hclReport: vector(SNP + 'hcl-report.bin'), tpmQuote: tpmQuoteV1(SNP) }),
    type: 'az-snp-vtpm',
    at: new Date('2023-06-01'),
    certs: [vector(SNP + 'vcek.pem')],
    from: new Date('2023-05-02T21:22:19Z'),
  },
  {
    name: 'snp evidence-v0.json',
    evidence: () => parseAzureEvidence(vector(SNP + 'evidence-v0.json')),
    type: 'az-snp-vtpm',
    at: new Date('2025-02-01'),
    certs: [milanChain],
    from: new Date('2025-01-28T16:26:55Z'),
  },
  {
    name: 'snp evidence-v1.json',
    evidence: () => parseAzureEvidence(vector(SNP + 'evidence-v1.json')),
    type: 'az-snp-vtpm',
    at: new Date('2025-02-01'),
    certs: [milanChain],
    from: new Date('2025-01-28T16:26:55Z'),
  },
  {
    name: 'snp evidence-v2.json',
    evidence: () => parseAzureEvidence(vector(SNP + 'evidence-v2.json')),
    type: 'az-snp-vtpm',
    at: new Date('2025-02-01'),
    certs: [milanChain],
    from: new Date('2025-01-28T16:33:43Z'),
  },
  {
    name: 'snp evidence-genoa.json',
    evidence: () => parseAzureEvidence(vector(SNP + 'evidence-genoa.json')),
    type: 'az-snp-vtpm',
    at: new Date('2025-02-01'),
    certs: [genoaChain],
    from: new Date('2025-01-24T02:21:48Z'),
  },
  {
    name: 'tdx hcl-report.bin + td-quote.bin + tpm-quote-v1.json',
    evidence: () => ({
      hclReport: vector(TDX + 'hcl-report.bin'),
      tdQuote: vector(TDX + 'td-quote.bin'),
      tpmQuote: tpmQuoteV1(TDX),
    }),
    type: 'az-tdx-vtpm',
    at: new Date('2025-02-01'),
    certs: [],
    from: new Date(0),
  },
  {
    name: 'tdx evidence-v0.json',
    evidence: () => parseAzureEvidence(vector(TDX + 'evidence-v0.json')),
    type: 'az-tdx-vtpm',
    at: new Date('2025-02-01'),
    certs: [],
    from: new Date(0),
  },
  {
    name: 'tdx evidence-v1.json',
    evidence: () => parseAzureEvidence(vector(TDX + 'evidence-v1.json')),
    type: 'az-tdx-vtpm',
    at: new Date('2025-02-01'),
    certs: [],
    from: new Date(0),
  },
];

const run = (c: AzCase, evidence = c.evidence(), at = c.at) =>
  verifyAzureVtpm(evidence, { type: c.type, now: at, certs: c.certs, verifyTdxQuote: tdxStandIn });

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
        assert.ok('mrtd' in r.claims.hardware);
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
      verifyAzureVtpm(snp.evidence(), { type: 'az-tdx-vtpm', now: snp.at, verifyTdxQuote: tdxStandIn }),
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
      verifyAzureVtpm(
        { ...tdx.evidence(), tdQuote: undefined },
        { type: 'az-tdx-vtpm', now: tdx.at, verifyTdxQuote: tdxStandIn },
      ),
      code('ATTESTATION_MALFORMED', 'TD quote'),
    );
  });

  it('refuses a TD quote of another TD (REPORTDATA and TDREPORT mismatch)', async () => {
    const q = Buffer.from(vector(TDX + 'td-quote.bin'));
    q[48 + 136] = q[48 + 136]! ^ 1; // MRTD
    await assert.rejects(run(tdx, { ...tdx.evidence(), tdQuote: q }), code('ATTESTATION_BINDING', 'MRTD'));
    const q2 = Buffer.from(vector(TDX + 'td-quote.bin'));
    q2[48 + 520] = q2[48 + 520]! ^ 1; // REPORTDATA
    await assert.rejects(run(tdx, { ...tdx.evidence(), tdQuote: q2 }), code('ATTESTATION_BINDING', 'REPORTDATA'));
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

/**
 * Bytes of the HCL TDREPORT that no check covers (the TD quote is what is verified; the TDREPORT is only
 * compared field by field): REPORTMACSTRUCT except its type byte and REPORTDATA (1..128, 192..256), TEE_TCB_INFO
 * `valid` and its tail (256..264, 384..512), TDINFO after the RTMRs (912..1024). Offsets within the TDREPORT.
 */
const TDREPORT_UNCHECKED: [number, number][] = [
  [1, 128],
  [192, 256],
  [256, 264],
  [384, 512],
  [912, 1024],
];

describe('verifyAzureVtpm: mutations', () => {
  cases.forEach((c, n) => {
    if (![0, 4, 5].includes(n)) return; // one SNP Milan, the Genoa one, one TDX: each 1,200 mutations
    it(`refuses 1,200 random single-byte mutations of ${c.name} (HCL report incl. var data, TPM quote, signature, PCRs${c.type === 'az-snp-vtpm' ? ', VCEK' : ''})`, async () => {
      const rnd = prng(0xa2 + n);
      const base = c.evidence();
      const vcekDer = c.type === 'az-snp-vtpm' ? pemOrDerVcek(base, c) : undefined;
      const targets = ['hcl', 'hcl', 'hcl', 'message', 'signature', 'pcrs', ...(vcekDer ? ['vcek'] : [])];
      let refused = 0;
      for (let i = 0; i < 1200; i++) {
        const target = targets[Math.floor(rnd() * targets.length)]!;
        const e: AzureEvidence = { ...base, tpmQuote: { ...base.tpmQuote } };
        const flip = (b: Buffer, allowed: (at: number) => boolean = () => true): Buffer => {
          const copy = Buffer.from(b);
          let at = Math.floor(rnd() * copy.length);
          while (!allowed(at)) at = Math.floor(rnd() * copy.length);
          copy[at] = copy[at]! ^ (1 + Math.floor(rnd() * 255));
          return copy;
        };
        const certs = [...c.certs];
        if (target === 'hcl') {
          e.hclReport = flip(
            base.hclReport,
            (at) => c.type !== 'az-tdx-vtpm' || !TDREPORT_UNCHECKED.some(([s, t]) => at >= 0x20 + s && at < 0x20 + t),
          );
        } else if (target === 'message') e.tpmQuote.message = flip(base.tpmQuote.message);
        else if (target === 'signature') e.tpmQuote.signature = flip(base.tpmQuote.signature);
        else if (target === 'pcrs') {
          const pcrs = base.tpmQuote.pcrs!.map((p) => p);
          const k = Math.floor(rnd() * pcrs.length);
          pcrs[k] = flip(pcrs[k]!);
          e.tpmQuote.pcrs = pcrs;
        } else {
          e.vcek = flip(vcekDer!);
          certs.splice(0, certs.length, ...chainOnly(c));
        }
        if (target !== 'vcek' && vcekDer) {
          e.vcek = vcekDer;
          certs.splice(0, certs.length, ...chainOnly(c));
        }
        try {
          await verifyAzureVtpm(e, { type: c.type, now: c.at, certs, verifyTdxQuote: tdxStandIn });
          assert.fail(`${target} mutation ${i} still verified`);
        } catch (err) {
          if (!(err instanceof AttestationError))
            throw new Error(`${target} mutation ${i}: ${String(err)}`, { cause: err });
          refused++;
        }
      }
      assert.equal(refused, 1200);
    });
  });
});

function pemToDers(pem: Buffer): Buffer[] {
  return (pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map((p) =>
    Buffer.from(p.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, ''), 'base64'),
  );
}

/** The VCEK as DER, whether it came in the envelope (PEM) or in vcek.pem (VCEK ‖ ASK ‖ ARK). */
function pemOrDerVcek(e: AzureEvidence, c: AzCase): Buffer {
  if (e.vcek) return pemToDers(e.vcek)[0] ?? e.vcek;
  return pemToDers(c.certs[0]!)[0]!;
}

function chainOnly(c: AzCase): Buffer[] {
  if (c.certs[0] && pemToDers(c.certs[0]).length === 3)
    return [
      Buffer.concat(
        pemToDers(c.certs[0])
          .slice(1)
          .map((d) => Buffer.from(`-----BEGIN CERTIFICATE-----\n${d.toString('base64')}\n-----END CERTIFICATE-----\n`)),
      ),
    ];
  return c.certs;
}
