import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AttestationError } from './errors.js';
import { checkIdentity, type AttestationVariant } from './policy.js';
import type { SgxClaims, SnpClaims, TdxClaims } from './types.js';
import { azure, other, refusedWith, sgx, snp, tdx, useVerifiedVectors, vlek } from './policy-vectors.js';

/** Policy rules judged on claims verified from the real vectors: SGX, TDX and SEV-SNP identities. */
useVerifiedVectors();

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
