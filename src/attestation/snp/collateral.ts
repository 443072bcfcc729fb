import type { X509Certificate } from 'node:crypto';
import type { Stats } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fetch as undiciFetch } from 'undici';
import { AttestationError } from '../errors.js';
import { parseCertificates, parseCrl, type Crl } from '../pki.js';
import type { AmdCollateral, AmdCollateralRequest, CollateralProvider } from '../types.js';
import { Lru } from '../../lru.js';
import { amdCert, vekExtensions, type AmdCert, type VekExtensions } from './certs.js';
import { SNP_PRODUCTS } from './report.js';

/**
 * Where VCEKs, VLEKs, ASK/ASVK+ARK chains and ARK CRLs come from: files (air-gapped hosts, tests) or AMD's Key
 * Distribution Service. Sources only find and transport; the verifier checks everything they return, so a
 * source is never trusted with more than availability.
 */

export type AmdCollateralProvider = Pick<CollateralProvider, 'amd'> & { warm?(): Promise<void> };

const CHECK = 'AMD collateral';

function collateralError(message: string, cause?: unknown, hint?: string): AttestationError {
  return new AttestationError('ATTESTATION_COLLATERAL', message, { check: CHECK, cause, hint });
}

function toPem(cert: X509Certificate): string {
  return cert.toString().trim();
}

/** The request's VCEK matches by product, hwID and every SPL; a VLEK (no hwID) by product and SPLs. */
function matches(c: AmdCert, req: AmdCollateralRequest): boolean {
  if (c.role !== req.signingKey) return false;
  let ext: VekExtensions;
  try {
    ext = vekExtensions(c, CHECK);
  } catch {
    return false; // a certificate whose extensions do not parse cannot be the one asked for
  }
  if (ext.product !== req.product) return false;
  if (
    ext.bootloader !== req.tcb.bootloader ||
    ext.tee !== req.tcb.tee ||
    ext.snp !== req.tcb.snp ||
    ext.microcode !== req.tcb.microcode
  )
    return false;
  if (req.product === 'Turin' && ext.fmc !== req.tcb.fmc) return false;
  if (req.signingKey === 'vcek')
    return ext.hwId !== undefined && req.hwid !== undefined && ext.hwId.toString('hex') === req.hwid.toLowerCase();
  return true;
}

// ---- files -------------------------------------------------------------------------------------------------

/** Directories are read this deep; files larger than this are not collateral (the largest AMD file is ~7 KiB). */
export const FILES_MAX_DEPTH = 4;
export const FILES_MAX_BYTES = 1 << 20;

type LoadedCrl = Crl & { der: Buffer };

interface Loaded {
  certs: AmdCert[];
  crls: LoadedCrl[];
}

/**
 * Files or directories: PEM bundles (KDS cert_chain: ASK/ASVK then ARK; trustee's ASK, ARK, ASVK), single
 * certificates (DER or PEM), CRLs (DER or PEM). Certificates are recognised by their CN. A file named
 * explicitly must be one of these; in a directory other files (README, LICENSE, reports) are skipped.
 * Files are read once, on the first request.
 */
export function amdCollateralFromFiles(paths: readonly string[]): AmdCollateralProvider {
  let loading: Promise<Loaded> | undefined;
  return {
    async amd(req: AmdCollateralRequest): Promise<AmdCollateral | undefined> {
      loading ??= loadFiles(paths);
      const { certs, crls } = await loading;
      const inter = certs.find(
        (c) => c.role === (req.signingKey === 'vcek' ? 'ask' : 'asvk') && c.product === req.product,
      );
      const ark = certs.find((c) => c.role === 'ark' && c.product === req.product);
      const vek = certs.find((c) => matches(c, req));
      const crl = crls
        .filter((c) => c.issuer.split(', ').includes(`2.5.4.3=ARK-${req.product}`))
        .sort((a, b) => b.thisUpdate.getTime() - a.thisUpdate.getTime())[0];
      if (!inter && !vek && !crl) return undefined;
      return {
        chain: inter
          ? [inter, ark]
              .filter((c) => c !== undefined)
              .map((c) => toPem(c.cert))
              .join('\n') + '\n'
          : undefined,
        vcek: vek ? Buffer.from(vek.cert.raw) : undefined,
        crl: crl ? Buffer.from(crl.der) : undefined,
      };
    },
  };
}

async function loadFiles(paths: readonly string[]): Promise<Loaded> {
  const out: Loaded = { certs: [], crls: [] };
  for (const p of paths) await loadPath(p, true, 0, out);
  return out;
}

async function loadPath(path: string, explicit: boolean, depth: number, out: Loaded): Promise<void> {
  let info: Stats;
  try {
    info = await stat(path);
  } catch (err) {
    throw collateralError(`cannot read ${path} (${(err as Error).message})`, err);
  }
  if (info.isDirectory()) {
    if (depth >= FILES_MAX_DEPTH) return;
    for (const name of (await readdir(path)).sort()) await loadPath(join(path, name), false, depth + 1, out);
    return;
  }
  if (!info.isFile() || info.size > FILES_MAX_BYTES) {
    if (explicit)
      throw collateralError(
        `${path} is not a collateral file (not a regular file, or larger than ${FILES_MAX_BYTES} bytes)`,
      );
    return;
  }
  const bytes = await readFile(path);
  const found = parseCollateralFile(bytes);
  if (!found && explicit) throw collateralError(`${path} holds no certificate or CRL (PEM or DER)`);
  if (found) {
    out.certs.push(...found.certs);
    out.crls.push(...found.crls);
  }
}

function parseCollateralFile(bytes: Buffer): Loaded | undefined {
  const text = bytes.toString('latin1');
  const out: Loaded = { certs: [], crls: [] };
  if (text.includes('-----BEGIN CERTIFICATE-----')) out.certs.push(...tryCerts(bytes));
  if (text.includes('-----BEGIN X509 CRL-----')) out.crls.push(...tryCrl(bytes));
  if (out.certs.length === 0 && out.crls.length === 0 && bytes[0] === 0x30) {
    out.certs.push(...tryCerts(bytes));
    if (out.certs.length === 0) out.crls.push(...tryCrl(bytes));
  }
  return out.certs.length + out.crls.length > 0 ? out : undefined;
}

function tryCerts(bytes: Buffer): AmdCert[] {
  try {
    return parseCertificates(bytes, CHECK).map(amdCert);
  } catch {
    return [];
  }
}

function tryCrl(bytes: Buffer): LoadedCrl[] {
  try {
    const pem = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/.exec(bytes.toString('latin1'));
    const der = pem ? Buffer.from(pem[1]!.replace(/\s+/g, ''), 'base64') : bytes;
    return [{ ...parseCrl(der, CHECK), der }];
  } catch {
    return [];
  }
}

// ---- AMD KDS ---------------------------------------------------------------------------------------------

/** One request (connect, headers and body) may take this long. KDS answers in well under a second. */
export const KDS_TIMEOUT_MS = 10_000;
/** Larger answers are refused: a VCEK is ~1.3 KiB, a cert_chain ~4.6 KiB, a CRL a few KiB. */
export const KDS_MAX_BYTES = 64 * 1024;
/** Answers are kept this long (VCEKs and chains never change per URL; the CRL's own window is still checked). */
export const KDS_CACHE_TTL_MS = 60 * 60 * 1000;
export const KDS_CACHE_ENTRIES = 256;
/**
 * At most this many VCEK requests (URLs keyed by a chip ID and TCB, which the verifier asks for before anything
 * has authenticated them) are in flight at once per source; one more fails at once with ATTESTATION_COLLATERAL
 * ("busy") instead of queueing. The other URLs (cert_chain and crl, per product: nine in all) are not counted:
 * concurrent requests for one URL share one fetch, so they add at most nine, and a flood of invented chip IDs
 * cannot keep the CRL from being fetched.
 */
export const KDS_MAX_IN_FLIGHT = 4;
/**
 * A failed request (HTTP error, timeout, garbage, refused connection) is remembered per URL for this long and
 * answered with the same error without asking KDS again. An HTTP 429 also holds back every request to this KDS
 * for as long: KDS rate-limits the client, not the URL, and retrying only prolongs it.
 */
export const KDS_NEGATIVE_TTL_MS = 60 * 1000;
export const KDS_NEGATIVE_ENTRIES = 1024;

export interface KdsResponse {
  status: number;
  body: AsyncIterable<Uint8Array> | null;
}
export type KdsFetch = (
  url: string,
  init: { signal: AbortSignal; headers: Record<string, string> },
) => Promise<KdsResponse>;

export interface KdsOptions {
  baseUrl?: string;
  /** Defaults to undici's fetch; tests inject their own or point baseUrl at a local server. */
  fetch?: KdsFetch;
  timeoutMs?: number;
  maxBytes?: number;
  /** Also fetch the ARK-signed CRL (default true). A failed CRL fetch is an error here, never a silent skip (the verifier reports it as a missing CRL, with why). */
  crl?: boolean;
  /** KDS_MAX_IN_FLIGHT unless given. */
  maxInFlight?: number;
  /** KDS_NEGATIVE_TTL_MS unless given. */
  negativeTtlMs?: number;
  /** KDS_CACHE_TTL_MS unless given. */
  cacheTtlMs?: number;
}

/**
 * AMD KDS (attestation.md §1.6): `/vcek/v1/{product}/{hwid}?blSPL=&teeSPL=&snpSPL=&ucodeSPL=` (Turin: the
 * 8-byte hwid and `fmcSPL` first), `/vcek/v1/{product}/cert_chain`, `/vlek/v1/{product}/cert_chain`,
 * `/vcek/v1/{product}/crl`. KDS does not serve VLEKs (AMD issues them to cloud providers); for a VLEK only the
 * ASVK chain and the CRL are fetched, and so for a VCEK request without hwid (the verifier's request for the CRL
 * of a report that verified with its own certificates). Errors name the URL. Requests are bounded
 * (KDS_MAX_IN_FLIGHT), failures remembered (KDS_NEGATIVE_TTL_MS), and a 429 holds every request back as long.
 */
export function amdCollateralFromKds(options: KdsOptions = {}): AmdCollateralProvider {
  const base = (options.baseUrl ?? 'https://kdsintf.amd.com').replace(/\/+$/, '');
  const doFetch: KdsFetch = options.fetch ?? ((url, init) => undiciFetch(url, init) as unknown as Promise<KdsResponse>);
  const timeoutMs = options.timeoutMs ?? KDS_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? KDS_MAX_BYTES;
  const maxInFlight = options.maxInFlight ?? KDS_MAX_IN_FLIGHT;
  const negativeTtlMs = options.negativeTtlMs ?? KDS_NEGATIVE_TTL_MS;
  const cacheTtlMs = options.cacheTtlMs ?? KDS_CACHE_TTL_MS;
  const cache = new Lru<{ at: number; body: Buffer }>(KDS_CACHE_ENTRIES);
  const failures = new Lru<{ at: number; error: AttestationError }>(KDS_NEGATIVE_ENTRIES);
  const pending = new Map<string, Promise<Buffer>>();
  const stale = new Map<string, Buffer>(); // per-product URLs only: at most 2 × 3 products + 3 CRLs
  let chipRequests = 0;
  let rateLimitedUntil = 0;

  /**
   * byChip: a VCEK URL (counted against maxInFlight, held back after a 429). The per-product URLs (cert_chain,
   * crl) are neither: an attacker's invented chip IDs must not cost the CRL. They also fall back to their last
   * good answer when a refresh fails — safe, since the verifier checks the chain's validity and the CRL's
   * window itself — so a CAS that fetched them once (see `warm`) keeps checking revocation through a KDS outage.
   */
  async function get(url: string, byChip: boolean): Promise<Buffer> {
    if (byChip) return fetchOnce(url, true);
    const last = stale.get(url);
    try {
      return await fetchOnce(url, false);
    } catch (err) {
      if (last) return last;
      throw err;
    }
  }

  async function fetchOnce(url: string, byChip: boolean): Promise<Buffer> {
    const now = Date.now();
    const hit = cache.get(url);
    if (hit && now - hit.at < cacheTtlMs) return hit.body;
    const failed = failures.get(url);
    if (failed && now - failed.at < negativeTtlMs) throw failed.error;
    const shared = pending.get(url);
    if (shared) return shared;
    if (byChip && now < rateLimitedUntil) {
      throw collateralError(
        `GET ${url} not sent: AMD KDS answered HTTP 429 less than ${Math.round(negativeTtlMs / 1000)} s ago`,
        undefined,
        'AMD KDS rate-limits requests; retry later or use files',
      );
    }
    if (byChip && chipRequests >= maxInFlight) {
      throw collateralError(
        `the AMD KDS source is busy (${maxInFlight} VCEK requests in flight); GET ${url} not sent`,
        undefined,
        'retry later, or give the VCEK with the evidence (auxblob)',
      );
    }
    if (byChip) chipRequests++;
    const request = download(doFetch, url, timeoutMs, maxBytes).then(
      (body) => {
        cache.set(url, { at: Date.now(), body });
        if (!byChip) stale.set(url, body);
        return body;
      },
      (err: unknown) => {
        const error = err instanceof AttestationError ? err : collateralError(`GET ${url}: ${String(err)}`, err);
        failures.set(url, { at: Date.now(), error });
        if (/: HTTP 429$/.test(error.message)) rateLimitedUntil = Date.now() + negativeTtlMs;
        throw error;
      },
    );
    pending.set(url, request);
    try {
      return await request;
    } finally {
      pending.delete(url);
      if (byChip) chipRequests--;
    }
  }

  return {
    /** Fetches every product's chains and CRL now (best effort), so revocation can be checked from the start. */
    async warm(): Promise<void> {
      const urls = SNP_PRODUCTS.flatMap((p) => [
        `${base}/vcek/v1/${p}/cert_chain`,
        `${base}/vlek/v1/${p}/cert_chain`,
        `${base}/vcek/v1/${p}/crl`,
      ]);
      await Promise.allSettled(urls.map((url) => get(url, false)));
    },
    async amd(req: AmdCollateralRequest): Promise<AmdCollateral | undefined> {
      const product = encodeURIComponent(req.product);
      const chainUrl = `${base}/${req.signingKey}/v1/${product}/cert_chain`;
      const chain = await get(chainUrl, false);
      if (tryCerts(chain).length === 0)
        throw collateralError(`GET ${chainUrl}: the answer is not a PEM certificate chain`);
      let vcek: Buffer | undefined;
      if (req.signingKey === 'vcek' && req.hwid !== undefined) {
        const url = vcekUrl(base, req);
        vcek = await get(url, true);
        if (tryCerts(vcek).length !== 1 || vcek[0] !== 0x30)
          throw collateralError(`GET ${url}: the answer is not a DER certificate`);
      }
      let crl: Buffer | undefined;
      if (options.crl ?? true) {
        const url = `${base}/vcek/v1/${product}/crl`;
        crl = await get(url, false);
        if (tryCrl(crl).length === 0) throw collateralError(`GET ${url}: the answer is not a CRL`);
      }
      return { chain: chain.toString('latin1'), vcek, crl };
    },
  };
}

export function vcekUrl(base: string, req: AmdCollateralRequest): string {
  const size = req.product === 'Turin' ? 16 : 128;
  const hwid = (req.hwid ?? '').toLowerCase();
  if (!new RegExp(`^[0-9a-f]{${size}}$`).test(hwid))
    throw collateralError(`the hwid for a ${req.product} VCEK must be ${size / 2} bytes of hex`);
  const { tcb } = req;
  const spl = (n: number | undefined, name: string) => {
    if (n === undefined || !Number.isInteger(n) || n < 0 || n > 255)
      throw collateralError(`${name} ${String(n)} is not 0..255`);
    return `${name}=${n}`;
  };
  const params = [
    ...(req.product === 'Turin' ? [spl(tcb.fmc, 'fmcSPL')] : []),
    spl(tcb.bootloader, 'blSPL'),
    spl(tcb.tee, 'teeSPL'),
    spl(tcb.snp, 'snpSPL'),
    spl(tcb.microcode, 'ucodeSPL'),
  ];
  return `${base}/vcek/v1/${encodeURIComponent(req.product)}/${hwid}?${params.join('&')}`;
}

async function download(doFetch: KdsFetch, url: string, timeoutMs: number, maxBytes: number): Promise<Buffer> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await doFetch(url, {
      signal,
      headers: { accept: 'application/octet-stream, application/x-pem-file, */*' },
    });
    if (res.status !== 200) {
      await drain(res.body);
      throw collateralError(
        `GET ${url}: HTTP ${res.status}`,
        undefined,
        res.status === 404
          ? 'AMD KDS does not know this chip, TCB or product'
          : res.status === 429
            ? 'AMD KDS rate-limits requests; retry later or use files'
            : undefined,
      );
    }
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of res.body ?? []) {
      total += chunk.length;
      if (total > maxBytes) throw collateralError(`GET ${url}: the answer is larger than ${maxBytes} bytes`);
      chunks.push(Buffer.from(chunk));
    }
    return Buffer.concat(chunks);
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    const reason = signal.aborted ? `no answer within ${timeoutMs} ms` : ((err as Error)?.message ?? String(err));
    throw collateralError(`GET ${url}: ${reason}`, err);
  }
}

async function drain(body: AsyncIterable<Uint8Array> | null): Promise<void> {
  try {
    for await (const _ of body ?? []) void _;
  } catch {
    // the status is the error; the body does not matter
  }
}
