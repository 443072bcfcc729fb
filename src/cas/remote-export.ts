import { X509Certificate } from 'node:crypto';
import type { ExportAnswer, ExportRequest, ExportedSecret } from '../contract/index.js';
import type { Secret } from '../policy/index.js';
import { isRemoteTarget } from '../policy/remote.js';
import type { StoredSecret } from '../secrets/index.js';
import { recordOrFail, recordRefusal } from './audit-events.js';
import { CasError } from './errors.js';
import { fingerprintOf } from './identity.js';
import { sessionOf } from './parsed.js';
import { createSecretView, sameHash } from './secret-view.js';
import { keepLoaded, readerFor, type SessionReader } from './session-reader.js';
import { renewedForExport } from './renewal.js';
import type { CasContext } from './sessions.js';
import type { SessionRecord } from './store/index.js';

/**
 * The exporting side of imports across CAS: another CAS asks for a secret one of our sessions exports to a
 * session it serves. The caller is "the CAS whose CA fingerprint is F" only from a chain verified here.
 */

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const MAX_CHAIN = 8;

/** The session on the calling CAS that imports, as the exporter judges it. */
export interface RemoteImporter {
  /** Hex SHA-256 of the calling CAS's CA certificate (from the verified chain). */
  fingerprint: string;
  session: string;
  hash: string;
}

/**
 * The calling CAS's fingerprint from the chain it presented on this connection: a leaf for client
 * authentication, current, signed by the CA presented after it, which is a self-signed CA. The TLS handshake
 * proved the leaf's key; the signature ties the leaf to that CA, whose fingerprint is then the identity.
 */
export function callerFingerprint(leafDer: Buffer | undefined, caDer: Buffer | undefined, now: Date): string {
  if (!leafDer || !caDer) throw unauthenticated('it presented no certificate chain (a leaf and its CA)');
  let leaf: X509Certificate;
  let ca: X509Certificate;
  try {
    leaf = new X509Certificate(leafDer);
    ca = new X509Certificate(caDer);
  } catch {
    throw unauthenticated('its certificates do not parse');
  }
  if (!ca.ca || !ca.verify(ca.publicKey))
    throw unauthenticated('the last certificate it presented is no self-signed CA');
  if (!leaf.verify(ca.publicKey) || !leaf.checkIssued(ca)) {
    throw unauthenticated('its certificate is not signed by the CA it presented');
  }
  if (now < new Date(leaf.validFrom) || now > new Date(leaf.validTo)) {
    throw unauthenticated(`its certificate is valid only from ${leaf.validFrom} to ${leaf.validTo}`);
  }
  if (!(leaf.keyUsage ?? []).includes(CLIENT_AUTH)) {
    throw unauthenticated('its certificate is not for client authentication (extended key usage clientAuth)');
  }
  return fingerprintOf(ca.raw);
}

/**
 * The leaf and the top of the chain a TLS peer sent (Node links the certificates it received). From the
 * X509Certificate the handshake parsed — the same object the client's identity is read from (identity-of.ts):
 * once that was taken, getPeerCertificate(true) no longer carried the issuers.
 */
export function peerChain(peer: X509Certificate | undefined): { leaf?: Buffer; ca?: Buffer } {
  if (!peer) return {};
  let top = peer;
  for (let i = 0; i < MAX_CHAIN && top.issuerCertificate && !top.issuerCertificate.raw.equals(top.raw); i++) {
    top = top.issuerCertificate;
  }
  return { leaf: peer.raw, ...(top !== peer ? { ca: top.raw } : {}) };
}

function unauthenticated(why: string): CasError {
  return new CasError(
    'CAS_UNAUTHENTICATED',
    `POST /v1/exports is for another CAS, and this caller is not one: ${why}`,
    {
      hint: 'a Veil CAS presents a client certificate issued by its own CA, with that CA, when it fetches an import',
    },
  );
}

type Refusal = 'not-exported' | 'pin';

/**
 * Whether `spec` is released to a session of another CAS. A target must name that CAS by the fingerprint of
 * its CA and the session by its full name there. A session_hash pin releases exactly that version; without
 * one the exporter trusts the CAS it names to govern who creates and changes that session (it cannot see
 * their identities), which is why README advises a pin when that CAS lets strangers create sessions.
 */
export function releaseRemote(spec: Secret, importer: RemoteImporter): Refusal | undefined {
  const targets = (spec.export ?? []).filter(
    (t) => isRemoteTarget(t) && sameHash(t.cas_key, importer.fingerprint) && t.session === importer.session,
  );
  if (targets.length === 0) return 'not-exported';
  const pins = targets.flatMap((t) => ('session_hash' in t && t.session_hash !== undefined ? [t.session_hash] : []));
  if (pins.some((pin) => sameHash(pin, importer.hash))) return undefined;
  return pins.length < targets.length ? undefined : 'pin';
}

/** POST /v1/exports: the secret, its chain and (when exported too) its key, or why not. */
export async function exportSecret(
  ctx: CasContext,
  request: ExportRequest,
  fingerprint: string,
): Promise<ExportAnswer> {
  const importer = { fingerprint, session: request.importer.session, hash: request.importer.session_hash };
  const sessions = await readerFor(ctx.store, request.session);
  const record = sessions.current(request.session);
  const about = {
    session: request.session,
    secret: request.secret,
    importer_session: importer.session,
    importer_cas: fingerprint,
  };
  let secret: ExportedSecret;
  let renewed: string[];
  try {
    ({ secret, renewed } = await released(ctx, sessions, record, request, importer));
    // Released to this CAS: what was read for it may enter the session cache (session-reader.ts).
    keepLoaded(sessions);
  } catch (err) {
    // Only a session that exists is named in an entry; its owners see who was refused what.
    if (record && err instanceof CasError && err.code === 'CAS_IMPORT_DENIED') {
      await recordRefusal(ctx, fingerprint, { type: 'export.refused', ...about, code: err.code, reason: whyNot(err) });
    }
    throw err;
  }
  // Durable before the answer: a secret that left for another CAS is in the log, or it does not leave.
  await recordOrFail(ctx.audit, {
    type: 'export.released',
    ...about,
    private_key: 'private_key' in secret && secret.private_key !== undefined,
    ...(renewed.length === 0 ? {} : { renewed: [...renewed].sort() }),
  });
  return { secret };
}

async function released(
  ctx: CasContext,
  sessions: SessionReader,
  record: SessionRecord | undefined,
  request: ExportRequest,
  importer: RemoteImporter,
): Promise<{ secret: ExportedSecret; renewed: string[] }> {
  const spec = record ? specOf(record, request.secret) : undefined;
  const value = record && spec && !spec.import ? ownSecret(record, request.secret) : undefined;
  const refusal = spec && value ? releaseRemote(spec, importer) : 'not-exported';
  if (refusal !== undefined) throw exportDenied(refusal, request, importer);
  // A certificate past two thirds of its lifetime leaves renewed (time, not traffic: cas/renewal.ts).
  const { reader, renewed } = await renewedForExport(ctx, sessions, record!, request.secret);
  const current = reader.current(request.session)!;
  return { secret: wireSecret(reader, current, ownSecret(current, request.secret) ?? value!, importer), renewed };
}

/** An entry's reason: the refusal in general words, no more than the exporting session's owners know. */
const REASONS = new WeakMap<CasError, string>();

function whyNot(err: CasError): string {
  return REASONS.get(err) ?? 'refused (CAS_IMPORT_DENIED)';
}

function wireSecret(sessions: SessionReader, record: SessionRecord, value: StoredSecret, importer: RemoteImporter) {
  if (value.kind === 'ascii' || value.kind === 'binary') return { kind: value.kind, value: value.value };
  if (value.kind === 'private-key') return { kind: value.kind, key_type: value.keyType, value: value.value };
  if (value.kind === 'pgp-key' || value.kind === 'config-fragment') throw notAcrossCas(value.kind);
  const lookup = createSecretView(sessions, record, sessionOf(record));
  const chain: string[] = [];
  for (let issuer = value.issuer; issuer !== undefined && chain.length < MAX_CHAIN; ) {
    const next = lookup(issuer);
    if (!next || (next.kind !== 'x509' && next.kind !== 'x509-ca')) break;
    chain.push(next.value);
    issuer = next.issuer;
  }
  const key = releasedKey(record, value.privateKey, importer);
  const out: ExportedSecret = { kind: value.kind, value: value.value, chain };
  return key ? { ...out, private_key: key } : out;
}

/** A certificate's key goes along only when the session exports that key to the same importer. */
function releasedKey(record: SessionRecord, name: string | undefined, importer: RemoteImporter) {
  const spec = name === undefined ? undefined : specOf(record, name);
  const key = spec && !spec.import ? ownSecret(record, spec.name) : undefined;
  if (!spec || key?.kind !== 'private-key' || releaseRemote(spec, importer) !== undefined) return undefined;
  return { key_type: key.keyType, value: key.value };
}

function specOf(record: SessionRecord, secret: string): Secret | undefined {
  return sessionOf(record).secrets?.find((s) => s.name === secret);
}

function ownSecret(record: SessionRecord, name: string): StoredSecret | undefined {
  return Object.hasOwn(record.secrets, name) ? (record.secrets[name] as StoredSecret) : undefined;
}

/**
 * Refusals say no more than the caller may know: whether the session or secret exists is not told to a CAS
 * that no export names; a pin mismatch is, since the export names that CAS and session.
 */
/** Released only within one CAS so far: the wire form carries ascii, binary, keys and certificates. */
function notAcrossCas(kind: string): CasError {
  const message = `a ${kind} secret exported to another CAS is not supported by Veil yet`;
  return reasoned(
    new CasError('CAS_IMPORT_DENIED', message, {
      hint: `import the ${kind} from a session on the same CAS, or give the importing session its own`,
    }),
    message,
  );
}

function reasoned(err: CasError, reason: string): CasError {
  REASONS.set(err, reason);
  return err;
}

function exportDenied(refusal: Refusal, request: ExportRequest, importer: RemoteImporter): CasError {
  const to = `session '${importer.session}' of the CAS with cas_key ${importer.fingerprint}`;
  const head = `secret '${request.secret}' of session '${request.session}' is not released to ${to}`;
  if (refusal === 'pin') {
    const pin = new CasError(
      'CAS_IMPORT_DENIED',
      `${head}: the export pins another session_hash than ${importer.hash}`,
      {
        hint: `the owner of '${request.session}' sets session_hash to the importing session's current hash`,
      },
    );
    return reasoned(pin, `the export pins another session_hash than the importer's ${importer.hash}`);
  }
  const denied = new CasError('CAS_IMPORT_DENIED', `${head}: it does not exist there, or is not exported to it`, {
    hint:
      `the owner of '${request.session}' adds 'export: [{session: ${importer.session}, cas_key: ` +
      `${importer.fingerprint}}]' to secret '${request.secret}'`,
  });
  return reasoned(denied, 'the secret does not exist in this session, or is not exported to that CAS and session');
}
