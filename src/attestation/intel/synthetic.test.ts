import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { AttestationError } from '../errors.js';
import { extensionValue } from '../pki.js';
import { INTEL_SGX_ROOT } from '../roots.js';
import type { IntelCollateral, TcbStatus } from '../types.js';
import { verifiedChain } from './chain.js';
import { verifyCollateralBundle } from './collateral.js';
import { SUMMARY, vector } from './fixtures.js';
import { parsePckExtension } from './pck.js';
import {
  BC,
  KU,
  NOW,
  PCK_CN,
  PLATFORM_CN,
  PROCESSOR_CN,
  REAL_PCK,
  SGX_EXT,
  TCB_SIGNING_CN,
  buildCollateral,
  buildCrl,
  buildQuote,
  createIntelPki,
  defaultLevels,
  issueCa,
  issueLeaf,
  issuePck,
  pckChainPem,
  pckExtension,
  type CollateralSpec,
  type IntelPki,
  type Issued,
  type QuoteSpec,
} from './synthetic.js';
import { verifyIntelQuote, verifyIntelQuoteAgainst } from './verify.js';

/**
 * The checks of the Intel verifier that no real vector can reach (nobody can sign as Intel), on the synthetic
 * Intel-like hierarchy of synthetic.ts, verified with verifyIntelQuoteAgainst and its own pinned root. Each test
 * changes one thing from an input that verifies, and names the exact refusal, so that removing the check (or
 * letting another check refuse first) makes the test fail.
 */

let pki: IntelPki;

before(() => {
  pki = createIntelPki();
});

/** A quote by the default PCK leaf (Platform CA) unless told otherwise. */
function quote(
  tee: 'sgx' | 'tdx',
  spec: Partial<QuoteSpec> = {},
  pck: Issued = pki.pck,
  ca: Issued = pki.platform,
): Buffer {
  return buildQuote({ tee, pck, chain: pckChainPem(pck, ca, pki.root), ...spec });
}

function collateral(tee: 'sgx' | 'tdx', spec: Partial<CollateralSpec> = {}): IntelCollateral {
  return buildCollateral(pki, { tee, ...spec });
}

const verifyQ = (q: Buffer, tee: 'sgx' | 'tdx', col?: IntelCollateral, now = NOW) =>
  verifyIntelQuoteAgainst(q, { now, tee, collateral: col ? async () => col : undefined }, pki.pinned);

/** Refused with this code, from this check, with exactly this message after "check: ". */
async function refused(p: Promise<unknown>, code: string, check: string, message: string | RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof AttestationError, `not an AttestationError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.check, check, err.message);
    const text = err.message.slice(check.length + 2);
    if (typeof message === 'string') assert.equal(text, message);
    else assert.match(text, message);
    return;
  }
  assert.fail('accepted');
}

// ---- the kit itself ------------------------------------------------------------------------------------------

describe('synthetic Intel PKI: the kit itself', () => {
  it('encodes the SGX extension byte for byte as the real PCK certificate, and names as Intel does', () => {
    const real = new X509Certificate(
      vector('sgx/automata-dcap-rs/pck_certchain.pem')
        .toString('latin1')
        .match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/)![0],
    );
    assert.deepEqual(pckExtension(), Buffer.from(extensionValue(real, SGX_EXT)!));
    assert.equal(pki.pck.cert.subject, real.subject);
    assert.equal(pki.pck.cert.issuer, real.issuer);
    assert.equal(pki.pck.cert.serialNumber, real.serialNumber);
    const ext = parsePckExtension(pki.pck.cert);
    assert.deepEqual(ext.compSvn, REAL_PCK.compSvn);
    assert.equal(ext.fmspc, REAL_PCK.fmspc);
    assert.equal(ext.pceSvn, 13);
    assert.deepEqual(ext.configuration, { dynamicPlatform: true, cachedKeys: false, smtEnabled: false });
    const processorLeaf = issuePck(pki.processor);
    assert.equal(parsePckExtension(processorLeaf.cert).platformInstanceId, undefined);
    assert.match(pki.root.cert.subject, /^CN=Intel SGX Root CA\nO=Intel Corporation\nL=Santa Clara\nST=CA\nC=US$/);
    assert.ok(
      pki.root.cert.ca && pki.platform.cert.ca && pki.processor.cert.ca && !pki.tcbSigning.cert.ca && !pki.pck.cert.ca,
    );
  });

  it('is a chain openssl verifies (root, Platform CA, PCK leaf; root, TCB Signing)', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'veil-intelkit-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const f = (name: string, data: string) => {
      writeFileSync(join(dir, name), data);
      return join(dir, name);
    };
    const root = f('root.pem', pki.root.pem);
    const r = spawnSync(
      'openssl',
      ['verify', '-CAfile', root, '-untrusted', f('ca.pem', pki.platform.pem), f('pck.pem', pki.pck.pem)],
      { encoding: 'utf8' },
    );
    if (r.error) return t.skip('no openssl');
    assert.match(r.stdout, /: OK/, r.stderr);
    assert.match(
      spawnSync('openssl', ['verify', '-CAfile', root, f('tcb.pem', pki.tcbSigning.pem)], { encoding: 'utf8' }).stdout,
      /: OK/,
    );
  });
});

// ---- happy paths ---------------------------------------------------------------------------------------------

describe('synthetic Intel PKI: quotes that verify', () => {
  it('SGX v3 quote only: verifies with the pinned QE3, warns that nothing else was checked', async () => {
    const r = await verifyQ(quote('sgx'), 'sgx');
    assert.equal(r.type, 'sgx');
    assert.equal(r.tcb, undefined);
    assert.equal(r.reportData.toString('hex'), '5a'.repeat(64));
    assert.deepEqual(r.warnings, [
      'no collateral: TCB status, QE identity and revocation not checked (QE identity pinned)',
    ]);
    assert.deepEqual(
      r.chain.map((c) => c.subject.split(',')[0]),
      [`CN=${PCK_CN}`, `CN=${PLATFORM_CN}`, 'CN=Intel SGX Root CA'],
    );
  });

  it('SGX v3 quote + collateral: the matched level decides (SWHardeningNeeded, its advisory), no warnings', async () => {
    const col = collateral('sgx', { tcbInfo: { levels: defaultLevels('sgx', 'SWHardeningNeeded') } });
    const r = await verifyQ(quote('sgx'), 'sgx', col);
    assert.deepEqual(r.tcb, {
      status: 'SWHardeningNeeded',
      advisoryIds: ['INTEL-SA-00001'],
      parts: { platform: 'SWHardeningNeeded', qe: 'UpToDate' },
      tcbDate: '2024-03-13T00:00:00Z',
    });
    assert.deepEqual(r.warnings, []);
  });

  it('TDX v4 quote + collateral: platform, TDX_03 module and TD QE UpToDate', async () => {
    const r = await verifyQ(quote('tdx'), 'tdx', collateral('tdx'));
    assert.equal(r.type, 'tdx');
    assert.deepEqual(r.tcb?.parts, { platform: 'UpToDate', tdxModule: 'UpToDate', qe: 'UpToDate' });
    assert.equal(r.tcb?.status, 'UpToDate');
    assert.deepEqual(r.warnings, []);
  });

  it('a PCK leaf of the Processor CA, with a Processor CA CRL', async () => {
    const pck = issuePck(pki.processor);
    const col = collateral('sgx', { pckCrl: buildCrl({ issuer: pki.processor }) });
    const r = await verifyQ(quote('sgx', {}, pck, pki.processor), 'sgx', col);
    assert.equal(r.tcb?.status, 'UpToDate');
  });
});

// ---- QE report binding ---------------------------------------------------------------------------------------

describe('synthetic Intel PKI: QE report data', () => {
  it('bytes 32–63 must be zero, even in a QE report the PCK key signed', async () => {
    await refused(
      verifyQ(quote('sgx', { qe: { reportDataTail: Buffer.alloc(32, 1) } }), 'sgx'),
      'ATTESTATION_SIGNATURE',
      'QE report',
      'report data does not bind the attestation key',
    );
    const tail = Buffer.alloc(32);
    tail[31] = 1;
    await refused(
      verifyQ(quote('tdx', { qe: { reportDataTail: tail } }), 'tdx'),
      'ATTESTATION_SIGNATURE',
      'QE report',
      'report data does not bind the attestation key',
    );
  });

  it('bytes 0–31 must be SHA-256(attestation key ‖ auth data)', async () => {
    await refused(
      verifyQ(quote('sgx', { qe: { reportData: Buffer.alloc(64) } }), 'sgx'),
      'ATTESTATION_SIGNATURE',
      'QE report',
      'report data does not bind the attestation key',
    );
  });
});

// ---- the TCB Signing certificate -----------------------------------------------------------------------------

describe('synthetic Intel PKI: TCB info and QE identity signers', () => {
  it('TCB info signed by the Platform CA (a certificate chaining to the root) is refused: the signer must be Intel SGX TCB Signing', async () => {
    const col = collateral('sgx', { tcbInfoSigner: pki.platform });
    await refused(
      verifyQ(quote('sgx'), 'sgx', col),
      'ATTESTATION_CHAIN',
      'TCB info issuer chain',
      `the signer is '${PLATFORM_CN}', not the Intel SGX TCB Signing certificate`,
    );
  });

  it('QE identity signed by another root-issued leaf is refused', async () => {
    const other = issueLeaf(pki.root, 'Intel SGX Attestation Report Signing', '11');
    const col = collateral('tdx', { qeIdentitySigner: other });
    await refused(
      verifyQ(quote('tdx'), 'tdx', col),
      'ATTESTATION_CHAIN',
      'QE identity issuer chain',
      "the signer is 'Intel SGX Attestation Report Signing', not the Intel SGX TCB Signing certificate",
    );
  });
});

// ---- CRL freshness and signatures ----------------------------------------------------------------------------

describe('synthetic Intel PKI: CRL windows', () => {
  const before_ = new Date('2025-06-02T00:00:00Z');
  const past = new Date('2025-05-31T00:00:00Z');
  const cases: [string, 'rootCaCrl' | 'pckCrl', 'root' | 'platform'][] = [
    ['root CA CRL', 'rootCaCrl', 'root'],
    ['PCK CRL', 'pckCrl', 'platform'],
  ];
  for (const [check, field, issuer] of cases) {
    it(`${check} before its thisUpdate is refused`, async () => {
      const col = collateral('sgx', {
        [field]: buildCrl({ issuer: pki[issuer], thisUpdate: before_, nextUpdate: new Date('2025-07-01T00:00:00Z') }),
      });
      await refused(
        verifyQ(quote('sgx'), 'sgx', col),
        'ATTESTATION_EXPIRED',
        check,
        `not valid before ${before_.toISOString()} (verification time ${NOW.toISOString()})`,
      );
    });
    it(`${check} after its nextUpdate is refused`, async () => {
      const col = collateral('sgx', {
        [field]: buildCrl({ issuer: pki[issuer], thisUpdate: new Date('2025-05-01T00:00:00Z'), nextUpdate: past }),
      });
      await refused(
        verifyQ(quote('sgx'), 'sgx', col),
        'ATTESTATION_EXPIRED',
        check,
        `expired at ${past.toISOString()} (verification time ${NOW.toISOString()})`,
      );
    });
    it(`${check} without nextUpdate is refused`, async () => {
      const col = collateral('sgx', { [field]: buildCrl({ issuer: pki[issuer], nextUpdate: null }) });
      await refused(
        verifyQ(quote('sgx'), 'sgx', col),
        'ATTESTATION_EXPIRED',
        check,
        /^the CRL expired at \(no nextUpdate\) \(verification time /,
      );
    });
    it(`${check} signed by another key is refused`, async () => {
      const col = collateral('sgx', {
        [field]: buildCrl({ issuer: pki[issuer], signer: pki.tcbSigning.key.privateKey }),
      });
      await refused(
        verifyQ(quote('sgx'), 'sgx', col),
        'ATTESTATION_SIGNATURE',
        check,
        `the CRL is not signed by '${issuer === 'root' ? 'Intel SGX Root CA' : PLATFORM_CN}'`,
      );
    });
  }
});

// ---- revocation ----------------------------------------------------------------------------------------------

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

describe('synthetic Intel PKI: the production pin', () => {
  const notIntel =
    /^root is not the Intel SGX Root CA \(certificate [0-9A-F:]+…, key fingerprint [0-9a-f:]+…, CN=Intel SGX Root CA, O=Intel Corporation/;

  it('verifyIntelQuote refuses a root with the pinned name and another key', async () => {
    await refused(verifyIntelQuote(quote('sgx'), { now: NOW, tee: 'sgx' }), 'ATTESTATION_CHAIN', 'PCK chain', notIntel);
  });

  it('…also after the same quote and collateral verified against the synthetic root (the caches are keyed by the root)', async () => {
    const q = quote('tdx');
    const col = collateral('tdx');
    await verifyQ(q, 'tdx', col);
    await refused(
      verifyIntelQuote(q, { now: NOW, tee: 'tdx', collateral: async () => col }),
      'ATTESTATION_CHAIN',
      'PCK chain',
      notIntel,
    );
    const chain = pckChainPem(pki.pck, pki.platform, pki.root);
    verifiedChain(chain, 'PCK chain', { canonical: true }, pki.pinned);
    assert.throws(
      () => verifiedChain(chain, 'PCK chain', { canonical: true }, INTEL_SGX_ROOT),
      (e: unknown) => e instanceof AttestationError && notIntel.test(e.message.slice('PCK chain: '.length)),
    );
    verifyCollateralBundle(col, pki.pinned);
    assert.throws(
      () => verifyCollateralBundle(col, INTEL_SGX_ROOT),
      (e: unknown) =>
        e instanceof AttestationError &&
        e.check === 'TCB info issuer chain' &&
        notIntel.test(e.message.slice('TCB info issuer chain: '.length)),
    );
  });

  it('synthetic collateral that fits a real quote, once verified against the synthetic root, is refused for that quote by verifyIntelQuote', async () => {
    const path = 'sgx/automata-dcap-rs/quote_v3_inline_lib_rs.dat';
    const e = SUMMARY[path]!;
    const at = new Date(e.verifyAt);
    const day = 86_400_000;
    const iso = (t: number) => new Date(t).toISOString().replace('.000Z', 'Z');
    const window = { issueDate: iso(at.getTime() - day), nextUpdate: iso(at.getTime() + day) };
    const zero = new Array(16).fill(0) as number[];
    const col = collateral('sgx', {
      tcbInfo: { ...window, fmspc: e.fmspc, pceId: e.pceId, levels: [{ sgx: zero, pcesvn: 0, status: 'UpToDate' }] },
      qeIdentity: {
        ...window,
        levels: [{ isvsvn: 0, status: 'UpToDate' }],
        patch: { attributes: '0'.repeat(32), attributesMask: '0'.repeat(32) },
      },
      rootCaCrl: buildCrl({
        issuer: pki.root,
        thisUpdate: new Date(at.getTime() - day),
        nextUpdate: new Date(at.getTime() + day),
      }),
      pckCrl: null,
    });
    // The same collateral verifies a synthetic quote at that time (so it is in the cache, against the synthetic root).
    const r = await verifyQ(quote('sgx'), 'sgx', col, at);
    assert.equal(r.tcb?.status, 'UpToDate');
    await refused(
      verifyIntelQuote(vector(path), { now: at, tee: 'sgx', collateral: async () => col }),
      'ATTESTATION_CHAIN',
      'TCB info issuer chain',
      notIntel,
    );
  });
});

// ---- collateral windows --------------------------------------------------------------------------------------

describe('synthetic Intel PKI: TCB info and QE identity windows', () => {
  it('TCB info past its nextUpdate is refused', async () => {
    const col = collateral('sgx', {
      tcbInfo: { issueDate: '2025-05-01T00:00:00Z', nextUpdate: '2025-05-31T00:00:00Z' },
    });
    await refused(
      verifyQ(quote('sgx'), 'sgx', col),
      'ATTESTATION_EXPIRED',
      'TCB info',
      `expired at 2025-05-31T00:00:00.000Z (verification time ${NOW.toISOString()})`,
    );
  });

  it('QE identity before its issueDate is refused', async () => {
    const col = collateral('tdx', {
      qeIdentity: { issueDate: '2025-06-02T00:00:00Z', nextUpdate: '2025-07-02T00:00:00Z' },
    });
    await refused(
      verifyQ(quote('tdx'), 'tdx', col),
      'ATTESTATION_EXPIRED',
      'QE identity',
      `not valid before 2025-06-02T00:00:00.000Z (verification time ${NOW.toISOString()})`,
    );
  });
});

// ---- chain shapes Intel never issues (found with the kit) ---------------------------------------------------

async function refusedAtAll(p: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof AttestationError && message.test(e.message));
}

describe('synthetic Intel PKI: chain shapes Intel never issues', () => {
  it('a PCK chain with an extra CA between the PCK CA and the root (revoked on the root CA CRL) is refused', async () => {
    const x = issueCa(pki.root, 'Intel SGX Intermediate X', '41', { basicConstraints: BC.ca1 });
    const ca = issueCa(x, PLATFORM_CN, '42');
    const pck = issuePck(ca);
    const chain = Buffer.concat([Buffer.from(pck.pem + ca.pem + x.pem + pki.root.pem, 'latin1'), Buffer.from([0])]);
    const col = collateral('sgx', {
      rootCaCrl: buildCrl({ issuer: pki.root, revoked: ['41'] }),
      pckCrl: buildCrl({ issuer: ca }),
    });
    await refusedAtAll(
      verifyQ(buildQuote({ tee: 'sgx', pck, chain }), 'sgx', col),
      /PCK chain: the PCK chain must be PCK certificate ← PCK CA ← root; this one has 1 more CA/,
    );
  });

  it('an "Intel SGX TCB Signing" certificate issued by the PCK Platform CA (not by the root) is refused', async () => {
    const signer = issueLeaf(pki.platform, TCB_SIGNING_CN, '43');
    const chain = signer.pem + pki.platform.pem + pki.root.pem;
    const col = collateral('sgx', {
      tcbInfoSigner: signer,
      tcbInfoChain: chain,
      qeIdentitySigner: signer,
      qeIdentityChain: chain,
    });
    await refusedAtAll(
      verifyQ(quote('sgx'), 'sgx', col),
      /the TCB Signing certificate must be issued by the root itself/,
    );
  });
});
