import type { RtmrEvent } from '../attestation/evidence.js';
import { hardwareReportData, reportData, simulationMessage, type Evidence } from '../attestation/evidence.js';
import { AttestationError } from '../attestation/errors.js';
import { DEFAULT_TSM_BASE, tsmProvider, tsmReport, type TsmFs, type TsmProvider } from '../attestation/configfs-tsm.js';
import {
  DEFAULT_TDX_MEASUREMENTS,
  ZERO_RTMR,
  extendRtmrThroughKernel,
  readRtmr,
  replayRtmr,
  rtmrInterfacePresent,
  rtmrPath,
  veilRtmr3Events,
  type RtmrFs,
} from '../attestation/rtmr.js';
import { RuntimeError } from './errors.js';
import { hostKeyPath, loadHostKey, type HostKey } from './host-key.js';

/**
 * Where the runtime's evidence comes from. The runtime never picks simulation by itself: it is used only when
 * asked for (`veil run --mode debug`, or VEIL_EVIDENCE=simulation); otherwise the host must offer
 * configfs-tsm, or nothing starts.
 */
export interface EvidenceSource {
  kind: 'simulation' | 'tdx' | 'sev-snp';
  /** What this source is, for messages. */
  describe: string;
  /** Evidence bound to the CAS's nonce and the connection's key. Says on `log` what it sends. */
  collect(binding: { nonce: Buffer; spki: Buffer }): Promise<Evidence>;
}

/** The program and runtime identity each kind of evidence states. */
export interface ProgramIdentity {
  /** The simulation measurement (veil measure). */
  measurement: string;
  /** codeTreeDigest of the runtime's code (32 bytes). */
  runtimeCodeDigest: Buffer;
  /** SHA-256 of the program file (32 bytes). */
  programSha256: Buffer;
}

type Log = (line: string) => void;

/**
 * Simulation evidence: the measurement and the report data (nonce and connection key), signed by this host's
 * key, so that a CAS accepts it only for sessions that list this host in `platforms`.
 */
export function simulationSource(
  measurement: string,
  hostKey: HostKey,
  log: Log = () => undefined,
  why = 'asked for',
): EvidenceSource {
  return {
    kind: 'simulation',
    describe: `simulation evidence (${why}; host ${hostKey.id})`,
    async collect({ nonce, spki }) {
      log(
        `[VEIL|WARNING] evidence: SIMULATION (no TEE): a claim of measurement ${measurement}, not hardware ` +
          `evidence (${why}), signed by host key ${hostKey.id} (${hostKey.path}); only sessions with ` +
          'security.attestation.mode: none that list this host in platforms accept it',
      );
      const bound = reportData(nonce, spki);
      const signature = await hostKey.sign(simulationMessage(Buffer.from(measurement, 'hex'), bound));
      return {
        type: 'simulation',
        measurement,
        reportData: bound.toString('hex'),
        hostSpki: hostKey.spki.toString('base64'),
        signature: signature.toString('base64'),
      };
    },
  };
}

export interface TsmSourceOptions {
  fs: TsmFs & RtmrFs;
  /** configfs-tsm's directory (the one holding `report/`). */
  base?: string;
  /** The tdx_guest measurements directory (rtmr3:sha384). */
  rtmr?: string;
  /** Which TEE answers (tsmProvider); read from configfs-tsm at collection when not given. */
  provider?: TsmProvider;
  runtimeCodeDigest: Buffer;
  programSha256: Buffer;
  /** SNP VMPL to request the report for; the kernel's default (the guest's own level) when absent. */
  privlevel?: number;
  log?: Log;
}

/**
 * Hardware evidence from configfs-tsm. For TDX, RTMR3 is first extended with Veil's events (runtime code, then
 * program), so the quote names what runs; for SEV-SNP there is no run-time register, and the launch
 * measurement covers the guest image only.
 */
export function tsmSource(opts: TsmSourceOptions): EvidenceSource {
  const base = opts.base ?? DEFAULT_TSM_BASE;
  const log = opts.log ?? (() => undefined);
  return {
    kind: opts.provider === 'sev_guest' ? 'sev-snp' : 'tdx',
    describe: `configfs-tsm at ${base}${opts.provider ? ` (provider ${opts.provider})` : ''}`,
    async collect({ nonce, spki }) {
      const provider = opts.provider ?? (await collectOrExplain(() => tsmProvider({ fs: opts.fs, base })));
      // The register must hold the program before the quote is made: the quote reports RTMR3 as it is then.
      const rtmrLog = provider === 'tdx_guest' ? await extendForTdx(opts, log) : [];
      const privlevel = opts.privlevel === undefined ? {} : { privlevel: opts.privlevel };
      const report = await collectOrExplain(() =>
        tsmReport(hardwareReportData(nonce, spki), { fs: opts.fs, base, ...privlevel }),
      );
      if (report.provider !== provider) {
        throw new RuntimeError(
          'RUNTIME_EVIDENCE',
          `configfs-tsm at ${base} changed its provider from ${provider} to ${report.provider}`,
          { hint: 'start the program again' },
        );
      }
      if (provider === 'tdx_guest') {
        log(
          `[VEIL|INFO] evidence: TDX quote from configfs-tsm (provider tdx_guest; ${report.outblob.length} bytes; RTMR3 ${rtmrLog.length ? 'extended with the runtime and the program' : 'NOT extended'})`,
        );
        return { type: 'tdx', quote: report.outblob.toString('base64'), rtmrLog };
      }
      log(
        `[VEIL|INFO] evidence: SEV-SNP attestation report from configfs-tsm (provider sev_guest; ${report.auxblob ? 'with' : 'no'} certificate table)`,
      );
      return {
        type: 'sev-snp',
        quote: report.outblob.toString('base64'),
        ...(report.auxblob ? { auxblob: report.auxblob.toString('base64') } : {}),
      };
    },
  };
}

/**
 * Extends RTMR3 with Veil's events when the kernel offers the interface; returns what was extended (empty:
 * nothing — then the quote does not name the program, and the log says so). The value read back must be the
 * one the events give, or the log would not describe the register.
 */
async function extendForTdx(opts: TsmSourceOptions, log: Log): Promise<RtmrEvent[]> {
  const base = opts.rtmr ?? DEFAULT_TDX_MEASUREMENTS;
  if (!(await rtmrInterfacePresent(opts.fs, base))) {
    log(
      `[VEIL|WARNING] evidence: no TDX RTMR interface (${rtmrPath(base, 3)}: Linux ≥ 6.16 on TDX): RTMR3 is not extended, so a TDX quote does not name the program; the evidence carries an empty RTMR log`,
    );
    return [];
  }
  const events = veilRtmr3Events(opts.runtimeCodeDigest, opts.programSha256);
  const before = await collectOrExplain(() => readRtmr(opts.fs, base));
  if (!before.equals(ZERO_RTMR)) {
    log(
      `[VEIL|WARNING] evidence: RTMR3 was already extended in this TD (${before.toString('hex').slice(0, 16)}…): a replay of Veil's events from zero will not give the quoted RTMR3 (Veil expects one veil run per TD boot)`,
    );
  }
  for (const event of events)
    await collectOrExplain(() => extendRtmrThroughKernel(opts.fs, Buffer.from(event.digest, 'hex'), base));
  const after = await collectOrExplain(() => readRtmr(opts.fs, base));
  if (!after.equals(replayRtmr(events, before))) {
    throw new RuntimeError(
      'RUNTIME_EVIDENCE',
      `RTMR3 at ${base} reads ${after.toString('hex')} after Veil's extensions, not the value they give: another process extended it meanwhile`,
      {
        hint: 'nothing else may extend RTMR3 while veil run starts; start the program again',
      },
    );
  }
  return events;
}

async function collectOrExplain<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof AttestationError)
      throw new RuntimeError('RUNTIME_EVIDENCE', `cannot collect hardware evidence: ${err.message}`, {
        ...(err.hint ? { hint: err.hint } : {}),
        cause: err,
      });
    throw err;
  }
}

export type EvidenceMode = 'debug' | 'hardware';

/**
 * The evidence source for `veil run`: simulation only when asked for explicitly, configfs-tsm when the host
 * has it (`<base>/report`; base VEIL_TSM_PATH or /sys/kernel/config/tsm), otherwise a RUNTIME_NO_TEE error
 * that says how to ask for simulation — never a silent fallback.
 */
export async function chooseEvidenceSource(opts: {
  mode?: EvidenceMode | undefined;
  env: NodeJS.ProcessEnv;
  fs: TsmFs & RtmrFs;
  program: ProgramIdentity;
  log?: Log;
}): Promise<EvidenceSource> {
  const asked = opts.env['VEIL_EVIDENCE'];
  if (asked !== undefined && asked !== '' && asked !== 'simulation' && asked !== 'hardware') {
    throw new RuntimeError('RUNTIME_CONFIG', `VEIL_EVIDENCE=${asked} is not 'simulation' or 'hardware'`, {
      hint: 'unset it for hardware evidence; simulation is for testing only',
    });
  }
  if ((opts.mode === 'hardware' && asked === 'simulation') || (opts.mode === 'debug' && asked === 'hardware')) {
    throw new RuntimeError('RUNTIME_CONFIG', `--mode ${opts.mode} contradicts VEIL_EVIDENCE=${asked}`, {
      hint: 'say one of them',
    });
  }
  if (opts.mode === 'debug' || asked === 'simulation') {
    const why = opts.mode === 'debug' ? 'veil run --mode debug' : 'VEIL_EVIDENCE=simulation';
    return simulationSource(opts.program.measurement, await loadHostKey(hostKeyPath(opts.env)), opts.log, why);
  }
  const override = opts.env['VEIL_TSM_PATH'] || undefined;
  const base = override ?? DEFAULT_TSM_BASE;
  if (!(await opts.fs.exists(`${base}/report`))) {
    throw new RuntimeError(
      'RUNTIME_NO_TEE',
      `no TEE evidence source found: ${base}/report does not exist${override ? ' (VEIL_TSM_PATH)' : ''}, so this is not a confidential VM with configfs-tsm (or configfs is not mounted)`,
      {
        hint: 'run in a TDX or SEV-SNP guest (Linux ≥ 6.7, configfs mounted at /sys/kernel/config; VEIL_TSM_PATH if elsewhere); only for testing, ask for simulation with veil run --mode debug or VEIL_EVIDENCE=simulation',
      },
    );
  }
  const rtmr = opts.env['VEIL_TDX_MEASUREMENTS_PATH'] || undefined;
  const provider = await collectOrExplain(() => tsmProvider({ fs: opts.fs, base }));
  return tsmSource({
    fs: opts.fs,
    base,
    provider,
    ...(rtmr ? { rtmr } : {}),
    runtimeCodeDigest: opts.program.runtimeCodeDigest,
    programSha256: opts.program.programSha256,
    ...(opts.log ? { log: opts.log } : {}),
  });
}
