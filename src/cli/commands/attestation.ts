import { readFileSync } from 'node:fs';
import { verifyHardware } from '../../attestation/hardware.js';
import { HARDWARE_TYPES, type HardwareType, type VerificationResult } from '../../attestation/types.js';
import { collateralFromFlags, COLLATERAL_OPTIONS } from '../collateral-options.js';
import { CliError, usage } from '../errors.js';
import { defineCommand } from '../spec.js';

/**
 * `veil attestation verify --type T EVIDENCE [--collateral F|DIR]... [--certs F]... [--at TIME] [--json]`
 * (Azure: EVIDENCE is trustee's JSON envelope, or the HCL report with `--tpm-quote` and, for TDX, `--td-quote`):
 * the CAS's own verifiers, offline. Exit 0 with the claims when every check passes; exit 1 naming the one
 * check that failed. The type is always said, never guessed from the bytes.
 */
export const verify = defineCommand(
  {
    name: 'attestation verify',
    usage: ['--type sgx|tdx|snp|az-snp-vtpm|az-tdx-vtpm EVIDENCE [--collateral F|DIR]... [--certs F]... [--at TIME]'],
    summary: "checks TEE evidence offline with the CAS's own verifiers: exit 0 with the claims, 1 naming the check",
    options: {
      type: { type: 'string', value: 'TYPE', description: 'what the evidence is (never guessed from its bytes)' },
      certs: {
        type: 'string',
        multiple: true,
        value: 'FILE',
        description: 'certificates the evidence lacks (PCK, VCEK)',
      },
      at: { type: 'string', value: 'ISO-TIME', description: 'verification time (default: now)' },
      json: { type: 'boolean', description: 'print {type, claims, report_data, tcb, chain, warnings}' },
      'tpm-quote': { type: 'string', value: 'FILE', description: 'Azure: the TPM quote beside the HCL report' },
      'td-quote': { type: 'string', value: 'FILE', description: 'Azure TDX: the TD quote beside the HCL report' },
      ...COLLATERAL_OPTIONS,
    },
    positionals: true,
  },
  async ({ values, positionals }, io) => {
    const type = values.type as HardwareType | undefined;
    if (!type || !HARDWARE_TYPES.includes(type))
      throw usage(
        `--type must be one of ${HARDWARE_TYPES.join(', ')}`,
        'say what the evidence is; Veil never guesses it from the bytes',
      );
    if (positionals.length !== 1)
      throw usage(
        'veil attestation verify needs exactly one evidence file',
        'e.g. veil attestation verify --type tdx quote.dat --collateral collateral/',
      );
    const now = values.at === undefined ? new Date() : parseTime(values.at);
    const result = await verifyHardware(
      {
        type,
        evidence: bytesOrHex(readInput(positionals[0]!, 'evidence')),
        tpmQuote: values['tpm-quote'] === undefined ? undefined : readInput(values['tpm-quote'], '--tpm-quote'),
        tdQuote: values['td-quote'] === undefined ? undefined : readInput(values['td-quote'], '--td-quote'),
      },
      { now, collateral: collateralFromFlags(values), certs: (values.certs ?? []).map((f) => readInput(f, '--certs')) },
    );
    io.out(values.json ? `${JSON.stringify(asJson(result), null, 2)}\n` : describeResult(result, now));
    return 0;
  },
);

function parseTime(value: string): Date {
  const at = new Date(value);
  if (Number.isNaN(at.getTime()))
    throw usage(`--at '${value}' is not a time`, 'use ISO 8601, e.g. --at 2025-06-19T12:00:00Z');
  return at;
}

function readInput(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new CliError(
      'CLI_FILE',
      `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { hint: 'check the path', cause: err },
    );
  }
}

/** Evidence as bytes, or as hex text (some vectors and tools write reports that way). */
function bytesOrHex(data: Buffer): Buffer {
  const text = data.toString('latin1').replace(/\s+/g, '');
  return text.length > 0 && text.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(text) ? Buffer.from(text, 'hex') : data;
}

export function asJson(r: VerificationResult) {
  return {
    type: r.type,
    claims: r.claims,
    report_data: r.reportData.toString('hex'),
    tcb: r.tcb
      ? {
          status: r.tcb.status,
          advisory_ids: r.tcb.advisoryIds,
          parts: r.tcb.parts,
          ...(r.tcb.tcbDate ? { tcb_date: r.tcb.tcbDate } : {}),
        }
      : null,
    chain: r.chain,
    warnings: r.warnings,
  };
}

const LABELS: Record<HardwareType, string> = {
  sgx: 'SGX DCAP quote',
  tdx: 'TDX quote',
  snp: 'SEV-SNP report',
  'az-snp-vtpm': 'Azure confidential VM (SEV-SNP + vTPM)',
  'az-tdx-vtpm': 'Azure confidential VM (TDX + vTPM)',
};

function describeResult(r: VerificationResult, now: Date): string {
  const lines = [`verified: ${LABELS[r.type]} at ${now.toISOString()}`, 'claims:'];
  for (const [key, value] of Object.entries(r.claims))
    lines.push(`  ${key}: ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`);
  lines.push(`report data: ${r.reportData.toString('hex')}`);
  if (r.tcb) {
    const parts = Object.entries(r.tcb.parts)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    lines.push(
      `tcb: ${r.tcb.status}${parts ? ` (${parts})` : ''}; advisories: ${r.tcb.advisoryIds.join(', ') || 'none'}`,
    );
  } else {
    lines.push('tcb: not evaluated (no collateral given: only signatures and chains were checked)');
  }
  lines.push(`chain: ${r.chain.map((c) => /CN=([^,]+)/.exec(c.subject)?.[1] ?? c.subject).join(' ← ')}`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return `${lines.join('\n')}\n`;
}
