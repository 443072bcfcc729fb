import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttestationError } from '../errors.js';
import { INTEL_SGX_ROOT } from '../roots.js';
import { verifiedChain } from './chain.js';
import { verifyCollateralBundle } from './collateral.js';
import { SUMMARY, vector } from './fixtures.js';
import {
  BC,
  NOW,
  PLATFORM_CN,
  TCB_SIGNING_CN,
  buildCrl,
  buildQuote,
  issueCa,
  issueLeaf,
  issuePck,
  pckChainPem,
} from './synthetic.js';
import { verifyIntelQuote } from './verify.js';
import { collateral, pki, quote, refused, useIntelPki, verifyQ } from './synthetic-tests.js';

/**
 * The checks of the Intel verifier that no real vector can reach (nobody can sign as Intel), on the synthetic
 * Intel-like hierarchy of synthetic.ts, verified with verifyIntelQuoteAgainst and its own pinned root. Each test
 * changes one thing from an input that verifies, and names the exact refusal, so that removing the check (or
 * letting another check refuse first) makes the test fail.
 */

/** This file: the production pin, collateral windows, chain shapes Intel never issues. */
useIntelPki();

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
