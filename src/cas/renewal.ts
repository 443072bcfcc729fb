import { findPlaceholders, type Secret, type Session } from '../policy/index.js';
import { isRemoteImport } from '../policy/remote.js';
import { CasError } from './errors.js';
import { SecretsError, certificateSecret, type StoredCertificate, type StoredSecret } from '../secrets/index.js';
import { sessionOf } from './parsed.js';
import { decodeRenewal, encodeRenewal, renewalPoint, renewedRecord } from './renewed.js';
import { createSecretView, resolveRelative } from './secret-view.js';
import { loadSessions, sessionsRead, type SessionReader } from './session-reader.js';
import type { CasContext } from './sessions.js';
import type { SessionRecord } from './store/index.js';
import { renderServiceConfig, type ServiceConfig } from './config.js';
import type { RemoteSecrets } from './remote-import.js';

/**
 * Certificates renewed before they expire (README "Certificates renewed before they expire"): a generated
 * certificate past two thirds of its lifetime is issued again — same subject, names and key, by the same issuer —
 * when a configuration that uses it is released, and kept beside its session version (Store.putRenewal).
 */

/** README "Limits": certificates one attestation or one public read issues anew at most (the rest wait). */
export const RENEWAL_LIMITS = { perRequest: 8 } as const;

/** A certificate as its owning session names it, and how the released configuration reaches it. */
export interface CertificateUse {
  owner: string;
  secret: string;
  /** `secret`, or `owner::secret` when another session owns it (an import, or the issuer of one). */
  label: string;
  /** Issuers above it: issuers are renewed before the certificates they sign. */
  depth: number;
}

/** The sessions of a judgement, with renewals made during it in place of what was read. */
export class RenewedReader implements SessionReader {
  private readonly changed = new Map<string, SessionRecord>();

  constructor(private readonly base: SessionReader) {}

  current(name: string): SessionRecord | undefined {
    return this.changed.get(name) ?? this.base.current(name);
  }

  loaded(): ReadonlyMap<string, string | null> {
    return this.base.loaded();
  }

  has(name: string): boolean {
    return this.base.loaded().has(name);
  }

  replace(owner: string, secret: string, cert: StoredCertificate): void {
    const record = this.current(owner)!;
    this.changed.set(owner, { ...record, secrets: { ...record.secrets, [secret]: cert } });
  }
}

export interface RenewalOutcome {
  /** Labels of the certificates that were renewed for this release (by this CAS, or a replica that came first). */
  renewed: string[];
  /** When the first renewable certificate used reaches two thirds of its lifetime (ms since the epoch). */
  renewAt: number | undefined;
  /** Certificates used that were due (renewed, or not renewable now): a release with any is not memoized. */
  due?: number;
}

/**
 * A service's configuration as attestation releases it: rendered first (so a service that may not read an
 * import does not renew it), then every certificate it uses that is due is renewed and it is rendered again.
 */
export async function renderRenewed(
  ctx: CasContext,
  sessions: SessionReader,
  sessionName: string,
  serviceName: string,
  remote?: RemoteSecrets,
  used?: Set<string>,
): Promise<{ config: ServiceConfig } & RenewalOutcome> {
  const config = renderServiceConfig(sessions, sessionName, serviceName, remote, used);
  const reader = new RenewedReader(sessions);
  const record = reader.current(sessionName)!;
  const uses = certificateUses(reader, record, namesUsed(sessionOf(record), serviceName), remote?.secrets);
  const outcome = await renewCertificates(ctx, reader, uses);
  // Certificates from another CAS are renewed there, when fetched again (at this service's next attestation).
  outcome.renewAt = earliest(outcome.renewAt, remoteRenewal(remote, namesUsed(sessionOf(record), serviceName)));
  if (outcome.renewed.length === 0) return { config, ...outcome };
  return { config: renderServiceConfig(reader, sessionName, serviceName, remote, used), ...outcome };
}

function remoteRenewal(remote: RemoteSecrets | undefined, names: string[]): number | undefined {
  const points = names.flatMap((name) => {
    const value = remote?.secrets.get(name);
    const cert = value && (value.kind === 'x509' || value.kind === 'x509-ca') ? value : undefined;
    const point = cert && renewalPoint(Buffer.from(cert.value, 'base64'));
    return point === undefined ? [] : [point];
  });
  return points.length === 0 ? undefined : Math.min(...points);
}

function earliest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

/** Before a secret leaves for another CAS: the certificates it is or chains to, renewed when due. */
export async function renewedForExport(
  ctx: CasContext,
  sessions: SessionReader,
  record: SessionRecord,
  secret: string,
): Promise<{ reader: SessionReader; renewed: string[] }> {
  const reader = new RenewedReader(sessions);
  const { renewed } = await renewCertificates(ctx, reader, certificateUses(reader, record, [secret]));
  return { reader, renewed };
}

/** Renews what `uses` names and is due; afterwards `reader` holds the certificates to release. */
export async function renewCertificates(
  ctx: CasContext,
  reader: RenewedReader,
  uses: CertificateUse[],
): Promise<RenewalOutcome> {
  const now = ctx.now().getTime();
  const renewable = uses.filter((use) => renewableSpec(reader, use) !== undefined);
  const renewed: string[] = [];
  const failed = new Set<CertificateUse>();
  let due = 0;
  for (const use of [...renewable].sort((a, b) => a.depth - b.depth)) {
    if (!isDue(certificateOf(reader, use), now)) continue;
    due++;
    if (renewed.length >= RENEWAL_LIMITS.perRequest) break;
    const cert = await renewOne(ctx, reader, use);
    if (!cert) failed.add(use);
    else reader.replace(use.owner, use.secret, cert);
    if (cert) renewed.push(use.label);
  }
  // One that cannot be renewed now would make renew_at "now" for ever: a runtime would attest again and again.
  const ahead = renewable.filter((use) => !failed.has(use));
  return { renewed, renewAt: renewAtOf(reader, ahead, now), due };
}

/** The 2/3 rule: due once now ≥ notBefore + 2/3 · (notAfter − notBefore). */
export function isDue(cert: StoredCertificate | undefined, now: number): boolean {
  const point = cert && renewalPoint(Buffer.from(cert.value, 'base64'));
  return point !== undefined && now >= point;
}

function renewAtOf(reader: RenewedReader, uses: CertificateUse[], now: number): number | undefined {
  const points = uses.flatMap((use) => {
    const cert = certificateOf(reader, use);
    const point = cert && renewalPoint(Buffer.from(cert.value, 'base64'));
    return point === undefined ? [] : [point];
  });
  return points.length === 0 ? undefined : Math.max(now, Math.min(...points));
}

function certificateOf(reader: SessionReader, use: CertificateUse): StoredCertificate | undefined {
  const value = reader.current(use.owner)?.secrets[use.secret] as StoredSecret | undefined;
  return value && (value.kind === 'x509' || value.kind === 'x509-ca') ? value : undefined;
}

/**
 * A certificate the CAS generated (no explicit value: that one is the policy's own, and its issuer's key may
 * be elsewhere), defined by its owner (an import is renewed where it is defined).
 */
function renewableSpec(reader: SessionReader, use: CertificateUse): Secret | undefined {
  const record = reader.current(use.owner);
  const spec = record && sessionOf(record).secrets?.find((s) => s.name === use.secret);
  return spec && isRenewable(spec) ? spec : undefined;
}

export function isRenewable(spec: Secret): boolean {
  if (spec.import || spec.value !== undefined || !spec.private_key) return false;
  return spec.kind === 'x509' || spec.kind === 'x509-ca';
}

/**
 * `record` (as read now) with the public certificates `names` renewed when due, their issuers first. Nothing
 * more is read unless one is due: a public read costs one more lookup (the renewals) in the common case.
 */
export async function renewPublic(ctx: CasContext, current: SessionRecord, names: string[]): Promise<SessionRecord> {
  const record = await renewedRecord(ctx.store, current);
  const now = ctx.now().getTime();
  const session = sessionOf(record);
  const due = names.some((name) => {
    const spec = session.secrets?.find((s) => s.name === name);
    return spec !== undefined && isRenewable(spec) && isDue(record.secrets[name] as StoredCertificate, now);
  });
  if (!due) return record;
  const reader = new RenewedReader(await loadSessions(ctx.store, sessionsRead(session), [current]));
  await renewCertificates(ctx, reader, certificateUses(reader, record, names));
  return reader.current(record.name)!;
}

/**
 * Issues the certificate again from its spec, with the key and issuer its session names (so the key stays),
 * and stores it by compare-and-set: when another replica stored one first, that one is used. A certificate
 * whose key or issuer cannot be reached from its session now (an import withdrawn) is not renewed.
 */
async function renewOne(
  ctx: CasContext,
  reader: RenewedReader,
  use: CertificateUse,
): Promise<StoredCertificate | undefined> {
  const record = reader.current(use.owner)!;
  const spec = renewableSpec(reader, use)!;
  const latest = (await ctx.store.renewals(record.name, record.hash)).get(use.secret);
  const stored = latest && decodeRenewal(latest);
  if (stored && !isDue(stored, ctx.now().getTime())) return stored;
  const issued = await issueAgain(ctx, reader, record, spec);
  if (!issued) return undefined;
  const generation = (latest?.generation ?? 0) + 1;
  const winner = await ctx.store.putRenewal(record.name, record.hash, use.secret, {
    generation,
    value: encodeRenewal(issued),
  });
  return decodeRenewal(winner);
}

async function issueAgain(
  ctx: CasContext,
  reader: SessionReader,
  record: SessionRecord,
  spec: Secret,
): Promise<StoredCertificate | undefined> {
  const session = sessionOf(record);
  const view = createSecretView(reader, record, session);
  const deps = {
    get: async (name: string) => view(name),
    isImport: (name: string) => session.secrets?.some((s) => s.name === name && s.import) ?? false,
    now: ctx.now(),
  };
  try {
    return await certificateSecret(spec, spec.kind as 'x509' | 'x509-ca', deps);
  } catch (err) {
    if (err instanceof SecretsError || err instanceof CasError) return undefined;
    throw err;
  }
}

/** The secret names a service's configuration renders: command, environment, fspf key, injection files. */
export function namesUsed(session: Session, serviceName: string): string[] {
  const service = session.services?.find((s) => s.name === serviceName);
  if (!service) return [];
  const command = service.command === undefined ? [] : [service.command].flat();
  const image = session.images?.find((i) => i.name === service.image_name);
  const files = (image?.injection_files ?? []).map((f) => (typeof f === 'string' ? '' : (f.content ?? '')));
  const texts = [...command, ...Object.values(service.environment ?? {}).map(String), service.fspf_key ?? '', ...files];
  return [...new Set(texts.flatMap((text) => findPlaceholders(text).map((p) => p.secret)))];
}

/** The certificates `names` (as `record`'s session sees them) are, with their issuer chains. */
export function certificateUses(
  reader: RenewedReader,
  record: SessionRecord,
  names: readonly string[],
  remote?: ReadonlyMap<string, StoredSecret>,
): CertificateUse[] {
  const uses = new Map<string, CertificateUse>();
  const visit = (from: SessionRecord, name: string, depthBelow: number): number | undefined => {
    const at = ownerOf(reader, from, name);
    const owner = at && reader.current(at.owner);
    const value = owner?.secrets[at!.secret] as StoredSecret | undefined;
    if (!at || !owner || !value || (value.kind !== 'x509' && value.kind !== 'x509-ca')) return undefined;
    const label = at.owner === record.name ? at.secret : `${at.owner}::${at.secret}`;
    if (depthBelow > MAX_CHAIN) return undefined;
    const above = value.issuer ? visit(owner, value.issuer, depthBelow + 1) : undefined;
    const depth = above === undefined ? 0 : above + 1;
    const seen = uses.get(label);
    uses.set(label, { ...at, label, depth: Math.max(depth, seen?.depth ?? 0) });
    return depth;
  };
  for (const name of names) if (!remote?.has(name)) visit(record, name, 0);
  return [...uses.values()];
}

/** Issuer cycles are refused at upload; this only bounds the walk should a stored one slip through. */
const MAX_CHAIN = 16;

/** Which session defines `name` as `from` sees it; undefined for remote imports and sessions not loaded. */
function ownerOf(
  reader: RenewedReader,
  from: SessionRecord,
  name: string,
): { owner: string; secret: string } | undefined {
  const cut = name.indexOf('::');
  const at = cut >= 0 ? { owner: name.slice(0, cut), secret: name.slice(cut + 2) } : localOwner(from, name);
  return at && reader.has(at.owner) ? at : undefined;
}

function localOwner(from: SessionRecord, name: string): { owner: string; secret: string } | undefined {
  const spec = sessionOf(from).secrets?.find((s) => s.name === name);
  if (!spec?.import) return { owner: from.name, secret: name };
  if (isRemoteImport(spec.import)) return undefined;
  return { owner: resolveRelative(from.name, spec.import.session), secret: spec.import.secret };
}
