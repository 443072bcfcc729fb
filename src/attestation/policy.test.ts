import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { collateralProvider } from './collateral.js';
import { intelCollateralFromFiles } from './intel/index.js';
import { checkMode, checkPlatform } from './policy.js';
import type { SnpClaims, TcbStatus } from './types.js';
import {
  V,
  azure,
  file,
  verified,
  debugSgx,
  debugTd,
  outdated,
  refusedWith,
  revoked,
  sgx,
  snp,
  snpDebug,
  tdx,
  useVerifiedVectors,
  withStatus,
} from './policy-vectors.js';

/** Policy rules judged on claims verified from the real vectors: TCB status, advisories, debug and SMT. */
useVerifiedVectors();

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
