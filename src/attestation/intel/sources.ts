import type { X509Certificate } from 'node:crypto';
import type { Stats } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AttestationError } from '../errors.js';
import { parseCertificates, parseCrl, type Crl } from '../pki.js';
import type { IntelCollateral, IntelCollateralRequest, SignedJson } from '../types.js';
import { signsJson } from './collateral.js';
import { rawMember } from './rawjson.js';
import type { IntelCollateralSource } from './verify.js';

/**
 * Intel collateral from files (air-gapped: a directory of PCS responses, PEM chains, CRLs, Phala-style collateral
 * JSON); Intel PCS / a PCCS over HTTP is in pcs.ts. Sources only gather bytes; every signature, chain and
 * window is checked by the verifier.
 */

// ---- files ----------------------------------------------------------------------------------------------

interface SignedCandidate {
  signed: SignedJson;
  /** Parsed lightly for selection only; the verifier parses again after checking the signature. */
  meta: { id?: string; fmspc?: string; issueDate?: string };
  chain?: string;
}

interface CrlCandidate {
  der: Buffer;
  crl: Crl;
  issuer: 'root' | 'platform' | 'processor';
}

interface Pool {
  tcbInfos: SignedCandidate[];
  qeIdentities: SignedCandidate[];
  signingChains: string[];
  pckCrlChains: { ca: 'platform' | 'processor'; pem: string }[];
  crls: CrlCandidate[];
}

/** Files or directories (their files, not recursive); files are recognised by content. */
export function intelCollateralFromFiles(paths: string[]): IntelCollateralSource {
  let pool: Promise<Pool> | undefined;
  return async (req) => {
    pool ??= loadPool(paths).catch((err: unknown) => {
      pool = undefined;
      throw err;
    });
    return select(await pool, req);
  };
}

/** The same from bytes already in memory (e.g. a bundle uploaded to the CAS). */
export function intelCollateralFromBlobs(blobs: { name: string; bytes: Buffer }[]): IntelCollateralSource {
  const pool = emptyPool();
  for (const b of blobs) addBlob(pool, b.bytes, b.name);
  return async (req) => select(pool, req);
}

function emptyPool(): Pool {
  return { tcbInfos: [], qeIdentities: [], signingChains: [], pckCrlChains: [], crls: [] };
}

async function loadPool(paths: string[]): Promise<Pool> {
  const pool = emptyPool();
  for (const file of await expand(paths)) {
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (err) {
      throw new AttestationError('ATTESTATION_COLLATERAL', `cannot read ${file} (${(err as Error).message})`, {
        check: 'collateral files',
        cause: err,
      });
    }
    addBlob(pool, bytes, file);
  }
  return pool;
}

async function expand(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    let s: Stats;
    try {
      s = await stat(p);
    } catch (err) {
      throw new AttestationError('ATTESTATION_COLLATERAL', `cannot read ${p} (${(err as Error).message})`, {
        check: 'collateral files',
        cause: err,
      });
    }
    if (!s.isDirectory()) {
      out.push(p);
      continue;
    }
    for (const e of (await readdir(p, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isFile()) out.push(join(p, e.name));
    }
  }
  return out;
}

/** Adds whatever collateral `bytes` holds; unknown content is skipped (directories hold READMEs and quotes). */
function addBlob(pool: Pool, bytes: Buffer, name: string): void {
  const text = bytes.toString('utf8');
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{')) addJson(pool, text, name);
  else if (text.includes('-----BEGIN CERTIFICATE-----')) addPem(pool, text, name);
  else if (text.includes('-----BEGIN X509 CRL-----') || bytes[0] === 0x30) addCrl(pool, bytes);
}

function addJson(pool: Pool, text: string, name: string): void {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return;
  }
  if (!doc || typeof doc !== 'object') return;
  if (typeof doc['tcb_info'] === 'string') {
    addPhala(pool, doc, name);
    return;
  }
  for (const [member, list] of [
    ['tcbInfo', pool.tcbInfos],
    ['enclaveIdentity', pool.qeIdentities],
  ] as const) {
    const body = rawMember(text, member);
    if (body !== undefined && typeof doc['signature'] === 'string') {
      list.push({ signed: { body, signature: doc['signature'] }, meta: metaOf(doc[member]) });
    }
  }
}

/** Phala dcap-qvl's collateral JSON: the signed texts are stored verbatim as strings, CRLs as hex. */
function addPhala(pool: Pool, doc: Record<string, unknown>, name: string): void {
  const str = (k: string): string | undefined => (typeof doc[k] === 'string' ? (doc[k] as string) : undefined);
  const tcb = str('tcb_info');
  const tcbSig = str('tcb_info_signature');
  if (tcb && tcbSig)
    pool.tcbInfos.push({
      signed: { body: tcb, signature: tcbSig },
      meta: metaOfText(tcb),
      ...chainOf(str('tcb_info_issuer_chain')),
    });
  const qe = str('qe_identity');
  const qeSig = str('qe_identity_signature');
  if (qe && qeSig)
    pool.qeIdentities.push({
      signed: { body: qe, signature: qeSig },
      meta: metaOfText(qe),
      ...chainOf(str('qe_identity_issuer_chain')),
    });
  for (const k of ['tcb_info_issuer_chain', 'qe_identity_issuer_chain', 'pck_crl_issuer_chain']) {
    const pem = str(k);
    if (pem) addPem(pool, pem, `${name}:${k}`);
  }
  for (const k of ['root_ca_crl', 'pck_crl']) {
    const hex = str(k);
    if (hex && /^([0-9a-fA-F]{2})+$/.test(hex)) addCrl(pool, Buffer.from(hex, 'hex'));
  }
}

function chainOf(pem: string | undefined): { chain?: string } {
  return pem ? { chain: pem } : {};
}

function metaOfText(text: string): SignedCandidate['meta'] {
  try {
    return metaOf(JSON.parse(text));
  } catch {
    return {};
  }
}

function metaOf(v: unknown): SignedCandidate['meta'] {
  if (!v || typeof v !== 'object') return {};
  const o = v as Record<string, unknown>;
  const meta: SignedCandidate['meta'] = {};
  if (typeof o['id'] === 'string') meta.id = o['id'];
  else if (o['version'] === 2 && 'fmspc' in o) meta.id = 'SGX';
  if (typeof o['fmspc'] === 'string') meta.fmspc = o['fmspc'].toLowerCase();
  if (typeof o['issueDate'] === 'string') meta.issueDate = o['issueDate'];
  return meta;
}

function addPem(pool: Pool, text: string, _name: string): void {
  let certs: X509Certificate[];
  try {
    certs = parseCertificates(text, 'collateral files');
  } catch {
    return;
  }
  const cn = cnOf(certs[0]!);
  if (cn === 'Intel SGX TCB Signing') pool.signingChains.push(text);
  else if (cn === 'Intel SGX PCK Platform CA') pool.pckCrlChains.push({ ca: 'platform', pem: text });
  else if (cn === 'Intel SGX PCK Processor CA') pool.pckCrlChains.push({ ca: 'processor', pem: text });
}

function addCrl(pool: Pool, bytes: Buffer): void {
  let crl: Crl;
  try {
    crl = parseCrl(bytes, 'collateral files');
  } catch {
    return;
  }
  const issuer = crlIssuer(crl);
  if (!issuer) return;
  const pem = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/.exec(bytes.toString('latin1'));
  pool.crls.push({ der: pem ? Buffer.from(pem[1]!.replace(/\s+/g, ''), 'base64') : bytes, crl, issuer });
}

/** pki.parseCrl renders the issuer as "<oid>=<value>, …"; the CN is 2.5.4.3. */
function crlIssuer(crl: Crl): CrlCandidate['issuer'] | undefined {
  const cn = /(?:^|, )2\.5\.4\.3=([^,]+)/.exec(crl.issuer)?.[1];
  if (cn === 'Intel SGX Root CA') return 'root';
  if (cn === 'Intel SGX PCK Platform CA') return 'platform';
  if (cn === 'Intel SGX PCK Processor CA') return 'processor';
  return undefined;
}

function cnOf(cert: X509Certificate): string | undefined {
  return /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
}

function latest<T>(items: T[], date: (t: T) => number): T | undefined {
  let best: T | undefined;
  for (const it of items) if (best === undefined || date(it) > date(best)) best = it;
  return best;
}

function select(pool: Pool, req: IntelCollateralRequest): IntelCollateral | undefined {
  const tcbId = req.tee === 'tdx' ? 'TDX' : 'SGX';
  const qeId = req.tee === 'tdx' ? 'TD_QE' : 'QE';
  const when = (c: SignedCandidate): number => Date.parse(c.meta.issueDate ?? '') || 0;
  // Several sets may match (a directory of past downloads): the most recently issued wins.
  const tcb = latest(
    pool.tcbInfos.filter((c) => c.meta.id === tcbId && c.meta.fmspc === req.fmspc.toLowerCase()),
    when,
  );
  const qe = latest(
    pool.qeIdentities.filter((c) => c.meta.id === qeId),
    when,
  );
  if (!tcb && !qe) return undefined;
  const check = 'collateral files';
  if (!tcb)
    throw new AttestationError(
      'ATTESTATION_COLLATERAL',
      `no ${tcbId} TCB info for FMSPC ${req.fmspc} among the files`,
      { check },
    );
  if (!qe) throw new AttestationError('ATTESTATION_COLLATERAL', `no ${qeId} identity among the files`, { check });
  const crlWhen = (c: CrlCandidate): number => c.crl.thisUpdate.getTime();
  const root = latest(
    pool.crls.filter((c) => c.issuer === 'root'),
    crlWhen,
  );
  const pck = latest(
    pool.crls.filter((c) => c.issuer === req.ca),
    crlWhen,
  );
  return {
    tcbInfo: tcb.signed,
    tcbInfoIssuerChain: signerChain(tcb, pool, 'TCB info'),
    qeIdentity: qe.signed,
    qeIdentityIssuerChain: signerChain(qe, pool, 'QE identity'),
    pckCrl: pck?.der,
    pckCrlIssuerChain: pool.pckCrlChains.find((c) => c.ca === req.ca)?.pem,
    rootCaCrl: root?.der,
  };
}

/**
 * The chain the document came with, or else a TCB Signing chain among the files whose certificate verifies
 * its signature, preferring one valid when the document was issued (Intel re-issued the certificate in 2025
 * with the same key, so both verify; the one valid at issue is the one Intel used).
 */
function signerChain(c: SignedCandidate, pool: Pool, what: string): string {
  if (c.chain) return c.chain;
  const issued = Date.parse(c.meta.issueDate ?? '');
  const verifying = pool.signingChains.filter((pem) => {
    const cert = firstCert(pem);
    return cert !== undefined && signsJson(cert, c.signed);
  });
  const inWindow = verifying.find((pem) => {
    const cert = firstCert(pem)!;
    return Date.parse(cert.validFrom) <= issued && issued <= Date.parse(cert.validTo);
  });
  const chosen = inWindow ?? verifying[0] ?? pool.signingChains[0];
  if (!chosen) {
    throw new AttestationError(
      'ATTESTATION_COLLATERAL',
      `no issuer chain for the ${what} among the files (add the TCB Signing certificate PEM)`,
      {
        check: 'collateral files',
      },
    );
  }
  return chosen;
}

function firstCert(pem: string): X509Certificate | undefined {
  try {
    return parseCertificates(pem, 'collateral files')[0];
  } catch {
    return undefined;
  }
}
