import { AttestationError } from './errors.js';
import { parseAzureEvidence, parseTpmQuoteJson, verifyAzureVtpm, type AzureEvidence } from './azure/verify.js';
import { verifyIntelQuote } from './intel/verify.js';
import { verifySnpReport } from './snp/verify.js';
import type {
  CollateralProvider,
  EvidenceVerifier,
  HardwareEvidence,
  VerificationResult,
  VerifyOptions,
} from './types.js';

/**
 * The one entry to the hardware verifiers, used by the CAS, `veil attestation verify` and `veil cas attest`.
 * The verifier is chosen by the type the caller declares — never by looking at the bytes — and simulation
 * evidence has no way in here at all (verify.ts judges it, separately).
 */
export interface HardwareInput extends HardwareEvidence {
  /** Azure, when the evidence is the bare HCL report: the TPM quote (`{message, signature, pcrs}` JSON, hex). */
  tpmQuote?: Buffer | undefined;
  /** Azure TDX, with the bare HCL report: the TD quote. */
  tdQuote?: Buffer | undefined;
}

export async function verifyHardware(input: HardwareInput, opts: VerifyOptions): Promise<VerificationResult> {
  const intel = opts.collateral
    ? (r: Parameters<CollateralProvider['intel']>[0]) => opts.collateral!.intel(r)
    : undefined;
  switch (input.type) {
    case 'sgx':
    case 'tdx':
      return verifyIntelQuote(input.evidence, { now: opts.now, certs: opts.certs, tee: input.type, collateral: intel });
    case 'snp':
      return verifySnpReport(input.evidence, {
        now: opts.now,
        certs: opts.certs,
        auxblob: input.auxblob,
        collateral: opts.collateral,
      });
    case 'az-snp-vtpm':
    case 'az-tdx-vtpm':
      return verifyAzureVtpm(azureEvidence(input), {
        type: input.type,
        now: opts.now,
        certs: opts.certs,
        collateral: opts.collateral,
        verifyTdxQuote: (quote, o) =>
          verifyIntelQuote(quote, { now: o.now, certs: o.certs, tee: 'tdx', collateral: intel }),
      });
    default:
      throw new AttestationError(
        'ATTESTATION_UNSUPPORTED',
        `unknown evidence type '${String((input as { type: unknown }).type)}'`,
        { check: 'evidence type' },
      );
  }
}

/** trustee's JSON envelope, or the HCL report with the TPM quote (and the TD quote) beside it. */
function azureEvidence(input: HardwareInput): AzureEvidence {
  if (!input.tpmQuote) return parseAzureEvidence(input.evidence);
  return { hclReport: input.evidence, tpmQuote: parseTpmQuoteJson(input.tpmQuote), tdQuote: input.tdQuote };
}

/** The CAS's verifier: the declared type, the injected time, and the collateral it was started with. */
export function createVerifier(options: { collateral?: CollateralProvider | undefined }): EvidenceVerifier {
  return { verify: (evidence, now) => verifyHardware(evidence, { now, collateral: options.collateral }) };
}
