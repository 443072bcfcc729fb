/**
 * What the synthetic Intel test files (synthetic*.test.ts) share: the hierarchy (each calls useIntelPki()), quotes
 * and collateral made from it, and the refusal assertion.
 */
import assert from 'node:assert/strict';
import { before } from 'node:test';
import { AttestationError } from '../errors.js';
import type { IntelCollateral } from '../types.js';
import {
  NOW,
  buildCollateral,
  buildQuote,
  createIntelPki,
  pckChainPem,
  type CollateralSpec,
  type IntelPki,
  type Issued,
  type QuoteSpec,
} from './synthetic.js';
import { verifyIntelQuoteAgainst } from './verify.js';

/** The hierarchy of the test file that called useIntelPki() (made in its `before`). */
export let pki: IntelPki;

/** Makes the synthetic Intel-like hierarchy before the calling test file's tests. */
export function useIntelPki(): void {
  before(() => {
    pki = createIntelPki();
  });
}

/** A quote by the default PCK leaf (Platform CA) unless told otherwise. */
export function quote(
  tee: 'sgx' | 'tdx',
  spec: Partial<QuoteSpec> = {},
  pck: Issued = pki.pck,
  ca: Issued = pki.platform,
): Buffer {
  return buildQuote({ tee, pck, chain: pckChainPem(pck, ca, pki.root), ...spec });
}

export function collateral(tee: 'sgx' | 'tdx', spec: Partial<CollateralSpec> = {}): IntelCollateral {
  return buildCollateral(pki, { tee, ...spec });
}

export const verifyQ = (q: Buffer, tee: 'sgx' | 'tdx', col?: IntelCollateral, now = NOW) =>
  verifyIntelQuoteAgainst(q, { now, tee, collateral: col ? async () => col : undefined }, pki.pinned);

/** Refused with this code, from this check, with exactly this message after "check: ". */
export async function refused(
  p: Promise<unknown>,
  code: string,
  check: string,
  message: string | RegExp,
): Promise<void> {
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
