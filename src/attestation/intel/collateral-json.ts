import { z } from 'zod';
import { AttestationError } from '../errors.js';
import { TCB_STATUSES, type TcbStatus } from '../types.js';

/**
 * The shapes of Intel's TCB info (SGX v2, SGX v3, TDX v3) and QE identity (v2), parsed with zod from text whose
 * signature collateral.ts has already checked.
 */

// ---- shapes ---------------------------------------------------------------------------------------------

const isoDate = z
  .string()
  .regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'an ISO date in UTC')
  .refine((s) => !Number.isNaN(Date.parse(s)));
const hexOf = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`), `${bytes} bytes hex`);
const svn = z.number().int().min(0).max(255);
const pcesvn = z.number().int().min(0).max(0xffff);
const status = z.enum(TCB_STATUSES);
const advisories = z.array(z.string()).optional();
const components = z.array(z.object({ svn })).length(16);

const v2Tcb = z.object({
  ...Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`sgxtcbcomp${String(i + 1).padStart(2, '0')}svn`, svn])),
  pcesvn,
}) as unknown as z.ZodType<Record<string, number>>;
const v3Tcb = z.object({ sgxtcbcomponents: components, tdxtcbcomponents: components.optional(), pcesvn });
const levelOf = <T extends z.ZodType>(tcb: T) =>
  z.object({ tcb, tcbDate: isoDate, tcbStatus: status, advisoryIDs: advisories });
const tdxModule = z.object({ mrsigner: hexOf(48), attributes: hexOf(8), attributesMask: hexOf(8) });
const isvLevel = z.object({
  tcb: z.object({ isvsvn: z.number().int().min(0).max(0xffff) }),
  tcbDate: isoDate,
  tcbStatus: status,
  advisoryIDs: advisories,
});
const common = {
  issueDate: isoDate,
  nextUpdate: isoDate,
  fmspc: hexOf(6),
  pceId: hexOf(2),
  tcbType: z.literal(0),
  tcbEvaluationDataNumber: z.number().int().min(0),
};
const tcbInfoV2 = z.object({
  ...common,
  id: z.undefined().optional(),
  version: z.literal(2),
  tcbLevels: z.array(levelOf(v2Tcb)).min(1),
});
const tcbInfoV3 = z.object({
  ...common,
  id: z.enum(['SGX', 'TDX']),
  version: z.literal(3),
  tdxModule: tdxModule.optional(),
  tdxModuleIdentities: z.array(tdxModule.extend({ id: z.string(), tcbLevels: z.array(isvLevel).min(1) })).optional(),
  tcbLevels: z.array(levelOf(v3Tcb)).min(1),
});
const qeIdentityShape = z.object({
  id: z.enum(['QE', 'TD_QE', 'QVE']),
  version: z.literal(2),
  issueDate: isoDate,
  nextUpdate: isoDate,
  tcbEvaluationDataNumber: z.number().int().min(0),
  miscselect: hexOf(4),
  miscselectMask: hexOf(4),
  attributes: hexOf(16),
  attributesMask: hexOf(16),
  mrsigner: hexOf(32),
  isvprodid: z.number().int().min(0).max(0xffff),
  tcbLevels: z.array(isvLevel).min(1),
});

export interface TcbLevel {
  sgx: number[];
  pcesvn: number;
  /** TDX TCB info only. */
  tdx?: number[];
  tcbDate: string;
  tcbStatus: TcbStatus;
  advisoryIDs: string[];
}

export interface IsvLevel {
  isvsvn: number;
  tcbDate: string;
  tcbStatus: TcbStatus;
  advisoryIDs: string[];
}

export interface TdxModuleIdentity {
  id: string;
  mrsigner: Buffer;
  attributes: Buffer;
  attributesMask: Buffer;
  tcbLevels: IsvLevel[];
}

export interface TcbInfo {
  id: 'SGX' | 'TDX';
  version: 2 | 3;
  issueDate: Date;
  nextUpdate: Date;
  /** Lower-case hex. */
  fmspc: string;
  pceId: string;
  tcbEvaluationDataNumber: number;
  tcbLevels: TcbLevel[];
  tdxModule?: { mrsigner: Buffer; attributes: Buffer; attributesMask: Buffer };
  tdxModuleIdentities?: TdxModuleIdentity[];
}

export interface QeIdentity {
  id: 'QE' | 'TD_QE' | 'QVE';
  version: 2;
  issueDate: Date;
  nextUpdate: Date;
  tcbEvaluationDataNumber: number;
  miscselect: number;
  miscselectMask: number;
  attributes: Buffer;
  attributesMask: Buffer;
  mrsigner: Buffer;
  isvprodid: number;
  tcbLevels: IsvLevel[];
}

export function collateralError(check: string, message: string, cause?: unknown): AttestationError {
  return new AttestationError('ATTESTATION_COLLATERAL', message, { check, cause });
}

function parseJsonText(text: string, check: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw collateralError(check, `is not JSON (${(err as Error).message})`, err);
  }
}

function describeZod(err: z.ZodError): string {
  const issue = err.issues[0];
  return issue ? `${issue.path.join('.') || '(top)'}: ${issue.message}` : 'invalid';
}

/** Parses the text of a `tcbInfo` value (SGX v2, SGX v3, TDX v3). */
export function parseTcbInfo(text: string): TcbInfo {
  const check = 'TCB info';
  const json = parseJsonText(text, check) as { version?: unknown };
  const schema = json && typeof json === 'object' && json.version === 2 ? tcbInfoV2 : tcbInfoV3;
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw collateralError(check, `does not have the expected shape (${describeZod(parsed.error)})`);
  const d = parsed.data;
  const info: TcbInfo = {
    id: 'id' in d && d.id ? d.id : 'SGX',
    version: d.version,
    issueDate: new Date(d.issueDate),
    nextUpdate: new Date(d.nextUpdate),
    fmspc: d.fmspc.toLowerCase(),
    pceId: d.pceId.toLowerCase(),
    tcbEvaluationDataNumber: d.tcbEvaluationDataNumber,
    tcbLevels: [],
  };
  if (d.version === 2) {
    info.tcbLevels = d.tcbLevels.map((l) => ({
      sgx: Array.from({ length: 16 }, (_, i) => l.tcb[`sgxtcbcomp${String(i + 1).padStart(2, '0')}svn`] ?? -1),
      pcesvn: l.tcb['pcesvn'] ?? -1,
      tcbDate: l.tcbDate,
      tcbStatus: l.tcbStatus,
      advisoryIDs: l.advisoryIDs ?? [],
    }));
    return info;
  }
  const v3 = d as z.infer<typeof tcbInfoV3>;
  info.tcbLevels = v3.tcbLevels.map((l) => {
    const level: TcbLevel = {
      sgx: l.tcb.sgxtcbcomponents.map((c) => c.svn),
      pcesvn: l.tcb.pcesvn,
      tcbDate: l.tcbDate,
      tcbStatus: l.tcbStatus,
      advisoryIDs: l.advisoryIDs ?? [],
    };
    if (l.tcb.tdxtcbcomponents) level.tdx = l.tcb.tdxtcbcomponents.map((c) => c.svn);
    return level;
  });
  if (v3.id === 'TDX') {
    if (!v3.tdxModule) throw collateralError(check, 'TDX TCB info has no tdxModule');
    if (info.tcbLevels.some((l) => !l.tdx)) throw collateralError(check, 'a TDX TCB level has no tdxtcbcomponents');
    info.tdxModule = moduleOf(v3.tdxModule);
    info.tdxModuleIdentities = (v3.tdxModuleIdentities ?? []).map((m) => ({
      ...moduleOf(m),
      id: m.id,
      tcbLevels: m.tcbLevels.map(isvLevelOf),
    }));
  }
  return info;
}

function moduleOf(m: z.infer<typeof tdxModule>): { mrsigner: Buffer; attributes: Buffer; attributesMask: Buffer } {
  return {
    mrsigner: Buffer.from(m.mrsigner, 'hex'),
    attributes: Buffer.from(m.attributes, 'hex'),
    attributesMask: Buffer.from(m.attributesMask, 'hex'),
  };
}

function isvLevelOf(l: z.infer<typeof isvLevel>): IsvLevel {
  return { isvsvn: l.tcb.isvsvn, tcbDate: l.tcbDate, tcbStatus: l.tcbStatus, advisoryIDs: l.advisoryIDs ?? [] };
}

/** Parses the text of an `enclaveIdentity` value (version 2). */
export function parseQeIdentity(text: string): QeIdentity {
  const check = 'QE identity';
  const parsed = qeIdentityShape.safeParse(parseJsonText(text, check));
  if (!parsed.success) throw collateralError(check, `does not have the expected shape (${describeZod(parsed.error)})`);
  const d = parsed.data;
  return {
    id: d.id,
    version: d.version,
    issueDate: new Date(d.issueDate),
    nextUpdate: new Date(d.nextUpdate),
    tcbEvaluationDataNumber: d.tcbEvaluationDataNumber,
    miscselect: Buffer.from(d.miscselect, 'hex').readUInt32BE(0),
    miscselectMask: Buffer.from(d.miscselectMask, 'hex').readUInt32BE(0),
    attributes: Buffer.from(d.attributes, 'hex'),
    attributesMask: Buffer.from(d.attributesMask, 'hex'),
    mrsigner: Buffer.from(d.mrsigner, 'hex'),
    isvprodid: d.isvprodid,
    tcbLevels: d.tcbLevels.map(isvLevelOf),
  };
}
