import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttestationError } from '../errors.js';
import type { IntelCollateral } from '../types.js';
import { COLLATERAL_CASES, SUMMARY, VECTORS, collateralOf, teeOf, vector } from './fixtures.js';
import { intelCollateralFromFiles } from './sources.js';
import { verifyIntelQuote } from './verify.js';

const at = (s: string): Date => new Date(s);

async function refused(p: Promise<unknown>, code: string, message: RegExp): Promise<AttestationError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof AttestationError, `expected AttestationError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return err;
  }
  assert.fail('accepted');
}

describe('quote-only verification of every Intel vector', () => {
  for (const [path, e] of Object.entries(SUMMARY)) {
    it(path, async () => {
      const r = await verifyIntelQuote(vector(path), { now: at(e.verifyAt), tee: teeOf(e) });
      assert.equal(r.type, teeOf(e));
      assert.equal(r.tcb, undefined);
      assert.equal(r.simulated, false);
      assert.equal(r.reportData.toString('hex'), e.body['reportData']);
      assert.equal(r.chain[0]!.subject.includes('Intel SGX PCK Certificate'), true);
      assert.match(r.chain.at(-1)!.subject, /Intel SGX Root CA/);
      assert.ok(r.warnings.some((w) => /no collateral/.test(w)));
      assert.equal(
        r.warnings.some((w) => /bytes after the signature data/.test(w)),
        e.trailingBytes > 0,
      );
      if (r.type === 'tdx') {
        assert.equal(r.claims.mrtd, e.body['mrTd']);
        assert.deepEqual(r.claims.rtmr, e.body['rtmr']);
        assert.equal(r.claims.mrseam, e.body['mrSeam']);
        assert.equal(r.claims.tee_tcb_svn, e.body['teeTcbSvn']);
        assert.equal(r.claims.tdattributes, e.body['tdAttributes']);
        assert.equal(r.claims.xfam, e.body['xfam']);
        assert.equal(r.claims.mrconfigid, e.body['mrConfigId']);
        assert.equal(r.claims.mrowner, e.body['mrOwner']);
        assert.equal(r.claims.tee_tcb_svn2, e.body['teeTcbSvn2']);
        assert.equal(r.claims.mrservicetd, e.body['mrServiceTd']);
        assert.equal(r.claims.debug, (Buffer.from(String(e.body['tdAttributes']), 'hex')[0]! & 1) === 1);
      } else if (r.type === 'sgx') {
        assert.equal(r.claims.mrenclave, e.body['mrEnclave']);
        assert.equal(r.claims.mrsigner, e.body['mrSigner']);
        assert.equal(r.claims.isvprodid, e.body['isvProdId']);
        assert.equal(r.claims.isvsvn, e.body['isvSvn']);
        assert.equal(r.claims.miscselect, e.body['miscSelect']);
      }
    });
  }

  it('the occlum quote verifies but is a debug enclave', async () => {
    const e = SUMMARY['sgx/trustee/occlum_quote.dat']!;
    const r = await verifyIntelQuote(vector('sgx/trustee/occlum_quote.dat'), { now: at(e.verifyAt), tee: 'sgx' });
    assert.equal(r.type, 'sgx');
    assert.equal(r.type === 'sgx' && r.claims.debug, true);
  });
});

describe('verification with collateral', () => {
  for (const c of COLLATERAL_CASES) {
    it(`${c.name}: ${c.status}`, async () => {
      const r = await verifyIntelQuote(vector(c.quote), { now: at(c.at), tee: c.tee, collateral: c.source() });
      assert.ok(r.tcb);
      assert.equal(r.tcb.status, c.status);
      assert.deepEqual(r.tcb.advisoryIds, c.advisoryIds);
      assert.deepEqual(r.tcb.parts, c.parts);
      for (const w of c.warnings ?? [])
        assert.ok(
          r.warnings.some((x) => w.test(x)),
          `warning ${w} in ${r.warnings.join('; ')}`,
        );
    });
  }

  it('the trustee set has no CRLs: both revocation warnings, nothing else about collateral', async () => {
    const c = COLLATERAL_CASES.find((x) => x.name === 'trustee TDX')!;
    const r = await verifyIntelQuote(vector(c.quote), { now: at(c.at), tee: c.tee, collateral: c.source() });
    assert.deepEqual(
      r.warnings.filter((w) => /CRL/.test(w)),
      [
        'no root CA CRL: revocation of the PCK CA and TCB Signing certificates not checked',
        'no PCK CRL: revocation of the PCK certificate not checked',
      ],
    );
  });

  it('a source without collateral for the FMSPC gives quote-only with a warning', async () => {
    const e = SUMMARY['tdx/trustee/tdx_quote_4.dat']!;
    const r = await verifyIntelQuote(vector('tdx/trustee/tdx_quote_4.dat'), {
      now: at(e.verifyAt),
      tee: 'tdx',
      collateral: async () => undefined,
    });
    assert.equal(r.tcb, undefined);
    assert.ok(r.warnings.some((w) => /no collateral for FMSPC 50806f000000/.test(w)));
  });

  it('a failing source is ATTESTATION_COLLATERAL', async () => {
    const e = SUMMARY['tdx/trustee/tdx_quote_4.dat']!;
    const source = async (): Promise<IntelCollateral> => {
      throw new Error('disk on fire');
    };
    await refused(
      verifyIntelQuote(vector('tdx/trustee/tdx_quote_4.dat'), { now: at(e.verifyAt), tee: 'tdx', collateral: source }),
      'ATTESTATION_COLLATERAL',
      /disk on fire/,
    );
  });
});

describe('negative vectors', () => {
  it('Intel QVL sample: cert type 1 without --certs', async () => {
    await refused(
      verifyIntelQuote(vector('sgx/intel-qvl-sampledata/quote.dat'), { now: at('2020-01-01T00:00:00Z'), tee: 'sgx' }),
      'ATTESTATION_CHAIN',
      /PCK chain: .*type 1.*/,
    );
    const err = await refused(
      verifyIntelQuote(vector('sgx/intel-qvl-sampledata/quote.dat'), { now: at('2020-01-01T00:00:00Z'), tee: 'sgx' }),
      'ATTESTATION_CHAIN',
      /type 1/,
    );
    assert.match(err.hint ?? '', /--certs/);
  });

  it('Intel QVL sample: same root subject, other key → root not pinned', async () => {
    const certs = [vector('sgx/intel-qvl-sampledata/pckCert.pem'), vector('sgx/intel-qvl-sampledata/pckSignChain.pem')];
    await refused(
      verifyIntelQuote(vector('sgx/intel-qvl-sampledata/quote.dat'), {
        now: at('2020-01-01T00:00:00Z'),
        tee: 'sgx',
        certs,
      }),
      'ATTESTATION_CHAIN',
      /^PCK chain: root is not the Intel SGX Root CA \(certificate 84:2A:5B:CB…, key fingerprint/,
    );
  });

  it('Intel QVL sample TDX quote: type-5 data holding DER, not the PEM chain type 5 means → malformed', async () => {
    await refused(
      verifyIntelQuote(vector('sgx/intel-qvl-sampledata/tdx/quote.dat'), {
        now: at('2022-01-01T00:00:00Z'),
        tee: 'tdx',
      }),
      'ATTESTATION_MALFORMED',
      /^PCK chain: the certification data is not a canonical PEM chain/,
    );
  });

  it('trustee tdx_quote_4 is a debug TD (TDATTRIBUTES bit 0)', async () => {
    const e = SUMMARY['tdx/trustee/tdx_quote_4.dat']!;
    const r = await verifyIntelQuote(vector('tdx/trustee/tdx_quote_4.dat'), { now: at(e.verifyAt), tee: 'tdx' });
    assert.equal(r.type === 'tdx' && r.claims.debug, true);
  });

  it('Phala tdx_quote_outdated → no matching TCB level', async () => {
    const files = intelCollateralFromFiles([VECTORS + 'tdx/phala-dcap-qvl/tdx_quote_outdated_collateral.json']);
    await refused(
      verifyIntelQuote(vector('tdx/phala-dcap-qvl/tdx_quote_outdated'), {
        now: at('2026-02-19T12:00:00Z'),
        tee: 'tdx',
        collateral: files,
      }),
      'ATTESTATION_TCB',
      /^TCB: no TCB level matches \(PCK SGX component 8 SVN 3 < 5 in every one/,
    );
  });

  it('go-tdx-guest v4 + 2023 TCB info → no matching level', async () => {
    const files = intelCollateralFromFiles([VECTORS + 'tdx/go-tdx-guest']);
    await refused(
      verifyIntelQuote(vector('tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat'), {
        now: at('2023-07-01T01:00:00Z'),
        tee: 'tdx',
        collateral: files,
      }),
      'ATTESTATION_TCB',
      /no TCB level matches/,
    );
  });

  it('openenclave sgx_report_bad.bin → malformed', async () => {
    await refused(
      verifyIntelQuote(vector('sgx/openenclave/host_verify__sgx_report_bad.bin'), {
        now: at('2023-05-12T00:00:00Z'),
        tee: 'sgx',
      }),
      'ATTESTATION_MALFORMED',
      /^quote: /,
    );
  });

  it('an SGX quote given as TDX (and the reverse) is refused', async () => {
    const sgx = SUMMARY['sgx/phala-dcap-qvl/sgx_quote']!;
    await refused(
      verifyIntelQuote(vector('sgx/phala-dcap-qvl/sgx_quote'), { now: at(sgx.verifyAt), tee: 'tdx' }),
      'ATTESTATION_MALFORMED',
      /an SGX quote, but TDX evidence was expected/,
    );
    const tdx = SUMMARY['tdx/phala-dcap-qvl/tdx_quote']!;
    await refused(
      verifyIntelQuote(vector('tdx/phala-dcap-qvl/tdx_quote'), { now: at(tdx.verifyAt), tee: 'sgx' }),
      'ATTESTATION_MALFORMED',
      /a TDX quote, but SGX evidence was expected/,
    );
  });

  it('collateral of the other TEE is refused', async () => {
    const c = COLLATERAL_CASES.find((x) => x.name === 'Phala TDX')!;
    const col = await collateralOf(c);
    const sgxCase = COLLATERAL_CASES.find((x) => x.name === 'Phala SGX')!;
    await refused(
      verifyIntelQuote(vector(sgxCase.quote), { now: at(sgxCase.at), tee: 'sgx', collateral: async () => col }),
      'ATTESTATION_COLLATERAL',
      /^TCB info: is for TDX, not SGX/,
    );
  });

  it('TCB info for another FMSPC is refused', async () => {
    const col = await collateralOf(COLLATERAL_CASES.find((x) => x.name === 'Phala TDX')!);
    const c = COLLATERAL_CASES.find((x) => x.name === 'dcap-rs TDX')!;
    // Same TDX, window of the Phala collateral; the dcap-rs quote's chain is valid then too.
    await refused(
      verifyIntelQuote(vector(c.quote), { now: at('2025-06-19T11:16:00Z'), tee: 'tdx', collateral: async () => col }),
      'ATTESTATION_COLLATERAL',
      /^TCB info: is for FMSPC b0c06f000000, the PCK certificate has 00806f050000/,
    );
  });

  it('a PCK CRL from the other CA is refused', async () => {
    const c = COLLATERAL_CASES.find((x) => x.name === 'Phala SGX')!;
    const col = await collateralOf(c);
    const tdx = await collateralOf(COLLATERAL_CASES.find((x) => x.name === 'Phala TDX')!);
    await refused(
      verifyIntelQuote(vector(c.quote), {
        now: at(c.at),
        tee: 'sgx',
        collateral: async () => ({ ...col, pckCrl: tdx.pckCrl }),
      }),
      'ATTESTATION_SIGNATURE',
      /^PCK CRL: the CRL is not signed by 'Intel SGX PCK Processor CA'/,
    );
  });
});

describe('time', () => {
  for (const [path, e] of Object.entries(SUMMARY)) {
    it(`${path}: before and after the certificate windows`, async () => {
      const before = new Date(new Date(e.chainValidFrom).getTime() - 1000);
      await refused(
        verifyIntelQuote(vector(path), { now: before, tee: teeOf(e) }),
        'ATTESTATION_EXPIRED',
        /^PCK chain: 'Intel SGX PCK Certificate' is not valid before /,
      );
      const after = new Date(new Date(e.chainValidTo).getTime() + 1000);
      await refused(
        verifyIntelQuote(vector(path), { now: after, tee: teeOf(e) }),
        'ATTESTATION_EXPIRED',
        /^PCK chain: 'Intel SGX PCK Certificate' expired at .* \(verification time /,
      );
    });
  }

  for (const c of COLLATERAL_CASES) {
    it(`${c.name}: outside the collateral windows`, async () => {
      const col = await collateralOf(c);
      const tcb = JSON.parse(col.tcbInfo.body) as { issueDate: string; nextUpdate: string };
      const qe = JSON.parse(col.qeIdentity.body) as { issueDate: string; nextUpdate: string };
      const late = new Date(Math.min(Date.parse(tcb.nextUpdate), Date.parse(qe.nextUpdate)) + 1000);
      const early = new Date(Math.max(Date.parse(tcb.issueDate), Date.parse(qe.issueDate)) - 1000);
      const source = async (): Promise<IntelCollateral> => col;
      await refused(
        verifyIntelQuote(vector(c.quote), { now: late, tee: c.tee, collateral: source }),
        'ATTESTATION_EXPIRED',
        /^(TCB info|QE identity|root CA CRL|PCK CRL): expired at .* \(verification time /,
      );
      await refused(
        verifyIntelQuote(vector(c.quote), { now: early, tee: c.tee, collateral: source }),
        'ATTESTATION_EXPIRED',
        /^(TCB info|QE identity|root CA CRL|PCK CRL|TCB info issuer chain|QE identity issuer chain): .*not valid before .* \(verification time /,
      );
    });
  }

  it('an expired TCB Signing certificate is named', async () => {
    const c = COLLATERAL_CASES.find((x) => x.name === 'trustee TDX')!;
    const col = await collateralOf(c);
    const old = vector('tdx/go-tdx-guest/tcbInfoIssuerChain.pem').toString('latin1');
    await refused(
      verifyIntelQuote(vector(c.quote), {
        now: at(c.at),
        tee: 'tdx',
        collateral: async () => ({ ...col, tcbInfoIssuerChain: old }),
      }),
      'ATTESTATION_EXPIRED',
      /^TCB info issuer chain: 'Intel SGX TCB Signing' expired at 2025-05-21T10:50:10.000Z/,
    );
  });

  it('TCB info expiry names the time', async () => {
    const c = COLLATERAL_CASES.find((x) => x.name === 'Phala SGX')!;
    const col = await collateralOf(c);
    await refused(
      verifyIntelQuote(vector(c.quote), { now: at('2025-07-19T10:30:00Z'), tee: 'sgx', collateral: async () => col }),
      'ATTESTATION_EXPIRED',
      /^QE identity: expired at 2025-07-19T10:01:18.000Z \(verification time 2025-07-19T10:30:00.000Z\)/,
    );
    await refused(
      verifyIntelQuote(vector(c.quote), { now: at('2025-07-19T11:00:00Z'), tee: 'sgx', collateral: async () => col }),
      'ATTESTATION_EXPIRED',
      /^TCB info: expired at 2025-07-19T10:56:11.000Z \(verification time 2025-07-19T11:00:00.000Z\)/,
    );
  });

  it('a missing time is refused', async () => {
    await refused(
      verifyIntelQuote(vector('sgx/phala-dcap-qvl/sgx_quote'), { now: new Date(NaN), tee: 'sgx' }),
      'ATTESTATION_MALFORMED',
      /verification time/,
    );
  });
});
