import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import { collateralProvider } from './collateral.js';
import type { AttestationError } from './errors.js';
import { verifyHardware, type HardwareInput } from './hardware.js';
import { intelCollateralFromFiles } from './intel/index.js';
import { checkIdentity, checkMode, checkPlatform, type AttestationVariant } from './policy.js';
import type { SgxClaims, SnpClaims, TcbStatus, TdxClaims, VerificationResult, VerifyOptions } from './types.js';

/** Policy rules judged on claims verified from the real vectors (testdata/vectors). */
const V = fileURLToPath(new URL('../../testdata/vectors/', import.meta.url));
const file = (p: string) => readFileSync(join(V, p));
const verified = (input: HardwareInput, opts: VerifyOptions) => verifyHardware(input, opts);
const files = (...paths: string[]) =>
  collateralProvider({ intel: [intelCollateralFromFiles(paths.map((p) => join(V, p)))] });

const refusedWith = (code: string, message: RegExp, hint?: RegExp) => (e: AttestationError) => {
  assert.equal(e.code, code, e.message);
  assert.match(e.message, message);
  if (hint) assert.match(e.hint ?? '', hint);
  return true;
};

let sgx: VerificationResult & { type: 'sgx' }; // Phala: ConfigurationAndSWHardeningNeeded, INTEL-SA-00289 and -00615
let tdx: VerificationResult & { type: 'tdx' }; // Phala: UpToDate
let outdated: VerificationResult & { type: 'tdx' }; // dcap-rs: OutOfDate with three advisories
let debugSgx: VerificationResult & { type: 'sgx' }; // occlum: a debug enclave (quote only)
let debugTd: VerificationResult & { type: 'tdx' }; // trustee tdx_quote_4: a debug TD (quote only)
let snp: VerificationResult & { type: 'snp' }; // trustee VCEK report: SMT on, not debug
let vlek: VerificationResult & { type: 'snp' }; // trustee VLEK report (AWS)
let snpDebug: VerificationResult & { type: 'snp' }; // go-sev-guest: policy debug bit set
let azure: VerificationResult & { type: 'az-snp-vtpm' };

before(async () => {
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
});

/** The SNP vectors come without an ARK CRL: judge their other properties as if it had been there. */
const revoked = (r: VerificationResult): VerificationResult => ({ ...r, revocation: 'checked' });
const withStatus = (r: VerificationResult, status: TcbStatus, advisoryIds: string[] = []): VerificationResult => ({
  ...r,
  tcb: { status, advisoryIds, parts: { platform: status } },
});
const other = (hex: string) => (hex[0] === '0' ? '1' : '0') + hex.slice(1);

describe('TCB status and advisories (SCONE tolerations)', () => {
  it('UpToDate needs nothing', () => {
    assert.deepEqual(checkPlatform(tdx, undefined), []);
  });

  it('ConfigurationAndSWHardeningNeeded needs both tolerations and every advisory ignored', () => {
    assert.throws(
      () => checkPlatform(sgx, undefined),
      refusedWith(
        'ATTESTATION_TCB',
        /^TCB status: the TCB status is ConfigurationAndSWHardeningNeeded \(advisories INTEL-SA-00289, INTEL-SA-00615\)/,
        /insecure-configuration and software-hardening-needed/,
      ),
    );
    assert.throws(
      () => checkPlatform(sgx, { tolerate: ['insecure-configuration'] }),
      refusedWith('ATTESTATION_TCB', /ConfigurationAndSWHardeningNeeded/, /^tolerating software-hardening-needed/),
    );
    const both = ['insecure-configuration', 'software-hardening-needed'];
    assert.throws(
      () => checkPlatform(sgx, { tolerate: both }),
      refusedWith(
        'ATTESTATION_TCB',
        /^advisories: advisories INTEL-SA-00289, INTEL-SA-00615 apply/,
        /ignore_advisories/,
      ),
    );
    assert.throws(
      () => checkPlatform(sgx, { tolerate: both, ignore_advisories: ['INTEL-SA-00289'] }),
      refusedWith('ATTESTATION_TCB', /advisories INTEL-SA-00615 apply/),
    );
    assert.deepEqual(
      checkPlatform(sgx, { tolerate: both, ignore_advisories: ['intel-sa-00289', 'INTEL-SA-00615'] }),
      both,
    );
    assert.deepEqual(checkPlatform(sgx, { tolerate: both, ignore_advisories: '*' }), both);
  });

  it('OutOfDate needs outdated-tcb', () => {
    assert.throws(
      () => checkPlatform(outdated, { ignore_advisories: '*' }),
      refusedWith('ATTESTATION_TCB', /OutOfDate/, /outdated-tcb/),
    );
    assert.deepEqual(
      checkPlatform(outdated, {
        tolerate: ['outdated-tcb'],
        ignore_advisories: ['INTEL-SA-00960', 'INTEL-SA-00982', 'INTEL-SA-00986'],
      }),
      ['outdated-tcb'],
    );
  });

  it('each remaining status needs its toleration; Revoked is never accepted', () => {
    const cases: Array<[TcbStatus, string[]]> = [
      ['SWHardeningNeeded', ['software-hardening-needed']],
      ['ConfigurationNeeded', ['insecure-configuration']],
      ['OutOfDateConfigurationNeeded', ['outdated-tcb', 'insecure-configuration']],
    ];
    for (const [status, needed] of cases) {
      assert.throws(
        () => checkPlatform(withStatus(tdx, status), { tolerate: needed.slice(1) }),
        refusedWith('ATTESTATION_TCB', new RegExp(status)),
        status,
      );
      assert.deepEqual(checkPlatform(withStatus(tdx, status), { tolerate: needed }), [...needed].sort());
    }
    const all = ['debug-mode', 'hyperthreading', 'software-hardening-needed', 'insecure-configuration', 'outdated-tcb'];
    assert.throws(
      () => checkPlatform(withStatus(tdx, 'Revoked'), { tolerate: all, ignore_advisories: '*' }),
      refusedWith('ATTESTATION_TCB', /Revoked; it is never accepted/),
    );
  });

  it('SGX and TDX without collateral are refused: the TCB status is unknown', () => {
    assert.throws(
      () => checkPlatform({ ...tdx, tcb: undefined }, { tolerate: ['outdated-tcb'] }),
      refusedWith('ATTESTATION_TCB', /TCB status is unknown/, /--collateral/),
    );
  });
});

describe('debug and SMT', () => {
  it('a debug enclave, a debug TD and a debug SNP guest need debug-mode', () => {
    for (const r of [
      { ...debugSgx, tcb: sgx.tcb },
      { ...debugTd, tcb: tdx.tcb },
    ]) {
      assert.throws(
        () =>
          checkPlatform(r, {
            tolerate: ['insecure-configuration', 'software-hardening-needed'],
            ignore_advisories: '*',
          }),
        refusedWith('ATTESTATION_POLICY', /^debug: .*debug mode/, /debug-mode/),
      );
    }
    assert.ok(
      checkPlatform(revoked({ ...debugTd, tcb: tdx.tcb }), { tolerate: ['debug-mode'] }).includes('debug-mode'),
    );
    assert.equal((snpDebug.claims as SnpClaims).policy.debug, true);
    assert.throws(
      () => checkPlatform(snpDebug, { tolerate: ['hyperthreading'] }),
      refusedWith('ATTESTATION_POLICY', /SEV-SNP guest runs in debug mode/),
    );
    assert.deepEqual(checkPlatform(revoked(snpDebug), { tolerate: ['hyperthreading', 'debug-mode'] }), [
      'debug-mode',
      'hyperthreading',
    ]);
  });

  it('an SNP platform with SMT on needs hyperthreading', () => {
    assert.equal(snp.claims.platform_info.smt_enabled, true);
    assert.throws(() => checkPlatform(snp, undefined), refusedWith('ATTESTATION_POLICY', /^SMT: /, /hyperthreading/));
    assert.deepEqual(checkPlatform(revoked(snp), { tolerate: ['hyperthreading'] }), ['hyperthreading']);
  });

  it('refuses evidence whose revocation was not checked (no CRL in the collateral)', async () => {
    // The SNP vectors ship no ARK CRL, the trustee TDX collateral no CRLs at all.
    assert.equal(snp.revocation, 'unchecked');
    assert.throws(
      () => checkPlatform(snp, { tolerate: ['hyperthreading'] }),
      refusedWith('ATTESTATION_REVOKED', /^revocation: .*not checked/, /CRLs/),
    );
    const trustee = await verified(
      { type: 'tdx', evidence: file('tdx/trustee/tdx_quote_6.dat') },
      {
        now: new Date('2025-10-28T12:00:00Z'),
        collateral: collateralProvider({
          intel: [intelCollateralFromFiles([join(V, 'tdx/trustee'), join(V, '../intel-tcb-signing-2025.pem')])],
        }),
      },
    );
    assert.equal(trustee.revocation, 'unchecked');
    assert.throws(
      () => checkPlatform(trustee, { tolerate: ['outdated-tcb'] }),
      refusedWith('ATTESTATION_REVOKED', /^revocation: /),
    );
    assert.equal(tdx.revocation, 'checked');
    // Azure takes it from the hardware report's verification (here SNP, without an ARK CRL).
    assert.equal(azure.revocation, 'unchecked');
    assert.throws(
      () => checkPlatform(azure, { tolerate: ['hyperthreading'] }),
      refusedWith('ATTESTATION_REVOKED', /^revocation: /),
    );
  });

  it('mode: maa is refused by name', () => {
    assert.throws(
      () => checkMode({ mode: 'maa' }),
      refusedWith('ATTESTATION_UNSUPPORTED', /Microsoft Azure Attestation/),
    );
    assert.doesNotThrow(() => checkMode({ mode: 'hardware' }));
  });
});

describe('SGX identity (SCONE forms)', () => {
  const c = () => sgx.claims as SgxClaims;
  it('mrenclave, legacy mrenclaves and the SCONE diagnostic', () => {
    assert.doesNotThrow(() => checkIdentity(sgx, { attestation: { mrenclave: [c().mrenclave.toUpperCase()] } }));
    assert.doesNotThrow(() => checkIdentity(sgx, { mrenclaves: [c().mrenclave] }));
    const want = other(c().mrenclave);
    assert.throws(
      () => checkIdentity(sgx, { mrenclaves: [want] }),
      (e: AttestationError) =>
        e.message === `Unexpected enclave measurement (MRENCLAVE, ${c().mrenclave}) - Expected ${want}`,
    );
  });

  it('signer: mrsigner, isvprodid, isvsvn exact or as a range, all in one variant', () => {
    const signer = { mrsigner: c().mrsigner, isvprodid: c().isvprodid };
    const ok: AttestationVariant[] = [
      { signer },
      { signer: { ...signer, isvsvn: c().isvsvn } },
      { signer: { ...signer, isvsvn_min: 0, isvsvn_max: 0 } },
      { mrenclave: [c().mrenclave], signer },
    ];
    for (const v of ok) assert.doesNotThrow(() => checkIdentity(sgx, { attestation: v }), JSON.stringify(v));
    const bad: Array<[AttestationVariant, RegExp]> = [
      [{ signer: { ...signer, mrsigner: other(c().mrsigner) } }, /mrsigner is/],
      [{ signer: { ...signer, isvprodid: 7 } }, /isvprodid is 0, expected 7/],
      [{ signer: { ...signer, isvsvn: 1 } }, /isvsvn is 0, expected 1/],
      [{ signer: { ...signer, isvsvn_min: 1 } }, /below isvsvn_min 1/],
      [{ mrenclave: [other(c().mrenclave)], signer }, /mrenclave is/],
    ];
    for (const [v, msg] of bad)
      assert.throws(
        () => checkIdentity(sgx, { attestation: v }),
        refusedWith('ATTESTATION_MEASUREMENT', msg),
        JSON.stringify(v),
      );
    assert.throws(
      () =>
        checkIdentity(
          { ...sgx, claims: { ...c(), isvsvn: 5 } },
          { attestation: { signer: { ...signer, isvsvn_max: 4 } } },
        ),
      refusedWith('ATTESTATION_MEASUREMENT', /above isvsvn_max 4/),
    );
  });

  it('any variant may match; a service that lists none accepts none; another TEE never matches', () => {
    assert.doesNotThrow(() =>
      checkIdentity(sgx, {
        attestation: [{ mrenclave: [other(c().mrenclave)] }, { signer: { mrsigner: c().mrsigner } }],
      }),
    );
    assert.throws(() => checkIdentity(sgx, {}), refusedWith('ATTESTATION_MEASUREMENT', /lists no measurement/));
    assert.throws(
      () => checkIdentity(sgx, { attestation: [{ tdx: { mrtd: (tdx.claims as TdxClaims).mrtd } }] }),
      refusedWith('ATTESTATION_MEASUREMENT', /variant 1: names a TDX trust domain, the evidence is sgx/),
    );
    assert.throws(
      () => checkIdentity(tdx, { mrenclaves: [c().mrenclave] }),
      refusedWith('ATTESTATION_MEASUREMENT', /names an SGX enclave, the evidence is tdx/),
    );
  });
});

describe('TDX identity (Veil extension)', () => {
  it('every field must match when given', () => {
    const c = tdx.claims as TdxClaims;
    const full = {
      mrtd: c.mrtd,
      rtmr0: c.rtmr[0],
      rtmr1: c.rtmr[1],
      rtmr2: c.rtmr[2],
      rtmr3: c.rtmr[3],
      mrseam: c.mrseam,
      mrconfigid: c.mrconfigid,
      mrowner: c.mrowner,
      mrownerconfig: c.mrownerconfig,
      tdattributes: c.tdattributes,
      xfam: c.xfam,
    };
    assert.doesNotThrow(() => checkIdentity(tdx, { attestation: { tdx: full } }));
    assert.doesNotThrow(() => checkIdentity(tdx, { attestation: { tdx: { mrtd: [other(c.mrtd), c.mrtd] } } }));
    for (const key of Object.keys(full) as Array<keyof typeof full>) {
      assert.throws(
        () => checkIdentity(tdx, { attestation: { tdx: { ...full, [key]: other(full[key]) } } }),
        refusedWith('ATTESTATION_MEASUREMENT', new RegExp(`variant 1: ${key} is `)),
        key,
      );
    }
  });
});

describe('SEV-SNP identity (Veil extension)', () => {
  it('launch identity fields, minimum TCB and guest SVN, VMPL, signing key and cloud provider', () => {
    const c = snp.claims;
    const full = {
      measurement: c.measurement,
      host_data: c.host_data,
      id_key_digest: c.id_key_digest,
      author_key_digest: c.author_key_digest,
      family_id: c.family_id,
      image_id: c.image_id,
    };
    assert.doesNotThrow(() =>
      checkIdentity(snp, {
        attestation: {
          snp: { ...full, guest_svn_min: c.guest_svn, min_tcb: c.reported_tcb, vmpl_max: c.vmpl, signing_key: 'vcek' },
        },
      }),
    );
    for (const key of Object.keys(full) as Array<keyof typeof full>) {
      assert.throws(
        () => checkIdentity(snp, { attestation: { snp: { ...full, [key]: other(full[key]) } } }),
        refusedWith('ATTESTATION_MEASUREMENT', new RegExp(`${key} is `)),
        key,
      );
    }
    assert.throws(
      () => checkIdentity(snp, { attestation: { snp: { guest_svn_min: c.guest_svn + 1 } } }),
      refusedWith('ATTESTATION_MEASUREMENT', /below guest_svn_min/),
    );
    assert.throws(
      () => checkIdentity(snp, { attestation: { snp: { min_tcb: { snp: c.reported_tcb.snp + 1 } } } }),
      refusedWith('ATTESTATION_MEASUREMENT', /reported TCB snp is 8, below min_tcb 9/),
    );
    assert.throws(
      () => checkIdentity(snp, { attestation: { snp: { min_tcb: { microcode: 200 } } } }),
      refusedWith('ATTESTATION_MEASUREMENT', /microcode is 115, below min_tcb 200/),
    );
    assert.throws(
      () => checkIdentity(vlek, { attestation: { snp: { vmpl_max: 0 } } }),
      refusedWith('ATTESTATION_MEASUREMENT', /vmpl is 1, above vmpl_max 0/),
    );
    assert.throws(
      () => checkIdentity(vlek, { attestation: { snp: { signing_key: 'vcek' } } }),
      refusedWith('ATTESTATION_MEASUREMENT', /signed by the VLEK, expected VCEK/),
    );
    assert.doesNotThrow(() =>
      checkIdentity(vlek, { attestation: { snp: { csp_id: 'CN=cc-us-east-2.amazonaws.com' } } }),
    );
    assert.throws(
      () => checkIdentity(vlek, { attestation: { snp: { csp_id: 'CN=other.example' } } }),
      refusedWith('ATTESTATION_MEASUREMENT', /cloud provider is CN=cc-us-east-2.amazonaws.com/),
    );
  });

  it('Azure: the hardware identity and the vTPM PCRs', () => {
    const hw = azure.claims.hardware as SnpClaims;
    const pcrs = azure.claims.pcrs!;
    const [index, value] = Object.entries(pcrs)[0]!;
    assert.doesNotThrow(() =>
      checkIdentity(azure, {
        attestation: { snp: { measurement: hw.measurement }, vtpm: { pcrs: { [index]: value } } },
      }),
    );
    assert.throws(
      () =>
        checkIdentity(azure, {
          attestation: { snp: { measurement: hw.measurement }, vtpm: { pcrs: { [index]: other(value) } } },
        }),
      refusedWith('ATTESTATION_MEASUREMENT', new RegExp(`PCR ${index} is `)),
    );
    assert.throws(
      () =>
        checkIdentity(snp, {
          attestation: { snp: { measurement: snp.claims.measurement }, vtpm: { pcrs: { [index]: value } } },
        }),
      refusedWith('ATTESTATION_MEASUREMENT', /vtpm PCRs need Azure vTPM evidence/),
    );
    const withoutPcrs = { ...azure, claims: { ...azure.claims, pcrs: undefined } };
    assert.throws(
      () =>
        checkIdentity(withoutPcrs, {
          attestation: { snp: { measurement: hw.measurement }, vtpm: { pcrs: { [index]: value } } },
        }),
      refusedWith('ATTESTATION_MEASUREMENT', new RegExp(`PCR ${index} is not in the evidence`)),
    );
  });
});
