import { AttestationError } from '../errors.js';
import { checkNotRevoked, checkCrl, parseCrl, type PinnedRoot } from '../pki.js';
import { AMD_ARKS } from '../roots.js';
import type {
  AmdCollateral,
  AmdCollateralRequest,
  CollateralProvider,
  SnpClaims,
  VerificationResult,
  VerifyOptions,
} from '../types.js';
import { attempt, type Outcome, type Selected } from './chain.js';
import { amdCerts, certsFromTable, vekExtensions, type AmdCert, type VekExtensions } from './certs.js';
import {
  decodePolicy,
  decodeTcb,
  parseSnpReport,
  productFromChipId,
  type SnpProduct,
  type SnpReport,
} from './report.js';

/**
 * SEV-SNP report verification (attestation.md §2.3): pinned ARK (by key) → ASK or ASVK → VCEK or VLEK, as the
 * report's SIGNING_KEY selects → validity at `now` → the report's ECDSA P-384 signature → the VCEK/VLEK was
 * issued for exactly this chip (hwID) and this REPORTED_TCB → optional ARK-signed CRL. Policy (debug, VMPL,
 * minimum TCB, measurement) is the caller's: AMD has no TCB status service, so `tcb` is always undefined.
 *
 * Collateral and denial of service. The report's CHIP_ID and REPORTED_TCB are attacker-chosen until its
 * signature has verified, and a collateral source such as AMD KDS turns them into a network request. So:
 *  - the certificates that came with the evidence (auxblob, `certs`) are tried first, signature included, and
 *    the collateral source is asked for certificates only when none of them yields a verified report;
 *  - a report that verifies with its own certificates asks the source for the CRL alone (a request without
 *    hwid: per product, not per chip), and a source that fails, or a CRL that does not parse, leaves it verified
 *    with SNP_NO_CRL_WARNING (and SNP_CRL_UNAVAILABLE_WARNING saying why), as when there is no CRL at all;
 *  - when the evidence's VCEK is for exactly this chip and TCB, only the chain is asked for (no hwid); when it
 *    also chains to the pinned ARK and the signature still fails, the refusal is final and nothing is asked;
 *  - the KDS source (collateral.ts) bounds its VCEK requests in flight (KDS_MAX_IN_FLIGHT, beyond which it
 *    fails at once as busy) and remembers failures per URL (KDS_NEGATIVE_TTL_MS), and backs off after a 429.
 * Residual risk: a report with no certificates (or with certificates for another chip or TCB, or that are not
 * AMD's) can only be checked by asking the source for a VCEK, so a CAS that relies on KDS for VCEKs can still be
 * made to send one KDS request for every distinct chip ID (or TCB) an attacker invents, up to KDS_MAX_IN_FLIGHT
 * at a time (a new one as each answer or timeout returns), and while those slots are taken, other reports that
 * need a VCEK from KDS are refused as busy. Reports that carry their VCEK and chain do not depend on KDS
 * (at most the CRL, whose failure is a warning), so hosts should provision the auxblob.
 */

export const SNP_WARNING =
  'SEV-SNP measures the whole VM at launch: measurement and host_data identify the VM image, not a program started inside it';
export const SNP_NO_CRL_WARNING = 'no AMD CRL: revocation of the ASK/ASVK was not checked';
/** Follows SNP_NO_CRL_WARNING when the source was asked for the CRL and failed (or gave one that does not parse). */
export const SNP_CRL_UNAVAILABLE_WARNING = 'the AMD CRL could not be obtained';

/** A collateral source for AMD alone (amdCollateralFromFiles / amdCollateralFromKds), or a plain function. */
export type AmdCollateralSource =
  | Pick<CollateralProvider, 'amd'>
  | ((request: AmdCollateralRequest) => Promise<AmdCollateral | undefined>);

export interface SnpVerifyOptions extends Omit<VerifyOptions, 'collateral'> {
  /** The GHCB certificate table the host provisioned (configfs-tsm auxblob). */
  auxblob?: Buffer | undefined;
  collateral?: AmdCollateralSource | undefined;
}

const CHECK = 'SNP report';

export async function verifySnpReport(report: Buffer, opts: SnpVerifyOptions): Promise<VerificationResult> {
  return verifySnpReportAgainst(report, opts, AMD_ARKS);
}

/**
 * The same with the roots as a parameter, so tests can build a whole AMD-like hierarchy of their own. Production
 * code calls verifySnpReport, which always uses the pinned AMD_ARKS.
 */
export async function verifySnpReportAgainst(
  report: Buffer,
  opts: SnpVerifyOptions,
  roots: Record<SnpProduct, PinnedRoot>,
): Promise<VerificationResult> {
  if (!(opts.now instanceof Date) || Number.isNaN(opts.now.getTime()))
    throw new AttestationError('ATTESTATION_MALFORMED', 'the verification time is not a valid date', { check: CHECK });
  const r = parseSnpReport(report);
  if (r.maskChipKey)
    throw new AttestationError('ATTESTATION_SIGNATURE', 'MASK_CHIP_KEY is set: the firmware did not sign the report', {
      check: 'report signature',
    });
  const given = dedupe([
    ...(opts.auxblob ? certsFromTable(opts.auxblob) : []),
    ...amdCerts(opts.certs ?? [], 'SNP certificates'),
  ]);
  const source = opts.collateral;

  // 1. The certificates that came with the evidence, and nothing else: no request leaves the process.
  const givenProduct = productOf(r, given);
  let outcome = givenProduct ? attempt(r, givenProduct, given, roots[givenProduct], opts.now) : undefined;
  // 2. Only if they do not yield a verified report (and the failure is not final): the collateral source.
  let collateral: AmdCollateral | undefined;
  if (!outcome?.selected) {
    if (!source || outcome?.final) throw outcome?.error ?? noProductError(r);
    ({ outcome, collateral } = await withCollateral(r, givenProduct, given, source, roots, opts.now, outcome));
  }
  const { product, selected } = outcome as Outcome & { selected: Selected };
  const root = roots[product];

  // 3. The CRL. A verified report stays verified when the CRL cannot be had (the source fails, or what it gives
  // does not parse): that is reported as a missing CRL, which the CAS's policy judges. A CRL that parses is
  // checked in full (ARK signature, window, the ASK/ASVK serial), and its failures refuse.
  const warnings = [SNP_WARNING];
  let crlBytes = collateral?.crl;
  let unavailable: string | undefined;
  if (!collateral && source) {
    try {
      crlBytes = (await fetchCollateral(source, request(r, product, false)))?.crl;
    } catch (err) {
      unavailable = (err as Error).message;
    }
  }
  let checked = false;
  if (crlBytes) {
    let crl: ReturnType<typeof parseCrl> | undefined;
    try {
      crl = parseCrl(crlBytes, 'AMD CRL');
    } catch (err) {
      if (!(err instanceof AttestationError) || err.code !== 'ATTESTATION_COLLATERAL') throw err;
      unavailable = err.message;
    }
    if (crl) {
      checkCrl(crl, root.certificate, opts.now, 'AMD CRL');
      // The ARK's CRL lists what the ARK issued: ASKs and ASVKs. VCEKs are issued by the ASK (and all carry serial
      // 0), so their serials are not looked up in it.
      checkNotRevoked(crl, selected.inter.cert, 'AMD CRL');
      checked = true;
    }
  }
  if (!checked) {
    warnings.push(SNP_NO_CRL_WARNING);
    if (unavailable) warnings.push(`${SNP_CRL_UNAVAILABLE_WARNING} (${unavailable})`);
  }
  return {
    type: 'snp',
    claims: claims(r, product, selected.ext),
    reportData: Buffer.from(r.reportData),
    tcb: undefined,
    chain: selected.chain,
    warnings,
    simulated: false,
    revocation: checked ? 'checked' : 'unchecked',
  };
}

// ---- product and collateral ------------------------------------------------------------------------------

/**
 * The product the report is from: its CPUID fields (version ≥ 3); for version 2 the given VCEK/VLEK names it (its
 * chain to that product's ARK is checked later), else the CHIP_ID heuristic (Turin) or undefined. A VCEK given
 * for a VLEK-signed report (or the reverse) still names the product, so that the chain selection can refuse it
 * by name rather than as missing collateral.
 */
function productOf(r: SnpReport, given: AmdCert[]): SnpProduct | undefined {
  if (r.product) return r.product;
  const vek = given.find((c) => c.role === r.signingKey) ?? given.find((c) => c.role === 'vcek' || c.role === 'vlek');
  return vek ? vekExtensions(vek, 'SNP certificates').product : productFromChipId(r.chipId);
}

function noProductError(r: SnpReport): AttestationError {
  return new AttestationError(
    'ATTESTATION_COLLATERAL',
    `a version ${r.version} report does not name its product and no ${r.signingKey.toUpperCase()} was given`,
    {
      check: CHECK,
      hint: 'pass the VCEK (certs or auxblob) or a collateral source',
    },
  );
}

/**
 * The collateral source, after the evidence's own certificates did not verify the report. Requests keyed by
 * the chip (a VCEK: CHIP_ID and REPORTED_TCB, which nothing has authenticated yet) are made only when they can
 * help: when the evidence carried a VCEK for exactly this chip and TCB, only the chain and CRL are asked for
 * (AMD issues one key per chip and TCB, so the source's VCEK could not verify a signature the given one did
 * not); when that VCEK also chained to the pinned ARK, attempt() has already made the refusal final.
 */
async function withCollateral(
  r: SnpReport,
  product: SnpProduct | undefined,
  given: AmdCert[],
  source: AmdCollateralSource,
  roots: Record<SnpProduct, PinnedRoot>,
  now: Date,
  first: Outcome | undefined,
): Promise<{ outcome: Outcome; collateral: AmdCollateral | undefined }> {
  let last = first;
  let sourceError: unknown;
  const tryWith = async (p: SnpProduct, withChip: boolean, needVek: boolean) => {
    let collateral: AmdCollateral | undefined;
    try {
      collateral = await fetchCollateral(source, request(r, p, withChip));
    } catch (err) {
      sourceError ??= err;
      return undefined;
    }
    if (needVek && !collateral?.vcek) return undefined;
    const outcome = attempt(r, p, dedupe([...given, ...collateralCerts(collateral)]), roots[p], now);
    last = outcome;
    return { outcome, collateral };
  };
  if (product) {
    if (r.signingKey === 'vcek' && first?.vekMatches) {
      const got = await tryWith(product, false, false);
      if (got?.outcome.selected) return got;
      if (got?.outcome.final) throw got.outcome.error;
    }
    // For a VCEK, the request by chip; a VLEK request never names a chip (KDS does not serve VLEKs).
    const got = await tryWith(product, true, false);
    if (got?.outcome.selected) return got;
  } else {
    // Version 2 without a VCEK names no product: ask for Milan, then Genoa, and take the first that has one.
    for (const p of ['Milan', 'Genoa'] as const) {
      const got = await tryWith(p, true, true);
      if (got?.outcome.selected) return got;
      if (got) throw got.outcome.error;
    }
    if (!sourceError)
      throw new AttestationError(
        'ATTESTATION_COLLATERAL',
        `no ${r.signingKey.toUpperCase()} for this chip and TCB from the collateral source (tried Milan and Genoa)`,
        { check: CHECK },
      );
  }
  const own = last?.error;
  if (sourceError === undefined) throw own;
  // The source failed. The certificates' own reason is the better one, unless it was only "missing".
  if (!(own instanceof AttestationError) || own.code === 'ATTESTATION_COLLATERAL') throw sourceError;
  const text =
    own.check && own.message.startsWith(`${own.check}: `) ? own.message.slice(own.check.length + 2) : own.message;
  throw new AttestationError(
    own.code,
    `${text}; the collateral source could not supply other certificates (${(sourceError as Error).message})`,
    { check: own.check, hint: own.hint, cause: sourceError },
  );
}

/** withChip false: the chain and CRL only (no hwid), a request keyed by product alone. */
function request(r: SnpReport, product: SnpProduct, withChip: boolean): AmdCollateralRequest {
  const hwid =
    withChip && r.signingKey === 'vcek'
      ? r.chipId.subarray(0, product === 'Turin' ? 8 : 64).toString('hex')
      : undefined;
  return { product, signingKey: r.signingKey, hwid, tcb: decodeTcb(r.reportedTcb, product) };
}

async function fetchCollateral(
  source: AmdCollateralSource,
  req: AmdCollateralRequest,
): Promise<AmdCollateral | undefined> {
  try {
    return typeof source === 'function' ? await source(req) : await source.amd(req);
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    throw new AttestationError(
      'ATTESTATION_COLLATERAL',
      `the AMD collateral source failed (${(err as Error)?.message ?? String(err)})`,
      { check: 'AMD collateral', cause: err },
    );
  }
}

function collateralCerts(c: AmdCollateral | undefined): AmdCert[] {
  const out: AmdCert[] = [];
  if (c?.vcek) out.push(...amdCerts([c.vcek], 'AMD collateral'));
  if (c?.chain) out.push(...amdCerts([c.chain], 'AMD collateral'));
  return out;
}

function dedupe(certs: AmdCert[]): AmdCert[] {
  const seen = new Set<string>();
  return certs.filter((c) => !seen.has(c.sha256) && seen.add(c.sha256));
}

function claims(r: SnpReport, product: SnpProduct, ext: VekExtensions): SnpClaims {
  const hex = (b: Buffer) => b.toString('hex');
  const out: SnpClaims = {
    version: r.version,
    product,
    signing_key: r.signingKey,
    measurement: hex(r.measurement),
    host_data: hex(r.hostData),
    id_key_digest: hex(r.idKeyDigest),
    author_key_digest: hex(r.authorKeyDigest),
    family_id: hex(r.familyId),
    image_id: hex(r.imageId),
    report_id: hex(r.reportId),
    chip_id: hex(r.chipId),
    guest_svn: r.guestSvn,
    vmpl: r.vmpl,
    policy: decodePolicy(r.policy),
    platform_info: {
      smt_enabled: (r.platformInfo & 1n) === 1n,
      tsme_enabled: (r.platformInfo & 2n) === 2n,
      raw: `0x${r.platformInfo.toString(16)}`,
    },
    current_tcb: decodeTcb(r.currentTcb, product),
    reported_tcb: decodeTcb(r.reportedTcb, product),
    committed_tcb: decodeTcb(r.committedTcb, product),
    launch_tcb: decodeTcb(r.launchTcb, product),
  };
  if (r.signingKey === 'vlek') out.csp_id = ext.cspId;
  return out;
}
