import { verify as verifySignature } from 'node:crypto';
import { AttestationError } from '../errors.js';
import { checkValidity, spkiSha256, verifyChain, type PinnedRoot } from '../pki.js';
import type { ChainEntry, SnpTcb } from '../types.js';
import { Lru } from '../../lru.js';
import { vekExtensions, type AmdCert, type VekExtensions } from './certs.js';
import { SNP_SIGNED_SIZE, decodeTcb, type SnpProduct, type SnpReport } from './report.js';

/**
 * Which certificates authenticate an SNP report: the pinned ARK (by key) → ASK or ASVK → VCEK or VLEK, as the
 * report's SIGNING_KEY selects, valid at `now`, issued for exactly this chip and REPORTED_TCB, and the report's
 * signature under it. verify.ts decides where the candidates come from (evidence first, then collateral).
 */

/** Successful chain checks (signatures, names, CA bits: everything but validity), by the certificates' bytes. */
const chainCache = new Lru<ChainEntry[]>(1024);
const CHECK = 'SNP report';

/** An ARK that the evidence or a source presents for this product must be the pinned one: otherwise refuse by key. */
function refuseForeignArks(certs: AmdCert[], product: SnpProduct, root: PinnedRoot): void {
  for (const c of certs) {
    if (c.role !== 'ark' || c.product !== product) continue;
    const fp = spkiSha256(c.key);
    if (fp !== root.spkiSha256) {
      throw new AttestationError(
        'ATTESTATION_CHAIN',
        `the presented '${c.cn}' is not ${root.name} (key SHA-256 ${fp.slice(0, 16)}…, pinned ${root.spkiSha256.slice(0, 16)}…)`,
        {
          check: 'AMD chain',
          hint: `only ${root.name} is trusted; it is pinned by its key, not its name`,
        },
      );
    }
  }
}

// ---- chain ---------------------------------------------------------------------------------------------------

export interface Selected {
  vek: AmdCert;
  inter: AmdCert;
  ext: VekExtensions;
  chain: ChainEntry[];
}

export interface Outcome {
  product: SnpProduct;
  /** The VCEK/VLEK and ASK/ASVK the report verified with. */
  selected?: Selected | undefined;
  /** Why not (the first candidate's reason). */
  error?: unknown;
  /**
   * A VCEK for exactly this product, TCB and chip chained to the pinned ARK, and the report's signature did not
   * verify with it: no other certificate can change that (AMD derives one VCEK key per chip and TCB), so the
   * collateral source is not asked. (Never for a VLEK: those are per cloud provider, and never fetched by chip.)
   */
  final: boolean;
  /** Some VCEK/VLEK was for this product, TCB and chip (whether or not it chained). */
  vekMatches: boolean;
}

/**
 * Every VCEK/VLEK candidate (certificate table first, then `certs`, then collateral) is tried against every
 * ASK/ASVK candidate; the first pair that is for this chip and TCB, chains to the pinned ARK and verifies the
 * report's signature wins. A host may well provision a stale VCEK after a TCB update, so a later source can
 * still supply the right one. When none works, the first candidate's reason is the error.
 */
export function attempt(r: SnpReport, product: SnpProduct, all: AmdCert[], root: PinnedRoot, now: Date): Outcome {
  refuseForeignArks(all, product, root);
  const tcb = decodeTcb(r.reportedTcb, product);
  const keyName = r.signingKey.toUpperCase();
  const interRole = r.signingKey === 'vcek' ? 'ask' : 'asvk';
  const interName = r.signingKey === 'vcek' ? `SEV-${product}` : `SEV-VLEK-${product}`;
  const fail = (error: unknown, extra: Partial<Outcome> = {}): Outcome => ({
    product,
    error,
    final: false,
    vekMatches: false,
    ...extra,
  });
  const veks = all.filter((c) => c.role === r.signingKey);
  if (veks.length === 0) {
    const other = all.find((c) => c.role === (r.signingKey === 'vcek' ? 'vlek' : 'vcek'));
    if (other)
      return fail(
        new AttestationError(
          'ATTESTATION_CHAIN',
          `the report is signed by a ${keyName} but only a ${other.role.toUpperCase()} certificate was given`,
          { check: 'signing key' },
        ),
      );
    return fail(
      new AttestationError(
        'ATTESTATION_COLLATERAL',
        `no ${keyName} certificate: neither the certificate table, the given certificates nor the collateral source had one`,
        {
          check: CHECK,
          hint: `pass the ${keyName} (DER or PEM) in certs, or a collateral source (files or AMD KDS)`,
        },
      ),
    );
  }
  const inters = all.filter((c) => c.role === interRole && c.product === product);
  let firstError: unknown;
  let final = false;
  let vekMatches = false;
  for (const vek of veks) {
    let ext: VekExtensions;
    try {
      ext = checkVek(r, product, tcb, vek);
    } catch (err) {
      firstError ??= err;
      continue;
    }
    vekMatches = true;
    for (const inter of inters) {
      let chain: ChainEntry[];
      try {
        chain = checkChain(vek, inter, root, now);
      } catch (err) {
        firstError ??= err;
        continue;
      }
      try {
        checkReportSignature(r, vek);
      } catch (err) {
        firstError ??= err;
        // One VCEK key per chip and TCB; VLEKs are per cloud provider, so another VLEK (from a source) might do.
        final ||= r.signingKey === 'vcek';
        break; // the signature depends on the VCEK/VLEK key alone
      }
      return { product, selected: { vek, inter, ext, chain }, final: false, vekMatches };
    }
  }
  if (inters.length === 0) {
    const other = all.find((c) => c.role === interRole || c.role === (interRole === 'ask' ? 'asvk' : 'ask'));
    firstError = other
      ? new AttestationError(
          'ATTESTATION_CHAIN',
          `the chain has '${other.cn}', but a ${product} ${keyName} needs '${interName}'`,
          { check: 'AMD chain' },
        )
      : new AttestationError(
          'ATTESTATION_COLLATERAL',
          `no '${interName}' certificate to chain the ${keyName} to ${root.name}`,
          {
            check: 'AMD chain',
            hint: `pass the ${product} cert_chain (${interName} then ARK, PEM) in certs, or a collateral source`,
          },
        );
  }
  return fail(firstError, { final, vekMatches });
}

export function checkChain(vek: AmdCert, inter: AmdCert, root: PinnedRoot, now: Date): ChainEntry[] {
  const key = `${root.spkiSha256}:${inter.sha256}:${vek.sha256}`;
  const cached = chainCache.get(key);
  if (cached) {
    // Signatures and names do not depend on the time; validity does, so it is checked on every call.
    for (const c of [vek.cert, inter.cert, root.certificate]) checkValidity(c, now, 'AMD chain');
    return cached;
  }
  const chain = verifyChain([vek.cert, inter.cert], root, now, 'AMD chain');
  chainCache.set(key, chain);
  return chain;
}

/** The VCEK/VLEK belongs to this product, TCB and (VCEK) chip, and has the key type the signature needs. */
export function checkVek(r: SnpReport, product: SnpProduct, tcb: SnpTcb, vek: AmdCert): VekExtensions {
  const name = r.signingKey.toUpperCase();
  const details = vek.key.asymmetricKeyDetails;
  if (vek.key.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'secp384r1') {
    throw new AttestationError('ATTESTATION_CHAIN', `the ${name} key is not an EC P-384 key`, {
      check: `${name} certificate`,
    });
  }
  const ext = vekExtensions(vek, `${name} certificate`);
  if (ext.product !== product) {
    throw new AttestationError(
      'ATTESTATION_CHAIN',
      `the ${name} is for ${ext.productName}, the report is from a ${product}`,
      { check: `${name} certificate` },
    );
  }
  const mismatches: string[] = [];
  const compare = (field: string, cert: number | undefined, report: number | undefined) => {
    if (cert !== report) mismatches.push(`${field} ${cert ?? '-'} ≠ ${report ?? '-'}`);
  };
  if (product === 'Turin') compare('fmcSPL', ext.fmc, tcb.fmc);
  compare('blSPL', ext.bootloader, tcb.bootloader);
  compare('teeSPL', ext.tee, tcb.tee);
  compare('snpSPL', ext.snp, tcb.snp);
  compare('ucodeSPL', ext.microcode, tcb.microcode);
  if (mismatches.length > 0) {
    throw new AttestationError(
      'ATTESTATION_CHAIN',
      `the ${name} was issued for another TCB than REPORTED_TCB (certificate ≠ report: ${mismatches.join(', ')})`,
      {
        check: `${name} TCB`,
        hint: `fetch the ${name} for the reported TCB`,
      },
    );
  }
  if (r.signingKey === 'vcek') {
    const chip = r.chipId.subarray(0, product === 'Turin' ? 8 : 64);
    if (!ext.hwId)
      throw new AttestationError('ATTESTATION_CHAIN', 'the VCEK has no hwID extension', { check: 'VCEK hwID' });
    if (!ext.hwId.equals(chip)) {
      throw new AttestationError(
        'ATTESTATION_CHAIN',
        `the VCEK is for chip ${ext.hwId.toString('hex').slice(0, 16)}…, the report is from chip ${chip.toString('hex').slice(0, 16)}…`,
        {
          check: 'VCEK hwID',
        },
      );
    }
  } else if (!ext.cspId) {
    throw new AttestationError('ATTESTATION_CHAIN', 'the VLEK has no cspID extension (whom AMD issued it to)', {
      check: 'VLEK certificate',
    });
  }
  return ext;
}

export function checkReportSignature(r: SnpReport, vek: AmdCert): void {
  let ok = false;
  try {
    ok = verifySignature(
      'sha384',
      r.raw.subarray(0, SNP_SIGNED_SIZE),
      { key: vek.key, dsaEncoding: 'ieee-p1363' },
      r.signature,
    );
  } catch {
    ok = false;
  }
  if (!ok)
    throw new AttestationError('ATTESTATION_SIGNATURE', `does not verify with the ${r.signingKey.toUpperCase()}`, {
      check: 'report signature',
    });
}

// ---- claims -------------------------------------------------------------------------------------------------
