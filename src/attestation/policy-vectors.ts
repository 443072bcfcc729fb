/** The real vectors (testdata/vectors) verified once per policy test file, and the helpers those files share. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before } from 'node:test';
import { collateralProvider } from './collateral.js';
import type { AttestationError } from './errors.js';
import { verifyHardware, type HardwareInput } from './hardware.js';
import { intelCollateralFromFiles } from './intel/index.js';
import type { TcbStatus, VerificationResult, VerifyOptions } from './types.js';

export const V = fileURLToPath(new URL('../../testdata/vectors/', import.meta.url));
export const file = (p: string) => readFileSync(join(V, p));
export const verified = (input: HardwareInput, opts: VerifyOptions) => verifyHardware(input, opts);
export const files = (...paths: string[]) =>
  collateralProvider({ intel: [intelCollateralFromFiles(paths.map((p) => join(V, p)))] });

export const refusedWith = (code: string, message: RegExp, hint?: RegExp) => (e: AttestationError) => {
  assert.equal(e.code, code, e.message);
  assert.match(e.message, message);
  if (hint) assert.match(e.hint ?? '', hint);
  return true;
};

export let sgx: VerificationResult & { type: 'sgx' }; // Phala: ConfigurationAndSWHardeningNeeded, INTEL-SA-00289 and -00615
export let tdx: VerificationResult & { type: 'tdx' }; // Phala: UpToDate
export let outdated: VerificationResult & { type: 'tdx' }; // dcap-rs: OutOfDate with three advisories
export let debugSgx: VerificationResult & { type: 'sgx' }; // occlum: a debug enclave (quote only)
export let debugTd: VerificationResult & { type: 'tdx' }; // trustee tdx_quote_4: a debug TD (quote only)
export let snp: VerificationResult & { type: 'snp' }; // trustee VCEK report: SMT on, not debug
export let vlek: VerificationResult & { type: 'snp' }; // trustee VLEK report (AWS)
export let snpDebug: VerificationResult & { type: 'snp' }; // go-sev-guest: policy debug bit set
export let azure: VerificationResult & { type: 'az-snp-vtpm' };

/** Verifies the vectors before the calling test file's tests (each policy test file calls it). */
export function useVerifiedVectors(): void {
  before(verifyVectors);
}

async function verifyVectors(): Promise<void> {
  sgx = (await verified(
    { type: 'sgx', evidence: file('sgx/phala-dcap-qvl/sgx_quote') },
    { now: new Date('2025-06-19T11:56:00Z'), collateral: files('sgx/phala-dcap-qvl/sgx_quote_collateral.json') },
  )) as typeof sgx;
  tdx = (await verified(
    { type: 'tdx', evidence: file('tdx/phala-dcap-qvl/tdx_quote') },
    { now: new Date('2025-06-19T11:16:00Z'), collateral: files('tdx/phala-dcap-qvl/tdx_quote_collateral.json') },
  )) as typeof tdx;
  outdated = (await verified(
    { type: 'tdx', evidence: file('tdx/automata-dcap-rs/quote_tdx_00806f050000.dat') },
    {
      now: new Date('2025-02-13T12:00:00Z'),
      collateral: files(
        'tdx/automata-dcap-rs',
        'sgx/automata-dcap-rs/intel_root_ca_crl.der',
        'sgx/automata-dcap-rs/pck_platform_crl.der',
        'sgx/automata-dcap-rs/tcb_signing_cert.pem',
      ),
    },
  )) as typeof outdated;
  debugSgx = (await verified(
    { type: 'sgx', evidence: file('sgx/trustee/occlum_quote.dat') },
    { now: new Date('2023-04-27T15:35:16Z') },
  )) as typeof debugSgx;
  debugTd = (await verified(
    { type: 'tdx', evidence: file('tdx/trustee/tdx_quote_4.dat') },
    { now: new Date('2023-02-08T08:02:55Z') },
  )) as typeof debugTd;
  const milan = file('snp/trustee/milan_ask_ark_asvk.pem');
  snp = (await verified(
    { type: 'snp', evidence: file('snp/trustee/test-report.bin') },
    { now: new Date('2023-01-25T17:58:26Z'), certs: [file('snp/trustee/test-vcek.der'), milan] },
  )) as typeof snp;
  vlek = (await verified(
    { type: 'snp', evidence: file('snp/trustee/test-vlek-report.bin') },
    { now: new Date('2024-12-11T22:14:21Z'), certs: [file('snp/trustee/test-vlek.der'), milan] },
  )) as typeof vlek;
  snpDebug = (await verified(
    { type: 'snp', evidence: file('snp/go-sev-guest/attestation.bin') },
    {
      now: new Date('2022-09-25T00:55:28Z'),
      certs: [file('snp/go-sev-guest/vcek.testcer'), file('snp/go-sev-guest/milan.testcer')],
    },
  )) as typeof snpDebug;
  azure = (await verified(
    {
      type: 'az-snp-vtpm',
      evidence: file('azure/trustee-az-snp-vtpm/hcl-report.bin'),
      tpmQuote: file('azure/trustee-az-snp-vtpm/tpm-quote-v1.json'),
    },
    { now: new Date('2023-06-01T00:00:00Z'), certs: [file('azure/trustee-az-snp-vtpm/vcek.pem')] },
  )) as typeof azure;
}

/** The SNP vectors come without an ARK CRL: judge their other properties as if it had been there. */
export const revoked = (r: VerificationResult): VerificationResult => ({ ...r, revocation: 'checked' });
export const withStatus = (
  r: VerificationResult,
  status: TcbStatus,
  advisoryIds: string[] = [],
): VerificationResult => ({
  ...r,
  tcb: { status, advisoryIds, parts: { platform: status } },
});
export const other = (hex: string) => (hex[0] === '0' ? '1' : '0') + hex.slice(1);
