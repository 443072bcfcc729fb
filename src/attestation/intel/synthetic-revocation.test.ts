import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TcbStatus } from '../types.js';
import {
  BC,
  KU,
  PCK_CN,
  PLATFORM_CN,
  PROCESSOR_CN,
  TCB_SIGNING_CN,
  buildCrl,
  defaultLevels,
  issueCa,
  issueLeaf,
  issuePck,
} from './synthetic.js';
import { collateral, pki, quote, refused, useIntelPki, verifyQ } from './synthetic-tests.js';

/**
 * The checks of the Intel verifier that no real vector can reach (nobody can sign as Intel), on the synthetic
 * Intel-like hierarchy of synthetic.ts, verified with verifyIntelQuoteAgainst and its own pinned root. Each test
 * changes one thing from an input that verifies, and names the exact refusal, so that removing the check (or
 * letting another check refuse first) makes the test fail.
 */

/** This file: revocation, collateral for another platform or QE, the pinned QE, Revoked TCB levels, issuers. */
useIntelPki();

describe('synthetic Intel PKI: revocation', () => {
  it('the PCK leaf (a high-bit serial, 00AC0F…, as Intel issues them) listed on the PCK CRL', async () => {
    const col = collateral('sgx', { pckCrl: buildCrl({ issuer: pki.platform, revoked: ['05', pki.pck.serial] }) });
    await refused(
      verifyQ(quote('sgx'), 'sgx', col),
      'ATTESTATION_REVOKED',
      'PCK certificate',
      `'${PCK_CN}' (serial ${pki.pck.serial.toUpperCase()}) is revoked by its issuer's CRL`,
    );
  });

  it('near misses of that serial are not revocations (AC0F… without the 00 is another, negative, serial)', async () => {
    const col = collateral('sgx', {
      pckCrl: buildCrl({ issuer: pki.platform, revoked: [pki.pck.serial.slice(2), pki.pck.serial.slice(0, -2)] }),
    });
    assert.equal((await verifyQ(quote('sgx'), 'sgx', col)).tcb?.status, 'UpToDate');
  });

  for (const [what, serial] of [
    ['serial 0', '00'],
    ['a negative serial', 'ff01'],
    ['a high-bit serial', '0080'],
  ] as const) {
    it(`a PCK leaf with ${what} (${serial}) listed on the PCK CRL`, async () => {
      const pck = issuePck(pki.platform, {}, { serial });
      const col = collateral('sgx', { pckCrl: buildCrl({ issuer: pki.platform, revoked: [serial] }) });
      await refused(
        verifyQ(quote('sgx', {}, pck), 'sgx', col),
        'ATTESTATION_REVOKED',
        'PCK certificate',
        `'${PCK_CN}' (serial ${serial.toUpperCase()}) is revoked by its issuer's CRL`,
      );
    });
  }

  it('the PCK CA listed on the root CA CRL', async () => {
    const col = collateral('sgx', { rootCaCrl: buildCrl({ issuer: pki.root, revoked: ['03', '02'] }) });
    await refused(
      verifyQ(quote('sgx'), 'sgx', col),
      'ATTESTATION_REVOKED',
      'PCK CA certificate',
      `'${PLATFORM_CN}' (serial 02) is revoked by its issuer's CRL`,
    );
  });

  it('the TCB Signing certificate listed on the root CA CRL', async () => {
    const col = collateral('tdx', { rootCaCrl: buildCrl({ issuer: pki.root, revoked: ['04'] }) });
    await refused(
      verifyQ(quote('tdx'), 'tdx', col),
      'ATTESTATION_REVOKED',
      'TCB Signing certificate',
      `'${TCB_SIGNING_CN}' (serial 04) is revoked by its issuer's CRL`,
    );
  });

  it('the QE identity signer (another TCB Signing certificate) listed on the root CA CRL', async () => {
    const second = issueLeaf(pki.root, TCB_SIGNING_CN, '00');
    const col = collateral('sgx', {
      qeIdentitySigner: second,
      rootCaCrl: buildCrl({ issuer: pki.root, revoked: ['00'] }),
    });
    await refused(
      verifyQ(quote('sgx'), 'sgx', col),
      'ATTESTATION_REVOKED',
      'TCB Signing certificate',
      `'${TCB_SIGNING_CN}' (serial 00) is revoked by its issuer's CRL`,
    );
  });
});

// ---- collateral that does not fit the quote ------------------------------------------------------------------

describe('synthetic Intel PKI: collateral for another platform or QE', () => {
  it('QE identity of the TD QE for an SGX quote (signer and product of QE3, so only the id differs)', async () => {
    const col = collateral('sgx', { qeIdentity: { patch: { id: 'TD_QE' } } });
    await refused(verifyQ(quote('sgx'), 'sgx', col), 'ATTESTATION_COLLATERAL', 'QE identity', 'is for TD_QE, not QE');
  });

  it('QE identity of QE3 for a TDX quote (signer and product of the TD QE)', async () => {
    const col = collateral('tdx', { qeIdentity: { patch: { id: 'QE' } } });
    await refused(verifyQ(quote('tdx'), 'tdx', col), 'ATTESTATION_COLLATERAL', 'QE identity', 'is for QE, not TD_QE');
  });

  it('QE identity version 3 is refused', async () => {
    const col = collateral('sgx', { qeIdentity: { patch: { version: 3 } } });
    await refused(
      verifyQ(quote('sgx'), 'sgx', col),
      'ATTESTATION_COLLATERAL',
      'QE identity',
      /^does not have the expected shape \(version: /,
    );
  });

  it('TCB info version 4 is refused', async () => {
    const col = collateral('tdx', { tcbInfo: { patch: { version: 4 } } });
    await refused(
      verifyQ(quote('tdx'), 'tdx', col),
      'ATTESTATION_COLLATERAL',
      'TCB info',
      /^does not have the expected shape \(version: /,
    );
  });

  it('TDX TCB info for an SGX quote, SGX TCB info for a TDX quote', async () => {
    await refused(
      verifyQ(quote('sgx'), 'sgx', collateral('sgx', { tcbInfoText: collateral('tdx').tcbInfo.body })),
      'ATTESTATION_COLLATERAL',
      'TCB info',
      'is for TDX, not SGX',
    );
    await refused(
      verifyQ(quote('tdx'), 'tdx', collateral('tdx', { tcbInfoText: collateral('sgx').tcbInfo.body })),
      'ATTESTATION_COLLATERAL',
      'TCB info',
      'is for SGX, not TDX',
    );
  });

  it('a version-2 TCB info (no id) for a TDX quote is SGX collateral', async () => {
    const v2 = JSON.stringify({
      version: 2,
      issueDate: '2025-05-20T00:00:00Z',
      nextUpdate: '2025-06-19T00:00:00Z',
      fmspc: '00606A000000',
      pceId: '0000',
      tcbType: 0,
      tcbEvaluationDataNumber: 17,
      tcbLevels: [
        {
          tcb: {
            ...Object.fromEntries(
              Array.from({ length: 16 }, (_, i) => [`sgxtcbcomp${String(i + 1).padStart(2, '0')}svn`, 0]),
            ),
            pcesvn: 0,
          },
          tcbDate: '2024-03-13T00:00:00Z',
          tcbStatus: 'UpToDate',
        },
      ],
    });
    await refused(
      verifyQ(quote('tdx'), 'tdx', collateral('tdx', { tcbInfoText: v2 })),
      'ATTESTATION_COLLATERAL',
      'TCB info',
      'is for SGX, not TDX',
    );
  });

  it('PCE-ID of the TCB info differs from the PCK certificate', async () => {
    const col = collateral('sgx', { tcbInfo: { pceId: '0001' } });
    await refused(
      verifyQ(quote('sgx'), 'sgx', col),
      'ATTESTATION_COLLATERAL',
      'TCB info',
      'is for PCE-ID 0001, the PCK certificate has 0000',
    );
  });

  it('FMSPC of the TCB info differs from the PCK certificate', async () => {
    const col = collateral('tdx', { tcbInfo: { fmspc: '00606a000001' } });
    await refused(
      verifyQ(quote('tdx'), 'tdx', col),
      'ATTESTATION_COLLATERAL',
      'TCB info',
      'is for FMSPC 00606a000001, the PCK certificate has 00606a000000',
    );
  });
});

// ---- the QE --------------------------------------------------------------------------------------------------

describe('synthetic Intel PKI: the QE (pinned, without collateral)', () => {
  const debug = Buffer.from('13000000000000000000000000000000', 'hex');

  it('a QE in debug mode is refused (SGX and TDX)', async () => {
    await refused(
      verifyQ(quote('sgx', { qe: { attributes: debug } }), 'sgx'),
      'ATTESTATION_SIGNATURE',
      'QE identity',
      'the QE runs in debug mode',
    );
    await refused(
      verifyQ(quote('tdx', { qe: { attributes: debug } }), 'tdx'),
      'ATTESTATION_SIGNATURE',
      'QE identity',
      'the QE runs in debug mode',
    );
  });

  it('another QE MRSIGNER is refused', async () => {
    const mrsigner = 'ab'.repeat(32);
    await refused(
      verifyQ(quote('sgx', { qe: { mrsigner } }), 'sgx'),
      'ATTESTATION_SIGNATURE',
      'QE identity',
      `the QE (MRSIGNER ${mrsigner}, ISVPRODID 1) is not Intel's QE3`,
    );
  });

  it('another QE ISVPRODID (with the right MRSIGNER) is refused', async () => {
    await refused(
      verifyQ(quote('sgx', { qe: { isvprodid: 2 } }), 'sgx'),
      'ATTESTATION_SIGNATURE',
      'QE identity',
      "the QE (MRSIGNER 8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff, ISVPRODID 2) is not Intel's QE3",
    );
    await refused(
      verifyQ(quote('tdx', { qe: { isvprodid: 1 } }), 'tdx'),
      'ATTESTATION_SIGNATURE',
      'QE identity',
      "the QE (MRSIGNER dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5, ISVPRODID 1) is not Intel's TD QE",
    );
  });

  it('the SGX QE3 does not pass for the TD QE', async () => {
    await refused(
      verifyQ(
        quote('tdx', {
          qe: { mrsigner: '8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff', isvprodid: 1 },
        }),
        'tdx',
      ),
      'ATTESTATION_SIGNATURE',
      'QE identity',
      "the QE (MRSIGNER 8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff, ISVPRODID 1) is not Intel's TD QE",
    );
  });
});

// ---- a Revoked TCB level -------------------------------------------------------------------------------------

describe('synthetic Intel PKI: a TCB level with status Revoked', () => {
  it('the platform level Revoked: the verifier refuses (it does not leave it to policy)', async () => {
    const col = collateral('sgx', { tcbInfo: { levels: defaultLevels('sgx', 'Revoked') } });
    await refused(
      verifyQ(quote('sgx'), 'sgx', col),
      'ATTESTATION_REVOKED',
      'TCB',
      'the TCB level is Revoked (platform Revoked, qe UpToDate)',
    );
  });

  it('the QE level Revoked', async () => {
    const col = collateral('sgx', { qeIdentity: { levels: [{ isvsvn: 8, status: 'Revoked' as TcbStatus }] } });
    await refused(
      verifyQ(quote('sgx'), 'sgx', col),
      'ATTESTATION_REVOKED',
      'TCB',
      'the TCB level is Revoked (platform UpToDate, qe Revoked)',
    );
  });

  it('the TDX module level Revoked', async () => {
    const col = collateral('tdx', {
      tcbInfo: { tdxModuleIdentities: [{ id: 'TDX_03', levels: [{ isvsvn: 3, status: 'Revoked' }] }] },
    });
    await refused(
      verifyQ(quote('tdx'), 'tdx', col),
      'ATTESTATION_REVOKED',
      'TCB',
      'the TCB level is Revoked (platform UpToDate, tdxModule Revoked, qe UpToDate)',
    );
  });
});

// ---- CA constraints ------------------------------------------------------------------------------------------

describe('synthetic Intel PKI: issuers that are not CAs', () => {
  const notCa = `'${PLATFORM_CN}' is not a CA but issued '${PCK_CN}'`;

  it('a PCK CA whose basicConstraints say CA:FALSE', async () => {
    const ca = issueCa(pki.root, PLATFORM_CN, '21', { basicConstraints: BC.leaf });
    await refused(verifyQ(quote('sgx', {}, issuePck(ca), ca), 'sgx'), 'ATTESTATION_CHAIN', 'PCK chain', notCa);
  });

  it('a PCK CA without basicConstraints', async () => {
    const ca = issueCa(pki.root, PLATFORM_CN, '22', { basicConstraints: null });
    await refused(verifyQ(quote('sgx', {}, issuePck(ca), ca), 'sgx'), 'ATTESTATION_CHAIN', 'PCK chain', notCa);
  });

  it('a PCK CA whose key usage lacks keyCertSign (cRLSign only)', async () => {
    const ca = issueCa(pki.root, PLATFORM_CN, '23', { keyUsage: KU.crlOnly });
    await refused(verifyQ(quote('sgx', {}, issuePck(ca), ca), 'sgx'), 'ATTESTATION_CHAIN', 'PCK chain', notCa);
  });

  it('a TCB Signing certificate issued by the real TCB Signing certificate (a leaf) is refused', async () => {
    const child = issueLeaf(pki.tcbSigning, TCB_SIGNING_CN, '31');
    const col = collateral('sgx', {
      tcbInfoSigner: child,
      tcbInfoChain: child.pem + pki.tcbSigning.pem + pki.root.pem,
    });
    await refused(
      verifyQ(quote('sgx'), 'sgx', col),
      'ATTESTATION_CHAIN',
      'TCB info issuer chain',
      `'${TCB_SIGNING_CN}' is not a CA but issued '${TCB_SIGNING_CN}'`,
    );
  });

  it('a processor leaf (processor CA without keyCertSign) in the TCB info chain', async () => {
    const ca = issueCa(pki.root, PROCESSOR_CN, '24', { keyUsage: KU.signOnly });
    const child = issueLeaf(ca, TCB_SIGNING_CN, '32');
    const col = collateral('sgx', { qeIdentitySigner: child, qeIdentityChain: child.pem + ca.pem + pki.root.pem });
    await refused(
      verifyQ(quote('sgx'), 'sgx', col),
      'ATTESTATION_CHAIN',
      'QE identity issuer chain',
      `'${PROCESSOR_CN}' is not a CA but issued '${TCB_SIGNING_CN}'`,
    );
  });
});

// ---- the production pin --------------------------------------------------------------------------------------
