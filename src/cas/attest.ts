import { X509Certificate } from 'node:crypto';
import { AttestationError, checkMeasurement, verifyEvidence, type Evidence } from '../attestation/index.js';
import { renderServiceConfig, type ServiceConfig } from './config.js';
import { CasError } from './errors.js';
import type { ClientIdentity } from './identity-of.js';
import type { NonceStore } from './nonces.js';
import { sessionOf } from './parsed.js';
import type { CasContext } from './sessions.js';

export interface AttestRequest {
  config_id: string;
  nonce: string;
  evidence: Evidence;
}

/**
 * A runtime's attestation: the evidence must bind the nonce this CAS issued to this connection's key, the
 * session must accept its kind, and its measurement must be one the service lists. Only then is the
 * configuration rendered — into the answer on this same connection, the one the evidence is bound to.
 */
export function attest(ctx: CasContext, nonces: NonceStore, request: AttestRequest, client: ClientIdentity): ServiceConfig {
  const { session: sessionName, service: serviceName } = splitConfigId(request.config_id);
  const outcome = nonces.consume(String(request.nonce), client.keyHash);
  if (outcome !== 'ok') throw attestationFailure(new AttestationError('ATTESTATION_BINDING', nonceMessage(outcome)), request.config_id);
  const record = ctx.store.current(sessionName);
  const service = record ? sessionOf(record).services?.find((s) => s.name === serviceName) : undefined;
  if (!record || !service) {
    throw new CasError('CAS_NOT_FOUND', `no service '${serviceName}' in session '${sessionName}' (service ID ${request.config_id})`, { hint: 'check SCONE_CONFIG_ID (<session>/<service>)' });
  }
  try {
    const spki = new X509Certificate(client.certPem).publicKey.export({ type: 'spki', format: 'der' });
    const verified = verifyEvidence(request.evidence, { nonce: Buffer.from(request.nonce, 'hex'), spki }, sessionOf(record).security?.attestation);
    checkMeasurement(verified.measurement, allowedMeasurements(service));
  } catch (err) {
    if (err instanceof AttestationError) throw attestationFailure(err, request.config_id);
    throw err;
  }
  return renderServiceConfig(ctx.store, sessionName, serviceName);
}

function nonceMessage(outcome: string): string {
  if (outcome === 'expired') return 'the attestation nonce has expired';
  if (outcome === 'other-key') return 'the attestation nonce was issued to another connection';
  return 'the attestation nonce is unknown or was already used';
}

function attestationFailure(err: AttestationError, configId: string): CasError {
  return new CasError('CAS_ATTESTATION_FAILED', `Attestation failed: ${err.message}`, { hint: err.hint ?? `service ID ${configId}`, cause: err });
}

/** `<session>/<service>`, where the session name may itself contain `/` (namespaces). */
export function splitConfigId(configId: string): { session: string; service: string } {
  const cut = configId.lastIndexOf('/');
  if (cut <= 0 || cut === configId.length - 1) {
    throw new CasError('CAS_BAD_REQUEST', `service ID '${configId}' is not <session>/<service>`, { hint: 'set SCONE_CONFIG_ID=<session>/<service>' });
  }
  return { session: configId.slice(0, cut), service: configId.slice(cut + 1) };
}

type Service = NonNullable<ReturnType<typeof sessionOf>['services']>[number];

function allowedMeasurements(service: Service): string[] {
  const variants = service.attestation === undefined ? [] : Array.isArray(service.attestation) ? service.attestation : [service.attestation];
  return [...(service.mrenclaves ?? []), ...variants.flatMap((v) => v.mrenclave ?? [])];
}
