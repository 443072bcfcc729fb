import { AttestationError } from '../errors.js';
import type { TcbResult, TcbStatus } from '../types.js';
import type { IsvLevel, QeIdentity, TcbInfo, TcbLevel } from './collateral.js';
import type { PckExtension } from './pck.js';
import type { SgxReportFields, TdReportFields } from './quote.js';

/**
 * TCB level selection and convergence (attestation.md §2.2 steps 4–6).
 *
 * Convergence choice: the result is the most severe of the platform level, the TDX module level (when the
 * quote names a module identity) and the QE level, where OutOfDateConfigurationNeeded counts as both
 * OutOfDate and ConfigurationNeeded (so ConfigurationNeeded + OutOfDate gives OutOfDateConfigurationNeeded).
 * The advisory IDs are the union of the deciding levels'. This follows Phala's dcap-qvl (most severe + union)
 * rather than go-tdx-guest, which replaces the platform status with the module status; keeping every part
 * means a stale platform is never hidden by an up-to-date module. `parts` records each status.
 */

interface Flags {
  outOfDate: boolean;
  configuration: boolean;
  swHardening: boolean;
  revoked: boolean;
}

function flagsOf(s: TcbStatus): Flags {
  return {
    outOfDate: s === 'OutOfDate' || s === 'OutOfDateConfigurationNeeded',
    configuration:
      s === 'ConfigurationNeeded' || s === 'ConfigurationAndSWHardeningNeeded' || s === 'OutOfDateConfigurationNeeded',
    swHardening: s === 'SWHardeningNeeded' || s === 'ConfigurationAndSWHardeningNeeded',
    revoked: s === 'Revoked',
  };
}

export function convergeStatuses(statuses: TcbStatus[]): TcbStatus {
  const f = statuses.map(flagsOf).reduce(
    (a, b) => ({
      outOfDate: a.outOfDate || b.outOfDate,
      configuration: a.configuration || b.configuration,
      swHardening: a.swHardening || b.swHardening,
      revoked: a.revoked || b.revoked,
    }),
    { outOfDate: false, configuration: false, swHardening: false, revoked: false },
  );
  if (f.revoked) return 'Revoked';
  if (f.outOfDate) return f.configuration ? 'OutOfDateConfigurationNeeded' : 'OutOfDate';
  if (f.configuration) return f.swHardening ? 'ConfigurationAndSWHardeningNeeded' : 'ConfigurationNeeded';
  return f.swHardening ? 'SWHardeningNeeded' : 'UpToDate';
}

function tcbError(check: string, message: string): AttestationError {
  return new AttestationError('ATTESTATION_TCB', message, { check });
}

/** The first level (levels are given newest first) whose every component the platform meets. */
export function platformLevel(info: TcbInfo, pck: PckExtension, teeTcbSvn?: Buffer): TcbLevel {
  // TEE_TCB_SVN[1] > 0 names a TDX module identity; its bytes 0–1 are judged by that identity instead.
  const tdxFrom = teeTcbSvn && teeTcbSvn[1]! > 0 ? 2 : 0;
  for (const level of info.tcbLevels) {
    if (!level.sgx.every((min, i) => (pck.compSvn[i] ?? -1) >= min)) continue;
    if (pck.pceSvn < level.pcesvn) continue;
    if (teeTcbSvn) {
      const tdx = level.tdx ?? [];
      if (tdx.length !== 16 || !tdx.every((min, i) => i < tdxFrom || teeTcbSvn[i]! >= min)) continue;
    }
    return level;
  }
  throw tcbError('TCB', `no TCB level matches (${whyNoLevel(info, pck, teeTcbSvn, tdxFrom)})`);
}

/** Names a component that is below its value in every level, or else says that no single level is met. */
function whyNoLevel(info: TcbInfo, pck: PckExtension, tee: Buffer | undefined, tdxFrom: number): string {
  const below: string[] = [];
  for (let i = 0; i < 16; i++) {
    const have = pck.compSvn[i] ?? -1;
    if (info.tcbLevels.every((l) => have < (l.sgx[i] ?? 0)))
      below.push(`PCK SGX component ${i + 1} SVN ${have} < ${Math.min(...info.tcbLevels.map((l) => l.sgx[i] ?? 0))}`);
  }
  if (info.tcbLevels.every((l) => pck.pceSvn < l.pcesvn))
    below.push(`PCESVN ${pck.pceSvn} < ${Math.min(...info.tcbLevels.map((l) => l.pcesvn))}`);
  if (tee) {
    for (let i = tdxFrom; i < 16; i++) {
      const have = tee[i]!;
      if (info.tcbLevels.every((l) => have < (l.tdx?.[i] ?? 0)))
        below.push(`TEE_TCB_SVN[${i}] ${have} < ${Math.min(...info.tcbLevels.map((l) => l.tdx?.[i] ?? 0))}`);
    }
  }
  const levels = `${info.tcbLevels.length} levels for FMSPC ${info.fmspc}`;
  return below.length > 0
    ? `${below.join(', ')} in every one of ${levels}`
    : `no single one of ${levels} is met by all SVNs together`;
}

function firstIsvLevel(levels: IsvLevel[], isvsvn: number, check: string, what: string): IsvLevel {
  const level = levels.find((l) => l.isvsvn <= isvsvn);
  if (!level)
    throw tcbError(
      check,
      `no TCB level matches (${what} ISVSVN ${isvsvn} is below every level, lowest ${Math.min(...levels.map((l) => l.isvsvn))})`,
    );
  return level;
}

function masked(value: Buffer, mask: Buffer): Buffer {
  const out = Buffer.alloc(value.length);
  for (let i = 0; i < value.length; i++) out[i] = value[i]! & (mask[i] ?? 0);
  return out;
}

/** TDX module identity and the SEAM signer/attributes (§2.2 step 4). */
export function tdxModuleLevel(info: TcbInfo, td: TdReportFields): { id: string; level: IsvLevel } | undefined {
  const check = 'TDX module';
  const module = info.tdxModule;
  if (!module)
    throw new AttestationError('ATTESTATION_COLLATERAL', 'TDX TCB info has no tdxModule', { check: 'TCB info' });
  checkSeam(module, td, check, 'tdxModule');
  const major = td.teeTcbSvn[1]!;
  if (major === 0) return undefined;
  const id = `TDX_${major.toString(16).toUpperCase().padStart(2, '0')}`;
  const identity = info.tdxModuleIdentities?.find((m) => m.id === id);
  if (!identity) throw tcbError(check, `the TCB info has no module identity ${id} (TEE_TCB_SVN[1] = ${major})`);
  checkSeam(identity, td, check, id);
  return { id, level: firstIsvLevel(identity.tcbLevels, td.teeTcbSvn[0]!, check, `${id} module`) };
}

function checkSeam(
  m: { mrsigner: Buffer; attributes: Buffer; attributesMask: Buffer },
  td: TdReportFields,
  check: string,
  what: string,
): void {
  if (!td.mrsignerseam.equals(m.mrsigner)) {
    throw tcbError(
      check,
      `MRSIGNERSEAM ${td.mrsignerseam.toString('hex')} is not ${what}'s ${m.mrsigner.toString('hex')}`,
    );
  }
  if (!masked(td.seamattributes, m.attributesMask).equals(m.attributes)) {
    throw tcbError(
      check,
      `SEAMATTRIBUTES ${td.seamattributes.toString('hex')} (masked) are not ${what}'s ${m.attributes.toString('hex')}`,
    );
  }
}

/** QE identity (§2.2 step 5): signer, product, masked MISCSELECT and ATTRIBUTES, then the level by ISVSVN. */
export function qeLevel(identity: QeIdentity, qe: SgxReportFields): IsvLevel {
  const check = 'QE identity';
  if (!qe.mrsigner.equals(identity.mrsigner))
    throw tcbError(check, `QE MRSIGNER ${qe.mrsigner.toString('hex')} is not ${identity.mrsigner.toString('hex')}`);
  if (qe.isvprodid !== identity.isvprodid)
    throw tcbError(check, `QE ISVPRODID ${qe.isvprodid} is not ${identity.isvprodid}`);
  if ((qe.miscselect & identity.miscselectMask) >>> 0 !== identity.miscselect) {
    throw tcbError(
      check,
      `QE MISCSELECT ${qe.miscselect.toString(16)} (masked) is not ${identity.miscselect.toString(16)}`,
    );
  }
  if (!masked(qe.attributes, identity.attributesMask).equals(identity.attributes)) {
    throw tcbError(
      check,
      `QE ATTRIBUTES ${qe.attributes.toString('hex')} (masked) are not ${identity.attributes.toString('hex')}`,
    );
  }
  return firstIsvLevel(identity.tcbLevels, qe.isvsvn, check, 'QE');
}

export function evaluateTcb(input: {
  tcbInfo: TcbInfo;
  qeIdentity: QeIdentity;
  pck: PckExtension;
  qe: SgxReportFields;
  td?: TdReportFields;
}): TcbResult {
  const platform = platformLevel(input.tcbInfo, input.pck, input.td?.teeTcbSvn);
  const module = input.td ? tdxModuleLevel(input.tcbInfo, input.td) : undefined;
  const qe = qeLevel(input.qeIdentity, input.qe);
  const parts: Record<string, TcbStatus> = { platform: platform.tcbStatus };
  const deciding: { tcbStatus: TcbStatus; advisoryIDs: string[] }[] = [platform];
  if (module) {
    parts.tdxModule = module.level.tcbStatus;
    deciding.push(module.level);
  }
  parts['qe'] = qe.tcbStatus;
  deciding.push(qe);
  const status = convergeStatuses(deciding.map((d) => d.tcbStatus));
  const advisoryIds = [...new Set(deciding.flatMap((d) => d.advisoryIDs))].sort();
  return { status, advisoryIds, parts, tcbDate: platform.tcbDate };
}
