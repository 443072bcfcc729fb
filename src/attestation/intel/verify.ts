import {
  createHash,
  createPublicKey,
  timingSafeEqual,
  verify,
  type KeyObject,
  type X509Certificate,
} from 'node:crypto';
import { AttestationError } from '../errors.js';
import { parseCertificates, type PinnedRoot } from '../pki.js';
import { INTEL_SGX_ROOT } from '../roots.js';
import type {
  IntelCollateral,
  IntelCollateralRequest,
  SgxClaims,
  TdxClaims,
  VerificationResult,
  VerifyOptions,
} from '../types.js';
import { Lru } from '../../lru.js';
import { digestOf } from './digest.js';
import { checkWindows, rootKey, toPem, verifiedChain, type VerifiedChain } from './chain.js';
import { checkCollateral, verifyCollateralBundle } from './collateral.js';
import { isPckLeaf, parsePckExtension, pckCa, type PckExtension } from './pck.js';
import {
  CERT_PCK_CHAIN,
  parseQuote,
  sgxReportFields,
  tdReportFields,
  type ParsedQuote,
  type SgxReportFields,
} from './quote.js';
import { evaluateTcb } from './tcb.js';

/**
 * Intel DCAP quote verification (SGX and TDX), attestation.md §2.1–2.2. The caller states the kind it
 * expects; a quote of the other kind is refused, never sniffed. Per quote the work is two ECDSA P-256
 * verifications (quote by the attestation key, QE report by the PCK key); chains and collateral are verified
 * once per exact byte string and only their windows are re-checked against `now`.
 */

export type IntelCollateralSource = (request: IntelCollateralRequest) => Promise<IntelCollateral | undefined>;

export type IntelVerifyOptions = Omit<VerifyOptions, 'collateral'> & {
  tee: 'sgx' | 'tdx';
  collateral?: IntelCollateralSource | undefined;
};

/** The QE that Intel signs, pinned for verification without collateral (attestation.md §1.5). */
export const PINNED_QE = {
  sgx: { mrsigner: '8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff', isvprodid: 1 },
  tdx: { mrsigner: 'dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5', isvprodid: 2 },
} as const;

const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const SGX_FLAG_DEBUG = 0x02n;

interface PckChain {
  chain: VerifiedChain;
  leaf: X509Certificate;
  ca: X509Certificate;
  caKind: 'platform' | 'processor';
  ext: PckExtension;
}

const pckCache = new Lru<PckChain>(256);

/** Verifies against the pinned Intel SGX Root CA, always: the entry every production caller uses. */
export async function verifyIntelQuote(quote: Buffer, opts: IntelVerifyOptions): Promise<VerificationResult> {
  return verifyIntelQuoteAgainst(quote, opts, INTEL_SGX_ROOT);
}

/**
 * The same with the root as a parameter, so tests can build an Intel-like hierarchy of their own (synthetic.ts):
 * nobody can sign as Intel, so some checks are reachable only that way. Production code calls verifyIntelQuote;
 * this is not exported from index.ts. Every cache below is keyed by the root as well, so a chain or collateral
 * verified against another root is never found by verifyIntelQuote.
 */
export async function verifyIntelQuoteAgainst(
  quote: Buffer,
  opts: IntelVerifyOptions,
  root: PinnedRoot,
): Promise<VerificationResult> {
  if (!(opts?.now instanceof Date) || Number.isNaN(opts.now.getTime())) {
    throw new AttestationError('ATTESTATION_MALFORMED', 'a verification time (now) is required', { check: 'options' });
  }
  const now = opts.now;
  const q = parseQuote(quote);
  if (q.tee !== opts.tee) {
    throw new AttestationError(
      'ATTESTATION_MALFORMED',
      `this is ${q.tee === 'tdx' ? 'a TDX' : 'an SGX'} quote, but ${opts.tee === 'tdx' ? 'TDX' : 'SGX'} evidence was expected`,
      { check: 'quote' },
    );
  }
  const warnings: string[] = [];
  if (q.trailing > 0) warnings.push(`quote: ${q.trailing} bytes after the signature data were ignored`);

  verifyP1363(
    rawP256Key(q.attestKey),
    q.signedBytes,
    q.signature,
    'quote signature',
    'does not verify with the attestation key',
  );
  const pck = pckChain(q, opts.certs, root);
  verifyP1363(
    pck.leaf.publicKey,
    q.qeReport,
    q.qeReportSignature,
    'QE report',
    'signature does not verify with the PCK certificate key',
  );
  const qe = sgxReportFields(q.qeReport);
  checkBinding(q, qe);
  checkWindows(pck.chain, now, 'PCK chain');
  checkPinnedQe(qe, q.tee);

  let tcb: VerificationResult['tcb'];
  // Checked only when both CRLs came with the collateral (checkCollateral then looked every serial up).
  let revocation: VerificationResult['revocation'] = 'unchecked';
  if (opts.collateral) {
    const request: IntelCollateralRequest = { tee: q.tee, fmspc: pck.ext.fmspc, ca: pck.caKind };
    const col = await fetchCollateral(opts.collateral, request);
    if (col) {
      const verified = verifyCollateralBundle(col, root);
      warnings.push(
        ...checkCollateral(
          verified,
          { tee: q.tee, fmspc: pck.ext.fmspc, pceId: pck.ext.pceId, leaf: pck.leaf, pckCa: pck.ca },
          now,
        ),
      );
      if (verified.rootCrl && verified.pckCrl) revocation = 'checked';
      tcb = evaluateTcb({
        tcbInfo: verified.tcbInfo,
        qeIdentity: verified.qeIdentity,
        pck: pck.ext,
        qe,
        ...(q.tee === 'tdx' ? { td: tdReportFields(q.body) } : {}),
      });
      if (tcb.status === 'Revoked') {
        throw new AttestationError(
          'ATTESTATION_REVOKED',
          `the TCB level is Revoked (${Object.entries(tcb.parts)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')})`,
          { check: 'TCB' },
        );
      }
    } else {
      warnings.push(`no collateral for FMSPC ${pck.ext.fmspc}: TCB status not checked`);
    }
  } else {
    warnings.push('no collateral: TCB status, QE identity and revocation not checked (QE identity pinned)');
  }
  const common = {
    reportData: Buffer.from(reportDataOf(q)),
    tcb,
    chain: pck.chain.entries,
    warnings,
    simulated: false as const,
    revocation,
  };
  return q.tee === 'tdx'
    ? { type: 'tdx', claims: tdxClaims(q), ...common }
    : { type: 'sgx', claims: sgxClaims(q.body), ...common };
}

async function fetchCollateral(
  source: IntelCollateralSource,
  request: IntelCollateralRequest,
): Promise<IntelCollateral | undefined> {
  try {
    return await source(request);
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    throw new AttestationError(
      'ATTESTATION_COLLATERAL',
      `the collateral source failed (${(err as Error)?.message ?? String(err)})`,
      { check: 'collateral', cause: err },
    );
  }
}

/** Importing a key costs as much as a verification; a QE keeps its attestation key, so keep the imports. */
const attestKeys = new Lru<KeyObject>(1024);

function rawP256Key(xy: Buffer): KeyObject {
  try {
    return attestKeys.memo(xy.toString('hex'), () =>
      createPublicKey({ key: Buffer.concat([P256_SPKI_PREFIX, Buffer.from([4]), xy]), format: 'der', type: 'spki' }),
    );
  } catch (err) {
    throw new AttestationError('ATTESTATION_SIGNATURE', 'the attestation key is not a P-256 point', {
      check: 'quote signature',
      cause: err,
    });
  }
}

function verifyP1363(key: KeyObject, data: Buffer, signature: Buffer, check: string, message: string): void {
  let ok = false;
  try {
    ok = verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new AttestationError('ATTESTATION_SIGNATURE', message, { check });
}

/** QE REPORTDATA = SHA-256(attestation key ‖ QE auth data) ‖ 32 zero bytes. */
function checkBinding(q: ParsedQuote, qe: SgxReportFields): void {
  const expected = createHash('sha256').update(q.attestKey).update(q.qeAuthData).digest();
  const ok =
    timingSafeEqual(qe.reportData.subarray(0, 32), expected) && qe.reportData.subarray(32).every((b) => b === 0);
  if (!ok)
    throw new AttestationError('ATTESTATION_SIGNATURE', 'report data does not bind the attestation key', {
      check: 'QE report',
    });
}

function checkPinnedQe(qe: SgxReportFields, tee: 'sgx' | 'tdx'): void {
  const pin = PINNED_QE[tee];
  const check = 'QE identity';
  if (qe.mrsigner.toString('hex') !== pin.mrsigner || qe.isvprodid !== pin.isvprodid) {
    throw new AttestationError(
      'ATTESTATION_SIGNATURE',
      `the QE (MRSIGNER ${qe.mrsigner.toString('hex')}, ISVPRODID ${qe.isvprodid}) is not Intel's ${tee === 'tdx' ? 'TD QE' : 'QE3'}`,
      { check },
    );
  }
  if (qe.attributes.readBigUInt64LE(0) & SGX_FLAG_DEBUG) {
    throw new AttestationError('ATTESTATION_SIGNATURE', 'the QE runs in debug mode', { check });
  }
}

/** The PCK chain: from the quote (type 5) or, for types 1–4, from the certificates given out of band. */
function pckChain(q: ParsedQuote, certs: Buffer[] | undefined, root: PinnedRoot): PckChain {
  const check = 'PCK chain';
  let bytes: Buffer;
  let canonical: boolean;
  if (q.certType === CERT_PCK_CHAIN) {
    bytes = q.certData;
    canonical = true;
  } else {
    if (!certs || certs.length === 0) {
      throw new AttestationError(
        'ATTESTATION_CHAIN',
        `the quote carries certification data type ${q.certType}, not the PCK chain`,
        {
          check,
          hint: 'pass the PCK certificate and its chain (--certs pck.pem,chain.pem)',
        },
      );
    }
    bytes = orderedPem(certs, check);
    canonical = false;
  }
  return pckCache.memo(digestOf(canonical ? 'quote' : 'given', rootKey(root), bytes), () => {
    const chain = verifiedChain(bytes, check, { canonical }, root);
    const leaf = chain.certs[0]!;
    const ca = chain.certs[1];
    if (!isPckLeaf(leaf))
      throw new AttestationError(
        'ATTESTATION_CHAIN',
        `the leaf is not an Intel SGX PCK Certificate (${leaf.subject.replace(/\n/g, ', ')})`,
        { check },
      );
    if (!ca) throw new AttestationError('ATTESTATION_CHAIN', 'the chain has no PCK CA certificate', { check });
    // Exactly leaf ← PCK CA ← root, as Intel issues it: the root CRL is checked for the PCK CA, the PCK CRL for
    // the leaf, so any further CA in between would go unchecked.
    if (chain.entries.length !== 3) {
      throw new AttestationError(
        'ATTESTATION_CHAIN',
        `the PCK chain must be PCK certificate ← PCK CA ← root; this one has ${chain.entries.length - 3} more CA(s)`,
        { check },
      );
    }
    const caKind = pckCa(leaf);
    return { chain, leaf, ca, caKind, ext: parsePckExtension(leaf) };
  });
}

/** Out-of-band certificates in any order: the PCK leaf first, then each issuer. */
function orderedPem(certs: Buffer[], check: string): Buffer {
  const all = certs.flatMap((c) => parseCertificates(c, check));
  const leaf = all.find(isPckLeaf);
  if (!leaf)
    throw new AttestationError('ATTESTATION_CHAIN', 'no Intel SGX PCK Certificate among the given certificates', {
      check,
    });
  const ordered = [leaf];
  for (let cur = leaf; ordered.length <= all.length; ) {
    if (cur.checkIssued(cur)) break;
    const issuer = all.find((c) => c !== cur && cur.checkIssued(c));
    if (!issuer || ordered.includes(issuer)) break;
    ordered.push(issuer);
    cur = issuer;
  }
  return Buffer.from(ordered.map((c) => toPem(c.raw)).join(''), 'latin1');
}

function reportDataOf(q: ParsedQuote): Buffer {
  return q.tee === 'tdx' ? tdReportFields(q.body).reportData : sgxReportFields(q.body).reportData;
}

function sgxClaims(body: Buffer): SgxClaims {
  const f = sgxReportFields(body);
  return {
    mrenclave: f.mrenclave.toString('hex'),
    mrsigner: f.mrsigner.toString('hex'),
    isvprodid: f.isvprodid,
    isvsvn: f.isvsvn,
    debug: (f.attributes.readBigUInt64LE(0) & SGX_FLAG_DEBUG) !== 0n,
    attributes: f.attributes.toString('hex'),
    miscselect: f.miscselect,
    cpusvn: f.cpusvn.toString('hex'),
    configid: f.configid.toString('hex'),
    configsvn: f.configsvn,
    isvextprodid: f.isvextprodid.toString('hex'),
    isvfamilyid: f.isvfamilyid.toString('hex'),
  };
}

function tdxClaims(q: ParsedQuote): TdxClaims {
  const f = tdReportFields(q.body);
  const claims: TdxClaims = {
    mrtd: f.mrtd.toString('hex'),
    rtmr: [f.rtmr[0].toString('hex'), f.rtmr[1].toString('hex'), f.rtmr[2].toString('hex'), f.rtmr[3].toString('hex')],
    mrseam: f.mrseam.toString('hex'),
    mrsignerseam: f.mrsignerseam.toString('hex'),
    seamattributes: f.seamattributes.toString('hex'),
    mrconfigid: f.mrconfigid.toString('hex'),
    mrowner: f.mrowner.toString('hex'),
    mrownerconfig: f.mrownerconfig.toString('hex'),
    tdattributes: f.tdattributes.toString('hex'),
    debug: (f.tdattributes[0]! & 0x01) !== 0,
    xfam: f.xfam.toString('hex'),
    tee_tcb_svn: f.teeTcbSvn.toString('hex'),
  };
  if (f.teeTcbSvn2) claims.tee_tcb_svn2 = f.teeTcbSvn2.toString('hex');
  if (f.mrservicetd) claims.mrservicetd = f.mrservicetd.toString('hex');
  return claims;
}
