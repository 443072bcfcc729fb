import { AttestationError } from '../errors.js';
import type { SignedJson } from '../types.js';
import { rawMember } from './rawjson.js';
import type { IntelCollateralSource } from './verify.js';

/** Intel collateral from Intel PCS (v4 API) or a PCCS, over HTTPS; sources only gather bytes (see sources.ts). */

// ---- Intel PCS / PCCS -----------------------------------------------------------------------------------

/** Per request (headers and body together). */
export const PCS_TIMEOUT_MS = 10_000;
/** TCB info and QE identity are a few KiB and CRLs at most a few hundred; anything larger is refused. */
export const PCS_MAX_RESPONSE_BYTES = 2 * 1024 * 1024;
export const INTEL_ROOT_CA_CRL_URL = 'https://certificates.trustedservices.intel.com/IntelSGXRootCA.der';
export const INTEL_PCS_URL = 'https://api.trustedservices.intel.com';

export interface FetchResponseLike {
  status: number;
  headers: { get(name: string): string | null };
  body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array> | null;
}
export type FetchLike = (
  url: string,
  init: { signal: AbortSignal; headers?: Record<string, string> },
) => Promise<FetchResponseLike>;

export interface PcsOptions {
  /** e.g. https://api.trustedservices.intel.com or a PCCS (https://pccs:8081); paths /sgx|tdx/certification/v4/… */
  baseUrl: string;
  /** Injected for tests or proxies; undici's fetch by default. */
  fetch?: FetchLike;
  /** Root CA CRL location; Intel's published URL by default (a PCCS serves /sgx/certification/v4/rootcacrl). */
  rootCaCrlUrl?: string;
  timeoutMs?: number;
  maxBytes?: number;
}

interface Fetched {
  body: Buffer;
  headers: FetchResponseLike['headers'];
}

/** undici when the first fetch goes out: a CAS given collateral files only never loads it. */
const undiciFetch = async () => (await import('undici')).fetch;

export function intelCollateralFromPcs(opts: PcsOptions): IntelCollateralSource {
  const base = opts.baseUrl.replace(/\/+$/, '');
  const doFetch: FetchLike =
    opts.fetch ?? (async (url, init) => (await undiciFetch())(url, init) as unknown as Promise<FetchResponseLike>);
  const timeoutMs = opts.timeoutMs ?? PCS_TIMEOUT_MS;
  const maxBytes = opts.maxBytes ?? PCS_MAX_RESPONSE_BYTES;
  const get = (url: string): Promise<Fetched> => fetchBounded(doFetch, url, timeoutMs, maxBytes);
  return async (req) => {
    const fmspc = req.fmspc.toLowerCase();
    if (!/^[0-9a-f]{12}$/.test(fmspc))
      throw new AttestationError('ATTESTATION_COLLATERAL', `FMSPC ${req.fmspc} is not 12 hex digits`, {
        check: 'collateral',
      });
    const tcbUrl = `${base}/${req.tee}/certification/v4/tcb?fmspc=${fmspc}`;
    const qeUrl = `${base}/${req.tee}/certification/v4/qe/identity`;
    const crlUrl = `${base}/sgx/certification/v4/pckcrl?ca=${req.ca}&encoding=der`;
    const rootUrl = opts.rootCaCrlUrl ?? INTEL_ROOT_CA_CRL_URL;
    const [tcb, qe, pck, root] = await Promise.all([get(tcbUrl), get(qeUrl), get(crlUrl), get(rootUrl)]);
    return {
      tcbInfo: signedBody(tcb, 'tcbInfo', tcbUrl),
      tcbInfoIssuerChain: chainHeader(tcb, ['TCB-Info-Issuer-Chain', 'SGX-TCB-Info-Issuer-Chain'], tcbUrl),
      qeIdentity: signedBody(qe, 'enclaveIdentity', qeUrl),
      qeIdentityIssuerChain: chainHeader(qe, ['SGX-Enclave-Identity-Issuer-Chain'], qeUrl),
      pckCrl: crlBody(pck.body, crlUrl),
      pckCrlIssuerChain: chainHeader(pck, ['SGX-PCK-CRL-Issuer-Chain'], crlUrl),
      rootCaCrl: crlBody(root.body, rootUrl),
    };
  };
}

function pcsError(url: string, message: string, cause?: unknown): AttestationError {
  return new AttestationError('ATTESTATION_COLLATERAL', `${url}: ${message}`, { check: 'collateral fetch', cause });
}

async function fetchBounded(doFetch: FetchLike, url: string, timeoutMs: number, maxBytes: number): Promise<Fetched> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await doFetch(url, { signal });
    if (res.status !== 200) {
      await drain(res.body);
      throw pcsError(url, `HTTP ${res.status}`);
    }
    const length = Number(res.headers.get('content-length') ?? NaN);
    if (length > maxBytes) throw pcsError(url, `response of ${length} bytes exceeds the limit of ${maxBytes}`);
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of iterate(res.body)) {
      total += chunk.length;
      if (total > maxBytes) throw pcsError(url, `response exceeds the limit of ${maxBytes} bytes`);
      chunks.push(Buffer.from(chunk));
    }
    return { body: Buffer.concat(chunks), headers: res.headers };
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    const reason = signal.aborted
      ? `no complete response within ${timeoutMs} ms`
      : ((err as Error)?.message ?? String(err));
    throw pcsError(url, reason, err);
  }
}

async function* iterate(body: FetchResponseLike['body']): AsyncIterable<Uint8Array> {
  if (!body) return;
  if (Symbol.asyncIterator in body) {
    yield* body as AsyncIterable<Uint8Array>;
    return;
  }
  const reader = (body as ReadableStream<Uint8Array>).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    yield value;
  }
}

async function drain(body: FetchResponseLike['body']): Promise<void> {
  try {
    for await (const _ of iterate(body)) void _;
  } catch {
    // The status already decided the outcome.
  }
}

function signedBody(f: Fetched, member: 'tcbInfo' | 'enclaveIdentity', url: string): SignedJson {
  const text = f.body.toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw pcsError(url, 'the body is not JSON');
  }
  const signature = (doc as Record<string, unknown> | null)?.['signature'];
  let body: string | undefined;
  try {
    body = rawMember(text, member);
  } catch {
    body = undefined;
  }
  if (body === undefined || typeof signature !== 'string')
    throw pcsError(url, `the body has no ${member} and signature`);
  return { body, signature };
}

function chainHeader(f: Fetched, names: string[], url: string): string {
  for (const n of names) {
    const v = f.headers.get(n);
    if (v) {
      try {
        return decodeURIComponent(v);
      } catch {
        throw pcsError(url, `header ${n} is not URL-encoded PEM`);
      }
    }
  }
  throw pcsError(url, `no ${names.join(' or ')} header`);
}

/** DER as asked; a PCCS may answer PEM or hex text instead. */
function crlBody(body: Buffer, url: string): Buffer {
  if (body.length === 0) throw pcsError(url, 'empty CRL');
  if (body[0] === 0x30) return body;
  const text = body.toString('latin1').trim();
  const pem = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/.exec(text);
  if (pem) return Buffer.from(pem[1]!.replace(/\s+/g, ''), 'base64');
  if (/^([0-9a-fA-F]{2})+$/.test(text)) return Buffer.from(text, 'hex');
  throw pcsError(url, 'the body is not a CRL (DER, PEM or hex)');
}
