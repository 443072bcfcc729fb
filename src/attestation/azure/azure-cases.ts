import { AttestationError } from '../errors.js';
import type { TdxClaims, VerificationResult, VerifyOptions } from '../types.js';
import { vector } from '../snp/fixtures.js';
import { parseAzureEvidence, verifyAzureVtpm, type AzureEvidence } from './verify.js';

/**
 * STAND-IN for the Intel DCAP verifier (written elsewhere, wired by the lead): it checks NOTHING, it only reads
 * the TD quote v4 body at its offsets (header 48; REPORTDATA at +520, MRTD at +136, ...). With it these tests
 * cover only the Azure links: HCL var data ↔ REPORTDATA, TDREPORT ↔ quote, AK ↔ TPM quote.
 */
export async function tdxStandIn(quote: Buffer, _opts: VerifyOptions): Promise<VerificationResult> {
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

export const SNP = 'azure/trustee-az-snp-vtpm/';
export const TDX = 'azure/trustee-az-tdx-vtpm/';
export const milanChain = vector('snp/go-sev-guest/ask_ark_milan.pem');
export const genoaChain = vector('snp/go-sev-guest/ask_ark_genoa.pem');

export function tpmQuoteV1(dir: string): AzureEvidence['tpmQuote'] {
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

export interface AzCase {
  name: string;
  evidence: () => AzureEvidence;
  type: 'az-snp-vtpm' | 'az-tdx-vtpm';
  at: Date;
  certs: Buffer[];
  from: Date;
}

export const cases: AzCase[] = [
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

export const run = (c: AzCase, evidence = c.evidence(), at = c.at) =>
  verifyAzureVtpm(evidence, { type: c.type, now: at, certs: c.certs, verifyTdxQuote: tdxStandIn });

export function pemToDers(pem: Buffer): Buffer[] {
  return (pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map((p) =>
    Buffer.from(p.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, ''), 'base64'),
  );
}

/** The VCEK as DER, whether it came in the envelope (PEM) or in vcek.pem (VCEK ‖ ASK ‖ ARK). */
export function pemOrDerVcek(e: AzureEvidence, c: AzCase): Buffer {
  if (e.vcek) return pemToDers(e.vcek)[0] ?? e.vcek;
  return pemToDers(c.certs[0]!)[0]!;
}

export function chainOnly(c: AzCase): Buffer[] {
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
