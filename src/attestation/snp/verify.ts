import { verify as verifySignature } from 'node:crypto';
import { AttestationError } from '../errors.js';
import { checkNotRevoked, checkCrl, checkValidity, parseCrl, spkiSha256, verifyChain, type PinnedRoot } from '../pki.js';
import { AMD_ARKS } from '../roots.js';
import type { AmdCollateral, AmdCollateralRequest, ChainEntry, CollateralProvider, SnpClaims, SnpTcb, VerificationResult, VerifyOptions } from '../types.js';
import { Lru } from '../../lru.js';
import { amdCerts, certsFromTable, vekExtensions, type AmdCert, type VekExtensions } from './certs.js';
import { SNP_SIGNED_SIZE, decodePolicy, decodeTcb, parseSnpReport, productFromChipId, type SnpProduct, type SnpReport } from './report.js';

/**
 * SEV-SNP report verification (attestation.md §2.3): pinned ARK (by key) → ASK or ASVK → VCEK or VLEK, as the
 * report's SIGNING_KEY selects → validity at `now` → the report's ECDSA P-384 signature → the VCEK/VLEK was
 * issued for exactly this chip (hwID) and this REPORTED_TCB → optional ARK-signed CRL. Policy (debug, VMPL,
 * minimum TCB, measurement) is the caller's: AMD has no TCB status service, so `tcb` is always undefined.
 */

export const SNP_WARNING = 'SEV-SNP measures the whole VM at launch: measurement and host_data identify the VM image, not a program started inside it';
export const SNP_NO_CRL_WARNING = 'no AMD CRL: revocation of the ASK/ASVK was not checked';

/** A collateral source for AMD alone (amdCollateralFromFiles / amdCollateralFromKds), or a plain function. */
export type AmdCollateralSource = Pick<CollateralProvider, 'amd'> | ((request: AmdCollateralRequest) => Promise<AmdCollateral | undefined>);

export interface SnpVerifyOptions extends Omit<VerifyOptions, 'collateral'> {
  /** The GHCB certificate table the host provisioned (configfs-tsm auxblob). */
  auxblob?: Buffer | undefined;
  collateral?: AmdCollateralSource | undefined;
}

const CHECK = 'SNP report';
/** Successful chain checks (signatures, names, CA bits: everything but validity), by the certificates' bytes. */
const chainCache = new Lru<ChainEntry[]>(1024);

export async function verifySnpReport(report: Buffer, opts: SnpVerifyOptions): Promise<VerificationResult> {
  return verifySnpReportAgainst(report, opts, AMD_ARKS);
}

/**
 * The same with the roots as a parameter, so tests can build a whole AMD-like hierarchy of their own. Production
 * code calls verifySnpReport, which always uses the pinned AMD_ARKS.
 */
export async function verifySnpReportAgainst(report: Buffer, opts: SnpVerifyOptions, roots: Record<SnpProduct, PinnedRoot>): Promise<VerificationResult> {
  if (!(opts.now instanceof Date) || Number.isNaN(opts.now.getTime())) throw new AttestationError('ATTESTATION_MALFORMED', 'the verification time is not a valid date', { check: CHECK });
  const r = parseSnpReport(report);
  if (r.maskChipKey) throw new AttestationError('ATTESTATION_SIGNATURE', 'MASK_CHIP_KEY is set: the firmware did not sign the report', { check: 'report signature' });
  const given = [...(opts.auxblob ? certsFromTable(opts.auxblob) : []), ...amdCerts(opts.certs ?? [], 'SNP certificates')];
  const { product, collateral } = await chooseProduct(r, given, opts.collateral);
  const fromCollateral = collateral ? collateralCerts(collateral) : [];
  const all = dedupe([...given, ...fromCollateral]);
  const root = roots[product];
  refuseForeignArks(all, product, root);

  const tcb = decodeTcb(r.reportedTcb, product);
  const { vek, ext, chain, inter } = selectChain(r, product, tcb, all, root, opts.now);
  checkReportSignature(r, vek);

  const warnings = [SNP_WARNING];
  if (collateral?.crl) {
    const crl = parseCrl(collateral.crl, 'AMD CRL');
    checkCrl(crl, root.certificate, opts.now, 'AMD CRL');
    // The ARK's CRL lists what the ARK issued: ASKs and ASVKs. VCEKs are issued by the ASK (and all carry serial
    // 0), so their serials are not looked up in it.
    checkNotRevoked(crl, inter.cert, 'AMD CRL');
  } else {
    warnings.push(SNP_NO_CRL_WARNING);
  }
  return {
    type: 'snp',
    claims: claims(r, product, ext),
    reportData: Buffer.from(r.reportData),
    tcb: undefined,
    chain,
    warnings,
    simulated: false,
  };
}

// ---- product and collateral ------------------------------------------------------------------------------

async function chooseProduct(r: SnpReport, given: AmdCert[], source: AmdCollateralSource | undefined): Promise<{ product: SnpProduct; collateral: AmdCollateral | undefined }> {
  let product = r.product;
  if (!product) {
    // Version 2 does not name its product: the VCEK does (its chain to that product's ARK is checked below).
    // A VCEK given for a VLEK-signed report (or the reverse) still names the product, so that the chain
    // selection below can refuse it by name rather than as missing collateral.
    const vek = given.find((c) => c.role === r.signingKey) ?? given.find((c) => c.role === 'vcek' || c.role === 'vlek');
    product = vek ? vekExtensions(vek, 'SNP certificates').product : productFromChipId(r.chipId);
  }
  if (product) return { product, collateral: source ? await fetchCollateral(source, request(r, product)) : undefined };
  if (!source) {
    throw new AttestationError('ATTESTATION_COLLATERAL', `a version ${r.version} report does not name its product and no ${r.signingKey.toUpperCase()} was given`, {
      check: CHECK,
      hint: 'pass the VCEK (certs or auxblob) or a collateral source',
    });
  }
  let firstError: unknown;
  for (const p of ['Milan', 'Genoa'] as const) {
    try {
      const collateral = await fetchCollateral(source, request(r, p));
      if (collateral?.vcek) return { product: p, collateral };
    } catch (err) {
      firstError ??= err;
    }
  }
  if (firstError) throw firstError;
  throw new AttestationError('ATTESTATION_COLLATERAL', `no ${r.signingKey.toUpperCase()} for this chip and TCB from the collateral source (tried Milan and Genoa)`, { check: CHECK });
}

function request(r: SnpReport, product: SnpProduct): AmdCollateralRequest {
  const hwid = r.signingKey === 'vcek' ? r.chipId.subarray(0, product === 'Turin' ? 8 : 64).toString('hex') : undefined;
  return { product, signingKey: r.signingKey, hwid, tcb: decodeTcb(r.reportedTcb, product) };
}

async function fetchCollateral(source: AmdCollateralSource, req: AmdCollateralRequest): Promise<AmdCollateral | undefined> {
  try {
    return typeof source === 'function' ? await source(req) : await source.amd(req);
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    throw new AttestationError('ATTESTATION_COLLATERAL', `the AMD collateral source failed (${(err as Error)?.message ?? String(err)})`, { check: 'AMD collateral', cause: err });
  }
}

function collateralCerts(c: AmdCollateral): AmdCert[] {
  const out: AmdCert[] = [];
  if (c.vcek) out.push(...amdCerts([c.vcek], 'AMD collateral'));
  if (c.chain) out.push(...amdCerts([c.chain], 'AMD collateral'));
  return out;
}

function dedupe(certs: AmdCert[]): AmdCert[] {
  const seen = new Set<string>();
  return certs.filter((c) => !seen.has(c.sha256) && seen.add(c.sha256));
}

/** An ARK that the evidence or a source presents for this product must be the pinned one: otherwise refuse by key. */
function refuseForeignArks(certs: AmdCert[], product: SnpProduct, root: PinnedRoot): void {
  for (const c of certs) {
    if (c.role !== 'ark' || c.product !== product) continue;
    const fp = spkiSha256(c.key);
    if (fp !== root.spkiSha256) {
      throw new AttestationError('ATTESTATION_CHAIN', `the presented '${c.cn}' is not ${root.name} (key SHA-256 ${fp.slice(0, 16)}…, pinned ${root.spkiSha256.slice(0, 16)}…)`, {
        check: 'AMD chain',
        hint: `only ${root.name} is trusted; it is pinned by its key, not its name`,
      });
    }
  }
}

// ---- chain ---------------------------------------------------------------------------------------------------

interface Selected {
  vek: AmdCert;
  inter: AmdCert;
  ext: VekExtensions;
  chain: ChainEntry[];
}

/**
 * Every VCEK/VLEK candidate (certificate table first, then `certs`, then collateral) is tried against every
 * ASK/ASVK candidate; the first pair that is for this chip and TCB and chains to the pinned ARK wins. A host may
 * well provision a stale VCEK after a TCB update, so a later source can still supply the right one. When none
 * works, the first candidate's reason is the error.
 */
function selectChain(r: SnpReport, product: SnpProduct, tcb: SnpTcb, all: AmdCert[], root: PinnedRoot, now: Date): Selected {
  const keyName = r.signingKey.toUpperCase();
  const interRole = r.signingKey === 'vcek' ? 'ask' : 'asvk';
  const interName = r.signingKey === 'vcek' ? `SEV-${product}` : `SEV-VLEK-${product}`;
  const veks = all.filter((c) => c.role === r.signingKey);
  if (veks.length === 0) {
    const other = all.find((c) => c.role === (r.signingKey === 'vcek' ? 'vlek' : 'vcek'));
    if (other) throw new AttestationError('ATTESTATION_CHAIN', `the report is signed by a ${keyName} but only a ${other.role.toUpperCase()} certificate was given`, { check: 'signing key' });
    throw new AttestationError('ATTESTATION_COLLATERAL', `no ${keyName} certificate: neither the certificate table, the given certificates nor the collateral source had one`, {
      check: CHECK,
      hint: `pass the ${keyName} (DER or PEM) in certs, or a collateral source (files or AMD KDS)`,
    });
  }
  const inters = all.filter((c) => c.role === interRole && c.product === product);
  if (inters.length === 0) {
    const other = all.find((c) => c.role === interRole || c.role === (interRole === 'ask' ? 'asvk' : 'ask'));
    if (other) throw new AttestationError('ATTESTATION_CHAIN', `the chain has '${other.cn}', but a ${product} ${keyName} needs '${interName}'`, { check: 'AMD chain' });
    throw new AttestationError('ATTESTATION_COLLATERAL', `no '${interName}' certificate to chain the ${keyName} to ${root.name}`, {
      check: 'AMD chain',
      hint: `pass the ${product} cert_chain (${interName} then ARK, PEM) in certs, or a collateral source`,
    });
  }
  let firstError: unknown;
  for (const vek of veks) {
    try {
      const ext = checkVek(r, product, tcb, vek);
      for (const inter of inters) {
        try {
          return { vek, inter, ext, chain: checkChain(vek, inter, root, now) };
        } catch (err) {
          firstError ??= err;
        }
      }
    } catch (err) {
      firstError ??= err;
    }
  }
  throw firstError;
}

function checkChain(vek: AmdCert, inter: AmdCert, root: PinnedRoot, now: Date): ChainEntry[] {
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
function checkVek(r: SnpReport, product: SnpProduct, tcb: SnpTcb, vek: AmdCert): VekExtensions {
  const name = r.signingKey.toUpperCase();
  const details = vek.key.asymmetricKeyDetails;
  if (vek.key.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'secp384r1') {
    throw new AttestationError('ATTESTATION_CHAIN', `the ${name} key is not an EC P-384 key`, { check: `${name} certificate` });
  }
  const ext = vekExtensions(vek, `${name} certificate`);
  if (ext.product !== product) {
    throw new AttestationError('ATTESTATION_CHAIN', `the ${name} is for ${ext.productName}, the report is from a ${product}`, { check: `${name} certificate` });
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
    throw new AttestationError('ATTESTATION_CHAIN', `the ${name} was issued for another TCB than REPORTED_TCB (certificate ≠ report: ${mismatches.join(', ')})`, {
      check: `${name} TCB`,
      hint: `fetch the ${name} for the reported TCB`,
    });
  }
  if (r.signingKey === 'vcek') {
    const chip = r.chipId.subarray(0, product === 'Turin' ? 8 : 64);
    if (!ext.hwId) throw new AttestationError('ATTESTATION_CHAIN', 'the VCEK has no hwID extension', { check: 'VCEK hwID' });
    if (!ext.hwId.equals(chip)) {
      throw new AttestationError('ATTESTATION_CHAIN', `the VCEK is for chip ${ext.hwId.toString('hex').slice(0, 16)}…, the report is from chip ${chip.toString('hex').slice(0, 16)}…`, {
        check: 'VCEK hwID',
      });
    }
  } else if (!ext.cspId) {
    throw new AttestationError('ATTESTATION_CHAIN', 'the VLEK has no cspID extension (whom AMD issued it to)', { check: 'VLEK certificate' });
  }
  return ext;
}

function checkReportSignature(r: SnpReport, vek: AmdCert): void {
  let ok = false;
  try {
    ok = verifySignature('sha384', r.raw.subarray(0, SNP_SIGNED_SIZE), { key: vek.key, dsaEncoding: 'ieee-p1363' }, r.signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new AttestationError('ATTESTATION_SIGNATURE', `does not verify with the ${r.signingKey.toUpperCase()}`, { check: 'report signature' });
}

// ---- claims -------------------------------------------------------------------------------------------------

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
    platform_info: { smt_enabled: (r.platformInfo & 1n) === 1n, tsme_enabled: (r.platformInfo & 2n) === 2n, raw: `0x${r.platformInfo.toString(16)}` },
    current_tcb: decodeTcb(r.currentTcb, product),
    reported_tcb: decodeTcb(r.reportedTcb, product),
    committed_tcb: decodeTcb(r.committedTcb, product),
    launch_tcb: decodeTcb(r.launchTcb, product),
  };
  if (r.signingKey === 'vlek') out.csp_id = ext.cspId;
  return out;
}
