import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { extensionValue } from '../pki.js';
import { vector } from './fixtures.js';
import { parsePckExtension } from './pck.js';
import {
  NOW,
  PCK_CN,
  PLATFORM_CN,
  REAL_PCK,
  SGX_EXT,
  buildCrl,
  defaultLevels,
  issueLeaf,
  issuePck,
  pckExtension,
} from './synthetic.js';
import { collateral, pki, quote, refused, useIntelPki, verifyQ } from './synthetic-tests.js';

/**
 * The checks of the Intel verifier that no real vector can reach (nobody can sign as Intel), on the synthetic
 * Intel-like hierarchy of synthetic.ts, verified with verifyIntelQuoteAgainst and its own pinned root. Each test
 * changes one thing from an input that verifies, and names the exact refusal, so that removing the check (or
 * letting another check refuse first) makes the test fail.
 */

/** This file: the kit itself, quotes that verify, QE report data, collateral signers, CRL windows. */
useIntelPki();

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
