import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { IntelCollateral } from '../types.js';
import { intelCollateralFromBlobs, intelCollateralFromFiles } from './sources.js';
import type { IntelCollateralSource } from './verify.js';

/** Test helpers: the vectors under testdata/vectors, found relative to the compiled file (dist/attestation/intel). */

export const VECTORS = fileURLToPath(new URL('../../../testdata/vectors/', import.meta.url));

export function vector(path: string): Buffer {
  return readFileSync(VECTORS + path);
}

export interface SummaryEntry {
  version: number;
  teeType: string;
  bodyType: number;
  bodyOffset: number;
  bodyLength: number;
  signatureDataLength: number;
  trailingBytes: number;
  fmspc: string;
  pceId: string;
  pceSvn: number;
  cpuSvnComponents: number[];
  sgxType: number;
  pckIssuer: string;
  chainValidFrom: string;
  chainValidTo: string;
  verifyAt: string;
  qe: { mrSigner: string; isvProdId: number; isvSvn: number };
  body: Record<string, string | string[] | number>;
}

export const SUMMARY = JSON.parse(vector('SUMMARY.json').toString('utf8')).intel as Record<string, SummaryEntry>;

export function teeOf(e: SummaryEntry): 'sgx' | 'tdx' {
  return e.teeType === '0x81' ? 'tdx' : 'sgx';
}

function phala(path: string): Record<string, string> {
  return JSON.parse(vector(path).toString('utf8')) as Record<string, string>;
}

/** The 2025 re-issue of the TCB Signing certificate (same key as 2018), only shipped inside Phala's collateral. */
export const TCB_SIGNING_2025 = phala('tdx/phala-dcap-qvl/tdx_quote_collateral.json')['tcb_info_issuer_chain']!;

export interface CollateralCase {
  name: string;
  quote: string;
  tee: 'sgx' | 'tdx';
  /** Inside every window (certificates and collateral). */
  at: string;
  source: () => IntelCollateralSource;
  status: string;
  advisoryIds: string[];
  parts: Record<string, string>;
  warnings?: RegExp[];
}

const outdated = phala('tdx/phala-dcap-qvl/tdx_quote_outdated_collateral.json');

export const COLLATERAL_CASES: CollateralCase[] = [
  {
    name: 'Phala SGX',
    quote: 'sgx/phala-dcap-qvl/sgx_quote',
    tee: 'sgx',
    at: '2025-06-19T11:56:00Z',
    source: () => intelCollateralFromFiles([VECTORS + 'sgx/phala-dcap-qvl/sgx_quote_collateral.json']),
    status: 'ConfigurationAndSWHardeningNeeded',
    advisoryIds: ['INTEL-SA-00289', 'INTEL-SA-00615'],
    parts: { platform: 'ConfigurationAndSWHardeningNeeded', qe: 'UpToDate' },
  },
  {
    name: 'Phala TDX',
    quote: 'tdx/phala-dcap-qvl/tdx_quote',
    tee: 'tdx',
    at: '2025-06-19T11:16:00Z',
    source: () => intelCollateralFromFiles([VECTORS + 'tdx/phala-dcap-qvl/tdx_quote_collateral.json']),
    status: 'UpToDate',
    advisoryIds: [],
    parts: { platform: 'UpToDate', tdxModule: 'UpToDate', qe: 'UpToDate' },
  },
  {
    // The v5 TCB info's window (2026-02-01..03-03) and the only TD_QE identity of that period (Phala's,
    // 2026-02-18..03-20) overlap from 2026-02-18; the 2018 signing certificate had expired by then.
    name: 'go-tdx-guest v5',
    quote: 'tdx/go-tdx-guest/quote_v5_sample.dat',
    tee: 'tdx',
    at: '2026-02-20T12:00:00Z',
    source: () =>
      intelCollateralFromBlobs([
        { name: 'tcbinfo', bytes: vector('tdx/go-tdx-guest/sample_tcbinfo_response_v5') },
        { name: 'chain', bytes: Buffer.from(outdated['tcb_info_issuer_chain']!) },
        {
          name: 'qe',
          bytes: Buffer.from(
            `{"enclaveIdentity":${outdated['qe_identity']},"signature":"${outdated['qe_identity_signature']}"}`,
          ),
        },
        { name: 'root crl', bytes: Buffer.from(outdated['root_ca_crl']!, 'hex') },
        { name: 'pck crl', bytes: Buffer.from(outdated['pck_crl']!, 'hex') },
      ]),
    status: 'UpToDate',
    advisoryIds: [],
    parts: { platform: 'UpToDate', tdxModule: 'UpToDate', qe: 'UpToDate' },
  },
  {
    name: 'dcap-rs TDX',
    quote: 'tdx/automata-dcap-rs/quote_tdx_00806f050000.dat',
    tee: 'tdx',
    at: '2025-02-13T12:00:00Z',
    source: () =>
      intelCollateralFromFiles([
        VECTORS + 'tdx/automata-dcap-rs',
        VECTORS + 'sgx/automata-dcap-rs/intel_root_ca_crl.der',
        VECTORS + 'sgx/automata-dcap-rs/pck_platform_crl.der',
        VECTORS + 'sgx/automata-dcap-rs/tcb_signing_cert.pem',
      ]),
    status: 'OutOfDate',
    advisoryIds: ['INTEL-SA-00960', 'INTEL-SA-00982', 'INTEL-SA-00986'],
    parts: { platform: 'OutOfDate', tdxModule: 'UpToDate', qe: 'UpToDate' },
  },
  {
    name: 'dcap-rs SGX',
    quote: 'sgx/automata-dcap-rs/quote_v3_inline_lib_rs.dat',
    tee: 'sgx',
    at: '2025-02-13T12:00:00Z',
    source: () => intelCollateralFromFiles([VECTORS + 'sgx/automata-dcap-rs']),
    status: 'OutOfDate',
    advisoryIds: [],
    parts: { platform: 'OutOfDate', qe: 'UpToDate' },
  },
  {
    name: 'trustee TDX',
    quote: 'tdx/trustee/tdx_quote_6.dat',
    tee: 'tdx',
    at: '2025-10-28T12:00:00Z',
    source: () =>
      intelCollateralFromBlobs([
        { name: 'tcbInfo.json', bytes: vector('tdx/trustee/tcbInfo.json') },
        { name: 'enclaveIdentity.json', bytes: vector('tdx/trustee/enclaveIdentity.json') },
        { name: 'signing chain', bytes: Buffer.from(TCB_SIGNING_2025) },
      ]),
    status: 'OutOfDate',
    advisoryIds: [],
    parts: { platform: 'OutOfDate', tdxModule: 'UpToDate', qe: 'UpToDate' },
    warnings: [/^no PCK CRL: revocation of the PCK certificate not checked$/],
  },
];

export async function collateralOf(c: CollateralCase): Promise<IntelCollateral> {
  const quoteFmspc = SUMMARY[c.quote]!.fmspc;
  const ca = SUMMARY[c.quote]!.pckIssuer.includes('Processor') ? 'processor' : 'platform';
  const col = await c.source()({ tee: c.tee, fmspc: quoteFmspc, ca });
  if (!col) throw new Error(`no collateral for ${c.name}`);
  return col;
}

export { prng } from '../testing.js';
