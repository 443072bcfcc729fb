/**
 * TEST-ONLY. The collateral and quote half of the synthetic Intel-like DCAP kit, on the PKI of synthetic-pki.ts
 * (re-exported, so tests import one module). See synthetic-pki.ts for what is real about it.
 */
import { createHash, sign, type KeyObject } from 'node:crypto';
import type { IntelCollateral, TcbStatus } from '../types.js';
import { CERT_PCK_CHAIN, CERT_QE_REPORT, INTEL_QE_VENDOR_ID } from './quote.js';
import { PINNED_QE } from './verify.js';
import { REAL_PCK, buildCrl, p256, type IntelPki, type Issued, type KeyPair } from './synthetic-pki.js';

export * from './synthetic-pki.js';

// ---- TCB info and QE identity ----------------------------------------------------------------------------

export const ISSUE_DATE = '2025-05-20T00:00:00Z';
export const NEXT_UPDATE = '2025-06-19T00:00:00Z';
/** Inside every window of the defaults (certificates, CRLs, TCB info, QE identity). */
export const NOW = new Date('2025-06-01T00:00:00Z');

export interface LevelSpec {
  sgx: number[];
  pcesvn: number;
  /** TDX TCB info only. */
  tdx?: number[];
  status: TcbStatus;
  date?: string;
  advisoryIDs?: string[];
}

export interface ModuleSpec {
  mrsigner?: string;
  attributes?: string;
  attributesMask?: string;
}

export interface TcbInfoSpec {
  tee: 'sgx' | 'tdx';
  fmspc?: string;
  pceId?: string;
  issueDate?: string;
  nextUpdate?: string;
  levels?: LevelSpec[];
  tdxModule?: ModuleSpec;
  /** id ("TDX_03") → levels by module ISVSVN. */
  tdxModuleIdentities?: { id: string; levels: { isvsvn: number; status: TcbStatus }[] }[];
  /** Top-level members replaced or added (e.g. { version: 4 } or { id: 'TDX' }), keeping the order. */
  patch?: Record<string, unknown>;
}

const ZERO48 = '0'.repeat(96);
const comps = (svns: number[]) => svns.map((svn) => ({ svn }));

/** The default levels meet REAL_PCK (and TEE_TCB_SVN 03 03 02 00…): an UpToDate level above it, then the one it meets. */
export function defaultLevels(tee: 'sgx' | 'tdx', status: TcbStatus = 'UpToDate'): LevelSpec[] {
  const tdx = tee === 'tdx' ? { tdx: [3, 3, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] } : {};
  const tdxHigher = tee === 'tdx' ? { tdx: [3, 3, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] } : {};
  return [
    {
      sgx: [13, 13, 3, 3, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      pcesvn: 13,
      ...tdxHigher,
      status: 'UpToDate',
      date: '2025-02-12T00:00:00Z',
    },
    {
      sgx: [12, 12, 3, 3, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      pcesvn: 13,
      ...tdx,
      status,
      date: '2024-03-13T00:00:00Z',
      advisoryIDs: status === 'UpToDate' ? [] : ['INTEL-SA-00001'],
    },
    {
      sgx: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      pcesvn: 0,
      ...(tee === 'tdx' ? { tdx: new Array(16).fill(0) } : {}),
      status: 'OutOfDate',
      date: '2018-01-04T00:00:00Z',
      advisoryIDs: ['INTEL-SA-00002'],
    },
  ];
}

export function tcbInfoText(s: TcbInfoSpec): string {
  const level = (l: LevelSpec) => ({
    tcb: { sgxtcbcomponents: comps(l.sgx), pcesvn: l.pcesvn, ...(l.tdx ? { tdxtcbcomponents: comps(l.tdx) } : {}) },
    tcbDate: l.date ?? '2024-03-13T00:00:00Z',
    tcbStatus: l.status,
    ...(l.advisoryIDs?.length ? { advisoryIDs: l.advisoryIDs } : {}),
  });
  const module = (m: ModuleSpec = {}) => ({
    mrsigner: m.mrsigner ?? ZERO48,
    attributes: m.attributes ?? '0000000000000000',
    attributesMask: m.attributesMask ?? 'FFFFFFFFFFFFFFFF',
  });
  const tdx =
    s.tee === 'tdx'
      ? {
          tdxModule: module(s.tdxModule),
          tdxModuleIdentities: (
            s.tdxModuleIdentities ?? [{ id: 'TDX_03', levels: [{ isvsvn: 3, status: 'UpToDate' as TcbStatus }] }]
          ).map((m) => ({
            id: m.id,
            ...module(s.tdxModule),
            tcbLevels: m.levels.map((l) => ({
              tcb: { isvsvn: l.isvsvn },
              tcbDate: '2024-03-13T00:00:00Z',
              tcbStatus: l.status,
            })),
          })),
        }
      : {};
  const doc: Record<string, unknown> = {
    id: s.tee === 'tdx' ? 'TDX' : 'SGX',
    version: 3,
    issueDate: s.issueDate ?? ISSUE_DATE,
    nextUpdate: s.nextUpdate ?? NEXT_UPDATE,
    fmspc: (s.fmspc ?? REAL_PCK.fmspc).toUpperCase(),
    pceId: (s.pceId ?? REAL_PCK.pceId).toUpperCase(),
    tcbType: 0,
    tcbEvaluationDataNumber: 17,
    ...tdx,
    tcbLevels: (s.levels ?? defaultLevels(s.tee)).map(level),
  };
  return JSON.stringify({ ...doc, ...s.patch });
}

export interface QeIdentitySpec {
  tee: 'sgx' | 'tdx';
  mrsigner?: string;
  isvprodid?: number;
  levels?: { isvsvn: number; status: TcbStatus }[];
  issueDate?: string;
  nextUpdate?: string;
  patch?: Record<string, unknown>;
}

export function qeIdentityText(s: QeIdentitySpec): string {
  const pin = PINNED_QE[s.tee];
  const doc: Record<string, unknown> = {
    id: s.tee === 'tdx' ? 'TD_QE' : 'QE',
    version: 2,
    issueDate: s.issueDate ?? ISSUE_DATE,
    nextUpdate: s.nextUpdate ?? NEXT_UPDATE,
    tcbEvaluationDataNumber: 17,
    miscselect: '00000000',
    miscselectMask: 'FFFFFFFF',
    attributes: '11000000000000000000000000000000',
    attributesMask: 'FBFFFFFFFFFFFFFF0000000000000000',
    mrsigner: (s.mrsigner ?? pin.mrsigner).toUpperCase(),
    isvprodid: s.isvprodid ?? pin.isvprodid,
    tcbLevels: (
      s.levels ?? [
        { isvsvn: 8, status: 'UpToDate' },
        { isvsvn: 6, status: 'OutOfDate' },
      ]
    ).map((l) => ({
      tcb: { isvsvn: l.isvsvn },
      tcbDate: '2024-03-13T00:00:00Z',
      tcbStatus: l.status,
    })),
  };
  return JSON.stringify({ ...doc, ...s.patch });
}

/** Intel's form: lower-case hex r‖s (P-256, SHA-256) over the exact UTF-8 text. */
export function signJsonText(text: string, key: KeyObject): string {
  return sign('sha256', Buffer.from(text, 'utf8'), { key, dsaEncoding: 'ieee-p1363' }).toString('hex');
}

export interface CollateralSpec {
  tee: 'sgx' | 'tdx';
  tcbInfo?: Omit<TcbInfoSpec, 'tee'>;
  qeIdentity?: Omit<QeIdentitySpec, 'tee'>;
  /** Exact texts instead of the built ones. */
  tcbInfoText?: string;
  qeIdentityText?: string;
  /** Who signs (default the TCB Signing certificate), and the chain sent with it (default signer ‖ root). */
  tcbInfoSigner?: Issued;
  qeIdentitySigner?: Issued;
  tcbInfoChain?: string;
  qeIdentityChain?: string;
  /** undefined: an empty CRL by the root / the Platform CA; null: none. */
  rootCaCrl?: Buffer | null;
  pckCrl?: Buffer | null;
}

export function buildCollateral(pki: IntelPki, s: CollateralSpec): IntelCollateral {
  const tcbText = s.tcbInfoText ?? tcbInfoText({ tee: s.tee, ...s.tcbInfo });
  const qeText = s.qeIdentityText ?? qeIdentityText({ tee: s.tee, ...s.qeIdentity });
  const tcbSigner = s.tcbInfoSigner ?? pki.tcbSigning;
  const qeSigner = s.qeIdentitySigner ?? pki.tcbSigning;
  const col: IntelCollateral = {
    tcbInfo: { body: tcbText, signature: signJsonText(tcbText, tcbSigner.key.privateKey) },
    tcbInfoIssuerChain: s.tcbInfoChain ?? tcbSigner.pem + pki.root.pem,
    qeIdentity: { body: qeText, signature: signJsonText(qeText, qeSigner.key.privateKey) },
    qeIdentityIssuerChain: s.qeIdentityChain ?? qeSigner.pem + pki.root.pem,
  };
  const rootCrl = s.rootCaCrl === undefined ? buildCrl({ issuer: pki.root }) : s.rootCaCrl;
  const pckCrl = s.pckCrl === undefined ? buildCrl({ issuer: pki.platform }) : s.pckCrl;
  if (rootCrl) col.rootCaCrl = rootCrl;
  if (pckCrl) {
    col.pckCrl = pckCrl;
    col.pckCrlIssuerChain = pki.platform.pem + pki.root.pem;
  }
  return col;
}

// ---- quotes ----------------------------------------------------------------------------------------------

export interface SgxBodySpec {
  cpusvn?: Buffer;
  miscselect?: number;
  /** 16 bytes: flags ‖ xfrm, little-endian. */
  attributes?: Buffer;
  mrenclave?: Buffer;
  mrsigner?: Buffer;
  isvprodid?: number;
  isvsvn?: number;
  reportData?: Buffer;
}

/** An sgx_report_body_t (384 bytes), attestation.md §1.2: the enclave body and every QE report. */
export function sgxReport(s: SgxBodySpec = {}): Buffer {
  const b = Buffer.alloc(384);
  (s.cpusvn ?? REAL_PCK.cpuSvn).copy(b, 0);
  b.writeUInt32LE(s.miscselect ?? 0, 16);
  (s.attributes ?? Buffer.from('07000000000000000700000000000000', 'hex')).copy(b, 48);
  (s.mrenclave ?? createHash('sha256').update('synthetic enclave').digest()).copy(b, 64);
  (s.mrsigner ?? createHash('sha256').update('synthetic signer').digest()).copy(b, 128);
  b.writeUInt16LE(s.isvprodid ?? 7, 256);
  b.writeUInt16LE(s.isvsvn ?? 3, 258);
  (s.reportData ?? Buffer.alloc(64, 0x5a)).copy(b, 320);
  return b;
}

export interface TdBodySpec {
  teeTcbSvn?: Buffer;
  mrsignerseam?: Buffer;
  seamattributes?: Buffer;
  tdattributes?: Buffer;
  mrtd?: Buffer;
  reportData?: Buffer;
}

/** A TD report body (584 bytes, TDX 1.0), attestation.md §1.3. */
export function tdBody(s: TdBodySpec = {}): Buffer {
  const b = Buffer.alloc(584);
  (s.teeTcbSvn ?? Buffer.from('03030200000000000000000000000000', 'hex')).copy(b, 0);
  createHash('sha384').update('synthetic seam').digest().copy(b, 16);
  (s.mrsignerseam ?? Buffer.alloc(48)).copy(b, 64);
  (s.seamattributes ?? Buffer.alloc(8)).copy(b, 112);
  (s.tdattributes ?? Buffer.from('0000001000000000', 'hex')).copy(b, 120);
  Buffer.from('e718060000000000', 'hex').copy(b, 128);
  (s.mrtd ?? createHash('sha384').update('synthetic td').digest()).copy(b, 136);
  for (let i = 0; i < 4; i++)
    createHash('sha384')
      .update(`rtmr${i}`)
      .digest()
      .copy(b, 328 + 48 * i);
  (s.reportData ?? Buffer.alloc(64, 0x5a)).copy(b, 520);
  return b;
}

export interface QeSpec {
  mrsigner?: string;
  isvprodid?: number;
  isvsvn?: number;
  attributes?: Buffer;
  miscselect?: number;
  /** The whole 64-byte REPORTDATA instead of SHA-256(attestKey ‖ authData) ‖ zeros. */
  reportData?: Buffer;
  /** Bytes 32–63 only (default zeros). */
  reportDataTail?: Buffer;
}

export interface QuoteSpec {
  tee: 'sgx' | 'tdx';
  /** The PCK leaf whose key signs the QE report, and the chain carried (leaf ‖ CA ‖ root, PEM). */
  pck: Issued;
  chain: Buffer;
  sgx?: SgxBodySpec;
  td?: TdBodySpec;
  qe?: QeSpec;
  authData?: Buffer;
  attestKey?: KeyPair;
}

/** Raw X‖Y of a P-256 public key. */
export function rawKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  return Buffer.concat([Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
}

const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

/** SGX: a v3 quote; TDX: a v4 quote (tee_type 0x81) with the type-6 QE report wrapper. */
export function buildQuote(s: QuoteSpec): Buffer {
  const attest = s.attestKey ?? p256();
  const attestKey = rawKey(attest.publicKey);
  const authData = s.authData ?? Buffer.from(Array.from({ length: 32 }, (_, i) => i));
  const pin = PINNED_QE[s.tee];
  const qe = s.qe ?? {};
  const reportData =
    qe.reportData ??
    Buffer.concat([
      createHash('sha256').update(attestKey).update(authData).digest(),
      qe.reportDataTail ?? Buffer.alloc(32),
    ]);
  const qeReport = sgxReport({
    mrsigner: Buffer.from(qe.mrsigner ?? pin.mrsigner, 'hex'),
    isvprodid: qe.isvprodid ?? pin.isvprodid,
    isvsvn: qe.isvsvn ?? 8,
    attributes: qe.attributes ?? Buffer.from('11000000000000000000000000000000', 'hex'),
    miscselect: qe.miscselect ?? 0,
    mrenclave: createHash('sha256').update('synthetic QE').digest(),
    reportData,
  });
  const qeReportSig = sign('sha256', qeReport, { key: s.pck.key.privateKey, dsaEncoding: 'ieee-p1363' });
  const header = Buffer.alloc(48);
  header.writeUInt16LE(s.tee === 'tdx' ? 4 : 3, 0);
  header.writeUInt16LE(2, 2);
  header.writeUInt32LE(s.tee === 'tdx' ? 0x81 : 0, 4);
  if (s.tee === 'sgx') {
    header.writeUInt16LE(8, 8); // qe_svn
    header.writeUInt16LE(13, 10); // pce_svn
  }
  Buffer.from(INTEL_QE_VENDOR_ID, 'hex').copy(header, 12);
  const body = s.tee === 'tdx' ? tdBody(s.td) : sgxReport(s.sgx);
  const signed = Buffer.concat([header, body]);
  const signature = sign('sha256', signed, { key: attest.privateKey, dsaEncoding: 'ieee-p1363' });
  const qeData = Buffer.concat([
    qeReport,
    qeReportSig,
    u16(authData.length),
    authData,
    u16(CERT_PCK_CHAIN),
    u32(s.chain.length),
    s.chain,
  ]);
  const sigData =
    s.tee === 'tdx'
      ? Buffer.concat([signature, attestKey, u16(CERT_QE_REPORT), u32(qeData.length), qeData])
      : Buffer.concat([signature, attestKey, qeData]);
  return Buffer.concat([signed, u32(sigData.length), sigData]);
}
