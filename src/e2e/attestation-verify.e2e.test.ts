import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT, veil } from './harness.js';

/**
 * Every vector in testdata/vectors through `veil attestation verify`, as a user runs it: at its stated time,
 * with the expected TCB status and advisories, and every negative vector refused for its stated reason.
 */
const V = join(ROOT, 'testdata', 'vectors');
const v = (p: string) => join(V, p);
const col = (...paths: string[]) => paths.flatMap((p) => ['--collateral', v(p)]);
const certs = (...paths: string[]) => paths.flatMap((p) => ['--certs', v(p)]);

interface Ok {
  name: string;
  args: string[];
  at: string;
  claims?: Record<string, unknown>;
  status?: string;
  advisories?: string[];
  warnings?: RegExp[];
}

const withCollateral: Ok[] = [
  {
    name: 'Phala SGX quote + collateral',
    args: ['--type', 'sgx', v('sgx/phala-dcap-qvl/sgx_quote'), ...col('sgx/phala-dcap-qvl/sgx_quote_collateral.json')],
    at: '2025-06-19T11:56:00Z',
    status: 'ConfigurationAndSWHardeningNeeded',
    advisories: ['INTEL-SA-00289', 'INTEL-SA-00615'],
    claims: {
      mrenclave: '33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb',
      mrsigner: '815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6',
      debug: false,
    },
  },
  {
    name: 'Phala TDX quote + collateral',
    args: ['--type', 'tdx', v('tdx/phala-dcap-qvl/tdx_quote'), ...col('tdx/phala-dcap-qvl/tdx_quote_collateral.json')],
    at: '2025-06-19T11:16:00Z',
    status: 'UpToDate',
    advisories: [],
    claims: {
      mrtd: '91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7',
      debug: false,
    },
  },
  {
    // The v5 TCB info's window and the only TD_QE identity of that time (in Phala's 2026 collateral) overlap from 2026-02-18.
    name: 'go-tdx-guest TDX v5 quote + TCB info v5',
    args: [
      '--type',
      'tdx',
      v('tdx/go-tdx-guest/quote_v5_sample.dat'),
      ...col('tdx/go-tdx-guest/sample_tcbinfo_response_v5', 'tdx/phala-dcap-qvl/tdx_quote_outdated_collateral.json'),
    ],
    at: '2026-02-20T12:00:00Z',
    status: 'UpToDate',
    advisories: [],
  },
  {
    name: 'dcap-rs TDX quote + 2025 collateral',
    at: '2025-02-13T12:00:00Z',
    status: 'OutOfDate',
    advisories: ['INTEL-SA-00960', 'INTEL-SA-00982', 'INTEL-SA-00986'],
    args: [
      '--type',
      'tdx',
      v('tdx/automata-dcap-rs/quote_tdx_00806f050000.dat'),
      ...col(
        'tdx/automata-dcap-rs',
        'sgx/automata-dcap-rs/intel_root_ca_crl.der',
        'sgx/automata-dcap-rs/pck_platform_crl.der',
        'sgx/automata-dcap-rs/tcb_signing_cert.pem',
      ),
    ],
  },
  {
    name: 'dcap-rs SGX quote + collateral',
    args: ['--type', 'sgx', v('sgx/automata-dcap-rs/quote_v3_inline_lib_rs.dat'), ...col('sgx/automata-dcap-rs')],
    at: '2025-02-13T12:00:00Z',
    status: 'OutOfDate',
    advisories: [],
  },
  {
    name: 'trustee TDX quote 6 + TCB info and QE identity (no CRLs)',
    args: [
      '--type',
      'tdx',
      v('tdx/trustee/tdx_quote_6.dat'),
      ...col('tdx/trustee'),
      '--collateral',
      join(ROOT, 'testdata', 'intel-tcb-signing-2025.pem'),
    ],
    at: '2025-10-28T12:00:00Z',
    status: 'OutOfDate',
    advisories: [],
    warnings: [/no PCK CRL/],
  },
];

const quoteOnly: Ok[] = [
  ['tdx', 'tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat', '2022-09-21T13:20:31Z'],
  ['tdx', 'tdx/trustee/tdx_quote_4.dat', '2023-02-08T08:02:55Z'],
  ['tdx', 'tdx/trustee/tdx_quote_5.dat', '2024-03-19T08:43:51Z'],
  ['tdx', 'azure/trustee-az-tdx-vtpm/td-quote.bin', '2023-09-14T21:00:51Z'],
  ['tdx', 'tdx/openenclave/host_verify__tdx_quote.bin', '2023-01-26T17:15:58Z'],
  ['tdx', 'tdx/openenclave/host_verify__tdx_quote_v5.bin', '2023-08-17T03:32:02Z'],
  ['tdx', 'tdx/openenclave/host_verify__tdx_quote-moduleupdate-seamldr5.dat', '2024-12-10T21:06:25Z'],
  ['sgx', 'sgx/openenclave/intel_qve_thread_test__sgx_quote', '2023-05-12T14:13:02Z'],
  ['sgx', 'sgx/trustee/occlum_quote.dat', '2023-04-27T15:35:16Z'],
].map(([type, file, at]) => ({
  name: `${file} (quote only)`,
  args: ['--type', type!, v(file!)],
  at: at!,
  warnings: [/no collateral/],
}));

const snp: Ok[] = [
  {
    name: 'go-sev-guest SNP report + VCEK',
    args: [
      '--type',
      'snp',
      v('snp/go-sev-guest/attestation.bin'),
      ...certs('snp/go-sev-guest/vcek.testcer', 'snp/go-sev-guest/milan.testcer'),
    ],
    at: '2022-09-25T00:55:28Z',
    claims: { signing_key: 'vcek', product: 'Milan' },
  },
  {
    name: 'trustee SNP report + VCEK',
    args: [
      '--type',
      'snp',
      v('snp/trustee/test-report.bin'),
      ...certs('snp/trustee/test-vcek.der', 'snp/trustee/milan_ask_ark_asvk.pem'),
    ],
    at: '2023-01-25T17:58:26Z',
    claims: { signing_key: 'vcek' },
  },
  {
    name: 'trustee SNP report v3 + VLEK',
    args: [
      '--type',
      'snp',
      v('snp/trustee/test-vlek-report.bin'),
      ...certs('snp/trustee/test-vlek.der', 'snp/trustee/milan_ask_ark_asvk.pem'),
    ],
    at: '2024-12-11T22:14:21Z',
    claims: { signing_key: 'vlek', csp_id: 'CN=cc-us-east-2.amazonaws.com' },
  },
  {
    name: 'virtee SNP report (hex) + VCEK',
    args: [
      '--type',
      'snp',
      v('snp/virtee-sev/report_milan.hex'),
      ...certs('snp/virtee-sev/vcek_milan.der', 'snp/virtee-sev/cert_chain_milan'),
    ],
    at: '2023-04-04T19:23:43Z',
  },
];

const AZ_SNP = 'azure/trustee-az-snp-vtpm/';
const AZ_TDX = 'azure/trustee-az-tdx-vtpm/';
const azure: Ok[] = [
  {
    name: 'Azure SNP: HCL report + TPM quote + VCEK',
    args: [
      '--type',
      'az-snp-vtpm',
      v(`${AZ_SNP}hcl-report.bin`),
      '--tpm-quote',
      v(`${AZ_SNP}tpm-quote-v1.json`),
      ...certs(`${AZ_SNP}vcek.pem`),
    ],
    at: '2023-06-01T00:00:00Z',
  },
  ...['evidence-v0.json', 'evidence-v1.json', 'evidence-v2.json'].map((f) => ({
    name: `Azure SNP: ${f}`,
    args: ['--type', 'az-snp-vtpm', v(AZ_SNP + f), ...certs('snp/go-sev-guest/ask_ark_milan.pem')],
    at: '2025-02-01T00:00:00Z',
  })),
  {
    name: 'Azure SNP: evidence-genoa.json',
    args: ['--type', 'az-snp-vtpm', v(`${AZ_SNP}evidence-genoa.json`), ...certs('snp/go-sev-guest/ask_ark_genoa.pem')],
    at: '2025-02-01T00:00:00Z',
  },
  {
    name: 'Azure TDX: HCL report + TD quote + TPM quote',
    args: [
      '--type',
      'az-tdx-vtpm',
      v(`${AZ_TDX}hcl-report.bin`),
      '--tpm-quote',
      v(`${AZ_TDX}tpm-quote-v1.json`),
      '--td-quote',
      v(`${AZ_TDX}td-quote.bin`),
    ],
    at: '2025-02-01T00:00:00Z',
  },
  ...['evidence-v0.json', 'evidence-v1.json'].map((f) => ({
    name: `Azure TDX: ${f}`,
    args: ['--type', 'az-tdx-vtpm', v(AZ_TDX + f)],
    at: '2025-02-01T00:00:00Z',
  })),
];

interface Refused {
  name: string;
  args: string[];
  at: string;
  error: RegExp;
}

const refused: Refused[] = [
  {
    name: "Intel QVL sample SGX quote: a test root with the real root's subject and another key",
    args: [
      '--type',
      'sgx',
      v('sgx/intel-qvl-sampledata/quote.dat'),
      ...certs('sgx/intel-qvl-sampledata/pckCert.pem', 'sgx/intel-qvl-sampledata/pckSignChain.pem'),
    ],
    at: '2023-01-01T00:00:00Z',
    error: /PCK chain: root is not the Intel SGX Root CA .*\[ATTESTATION_CHAIN\]/s,
  },
  {
    name: 'Intel QVL sample SGX quote without its PCK certificate',
    args: ['--type', 'sgx', v('sgx/intel-qvl-sampledata/quote.dat')],
    at: '2023-01-01T00:00:00Z',
    error: /--certs/,
  },
  {
    name: 'Phala outdated TDX quote: no TCB level matches',
    args: [
      '--type',
      'tdx',
      v('tdx/phala-dcap-qvl/tdx_quote_outdated'),
      ...col('tdx/phala-dcap-qvl/tdx_quote_outdated_collateral.json'),
    ],
    at: '2026-02-19T12:00:00Z',
    error: /no TCB level matches.*\[ATTESTATION_TCB\]/s,
  },
  {
    name: 'go-tdx-guest v4 quote + 2023 TCB info: no TCB level matches',
    args: ['--type', 'tdx', v('tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat'), ...col('tdx/go-tdx-guest')],
    at: '2023-07-01T01:00:00Z',
    error: /no TCB level matches/,
  },
  {
    name: 'openenclave sgx_report_bad.bin',
    args: ['--type', 'sgx', v('sgx/openenclave/host_verify__sgx_report_bad.bin')],
    at: '2023-05-12T14:13:02Z',
    error: /\[ATTESTATION_MALFORMED\]/,
  },
  {
    name: 'an SGX quote declared as TDX',
    args: ['--type', 'tdx', v('sgx/phala-dcap-qvl/sgx_quote')],
    at: '2023-09-21T21:53:43Z',
    error: /SGX quote, but TDX evidence was expected/,
  },
  {
    name: 'the trustee VLEK after its expiry',
    args: [
      '--type',
      'snp',
      v('snp/trustee/test-vlek-report.bin'),
      ...certs('snp/trustee/test-vlek.der', 'snp/trustee/milan_ask_ark_asvk.pem'),
    ],
    at: '2025-12-11T00:00:00Z',
    error: /'SEV-VLEK' expired at 2025-12-10T22:14:21.000Z.*\[ATTESTATION_EXPIRED\]/s,
  },
  {
    name: 'Phala SGX collateral after its window',
    args: ['--type', 'sgx', v('sgx/phala-dcap-qvl/sgx_quote'), ...col('sgx/phala-dcap-qvl/sgx_quote_collateral.json')],
    at: '2025-08-01T00:00:00Z',
    error: /expired at .*\[ATTESTATION_EXPIRED\]/s,
  },
  {
    name: 'a TDX quote before its PCK certificate',
    args: ['--type', 'tdx', v('tdx/phala-dcap-qvl/tdx_quote')],
    at: '2025-01-01T00:00:00Z',
    error: /not valid before 2025-02-06.*\[ATTESTATION_EXPIRED\]/s,
  },
  {
    name: 'an SNP report without its VCEK',
    args: ['--type', 'snp', v('snp/go-sev-guest/attestation.bin')],
    at: '2022-09-25T00:55:28Z',
    error: /VCEK/,
  },
  {
    name: 'an Azure SNP envelope declared as TDX',
    args: ['--type', 'az-tdx-vtpm', v(`${AZ_SNP}evidence-v1.json`)],
    at: '2025-02-01T00:00:00Z',
    error: /ATTESTATION_/,
  },
];

type Json = {
  type: string;
  claims: Record<string, unknown>;
  report_data: string;
  tcb: { status: string; advisory_ids: string[] } | null;
  chain: unknown[];
  warnings: string[];
};

describe('veil attestation verify: every vector', () => {
  for (const c of [...withCollateral, ...quoteOnly, ...snp, ...azure]) {
    it(`${c.name} verifies`, async () => {
      const r = await veil(['attestation', 'verify', ...c.args, '--at', c.at, '--json'], {});
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as Json;
      assert.equal(out.type, c.args[1]);
      assert.match(out.report_data, /^[0-9a-f]+$/);
      assert.ok(out.chain.length >= 2, 'names the chain that authenticated it');
      if (c.status)
        assert.deepEqual(out.tcb && { status: out.tcb.status, advisory_ids: out.tcb.advisory_ids }, {
          status: c.status,
          advisory_ids: c.advisories,
        });
      else assert.equal(out.tcb, null);
      for (const [k, want] of Object.entries(c.claims ?? {})) assert.deepEqual(out.claims[k], want, k);
      for (const w of c.warnings ?? [])
        assert.ok(
          out.warnings.some((x) => w.test(x)),
          `warning ${w} in ${out.warnings.join(' | ')}`,
        );
    });
  }

  it('prints the claims and the TCB status for people, and says SEV-SNP measures the VM, not a program', async () => {
    const sgx = await veil(['attestation', 'verify', ...withCollateral[0]!.args, '--at', withCollateral[0]!.at], {});
    assert.equal(sgx.code, 0, sgx.stderr);
    assert.match(sgx.stdout, /^verified: SGX DCAP quote at 2025-06-19T11:56:00.000Z$/m);
    assert.match(
      sgx.stdout,
      /^tcb: ConfigurationAndSWHardeningNeeded \(platform ConfigurationAndSWHardeningNeeded, qe UpToDate\); advisories: INTEL-SA-00289, INTEL-SA-00615$/m,
    );
    const amd = await veil(['attestation', 'verify', ...snp[0]!.args, '--at', snp[0]!.at], {});
    assert.match(amd.stdout, /warning: SEV-SNP measures the whole VM at launch/);
  });
});

describe('veil attestation verify: refusals', () => {
  for (const c of refused) {
    it(`refuses ${c.name}`, async () => {
      const r = await veil(['attestation', 'verify', ...c.args, '--at', c.at], {});
      assert.equal(r.code, 1, r.stdout);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, c.error);
    });
  }

  it('needs the type said, and never guesses it', async () => {
    const r = await veil(['attestation', 'verify', v('sgx/phala-dcap-qvl/sgx_quote')], {});
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--type must be one of sgx, tdx, snp, az-snp-vtpm, az-tdx-vtpm/);
  });
});
