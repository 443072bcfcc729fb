import { verify, type KeyObject, type X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import { AttestationError } from '../errors.js';
import { checkCrl, checkNotRevoked, parseCrl, type Crl, type PinnedRoot } from '../pki.js';
import type { IntelCollateral, SignedJson } from '../types.js';
import { collateralError, parseQeIdentity, parseTcbInfo, type QeIdentity, type TcbInfo } from './collateral-json.js';

export type { IsvLevel, QeIdentity, TcbInfo, TcbLevel, TdxModuleIdentity } from './collateral-json.js';
import { Lru } from '../../lru.js';
import { digestOf } from './digest.js';
import { checkWindows, cnOf, rootKey, verifiedChain, type VerifiedChain } from './chain.js';

/**
 * Intel collateral: TCB info and QE identity (signed JSON), their TCB Signing chain, the root CA CRL and the
 * PCK CRL. Signatures are checked over the exact bytes of the served JSON value and only then is the text
 * parsed. The time-independent part (signatures, parsing) is cached by the bytes; windows, revocation of
 * the PCK certificates and the match with the quote are checked on every call.
 */

// ---- signatures -----------------------------------------------------------------------------------------

/** Intel serves the signature as lower-case hex r‖s; anything else is refused rather than normalised. */
function signatureBytes(hex: string, check: string): Buffer {
  if (typeof hex !== 'string' || !/^[0-9a-f]{128}$/.test(hex)) {
    throw new AttestationError('ATTESTATION_SIGNATURE', 'the signature is not 128 lower-case hex digits (r‖s)', {
      check,
    });
  }
  return Buffer.from(hex, 'hex');
}

function verifySignedJson(signed: SignedJson, key: KeyObject, check: string): void {
  const sig = signatureBytes(signed.signature, check);
  const ok = verify('sha256', Buffer.from(signed.body, 'utf8'), { key, dsaEncoding: 'ieee-p1363' }, sig);
  if (!ok)
    throw new AttestationError('ATTESTATION_SIGNATURE', 'the signature does not verify with the TCB Signing key', {
      check,
    });
}

/** The TCB Signing chain: leaf `Intel SGX TCB Signing`, chained to the pinned root. */
function signingChain(pem: string, check: string, root: PinnedRoot): VerifiedChain {
  if (typeof pem !== 'string' || pem.length === 0) throw collateralError(check, 'no issuer chain');
  const chain = verifiedChain(Buffer.from(pem, 'latin1'), check, { canonical: false }, root);
  const leaf = chain.certs[0]!;
  if (!/(?:^|\n)CN=Intel SGX TCB Signing(?:\n|$)/.test(leaf.subject)) {
    throw new AttestationError(
      'ATTESTATION_CHAIN',
      `the signer is ${cnOf(leaf)}, not the Intel SGX TCB Signing certificate`,
      { check },
    );
  }
  // Intel issues it from the root, whose CRL is the one checked for it: an issuing CA below the root (a PCK CA,
  // a far more exposed key) must not be able to vouch for every platform's TCB.
  if (chain.entries.length !== 2) {
    throw new AttestationError(
      'ATTESTATION_CHAIN',
      `the TCB Signing certificate must be issued by the root itself, not through ${chain.entries.length - 2} intermediate CA(s)`,
      { check },
    );
  }
  return chain;
}

/**
 * A CRL in strict DER: the signature BIT STRING has no unused bits and nothing follows the CRL. pkijs reads
 * BER leniently, which would let such bytes change without changing what is checked.
 */
function strictCrl(der: Buffer, check: string): Crl {
  if (!Buffer.isBuffer(der) || der.length === 0) throw collateralError(check, 'empty CRL');
  let parsed: ReturnType<typeof asn1js.fromBER>;
  try {
    parsed = asn1js.fromBER(der);
  } catch (err) {
    // asn1js throws (rather than reporting) on some malformed primitives, e.g. a time.
    throw collateralError(check, `the CRL does not parse (${(err as Error).message})`, err);
  }
  if (parsed.offset !== der.length)
    throw collateralError(check, 'the CRL is not one DER structure (trailing or missing bytes)');
  const top = parsed.result;
  const parts = top instanceof asn1js.Sequence ? top.valueBlock.value : [];
  const sig = parts[2];
  if (
    parts.length !== 3 ||
    !(sig instanceof asn1js.BitString) ||
    sig.valueBlock.unusedBits !== 0 ||
    top.lenBlock.isIndefiniteForm
  ) {
    throw collateralError(check, 'the CRL is not a DER CertificateList');
  }
  try {
    return parseCrl(der, check);
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    // pkijs reports some malformed fields (e.g. a time) with a plain Error.
    throw collateralError(check, `the CRL does not parse (${(err as Error).message})`, err);
  }
}

// ---- the verified bundle --------------------------------------------------------------------------------

export interface VerifiedCollateral {
  tcbInfo: TcbInfo;
  qeIdentity: QeIdentity;
  tcbChain: VerifiedChain;
  qeChain: VerifiedChain;
  rootCrl?: Crl;
  /** Parsed only: its issuer is the PCK CA of the quote, so its signature is checked per chain. */
  pckCrl?: Crl;
  pckCrlBytes?: Buffer;
}

const bundleCache = new Lru<VerifiedCollateral>(64);
const pckCrlCache = new Lru<true>(256);

export function clearCollateralCache(): void {
  bundleCache.clear();
  pckCrlCache.clear();
}

/**
 * The signatures, chains and shapes of one collateral set: pure, cached by its exact bytes and the root (in
 * production INTEL_SGX_ROOT, passed by verify.ts), so a set verified against a test root never satisfies a
 * lookup for the Intel root.
 */
export function verifyCollateralBundle(col: IntelCollateral, root: PinnedRoot): VerifiedCollateral {
  if (!col || typeof col !== 'object' || !col.tcbInfo || !col.qeIdentity)
    throw collateralError('collateral', 'TCB info or QE identity is missing');
  const key = digestOf(
    rootKey(root),
    col.tcbInfo.body,
    col.tcbInfo.signature,
    col.tcbInfoIssuerChain,
    col.qeIdentity.body,
    col.qeIdentity.signature,
    col.qeIdentityIssuerChain,
    col.rootCaCrl,
    col.pckCrl,
  );
  return bundleCache.memo(key, () => {
    const tcbChain = signingChain(col.tcbInfoIssuerChain, 'TCB info issuer chain', root);
    verifySignedJson(col.tcbInfo, tcbChain.certs[0]!.publicKey, 'TCB info');
    const qeChain = signingChain(col.qeIdentityIssuerChain, 'QE identity issuer chain', root);
    verifySignedJson(col.qeIdentity, qeChain.certs[0]!.publicKey, 'QE identity');
    const out: VerifiedCollateral = {
      tcbInfo: parseTcbInfo(col.tcbInfo.body),
      qeIdentity: parseQeIdentity(col.qeIdentity.body),
      tcbChain,
      qeChain,
    };
    if (col.rootCaCrl !== undefined) {
      const crl = strictCrl(col.rootCaCrl, 'root CA CRL');
      // The signature does not depend on the time; freshness is checked per call.
      checkCrl(crl, root.certificate, crl.thisUpdate, 'root CA CRL');
      out.rootCrl = crl;
    }
    if (col.pckCrl !== undefined) {
      out.pckCrl = strictCrl(col.pckCrl, 'PCK CRL');
      out.pckCrlBytes = col.pckCrl;
    }
    return out;
  });
}

/** What the collateral must match and revoke-check, from the verified quote. */
export interface PckContext {
  tee: 'sgx' | 'tdx';
  fmspc: string;
  pceId: string;
  leaf: X509Certificate;
  /** The PCK CA that issued the leaf (from the quote's verified chain). */
  pckCa: X509Certificate;
}

/** Checks that depend on the time and on the quote. Returns warnings for what could not be checked. */
export function checkCollateral(v: VerifiedCollateral, ctx: PckContext, now: Date): string[] {
  const warnings: string[] = [];
  matchQuote(v, ctx);
  checkWindows(v.tcbChain, now, 'TCB info issuer chain');
  checkWindows(v.qeChain, now, 'QE identity issuer chain');
  window(v.tcbInfo.issueDate, v.tcbInfo.nextUpdate, now, 'TCB info');
  window(v.qeIdentity.issueDate, v.qeIdentity.nextUpdate, now, 'QE identity');
  if (v.rootCrl) {
    crlWindow(v.rootCrl, now, 'root CA CRL');
    checkNotRevoked(v.rootCrl, ctx.pckCa, 'PCK CA certificate');
    for (const c of [v.tcbChain.certs[0]!, v.qeChain.certs[0]!])
      checkNotRevoked(v.rootCrl, c, 'TCB Signing certificate');
  } else {
    warnings.push('no root CA CRL: revocation of the PCK CA and TCB Signing certificates not checked');
  }
  if (v.pckCrl && v.pckCrlBytes) {
    const crl = v.pckCrl;
    pckCrlCache.memo(digestOf(v.pckCrlBytes, ctx.pckCa.raw), () => {
      checkCrl(crl, ctx.pckCa, crl.thisUpdate, 'PCK CRL');
      return true;
    });
    crlWindow(crl, now, 'PCK CRL');
    checkNotRevoked(crl, ctx.leaf, 'PCK certificate');
  } else {
    warnings.push('no PCK CRL: revocation of the PCK certificate not checked');
  }
  return warnings;
}

function matchQuote(v: VerifiedCollateral, ctx: PckContext): void {
  const t = v.tcbInfo;
  const wantId = ctx.tee === 'tdx' ? 'TDX' : 'SGX';
  if (t.id !== wantId) throw collateralError('TCB info', `is for ${t.id}, not ${wantId}`);
  if (ctx.tee === 'tdx' && t.version !== 3) throw collateralError('TCB info', `version ${t.version} is not 3 (TDX)`);
  if (t.fmspc !== ctx.fmspc.toLowerCase())
    throw collateralError('TCB info', `is for FMSPC ${t.fmspc}, the PCK certificate has ${ctx.fmspc}`);
  if (t.pceId !== ctx.pceId.toLowerCase())
    throw collateralError('TCB info', `is for PCE-ID ${t.pceId}, the PCK certificate has ${ctx.pceId}`);
  const wantQe = ctx.tee === 'tdx' ? 'TD_QE' : 'QE';
  if (v.qeIdentity.id !== wantQe) throw collateralError('QE identity', `is for ${v.qeIdentity.id}, not ${wantQe}`);
}

function window(from: Date, to: Date, now: Date, check: string): void {
  if (now < from) {
    throw new AttestationError(
      'ATTESTATION_EXPIRED',
      `not valid before ${from.toISOString()} (verification time ${now.toISOString()})`,
      { check },
    );
  }
  if (now > to) {
    throw new AttestationError(
      'ATTESTATION_EXPIRED',
      `expired at ${to.toISOString()} (verification time ${now.toISOString()})`,
      {
        check,
        hint: 'fetch current collateral or verify at a time inside its window (--at)',
      },
    );
  }
}

function crlWindow(crl: Crl, now: Date, check: string): void {
  if (!crl.nextUpdate) throw new AttestationError('ATTESTATION_EXPIRED', 'the CRL has no nextUpdate', { check });
  window(crl.thisUpdate, crl.nextUpdate, now, check);
}

/** For sources: does this certificate verify the signed JSON (TCB info or QE identity)? */
export function signsJson(cert: X509Certificate, signed: SignedJson): boolean {
  try {
    const sig = signatureBytes(signed.signature, 'collateral');
    return verify('sha256', Buffer.from(signed.body, 'utf8'), { key: cert.publicKey, dsaEncoding: 'ieee-p1363' }, sig);
  } catch {
    return false;
  }
}
