import { VECTORS as INTEL_VECTORS } from '../intel/fixtures.js';
import { intelCollateralFromFiles, verifyIntelQuote } from '../intel/index.js';
import { vector } from '../snp/fixtures.js';
import { parseAzureEvidence, verifyAzureVtpm, type AzureEvidence, type TdxQuoteVerifier } from './verify.js';

/**
 * The TD quote of the az-tdx-vtpm vectors is verified by the real Intel DCAP verifier, as hardware.ts wires it
 * for the CAS, with collateral for its FMSPC (00806f050000) from the project's TDX vectors: TCB info and QE
 * identity (valid 2025-02-13..2025-03-15), the Intel root CA CRL and the PCK Platform CA CRL. So the quote's
 * signature by its attestation key, the QE report by the PCK key, the PCK chain to the pinned Intel root, the
 * QE identity, revocation and the TCB status are all checked here, as well as the Azure links.
 */
export const TDX_AT = new Date('2025-02-13T12:00:00Z');
export const tdxCollateral = intelCollateralFromFiles([
  INTEL_VECTORS + 'tdx/automata-dcap-rs',
  INTEL_VECTORS + 'sgx/automata-dcap-rs/intel_root_ca_crl.der',
  INTEL_VECTORS + 'sgx/automata-dcap-rs/pck_platform_crl.der',
  INTEL_VECTORS + 'sgx/automata-dcap-rs/tcb_signing_cert.pem',
]);
export const verifyTdxQuote: TdxQuoteVerifier = (quote, o) =>
  verifyIntelQuote(quote, { now: o.now, certs: o.certs, tee: 'tdx', collateral: tdxCollateral });

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
    at: TDX_AT,
    certs: [],
    from: new Date(0),
  },
  {
    name: 'tdx evidence-v0.json',
    evidence: () => parseAzureEvidence(vector(TDX + 'evidence-v0.json')),
    type: 'az-tdx-vtpm',
    at: TDX_AT,
    certs: [],
    from: new Date(0),
  },
  {
    name: 'tdx evidence-v1.json',
    evidence: () => parseAzureEvidence(vector(TDX + 'evidence-v1.json')),
    type: 'az-tdx-vtpm',
    at: TDX_AT,
    certs: [],
    from: new Date(0),
  },
];

export const run = (c: AzCase, evidence = c.evidence(), at = c.at) =>
  verifyAzureVtpm(evidence, { type: c.type, now: at, certs: c.certs, verifyTdxQuote });

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
