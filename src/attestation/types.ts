/**
 * The contract between evidence verifiers, their callers (the CAS, `veil attestation verify`, `veil cas
 * attest`) and the collateral providers. Verifiers are pure functions of their inputs: the verification time
 * and the collateral are always given, never read from the machine.
 */

/** Names used on the command line and in results. The wire names (Evidence['type']) map onto these. */
export const HARDWARE_TYPES = ['sgx', 'tdx', 'snp', 'az-snp-vtpm', 'az-tdx-vtpm'] as const;
export type HardwareType = (typeof HARDWARE_TYPES)[number];

/** Intel's TCB statuses (TCB info and QE identity), most severe last. */
export const TCB_STATUSES = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
  'Revoked',
] as const;
export type TcbStatus = (typeof TCB_STATUSES)[number];

export interface TcbResult {
  /** The converged status (platform, TDX module and QE: the most severe), see intel/tcb.ts. */
  status: TcbStatus;
  /** Union of the advisory IDs of every level that decided the status, sorted. */
  advisoryIds: string[];
  /** The parts that were converged, for the record (e.g. {platform: 'OutOfDate', qe: 'UpToDate'}). */
  parts: Record<string, TcbStatus>;
  /** The TCB date of the chosen platform level (ISO), when the collateral names one. */
  tcbDate?: string;
}

export interface ChainEntry {
  subject: string;
  issuer: string;
  /** SHA-256 over the DER certificate, colon-separated upper-case hex (node's fingerprint256). */
  fingerprint256: string;
  notBefore: string;
  notAfter: string;
}

export interface SgxClaims {
  mrenclave: string;
  mrsigner: string;
  isvprodid: number;
  isvsvn: number;
  debug: boolean;
  /** flags ‖ xfrm, 16 bytes hex. */
  attributes: string;
  miscselect: number;
  cpusvn: string;
  configid: string;
  configsvn: number;
  isvextprodid: string;
  isvfamilyid: string;
}

export interface TdxClaims {
  mrtd: string;
  rtmr: [string, string, string, string];
  mrseam: string;
  mrsignerseam: string;
  seamattributes: string;
  mrconfigid: string;
  mrowner: string;
  mrownerconfig: string;
  /** 8 bytes hex as in the quote (little-endian u64). */
  tdattributes: string;
  debug: boolean;
  xfam: string;
  tee_tcb_svn: string;
  /** TDX 1.5 bodies (quote v5, body type 3) only. */
  tee_tcb_svn2?: string;
  mrservicetd?: string;
}

/** SNP TCB_VERSION, decoded for the report's product (Turin adds fmc and moves the fields). */
export interface SnpTcb {
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  fmc?: number;
}

export interface SnpClaims {
  version: number;
  product: 'Milan' | 'Genoa' | 'Turin';
  signing_key: 'vcek' | 'vlek';
  measurement: string;
  host_data: string;
  id_key_digest: string;
  author_key_digest: string;
  family_id: string;
  image_id: string;
  report_id: string;
  chip_id: string;
  guest_svn: number;
  vmpl: number;
  policy: {
    raw: string;
    abi_major: number;
    abi_minor: number;
    smt: boolean;
    migrate_ma: boolean;
    debug: boolean;
    single_socket: boolean;
  };
  platform_info: { smt_enabled: boolean; tsme_enabled: boolean; raw: string };
  current_tcb: SnpTcb;
  reported_tcb: SnpTcb;
  committed_tcb: SnpTcb;
  launch_tcb: SnpTcb;
  /** VLEK only: the cloud provider the key was issued to (certificate extension cspID). */
  csp_id?: string;
}

/** Azure confidential VMs: the hardware report's claims plus what the vTPM quote adds. */
export interface AzureClaims {
  hardware: SnpClaims | TdxClaims;
  /** SHA-256 of the HCL runtime data (var data) that the hardware report binds, hex. */
  runtime_data_hash: string;
  /** The vTPM attestation key (RSA JWK from the runtime data) that signed the TPM quote. */
  ak_pub: { kty: 'RSA'; n: string; e: string };
  /** TPMS_ATTEST extraData: the nonce the TPM quote carries, hex. */
  tpm_nonce: string;
  /** PCR digest the TPM quote covers, hex. */
  pcr_digest: string;
  /** PCR values as the evidence lists them (index → hex), when it lists them; their digest was checked. */
  pcrs?: Record<string, string>;
}

export type Claims =
  | { type: 'sgx'; claims: SgxClaims }
  | { type: 'tdx'; claims: TdxClaims }
  | { type: 'snp'; claims: SnpClaims }
  | { type: 'az-snp-vtpm'; claims: AzureClaims }
  | { type: 'az-tdx-vtpm'; claims: AzureClaims };

/** What a verifier returns when every check passed. Anything else is an AttestationError. */
export type VerificationResult = Claims & {
  /** The 64-byte report data field of the hardware report (for Azure: the TPM quote's nonce). */
  reportData: Buffer;
  /** Undefined when no collateral was available: then only signatures and chains were checked. */
  tcb: TcbResult | undefined;
  /** The certificate chain that authenticated the evidence, leaf first. */
  chain: ChainEntry[];
  /** What was not checked or holds only with a caveat (e.g. "no PCK CRL: revocation not checked"). */
  warnings: string[];
  /** Always false for hardware verifiers; the simulation verifier sets it. */
  simulated: false;
  /** Whether every CRL the chain needs was there and every serial looked up in it; the CAS refuses 'unchecked'. */
  revocation: 'checked' | 'unchecked';
};

export interface VerifyOptions {
  /** The verification time: every certificate, CRL and collateral window is checked against it. */
  now: Date;
  /** Where TCB info, QE identity, CRLs, VCEKs come from. Without it only signatures and chains are checked. */
  collateral?: CollateralProvider | undefined;
  /**
   * Certificates given out of band (PEM or DER): the PCK chain for quotes with certification data types
   * 1–4, the VCEK/VLEK (and ASK/ARK) for SNP reports that arrive without them.
   */
  certs?: Buffer[] | undefined;
}

// ---- collateral ------------------------------------------------------------------------------------------

/**
 * A JSON document Intel signs over its exact bytes (`tcbInfo`, `enclaveIdentity`): the raw text of the
 * member's value as served, never re-serialised, and the hex r‖s signature over it.
 */
export interface SignedJson {
  body: string;
  signature: string;
}

export interface IntelCollateral {
  tcbInfo: SignedJson;
  /** PEM: TCB Signing certificate ‖ root. */
  tcbInfoIssuerChain: string;
  qeIdentity: SignedJson;
  qeIdentityIssuerChain: string;
  /** DER; undefined when the source had none (revocation then goes unchecked, with a warning). */
  pckCrl?: Buffer | undefined;
  pckCrlIssuerChain?: string | undefined;
  rootCaCrl?: Buffer | undefined;
}

export interface IntelCollateralRequest {
  tee: 'sgx' | 'tdx';
  /** 12 hex digits, lower case. */
  fmspc: string;
  /** Which PCK CA issued the PCK certificate: selects the PCK CRL. */
  ca: 'platform' | 'processor';
}

export interface AmdCollateral {
  /** ASK (or ASVK) then ARK, PEM, as AMD KDS serves `cert_chain`. */
  chain?: string | undefined;
  /** The VCEK (DER) for this chip and reported TCB. */
  vcek?: Buffer | undefined;
  /** ARK-signed CRL (DER). */
  crl?: Buffer | undefined;
}

export interface AmdCollateralRequest {
  product: 'Milan' | 'Genoa' | 'Turin';
  signingKey: 'vcek' | 'vlek';
  /** CHIP_ID, hex (64 bytes; 8 on Turin); absent for VLEK. */
  hwid?: string | undefined;
  tcb: SnpTcb;
}

/** One source of Intel collateral (files, a PCS or PCCS); undefined when it has none for the request. */
export type IntelSource = (request: IntelCollateralRequest) => Promise<IntelCollateral | undefined>;
/** One source of AMD certificates (files, AMD KDS). */
export type AmdSource = (request: AmdCollateralRequest) => Promise<AmdCollateral | undefined>;

/** One interface for every source: a directory or files (air-gapped), a cache, Intel PCS / a PCCS, AMD KDS. */
export interface CollateralProvider {
  intel(request: IntelCollateralRequest): Promise<IntelCollateral | undefined>;
  amd(request: AmdCollateralRequest): Promise<AmdCollateral | undefined>;
}

// ---- the CAS's seam -------------------------------------------------------------------------------------

/** Hardware evidence as it arrives (decoded from the wire), with the type the runtime declared. */
export interface HardwareEvidence {
  type: HardwareType;
  /** The quote or report (for Azure: the HCL report). */
  evidence: Buffer;
  /** SEV-SNP: the GHCB certificate table (configfs-tsm auxblob). */
  auxblob?: Buffer | undefined;
}

/** Verifies hardware evidence at a given time with whatever collateral it was built with. */
export interface EvidenceVerifier {
  verify(evidence: HardwareEvidence, now: Date): Promise<VerificationResult>;
}
