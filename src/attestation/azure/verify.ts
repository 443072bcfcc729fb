import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { AttestationError } from '../errors.js';
import type { AzureClaims, CollateralProvider, TdxClaims, VerificationResult, VerifyOptions } from '../types.js';
import { verifySnpReport, type AmdCollateralSource } from '../snp/verify.js';
import { parseHclReport, type HclReport } from './hcl.js';
import { checkPcrs, parseTpmsAttest, verifyQuoteSignature } from './tpm.js';

/**
 * Azure confidential VMs with a vTPM (attestation.md §1.7). Three links, each checked:
 * 1. the hardware evidence (SNP report inside the HCL report, or the separate TD quote) is genuine;
 * 2. its REPORT_DATA[0:32] is SHA-256 of the HCL var data, which carries the vTPM attestation key (HCLAkPub);
 * 3. the TPM quote is signed by that key; it carries the caller's nonce (extraData) and the PCR digest.
 * The guest itself is attested only through the TPM quote and its PCRs.
 */

export const AZURE_WARNING =
  'Azure CVM: the hardware report attests the paravisor (HCL) and the vTPM key; the guest is attested through the TPM quote and its PCRs, launched by the paravisor';
export const AZURE_NO_PCRS_WARNING = 'no PCR values were given: only their digest is attested';

export interface AzureEvidence {
  /** The 2600-byte HCL report. */
  hclReport: Buffer;
  tpmQuote: { message: Buffer; signature: Buffer; pcrs?: Buffer[] | undefined };
  /** SNP: the VCEK (DER or PEM, possibly with ASK and ARK) that came with the evidence. */
  vcek?: Buffer | undefined;
  /** TDX: the TD quote (DCAP v4/v5). */
  tdQuote?: Buffer | undefined;
}

export type TdxQuoteVerifier = (quote: Buffer, opts: VerifyOptions) => Promise<VerificationResult>;

export interface AzureVerifyOptions extends Omit<VerifyOptions, 'collateral'> {
  type: 'az-snp-vtpm' | 'az-tdx-vtpm';
  /** SNP: an AMD source; TDX: a full CollateralProvider (passed on to the TDX verifier). */
  collateral?: CollateralProvider | AmdCollateralSource | undefined;
  auxblob?: Buffer | undefined;
  /** The Intel DCAP verifier (intel/), injected so this module does not depend on it. Required for TDX. */
  verifyTdxQuote?: TdxQuoteVerifier | undefined;
}

function bindingError(message: string): AttestationError {
  return new AttestationError('ATTESTATION_BINDING', message, { check: 'HCL runtime data' });
}

export async function verifyAzureVtpm(evidence: AzureEvidence, opts: AzureVerifyOptions): Promise<VerificationResult> {
  if (opts.type !== 'az-snp-vtpm' && opts.type !== 'az-tdx-vtpm')
    throw new AttestationError('ATTESTATION_UNSUPPORTED', `unknown Azure evidence type ${String(opts.type)}`);
  if (!evidence || typeof evidence !== 'object' || !evidence.tpmQuote || typeof evidence.tpmQuote !== 'object') {
    throw new AttestationError('ATTESTATION_MALFORMED', 'the evidence needs an HCL report and a TPM quote', {
      check: 'Azure evidence',
    });
  }
  const hcl = parseHclReport(evidence.hclReport);
  const want = opts.type === 'az-snp-vtpm' ? 'snp' : 'tdx';
  if (hcl.hardwareType !== want) {
    throw new AttestationError(
      'ATTESTATION_UNSUPPORTED',
      `the HCL report holds a ${hcl.hardwareType.toUpperCase()} report, but ${opts.type} evidence was asked for`,
      { check: 'HCL report' },
    );
  }
  const { message, signature, pcrs } = evidence.tpmQuote;
  if (!Buffer.isBuffer(message) || !Buffer.isBuffer(signature))
    throw new AttestationError('ATTESTATION_MALFORMED', 'the TPM quote message and signature must be bytes', {
      check: 'TPM quote',
    });
  const quote = parseTpmsAttest(message);
  verifyQuoteSignature(message, signature, hcl.runtime.akKey);
  const pcrValues = pcrs ? checkPcrs(quote, pcrs) : undefined;

  const hardware = want === 'snp' ? await verifySnpPart(hcl, evidence, opts) : await verifyTdxPart(hcl, evidence, opts);
  const runtimeHash = createHash('sha256').update(hcl.varData).digest();
  const expected = Buffer.concat([runtimeHash, Buffer.alloc(32)]);
  if (hardware.reportData.length !== 64 || !timingSafeEqual(hardware.reportData, expected)) {
    throw bindingError(
      `the hardware report's REPORT_DATA is not SHA-256 of the HCL var data followed by 32 zero bytes (${hardware.reportData.toString('hex').slice(0, 16)}… ≠ ${runtimeHash.toString('hex').slice(0, 16)}…)`,
    );
  }

  const claims: AzureClaims = {
    hardware: hardware.claims as AzureClaims['hardware'],
    runtime_data_hash: runtimeHash.toString('hex'),
    ak_pub: hcl.runtime.akPub,
    tpm_nonce: quote.extraData.toString('hex'),
    pcr_digest: quote.pcrDigest.toString('hex'),
  };
  if (pcrValues) claims.pcrs = pcrValues;
  const warnings = [...hardware.warnings, AZURE_WARNING];
  if (!pcrValues) warnings.push(AZURE_NO_PCRS_WARNING);
  const result: VerificationResult =
    opts.type === 'az-snp-vtpm'
      ? {
          type: 'az-snp-vtpm',
          claims,
          reportData: quote.extraData,
          tcb: hardware.tcb,
          chain: hardware.chain,
          warnings,
          simulated: false,
          revocation: hardware.revocation,
        }
      : {
          type: 'az-tdx-vtpm',
          claims,
          reportData: quote.extraData,
          tcb: hardware.tcb,
          chain: hardware.chain,
          warnings,
          simulated: false,
          revocation: hardware.revocation,
        };
  return result;
}

function isAmdSource(c: AzureVerifyOptions['collateral']): c is AmdCollateralSource {
  return typeof c === 'function' || (c !== undefined && typeof c.amd === 'function');
}

async function verifySnpPart(
  hcl: HclReport,
  evidence: AzureEvidence,
  opts: AzureVerifyOptions,
): Promise<VerificationResult> {
  const certs = [...(evidence.vcek ? [evidence.vcek] : []), ...(opts.certs ?? [])];
  const result = await verifySnpReport(hcl.hardware, {
    now: opts.now,
    certs,
    auxblob: opts.auxblob,
    collateral: isAmdSource(opts.collateral) ? opts.collateral : undefined,
  });
  return result;
}

/** TDREPORT offsets (Intel TDX module ABI): REPORTMACSTRUCT 0..256, TEE_TCB_INFO 256..495, TDINFO 512..1024. */
const TDR = {
  type: 0,
  reportData: 128,
  teeTcbSvn: 256 + 8,
  mrSeam: 256 + 24,
  mrSignerSeam: 256 + 72,
  seamAttributes: 256 + 120,
  tdAttributes: 512,
  xfam: 512 + 8,
  mrtd: 512 + 16,
  mrConfigId: 512 + 64,
  mrOwner: 512 + 112,
  mrOwnerConfig: 512 + 160,
  rtmr: 512 + 208,
} as const;
const TDREPORT_TYPE_TDX = 0x81;

async function verifyTdxPart(
  hcl: HclReport,
  evidence: AzureEvidence,
  opts: AzureVerifyOptions,
): Promise<VerificationResult> {
  if (!opts.verifyTdxQuote)
    throw new AttestationError('ATTESTATION_UNSUPPORTED', 'no TDX quote verifier was given', { check: 'TD quote' });
  if (!Buffer.isBuffer(evidence.tdQuote))
    throw new AttestationError('ATTESTATION_MALFORMED', 'az-tdx-vtpm evidence needs the TD quote', {
      check: 'TD quote',
    });
  const c = opts.collateral;
  const collateral =
    c !== undefined && typeof c !== 'function' && 'intel' in c && typeof c.intel === 'function'
      ? (c as CollateralProvider)
      : undefined;
  const result = await opts.verifyTdxQuote(evidence.tdQuote, { now: opts.now, certs: opts.certs, collateral });
  if (result.type !== 'tdx')
    throw new AttestationError('ATTESTATION_UNSUPPORTED', `the TDX verifier returned ${result.type} claims`, {
      check: 'TD quote',
    });
  checkTdReport(hcl.hardware, result.reportData, result.claims);
  return result;
}

/**
 * The TDREPORT in the HCL report is MAC'd for the local CPU only and proves nothing remotely; the TD quote is
 * what is verified. The TDREPORT must still describe the same TD, so no one can pair the quote with another HCL
 * report's var data: REPORTDATA and every measured field are compared. (Its MAC, CPUSVN, hashes and reserved
 * bytes cannot be checked here.)
 */
function checkTdReport(tdreport: Buffer, reportData: Buffer, claims: TdxClaims): void {
  if (tdreport[TDR.type] !== TDREPORT_TYPE_TDX)
    throw bindingError(`the HCL hardware report is not a TDREPORT (type 0x${tdreport[TDR.type]!.toString(16)})`);
  const fields: [string, number, number, string][] = [
    ['REPORTDATA', TDR.reportData, 64, reportData.toString('hex')],
    ['TEE_TCB_SVN', TDR.teeTcbSvn, 16, claims.tee_tcb_svn],
    ['MRSEAM', TDR.mrSeam, 48, claims.mrseam],
    ['MRSIGNERSEAM', TDR.mrSignerSeam, 48, claims.mrsignerseam],
    ['SEAMATTRIBUTES', TDR.seamAttributes, 8, claims.seamattributes],
    ['TDATTRIBUTES', TDR.tdAttributes, 8, claims.tdattributes],
    ['XFAM', TDR.xfam, 8, claims.xfam],
    ['MRTD', TDR.mrtd, 48, claims.mrtd],
    ['MRCONFIGID', TDR.mrConfigId, 48, claims.mrconfigid],
    ['MROWNER', TDR.mrOwner, 48, claims.mrowner],
    ['MROWNERCONFIG', TDR.mrOwnerConfig, 48, claims.mrownerconfig],
    ...claims.rtmr.map((r, i): [string, number, number, string] => [`RTMR${i}`, TDR.rtmr + 48 * i, 48, r]),
  ];
  for (const [name, off, len, want] of fields) {
    if (tdreport.subarray(off, off + len).toString('hex') !== String(want).toLowerCase())
      throw bindingError(`the HCL report's TDREPORT ${name} differs from the TD quote's`);
  }
}

// ---- evidence envelopes ----------------------------------------------------------------------------------

const MAX = { hcl: 4096, tdQuote: 64 * 1024, vcek: 16 * 1024, message: 1024, signature: 1024, pcr: 64 } as const;
const byteArray = (max: number) => z.array(z.number().int().min(0).max(255)).max(max);
const hexString = (max: number) =>
  z
    .string()
    .max(2 * max)
    .regex(/^(?:[0-9a-fA-F]{2})*$/);
const b64String = (max: number) =>
  z
    .string()
    .max(Math.ceil((max * 4) / 3) + 4)
    .regex(/^[A-Za-z0-9+/_-]*={0,2}$/);

const quoteV0 = z.strictObject({
  message: byteArray(MAX.message),
  signature: byteArray(MAX.signature),
  pcrs: z.array(byteArray(MAX.pcr)).max(32).optional(),
});
const quoteHex = z.strictObject({
  message: hexString(MAX.message),
  signature: hexString(MAX.signature),
  pcrs: z.array(hexString(MAX.pcr)).max(32).optional(),
});
/** The TPM quote as trustee's tpm-quote-v1.json writes it (`{message, signature, pcrs}`, hex), bounded. */
export function parseTpmQuoteJson(input: Buffer): AzureEvidence['tpmQuote'] {
  let json: unknown;
  try {
    json = JSON.parse(input.toString('utf8'));
  } catch (err) {
    throw new AttestationError('ATTESTATION_MALFORMED', `the TPM quote is not JSON (${(err as Error).message})`, {
      check: 'TPM quote',
    });
  }
  const parsed = quoteHex.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new AttestationError(
      'ATTESTATION_MALFORMED',
      `the TPM quote is not {message, signature, pcrs} in hex (${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'})`,
      { check: 'TPM quote' },
    );
  }
  const q = parsed.data;
  return {
    message: Buffer.from(q.message, 'hex'),
    signature: Buffer.from(q.signature, 'hex'),
    pcrs: q.pcrs?.map((p) => Buffer.from(p, 'hex')),
  };
}

const envelope = z.union([
  // v0, SNP: {quote, report, vcek(PEM)}
  z.strictObject({
    quote: quoteV0,
    report: byteArray(MAX.hcl),
    vcek: z
      .string()
      .max(MAX.vcek * 2)
      .optional(),
  }),
  // v0, TDX: {tpm_quote, hcl_report, td_quote}
  z.strictObject({ tpm_quote: quoteV0, hcl_report: byteArray(MAX.hcl), td_quote: byteArray(MAX.tdQuote) }),
  // v1 / v2: base64url report and quote, hex TPM quote fields
  z.strictObject({
    version: z.union([z.literal(1), z.literal(2)]),
    tpm_quote: quoteHex,
    hcl_report: b64String(MAX.hcl),
    vcek: b64String(MAX.vcek).optional(),
    td_quote: b64String(MAX.tdQuote).optional(),
  }),
]);

/**
 * trustee's az-snp-vtpm / az-tdx-vtpm evidence JSON: v0 byte arrays (SNP `{quote, report, vcek}`, TDX
 * `{tpm_quote, hcl_report, td_quote}`), v1/v2 `{version, tpm_quote{hex}, hcl_report b64url, vcek|td_quote}`.
 */
export function parseAzureEvidence(input: string | Buffer | unknown): AzureEvidence {
  const fail = (m: string) => new AttestationError('ATTESTATION_MALFORMED', m, { check: 'Azure evidence' });
  let json: unknown = input;
  if (typeof input === 'string' || Buffer.isBuffer(input)) {
    try {
      json = JSON.parse(input.toString());
    } catch (err) {
      throw fail(`not JSON (${(err as Error).message})`);
    }
  }
  const parsed = envelope.safeParse(json);
  if (!parsed.success)
    throw fail(
      `not a known evidence envelope (${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? 'invalid'})`,
    );
  const e = parsed.data;
  if ('quote' in e) {
    return {
      hclReport: Buffer.from(e.report),
      tpmQuote: {
        message: Buffer.from(e.quote.message),
        signature: Buffer.from(e.quote.signature),
        pcrs: e.quote.pcrs?.map((p) => Buffer.from(p)),
      },
      vcek: e.vcek === undefined ? undefined : Buffer.from(e.vcek, 'latin1'),
    };
  }
  if (!('version' in e)) {
    return {
      hclReport: Buffer.from(e.hcl_report),
      tpmQuote: {
        message: Buffer.from(e.tpm_quote.message),
        signature: Buffer.from(e.tpm_quote.signature),
        pcrs: e.tpm_quote.pcrs?.map((p) => Buffer.from(p)),
      },
      tdQuote: Buffer.from(e.td_quote),
    };
  }
  return {
    hclReport: Buffer.from(e.hcl_report, 'base64url'),
    tpmQuote: {
      message: Buffer.from(e.tpm_quote.message, 'hex'),
      signature: Buffer.from(e.tpm_quote.signature, 'hex'),
      pcrs: e.tpm_quote.pcrs?.map((p) => Buffer.from(p, 'hex')),
    },
    vcek: e.vcek === undefined ? undefined : Buffer.from(e.vcek, 'base64'),
    tdQuote: e.td_quote === undefined ? undefined : Buffer.from(e.td_quote, 'base64url'),
  };
}
