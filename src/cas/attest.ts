import { timingSafeEqual } from 'node:crypto';
import {
  AttestationError,
  checkIdentity,
  checkMeasurement,
  checkMode,
  checkPlatform,
  hardwareReportData,
  variantsOf,
  verifySimulation,
  type AttestationPolicy,
  type Evidence,
  type EvidenceVerifier,
  type HardwareType,
  type RtmrEvent,
  type VerificationResult,
} from '../attestation/index.js';
import { replayRtmr } from '../attestation/rtmr.js';
import type { AttestRequest, AttestationOutcome } from '../contract/index.js';
import type { ServiceConfig } from './config.js';
import { CasError } from './errors.js';
import type { ClientIdentity } from './identity-of.js';
import type { NonceStore } from './nonces.js';
import { sessionOf } from './parsed.js';
import { platformsOf } from './platforms.js';
import { keepLoaded, movedSince, readerFor } from './session-reader.js';
import type { CasContext } from './sessions.js';
import { fetchRemoteImports, type RemoteFetch } from './remote-import.js';
import { measurementOf, recordOrFail, recordRefusal, refusalOf } from './audit-events.js';
import type { AuditEvent } from '../audit/types.js';
import type { RenewalOutcome } from './renewal.js';
import { renderReleased } from './release-memo.js';

export type { AttestRequest, AttestationOutcome } from '../contract/index.js';

/** What the CAS needs to judge hardware evidence; without a verifier it refuses all hardware evidence. */
export interface AttestationContext {
  verifier?: EvidenceVerifier | undefined;
  /** Fetches imports from other CAS; without it such imports fail (CAS_REMOTE_UNREACHABLE). */
  remote?: RemoteFetch | undefined;
}

/** A release as judged and rendered, with its audit entry still to record. */
type Released = { config: ServiceConfig; outcome: AttestationOutcome; event: AuditEvent } & RenewalOutcome;

type Service = NonNullable<ReturnType<typeof sessionOf>['services']>[number];

/**
 * A runtime's attestation: the evidence must bind the nonce this CAS issued to this connection's key, the
 * session must accept its kind, and its verified identity must be one the service lists. Only then is the
 * configuration rendered — into the answer on this same connection, the one the evidence is bound to.
 */
export async function attest(
  ctx: CasContext & AttestationContext,
  nonces: NonceStore,
  request: AttestRequest,
  client: ClientIdentity,
): Promise<{ config: ServiceConfig; outcome: AttestationOutcome } & RenewalOutcome> {
  let released: Released;
  const found: Found = {};
  try {
    released = await judgeAndRender(ctx, nonces, request, client, found);
  } catch (err) {
    if (err instanceof CasError && found.session !== undefined && isRecordedRefusal(err)) {
      const event = refusalOf(err, request.config_id, found.session, request.evidence.type);
      await recordRefusal(ctx, client.keyHash, event);
    }
    throw err;
  }
  // Durable before the answer: a configuration whose release the log cannot show is not released.
  await recordOrFail(ctx.audit, released.event);
  const { config, outcome, renewed, renewAt } = released;
  return { config, outcome, renewed, renewAt };
}

/** Set once the service attested to exists: only then may a refusal name its session in an entry. */
interface Found {
  session?: string;
}

/**
 * Refusals of the service's evidence or of what it may receive are recorded; a malformed service ID, a busy
 * CAS or the CAS's own failures are not decisions about the service. Nor is evidence that does not bind this
 * connection's nonce and key: anyone can send that for any service (the metrics count it by reason).
 */
function isRecordedRefusal(err: CasError): boolean {
  if (err.status < 400 || err.status >= 500 || err.code === 'CAS_BUSY' || err.code === 'CAS_BAD_REQUEST') return false;
  return !(err.cause instanceof AttestationError && err.cause.code === 'ATTESTATION_BINDING');
}

async function judgeAndRender(
  ctx: CasContext & AttestationContext,
  nonces: NonceStore,
  request: AttestRequest,
  client: ClientIdentity,
  found: Found,
): Promise<Released> {
  const { session: sessionName, service: serviceName } = splitConfigId(request.config_id);
  const nonce = nonces.consume(String(request.nonce), client.keyHash);
  if (nonce !== 'ok')
    throw attestationFailure(new AttestationError('ATTESTATION_BINDING', nonceMessage(nonce)), request.config_id);
  const sessions = await readerFor(ctx.store, sessionName);
  const record = sessions.current(sessionName);
  const service = record ? sessionOf(record).services?.find((s) => s.name === serviceName) : undefined;
  if (!record || !service) {
    throw new CasError(
      'CAS_NOT_FOUND',
      `no service '${serviceName}' in session '${sessionName}' (service ID ${request.config_id})`,
      { hint: 'check SCONE_CONFIG_ID (<session>/<service>)' },
    );
  }
  found.session = sessionName;
  const binding = { nonce: Buffer.from(request.nonce, 'hex'), spki: client.spki };
  const policy = sessionOf(record).security?.attestation;
  let outcome: AttestationOutcome;
  let measurement: string;
  try {
    if (request.evidence.type === 'simulation') {
      // Evidence (host signature), binding, platform (a listed host), then identity (the measurement).
      const platforms = platformsOf(sessions, record, sessionOf(record), service);
      const verified = await verifySimulation(request.evidence, binding, policy, { ...service, platforms });
      checkMeasurement(verified.measurement, simulationMeasurements(service));
      measurement = verified.measurement;
      outcome = { evidence: 'simulation', simulated: true, platform: verified.platform };
    } else {
      const { result, tolerated } = await judgeHardware(ctx, request.evidence, binding, policy, service);
      measurement = measurementOf(result);
      outcome = {
        evidence: request.evidence.type,
        simulated: false,
        ...(result.tcb ? { tcb_status: result.tcb.status } : {}),
        tolerated,
      };
    }
  } catch (err) {
    if (err instanceof AttestationError) throw attestationFailure(err, request.config_id);
    throw err;
  }
  // The service is entitled to what was read for it: only now may it enter the session cache (session-reader.ts).
  keepLoaded(sessions);
  // Only now, for a verified service, are other CAS dialled: asynchronously, each fetch under a deadline.
  const remote = await fetchRemoteImports(ctx.remote, record, sessionOf(record));
  // Judged and rendered from the one read above; what leaves must still be current once rendered, or a
  // session (this one, or one it imports from) that changed while the evidence was verified would go unseen.
  const used = new Set<string>();
  // Certificates past two thirds of their lifetime are renewed here (cas/renewal.ts); a release rendered before
  // from the same sessions, with nothing due, is not rendered again (cas/release-memo.ts).
  const rendered = await renderReleased(ctx, sessions, sessionName, serviceName, remote, used);
  const { config, renewed, renewAt } = rendered;
  const moved = await movedSince(ctx.store, sessions);
  if (moved !== undefined) {
    throw new CasError('CAS_BUSY', `session '${moved}' changed while the service attested; start it again`, {
      hint: 'the configuration is released only as judged against the current sessions: start the service again',
    });
  }
  const event = releaseOf(request.config_id, record.hash, outcome, measurement, [...used].sort(), renewed);
  return { config, outcome, event, renewed, renewAt };
}

function releaseOf(
  configId: string,
  sessionHash: string,
  outcome: AttestationOutcome,
  measurement: string,
  secrets: string[],
  renewed: string[],
): AuditEvent {
  const { session, service } = splitConfigId(configId);
  return {
    type: 'attestation.released',
    config_id: configId,
    session,
    service,
    session_hash: sessionHash,
    evidence: outcome.evidence,
    simulated: outcome.simulated,
    measurement,
    ...(outcome.platform === undefined ? {} : { platform: outcome.platform }),
    ...(outcome.tcb_status === undefined ? {} : { tcb_status: outcome.tcb_status }),
    secrets,
    ...(renewed.length === 0 ? {} : { renewed: [...renewed].sort() }),
  };
}

/**
 * Order matters for what a refusal says: the evidence itself (signatures, chains, collateral), then that it
 * binds this nonce and key, then the platform (debug, TCB, advisories), then the identity.
 */
async function judgeHardware(
  ctx: AttestationContext & CasContext,
  evidence: Exclude<Evidence, { type: 'simulation' }>,
  binding: { nonce: Buffer; spki: Buffer },
  policy: AttestationPolicy | undefined,
  service: Service,
): Promise<{ result: VerificationResult; tolerated: string[] }> {
  checkMode(policy);
  checkNoPlatforms(service, evidence.type);
  if (!ctx.verifier)
    throw new AttestationError(
      'ATTESTATION_UNSUPPORTED',
      `this CAS was started without hardware verifiers; ${evidence.type} evidence cannot be judged`,
    );
  const result = await ctx.verifier.verify(decodeEvidence(evidence), ctx.now());
  checkBinding(result.reportData, hardwareReportData(binding.nonce, binding.spki));
  const tolerated = checkPlatform(result, policy);
  try {
    checkIdentity(result, service);
  } catch (err) {
    if (err instanceof AttestationError && evidence.type === 'tdx' && result.type === 'tdx')
      throw withRtmrLog(err, evidence.rtmrLog ?? [], result.claims.rtmr[3]);
    throw err;
  }
  return { result, tolerated };
}

/**
 * SCONE's `platforms` name SGX platforms by their SCONE quoting enclave's key, which hardware evidence judged
 * by Intel's and AMD's collateral does not carry: a service that lists platforms would have them ignored, so
 * its hardware evidence is refused instead (Veil checks platforms for simulation evidence).
 */
function checkNoPlatforms(service: Service, type: string): void {
  if ((service.platforms ?? []).length === 0) return;
  throw new AttestationError(
    'ATTESTATION_PLATFORM',
    `service '${service.name}' lists platforms, which are not supported by Veil for hardware evidence (${type}): ` +
      'Veil matches platform IDs against simulation hosts only',
    {
      check: 'platform',
      hint:
        `remove services[${service.name}].platforms to accept hardware evidence by its measurements, ` +
        'or use another service for simulation',
    },
  );
}

/**
 * The RTMR3 log the runtime sent is not evidence (only the quoted register is), but replaying it tells the
 * operator why RTMR3 differs: another program, another Veil, or earlier extensions in the same TD.
 */
function withRtmrLog(err: AttestationError, log: RtmrEvent[], quoted: string): AttestationError {
  const events = log.filter((e) => e.index === 3);
  const replayed = replayRtmr(events).toString('hex');
  const what =
    events.length === 0
      ? 'the runtime reported no RTMR3 extension'
      : `the runtime reports extending RTMR3 with ${events.map((e) => e.description).join(', ')}` +
        (replayed === quoted
          ? ' (its log replays from zero to the quoted RTMR3)'
          : ' (its log does NOT replay from zero to the quoted RTMR3: the TD extended it before)');
  return new AttestationError(err.code, err.message.replace(/^identity: /, ''), {
    check: err.check,
    hint: `${what}; ${err.hint ?? ''}`.trim(),
    cause: err,
  });
}

const WIRE_TYPES: Record<Exclude<Evidence['type'], 'simulation'>, HardwareType> = {
  tdx: 'tdx',
  'sgx-dcap': 'sgx',
  'sev-snp': 'snp',
};

function decodeEvidence(evidence: Exclude<Evidence, { type: 'simulation' }>) {
  const type = WIRE_TYPES[evidence.type];
  const auxblob = evidence.type === 'sev-snp' && evidence.auxblob ? Buffer.from(evidence.auxblob, 'base64') : undefined;
  return { type, evidence: Buffer.from(evidence.quote, 'base64'), auxblob };
}

function checkBinding(got: Buffer, want: Buffer): void {
  if (got.length !== want.length || !timingSafeEqual(got, want)) {
    throw new AttestationError(
      'ATTESTATION_BINDING',
      "the evidence's report data does not bind this nonce and this connection key",
      {
        check: 'report data',
        hint: 'evidence cannot be replayed or moved to another connection: it must be made for this nonce (start the program again)',
      },
    );
  }
}

function nonceMessage(outcome: string): string {
  if (outcome === 'expired') return 'the attestation nonce has expired';
  if (outcome === 'used') return 'the attestation nonce was already used';
  return 'the attestation nonce is unknown: not issued by this CAS, or issued to another connection';
}

function attestationFailure(err: AttestationError, configId: string): CasError {
  return new CasError('CAS_ATTESTATION_FAILED', `Attestation failed: ${err.message}`, {
    hint: err.hint ?? `service ID ${configId}`,
    cause: err,
  });
}

/** `<session>/<service>`, where the session name may itself contain `/` (namespaces). */
export function splitConfigId(configId: string): { session: string; service: string } {
  const cut = configId.lastIndexOf('/');
  if (cut <= 0 || cut === configId.length - 1) {
    throw new CasError('CAS_BAD_REQUEST', `service ID '${configId}' is not <session>/<service>`, {
      hint: 'set SCONE_CONFIG_ID=<session>/<service>',
    });
  }
  return { session: configId.slice(0, cut), service: configId.slice(cut + 1) };
}

/** Simulation evidence carries a measurement in MRENCLAVE's place: the SGX identities list it. */
function simulationMeasurements(service: Service): string[] {
  return variantsOf(service).flatMap((v) => v.mrenclave ?? []);
}
