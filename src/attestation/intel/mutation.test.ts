import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { AttestationError } from '../errors.js';
import type { IntelCollateral } from '../types.js';
import { toPem } from './chain.js';
import { COLLATERAL_CASES, SUMMARY, collateralOf, prng, teeOf, vector } from './fixtures.js';
import { parseQuote } from './quote.js';
import { verifyIntelQuote } from './verify.js';

/**
 * Single-byte mutations (seeded, reproducible): every one must be refused with an AttestationError.
 *
 * Regions mutated: the quote's header, body, signature data (signatures, attestation key, QE report, auth
 * data, lengths) and certification data (the PEM chain), and for collateral vectors the TCB info and QE
 * identity texts, their hex signatures, the DER of their issuer chains, and both CRLs.
 * Excluded, because the verifier legitimately ignores them:
 * - bytes after the signature data (trailing padding, reported as a warning);
 * - the PEM armour of the collateral issuer chains: the chain is mutated in its DER, since PEM from files
 *   and HTTP headers may differ in line breaks and still encode the same certificate (quote chains, by
 *   contrast, must be canonical PEM, so their text is mutated as is);
 * - pckCrlIssuerChain: the PCK CRL is verified with the PCK CA certificate of the quote's own chain.
 */

const MUTATIONS = 1000;

type Mutator = (rand: () => number) => { quote: Buffer; collateral: IntelCollateral | undefined; where: string };

function flip(buf: Buffer, pos: number, rand: () => number): Buffer {
  const out = Buffer.from(buf);
  out[pos] = out[pos]! ^ (1 + Math.floor(rand() * 255));
  return out;
}

function flipString(s: string, rand: () => number): string {
  const b = Buffer.from(s, 'latin1');
  return flip(b, Math.floor(rand() * b.length), rand).toString('latin1');
}

/** Mutates one DER byte of one certificate of a PEM chain and re-encodes it canonically. */
function flipChain(pem: string, rand: () => number): string {
  const certs = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  const ders: Buffer[] = certs.map((c) => Buffer.from(new X509Certificate(c).raw));
  const i = Math.floor(rand() * ders.length);
  ders[i] = flip(ders[i]!, Math.floor(rand() * ders[i]!.length), rand);
  return ders.map(toPem).join('');
}

function quoteRegions(quote: Buffer): [string, number, number][] {
  const q = parseQuote(quote);
  const certStart = q.certData.byteOffset - quote.byteOffset;
  const end = quote.length - q.trailing;
  return [
    ['header', 0, 48],
    ['body', 48, q.signedBytes.length],
    ['signature data', q.signedBytes.length, certStart],
    ['certification data', certStart, end],
  ].filter(([, a, b]) => (b as number) > (a as number)) as [string, number, number][];
}

function quoteMutator(quote: Buffer, collateral: IntelCollateral | undefined): Mutator[] {
  return quoteRegions(quote).map(([name, from, to]) => (rand) => {
    const pos = from + Math.floor(rand() * (to - from));
    return { quote: flip(quote, pos, rand), collateral, where: `${name} byte ${pos}` };
  });
}

function collateralMutators(quote: Buffer, col: IntelCollateral): Mutator[] {
  const m =
    (where: string, change: (rand: () => number) => Partial<IntelCollateral>): Mutator =>
    (rand) => ({ quote, collateral: { ...col, ...change(rand) }, where });
  const out: Mutator[] = [
    m('TCB info text', (r) => ({ tcbInfo: { ...col.tcbInfo, body: flipString(col.tcbInfo.body, r) } })),
    m('TCB info signature', (r) => ({ tcbInfo: { ...col.tcbInfo, signature: flipString(col.tcbInfo.signature, r) } })),
    m('QE identity text', (r) => ({ qeIdentity: { ...col.qeIdentity, body: flipString(col.qeIdentity.body, r) } })),
    m('QE identity signature', (r) => ({
      qeIdentity: { ...col.qeIdentity, signature: flipString(col.qeIdentity.signature, r) },
    })),
    m('TCB info issuer chain', (r) => ({ tcbInfoIssuerChain: flipChain(col.tcbInfoIssuerChain, r) })),
    m('QE identity issuer chain', (r) => ({ qeIdentityIssuerChain: flipChain(col.qeIdentityIssuerChain, r) })),
  ];
  const { rootCaCrl, pckCrl } = col;
  if (rootCaCrl)
    out.push(m('root CA CRL', (r) => ({ rootCaCrl: flip(rootCaCrl, Math.floor(r() * rootCaCrl.length), r) })));
  if (pckCrl) out.push(m('PCK CRL', (r) => ({ pckCrl: flip(pckCrl, Math.floor(r() * pckCrl.length), r) })));
  return out;
}

async function expectAllRefused(
  mutators: Mutator[],
  seed: number,
  now: Date,
  tee: 'sgx' | 'tdx',
): Promise<Map<string, number>> {
  const rand = prng(seed);
  const codes = new Map<string, number>();
  for (let i = 0; i < MUTATIONS; i++) {
    const mutate = mutators[Math.floor(rand() * mutators.length)]!;
    const { quote, collateral, where } = mutate(rand);
    const source = collateral ? async (): Promise<IntelCollateral> => collateral : undefined;
    try {
      await verifyIntelQuote(quote, { now, tee, collateral: source });
    } catch (err) {
      if (!(err instanceof AttestationError)) assert.fail(`mutation ${i} (${where}, seed ${seed}): ${String(err)}`);
      codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
      continue;
    }
    assert.fail(`mutation ${i} (${where}, seed ${seed}) was accepted`);
  }
  return codes;
}

function seedOf(name: string): number {
  let h = 2166136261;
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return h >>> 0;
}

describe('mutations: quote only', () => {
  for (const [path, e] of Object.entries(SUMMARY)) {
    it(`${path}: ${MUTATIONS} mutations refused`, async () => {
      const quote = vector(path);
      // Unmutated it verifies: the refusals below are due to the mutations.
      await verifyIntelQuote(quote, { now: new Date(e.verifyAt), tee: teeOf(e) });
      const codes = await expectAllRefused(
        quoteMutator(quote, undefined),
        seedOf(path),
        new Date(e.verifyAt),
        teeOf(e),
      );
      assert.ok(codes.size > 0);
    });
  }
});

describe('mutations: quote and collateral', () => {
  for (const c of COLLATERAL_CASES) {
    it(`${c.name}: ${MUTATIONS} mutations refused`, async () => {
      const quote = vector(c.quote);
      const col = await collateralOf(c);
      await verifyIntelQuote(quote, { now: new Date(c.at), tee: c.tee, collateral: async () => col });
      const mutators = [...quoteMutator(quote, col), ...collateralMutators(quote, col)];
      await expectAllRefused(mutators, seedOf(c.name), new Date(c.at), c.tee);
    });
  }
});
