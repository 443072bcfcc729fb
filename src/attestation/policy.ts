import { AttestationError } from './errors.js';
import type { AzureClaims, SgxClaims, SnpClaims, SnpTcb, TcbStatus, TdxClaims, VerificationResult } from './types.js';

/**
 * What a session says about attestation (reference §4.4), and how a verified result is judged against it.
 * Verification (signatures, chains, collateral) is the verifiers' job; this module decides whether what was
 * verified is what the policy asks for: identity, debug, SMT, TCB status and advisories.
 */

export interface AttestationPolicy {
  mode?: 'hardware' | 'maa' | 'none' | undefined;
  tolerate?: readonly string[] | undefined;
  ignore_advisories?: '*' | readonly string[] | undefined;
}

type OneOrMany<T> = T | readonly T[];

/** The identity fields of session language `services[].attestation` variants (and Veil's tdx/snp/vtpm). */
export interface AttestationVariant {
  mrenclave?: readonly string[] | undefined;
  signer?:
    | { mrsigner: string; isvprodid?: number; isvsvn?: number; isvsvn_min?: number; isvsvn_max?: number }
    | undefined;
  tdx?:
    | {
        mrtd?: OneOrMany<string>;
        rtmr0?: string;
        rtmr1?: string;
        rtmr2?: string;
        rtmr3?: OneOrMany<string>;
        mrseam?: OneOrMany<string>;
        mrconfigid?: string;
        mrowner?: string;
        mrownerconfig?: string;
        tdattributes?: string;
        xfam?: string;
      }
    | undefined;
  snp?:
    | {
        measurement?: OneOrMany<string>;
        host_data?: string;
        id_key_digest?: OneOrMany<string>;
        author_key_digest?: OneOrMany<string>;
        family_id?: string;
        image_id?: string;
        guest_svn_min?: number;
        min_tcb?: Partial<SnpTcb>;
        vmpl_max?: number;
        signing_key?: 'vcek' | 'vlek';
        csp_id?: string;
      }
    | undefined;
  vtpm?: { pcrs: Record<string, string> } | undefined;
}

export interface ServiceIdentity {
  mrenclaves?: readonly string[] | undefined;
  attestation?: AttestationVariant | readonly AttestationVariant[] | undefined;
}

/** Which toleration each TCB status needs (SCONE's names); Revoked is never accepted. */
export const STATUS_TOLERATIONS: Record<TcbStatus, readonly string[] | 'never'> = {
  UpToDate: [],
  SWHardeningNeeded: ['software-hardening-needed'],
  ConfigurationNeeded: ['insecure-configuration'],
  ConfigurationAndSWHardeningNeeded: ['insecure-configuration', 'software-hardening-needed'],
  OutOfDate: ['outdated-tcb'],
  OutOfDateConfigurationNeeded: ['outdated-tcb', 'insecure-configuration'],
  Revoked: 'never',
};

/** Hardware evidence is judged only by a session that attests (`mode: hardware`, or no mode). */
export function checkMode(policy: AttestationPolicy | undefined): void {
  if (policy?.mode === 'maa') {
    throw new AttestationError(
      'ATTESTATION_UNSUPPORTED',
      'Veil does not support Microsoft Azure Attestation (mode: maa)',
      {
        check: 'security.attestation.mode',
        hint: 'remove mode: maa; Veil verifies Azure confidential VMs itself (az-snp-vtpm, az-tdx-vtpm evidence)',
      },
    );
  }
}

/**
 * The platform's state: TCB status against the tolerations, every advisory against ignore_advisories, debug
 * against debug-mode and (SEV-SNP) SMT against hyperthreading. Returns the tolerations it relied on.
 */
export function checkPlatform(result: VerificationResult, policy: AttestationPolicy | undefined): string[] {
  const tolerate = new Set(policy?.tolerate ?? []);
  const used = new Set<string>();
  const need = (toleration: string, what: string, check: string) => {
    if (!tolerate.has(toleration)) {
      throw new AttestationError('ATTESTATION_POLICY', `${what}, and the session does not tolerate it`, {
        check,
        hint: `add ${toleration} to security.attestation.tolerate to accept it (only where that is acceptable)`,
      });
    }
    used.add(toleration);
  };
  const hw = hardwareClaims(result);
  if (hw.debug) need('debug-mode', `the ${hw.label} runs in debug mode (its memory can be read by the host)`, 'debug');
  if (hw.smt) need('hyperthreading', 'the SEV-SNP platform has SMT (hyperthreading) enabled', 'SMT');
  if (result.type === 'sgx' || result.type === 'tdx' || result.type === 'az-tdx-vtpm') {
    if (!result.tcb) {
      throw new AttestationError(
        'ATTESTATION_TCB',
        'the TCB status is unknown: no collateral (TCB info, QE identity, CRLs) was available',
        {
          check: 'TCB status',
          hint: 'give the CAS collateral: --collateral DIR (air-gapped) or --pcs-url (Intel PCS or a PCCS)',
        },
      );
    }
  }
  if (result.revocation === 'unchecked') {
    throw new AttestationError(
      'ATTESTATION_REVOKED',
      'whether a certificate of the chain is revoked was not checked: the collateral has no CRL for it',
      {
        check: 'revocation',
        hint: "give the CAS the CRLs: Intel's root CA and PCK CRLs, AMD's ARK CRL (--collateral), or --pcs-url / --kds-url",
      },
    );
  }
  if (result.tcb) {
    const { status, advisoryIds } = result.tcb;
    const needed = STATUS_TOLERATIONS[status];
    if (needed === 'never')
      throw new AttestationError('ATTESTATION_TCB', 'the TCB status is Revoked; it is never accepted', {
        check: 'TCB status',
      });
    const missing = needed.filter((t) => !tolerate.has(t));
    if (missing.length > 0) {
      throw new AttestationError(
        'ATTESTATION_TCB',
        `the TCB status is ${status}${advisoryIds.length ? ` (advisories ${advisoryIds.join(', ')})` : ''}`,
        {
          check: 'TCB status',
          hint: `tolerating ${missing.join(' and ')} in security.attestation.tolerate would accept it`,
        },
      );
    }
    for (const t of needed) used.add(t);
    const ignored = policy?.ignore_advisories;
    const open =
      ignored === '*'
        ? []
        : advisoryIds.filter((id) => !(ignored ?? []).some((a) => a.toUpperCase() === id.toUpperCase()));
    if (open.length > 0) {
      throw new AttestationError(
        'ATTESTATION_TCB',
        `advisories ${open.join(', ')} apply to this platform (TCB status ${status})`,
        {
          check: 'advisories',
          hint: `listing ${open.join(', ')} in security.attestation.ignore_advisories would accept it`,
        },
      );
    }
  }
  return [...used].sort();
}

interface Hardware {
  label: string;
  debug: boolean;
  smt: boolean;
}

function hardwareClaims(result: VerificationResult): Hardware {
  switch (result.type) {
    case 'sgx':
      return { label: 'SGX enclave', debug: result.claims.debug, smt: false };
    case 'tdx':
      return { label: 'TDX trust domain', debug: result.claims.debug, smt: false };
    case 'snp':
      return snpHardware(result.claims);
    case 'az-snp-vtpm':
      return snpHardware(result.claims.hardware as SnpClaims);
    case 'az-tdx-vtpm':
      return { label: 'TDX trust domain', debug: (result.claims.hardware as TdxClaims).debug, smt: false };
  }
}

function snpHardware(c: SnpClaims): Hardware {
  return { label: 'SEV-SNP guest', debug: c.policy.debug, smt: c.platform_info.smt_enabled };
}

/**
 * The identity: any variant may match; inside one, every given field must. A service that lists no identity
 * accepts none. The refusal lists, per variant, the first field that differed.
 */
export function checkIdentity(result: VerificationResult, service: ServiceIdentity): void {
  const variants = variantsOf(service);
  if (variants.length === 0) {
    throw new AttestationError(
      'ATTESTATION_MEASUREMENT',
      'the service lists no measurement, so no evidence can match it',
      {
        check: 'identity',
        hint: 'list the expected identity in services[].attestation (mrenclave / signer, tdx, snp) or mrenclaves',
      },
    );
  }
  const misses = variants.map((v) => mismatch(result, v));
  if (misses.some((m) => m === undefined)) return;
  if (result.type === 'sgx' && variants.every((v) => v.signer === undefined && v.mrenclave !== undefined)) {
    // SCONE's own wording, which its users grep for.
    const want = variants.flatMap((v) => v.mrenclave ?? []).map((m) => m.toLowerCase());
    throw new AttestationError(
      'ATTESTATION_MEASUREMENT',
      `Unexpected enclave measurement (MRENCLAVE, ${result.claims.mrenclave}) - Expected ${want.join(' or ')}`,
      {
        hint: "list the enclave's MRENCLAVE in services[].attestation.mrenclave",
      },
    );
  }
  throw new AttestationError(
    'ATTESTATION_MEASUREMENT',
    `no attestation variant matches: ${misses.map((m, i) => `variant ${i + 1}: ${m}`).join('; ')}`,
    {
      check: 'identity',
      hint: 'compare the evidence (veil attestation verify --json) with services[].attestation',
    },
  );
}

export function variantsOf(service: ServiceIdentity): AttestationVariant[] {
  const listed =
    service.attestation === undefined
      ? []
      : Array.isArray(service.attestation)
        ? [...service.attestation]
        : [service.attestation as AttestationVariant];
  return [...(service.mrenclaves ?? []).map((m) => ({ mrenclave: [m] })), ...listed];
}

/** Why `v` does not match, or undefined when it does. */
function mismatch(result: VerificationResult, v: AttestationVariant): string | undefined {
  const azure = result.type === 'az-snp-vtpm' || result.type === 'az-tdx-vtpm';
  if (v.vtpm && !azure) return 'vtpm PCRs need Azure vTPM evidence';
  if (v.mrenclave !== undefined || v.signer !== undefined)
    return result.type === 'sgx'
      ? sgxMismatch(result.claims, v)
      : `names an SGX enclave, the evidence is ${result.type}`;
  if (v.tdx) {
    if (result.type === 'tdx') return tdxMismatch(result.claims, v.tdx);
    if (result.type === 'az-tdx-vtpm')
      return tdxMismatch(result.claims.hardware as TdxClaims, v.tdx) ?? pcrMismatch(result.claims, v);
    return `names a TDX trust domain, the evidence is ${result.type}`;
  }
  if (v.snp) {
    if (result.type === 'snp') return snpMismatch(result.claims, v.snp);
    if (result.type === 'az-snp-vtpm')
      return snpMismatch(result.claims.hardware as SnpClaims, v.snp) ?? pcrMismatch(result.claims, v);
    return `names an SEV-SNP guest, the evidence is ${result.type}`;
  }
  return 'names no identity';
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
const list = (x: OneOrMany<string>): readonly string[] => (typeof x === 'string' ? [x] : x);

function field(name: string, got: string, want: OneOrMany<string> | undefined): string | undefined {
  if (want === undefined) return undefined;
  const wanted = list(want);
  return wanted.some((w) => same(w, got)) ? undefined : `${name} is ${got}, expected ${wanted.join(' or ')}`;
}

function sgxMismatch(c: SgxClaims, v: AttestationVariant): string | undefined {
  const m = field('mrenclave', c.mrenclave, v.mrenclave);
  if (m) return m;
  const s = v.signer;
  if (!s) return undefined;
  if (!same(s.mrsigner, c.mrsigner)) return `mrsigner is ${c.mrsigner}, expected ${s.mrsigner}`;
  if (s.isvprodid !== undefined && s.isvprodid !== c.isvprodid)
    return `isvprodid is ${c.isvprodid}, expected ${s.isvprodid}`;
  if (s.isvsvn !== undefined && s.isvsvn !== c.isvsvn) return `isvsvn is ${c.isvsvn}, expected ${s.isvsvn}`;
  if (s.isvsvn_min !== undefined && c.isvsvn < s.isvsvn_min)
    return `isvsvn is ${c.isvsvn}, below isvsvn_min ${s.isvsvn_min}`;
  if (s.isvsvn_max !== undefined && c.isvsvn > s.isvsvn_max)
    return `isvsvn is ${c.isvsvn}, above isvsvn_max ${s.isvsvn_max}`;
  return undefined;
}

function tdxMismatch(c: TdxClaims, t: NonNullable<AttestationVariant['tdx']>): string | undefined {
  return (
    field('mrtd', c.mrtd, t.mrtd) ??
    field('rtmr0', c.rtmr[0], t.rtmr0) ??
    field('rtmr1', c.rtmr[1], t.rtmr1) ??
    field('rtmr2', c.rtmr[2], t.rtmr2) ??
    field('rtmr3', c.rtmr[3], t.rtmr3) ??
    field('mrseam', c.mrseam, t.mrseam) ??
    field('mrconfigid', c.mrconfigid, t.mrconfigid) ??
    field('mrowner', c.mrowner, t.mrowner) ??
    field('mrownerconfig', c.mrownerconfig, t.mrownerconfig) ??
    field('tdattributes', c.tdattributes, t.tdattributes) ??
    field('xfam', c.xfam, t.xfam)
  );
}

const TCB_PARTS = ['bootloader', 'tee', 'snp', 'microcode', 'fmc'] as const;

function snpMismatch(c: SnpClaims, s: NonNullable<AttestationVariant['snp']>): string | undefined {
  const ids =
    field('measurement', c.measurement, s.measurement) ??
    field('host_data', c.host_data, s.host_data) ??
    field('id_key_digest', c.id_key_digest, s.id_key_digest) ??
    field('author_key_digest', c.author_key_digest, s.author_key_digest) ??
    field('family_id', c.family_id, s.family_id) ??
    field('image_id', c.image_id, s.image_id);
  if (ids) return ids;
  if (s.guest_svn_min !== undefined && c.guest_svn < s.guest_svn_min)
    return `guest_svn is ${c.guest_svn}, below guest_svn_min ${s.guest_svn_min}`;
  if (s.vmpl_max !== undefined && c.vmpl > s.vmpl_max) return `vmpl is ${c.vmpl}, above vmpl_max ${s.vmpl_max}`;
  if (s.signing_key !== undefined && c.signing_key !== s.signing_key)
    return `the report is signed by the ${c.signing_key.toUpperCase()}, expected ${s.signing_key.toUpperCase()}`;
  if (s.csp_id !== undefined && c.csp_id !== s.csp_id)
    return `the VLEK's cloud provider is ${c.csp_id ?? '(none: VCEK)'}, expected ${s.csp_id}`;
  for (const part of TCB_PARTS) {
    const min = s.min_tcb?.[part];
    if (min === undefined) continue;
    const got = c.reported_tcb[part];
    if (got === undefined || got < min) return `reported TCB ${part} is ${got ?? '(none)'}, below min_tcb ${min}`;
  }
  return undefined;
}

function pcrMismatch(c: AzureClaims, v: AttestationVariant): string | undefined {
  for (const [index, want] of Object.entries(v.vtpm?.pcrs ?? {})) {
    const got = c.pcrs?.[index];
    if (got === undefined) return `PCR ${index} is not in the evidence`;
    if (!same(got, want)) return `PCR ${index} is ${got}, expected ${want}`;
  }
  return undefined;
}
