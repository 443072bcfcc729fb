import { z } from 'zod';
import { hex, hex64 } from './hex.js';

/**
 * A service's attestation identities (session language §4.2, and Veil's TDX, SEV-SNP and Azure vTPM variants): one
 * variant names one TEE, and the rules below refuse variants that any machine would match.
 */
const hex96 = hex(96);
/** One value or a list of them: any listed value matches (SCONE writes `mrenclave` either way). */
const oneOrMany = <T extends z.ZodType>(item: T) => z.union([item, z.array(item).min(1)]);
const svn = z.number().int().min(0).max(0xffff);

/** SCONE's SGX identity: MRENCLAVE and/or the signer (MRSIGNER, ISVPRODID, ISVSVN or a range). */
const sgxSigner = z.strictObject({
  mrsigner: hex64,
  isvprodid: svn.optional(),
  isvsvn: svn.optional(),
  isvsvn_min: svn.optional(),
  isvsvn_max: svn.optional(),
});

/**
 * Veil's extension for Intel TDX (documented in the README and the JSON Schema): the TD's measurements.
 * `rtmr3` is what `veil run` extends with the runtime and the program (`veil measure` prints it).
 */
const tdxIdentity = z.strictObject({
  mrtd: oneOrMany(hex96).optional(),
  rtmr0: hex96.optional(),
  rtmr1: hex96.optional(),
  rtmr2: hex96.optional(),
  rtmr3: oneOrMany(hex96).optional(),
  mrseam: oneOrMany(hex96).optional(),
  mrconfigid: hex96.optional(),
  mrowner: hex96.optional(),
  mrownerconfig: hex96.optional(),
  /** TD attributes must equal this value (16 hex digits, as in the quote) when given. */
  tdattributes: hex(16).optional(),
  xfam: hex(16).optional(),
});

const snpTcb = z.strictObject({
  bootloader: z.number().int().min(0).max(255).optional(),
  tee: z.number().int().min(0).max(255).optional(),
  snp: z.number().int().min(0).max(255).optional(),
  microcode: z.number().int().min(0).max(255).optional(),
  fmc: z.number().int().min(0).max(255).optional(),
});

/** Veil's extension for AMD SEV-SNP: the VM's launch identity (the whole VM; no program is measured). */
const snpIdentity = z.strictObject({
  measurement: oneOrMany(hex96).optional(),
  host_data: hex64.optional(),
  id_key_digest: oneOrMany(hex96).optional(),
  author_key_digest: oneOrMany(hex96).optional(),
  family_id: hex(32).optional(),
  image_id: hex(32).optional(),
  guest_svn_min: z.number().int().min(0).max(0xffffffff).optional(),
  /** The reported TCB must be at least this, component by component. */
  min_tcb: snpTcb.optional(),
  /** The report's VMPL must be at most this (0 is the most privileged). */
  vmpl_max: z.number().int().min(0).max(3).optional(),
  signing_key: z.enum(['vcek', 'vlek']).optional(),
  /** For VLEK-signed reports: the cloud provider named in the VLEK certificate. */
  csp_id: z.string().optional(),
});

/** Azure confidential VMs: PCR values (index → hex digest) the vTPM quote must cover, beside `snp` / `tdx`. */
const vtpm = z.strictObject({
  pcrs: z.record(z.string().regex(/^(?:[0-9]|1[0-9]|2[0-3])$/, 'must be a PCR index 0–23'), hex64),
});

export const attestationVariant = z
  .strictObject({
    mrenclave: oneOrMany(hex64)
      .transform((v) => (Array.isArray(v) ? v : [v]))
      .optional(),
    signer: sgxSigner.optional(),
    tdx: tdxIdentity.optional(),
    snp: snpIdentity.optional(),
    vtpm: vtpm.optional(),
  })
  .superRefine((v, ctx) => {
    const kinds = [
      v.mrenclave !== undefined || v.signer !== undefined,
      v.tdx !== undefined,
      v.snp !== undefined,
    ].filter(Boolean).length;
    if (kinds > 1)
      ctx.addIssue({
        code: 'custom',
        message: 'one variant names one TEE: SGX (mrenclave, signer), tdx or snp; list several variants instead',
      });
    if (kinds === 0) ctx.addIssue({ code: 'custom', message: 'a variant must name mrenclave, signer, tdx or snp' });
    if (v.vtpm && !v.tdx && !v.snp)
      ctx.addIssue({ code: 'custom', message: 'vtpm applies to Azure confidential VMs: give it beside snp or tdx' });
    // A TD's registers are only as good as what extended them: without the VM image (MRTD) any TD matches,
    // and RTMR3 (the program) means something only when the firmware and kernel that extend it are pinned too.
    if (v.tdx && v.tdx.mrtd === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['tdx'],
        message: 'a tdx variant must give mrtd (the TD image); otherwise any TD matches',
      });
    if (
      v.tdx?.rtmr3 !== undefined &&
      (v.tdx.rtmr0 === undefined || v.tdx.rtmr1 === undefined || v.tdx.rtmr2 === undefined)
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['tdx'],
        message:
          'rtmr3 names the program only with rtmr0, rtmr1 and rtmr2 (firmware and kernel, which extend it) pinned too',
      });
    }
    // AMD publishes no TCB status: without a floor, firmware with known vulnerabilities would be accepted.
    if (v.snp && v.snp.min_tcb === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['snp'],
        message:
          'an snp variant must give min_tcb (the lowest firmware accepted: AMD publishes no TCB status to judge it by)',
      });
    }
    if (v.snp && v.snp.measurement === undefined && v.snp.id_key_digest === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['snp'],
        message:
          'an snp variant must give measurement or id_key_digest (who signed the launch digest); otherwise any VM matches',
      });
    }
    const s = v.signer;
    if (s && s.isvsvn !== undefined && (s.isvsvn_min !== undefined || s.isvsvn_max !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['signer'], message: 'give isvsvn or isvsvn_min / isvsvn_max, not both' });
    }
  });
