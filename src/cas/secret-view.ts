import { timingSafeEqual } from 'node:crypto';
import type { SessionRecord } from './store/index.js';
import type { SessionReader } from './session-reader.js';
import type { StoredSecret } from '../secrets/index.js';
import type { AccessEntry, ExportTarget, Secret, Session } from '../policy/index.js';
import { entriesFor, isAllowedOn, type AccessPolicyLike } from './access.js';
import { identityFromPem, sameKeyHash, type ClientIdentity } from './identity-of.js';
import { sessionOf } from './parsed.js';
import { isRemoteImport, isRemoteTarget } from '../policy/remote.js';
import { CasError } from './errors.js';

/**
 * Secrets as one session sees them: its own, plus imports resolved at the moment of use (an exporter may be
 * uploaded after its importer). Names of other sessions' secrets are qualified as `session::secret`; `::`
 * cannot occur in a secret name, so the two spaces never collide.
 */
export type SecretLookup = (name: string) => StoredSecret | undefined;

const SEP = '::';

/**
 * The importing session as an export judges it: its name and current hash (for `session_hash` pins), and who
 * wrote it and may change it (its creator and its access_policy.update), for exports without a pin.
 */
export interface Importer {
  name: string;
  hash: string;
  creator: string;
  policy: AccessPolicyLike | undefined;
}

export function importerOf(record: SessionRecord): Importer {
  return { name: record.name, hash: record.hash, creator: record.creator, policy: sessionOf(record).access_policy };
}

/**
 * `remote` holds what imports from other CAS resolved to, fetched (asynchronously) before rendering, under
 * their local names and names no session can have (`@remote:…::…`) for their keys and issuers.
 */
export function createSecretView(
  store: SessionReader,
  record: SessionRecord,
  session: Session,
  remote?: ReadonlyMap<string, StoredSecret>,
): SecretLookup {
  const importer = importerOf(record);
  return (name) => {
    const fetched = remote?.get(name);
    if (fetched) return fetched;
    if (name.includes(SEP)) return qualifiedLookup(store, importer, name);
    const spec = session.secrets?.find((s) => s.name === name);
    if (spec?.import) return importSecret(store, importer, spec);
    return ownSecret(record, name);
  };
}

function ownSecret(record: SessionRecord, name: string): StoredSecret | undefined {
  return Object.hasOwn(record.secrets, name) ? (record.secrets[name] as StoredSecret) : undefined;
}

/**
 * Resolves `import: {session, secret}`. Why an import fails (no such session, not exported, not trusted) is
 * told only to a `viewer` who may read the exporting session; anyone else — an attesting service, a stranger
 * uploading — gets one answer for all three, so imports cannot probe which sessions exist or export what.
 */
export function importSecret(
  store: SessionReader,
  importer: Importer,
  spec: Secret,
  viewer?: ClientIdentity,
): StoredSecret {
  const from = spec.import!;
  if (isRemoteImport(from)) throw remoteNotHere(spec.name, from.cas_url);
  const exporterName = resolveRelative(importer.name, from.session);
  const exporter = store.current(exporterName);
  const exporterSpec = exporter ? specOf(exporter, from.secret) : undefined;
  const value = exporter ? ownSecret(exporter, from.secret) : undefined;
  let refusal: Refusal | undefined = 'missing';
  if (exporter) refusal = exporterSpec && value ? releaseTo(exporterSpec, exporter, importer) : 'not-exported';
  if (refusal !== undefined) {
    const at = { importer: importer.name, exporter: exporterName, secret: from.secret };
    throw importDenied(refusal, at, mayKnow(exporter, viewer));
  }
  return qualify(value!, exporterName);
}

/** Imports from another CAS are fetched only for an attested service (never at upload, never for a stranger). */
function remoteNotHere(name: string, url: string | undefined): CasError {
  return new CasError(
    'CAS_POLICY_INVALID',
    `secret '${name}' is imported from the CAS at ${url}, which is fetched only when a service attests: ` +
      'using it to issue or key a certificate of this session is not supported by Veil',
    { hint: 'use the imported secret in placeholders only, or import the certificate it would issue' },
  );
}

type Refusal = 'missing' | 'not-exported' | 'pin' | 'untrusted';

function mayKnow(exporter: SessionRecord | undefined, viewer: ClientIdentity | undefined): boolean {
  return exporter !== undefined && isAllowedOn(exporter, 'read', viewer);
}

const TRUST_RULE =
  'an export by session name without session_hash reaches only a session whose creator and ' +
  "every identity in its access_policy.update the exporter trusts (the exporter's creator or its " +
  "access_policy.update); a session_hash pin must equal the importing session's current hash";

interface ImportAt {
  importer: string;
  exporter: string;
  secret: string;
}

/**
 * What an audit entry of the importing session may say of an import refusal: the undetailed message, since
 * every reader of that session sees the entry and may not be allowed to read the exporter.
 */
const undetailed = new WeakMap<CasError, string>();

export function auditReasonOf(err: CasError): string {
  return undetailed.get(err) ?? err.message;
}

function importDenied(refusal: Refusal, at: ImportAt, detailed: boolean): CasError {
  const head = `session '${at.importer}' cannot import secret '${at.secret}' from session '${at.exporter}'`;
  const all = `it does not exist there, is not exported to '${at.importer}', or the export does not trust it`;
  const plain = `${head}: ${all} (${TRUST_RULE})`;
  if (!detailed) {
    return new CasError('CAS_IMPORT_DENIED', plain, {
      hint:
        `ask the owner of '${at.exporter}' to export '${at.secret}' to '${at.importer}', ` +
        'created by an identity they trust, or pinned by its session_hash',
    });
  }
  const [why, hint] = reasons(at)[refusal];
  const err = new CasError('CAS_IMPORT_DENIED', `${head}: ${why}`, { hint });
  undetailed.set(err, plain);
  return err;
}

function reasons({ importer, exporter, secret }: ImportAt): Record<Refusal, [string, string]> {
  return {
    missing: [
      `session '${exporter}' does not exist`,
      `create session '${exporter}' (with the secret exported to '${importer}') first`,
    ],
    'not-exported': [
      `'${exporter}' does not export it to '${importer}'`,
      `add 'export: [{session: ${importer}}]' to secret '${secret}' in session '${exporter}'`,
    ],
    pin: [
      `the session_hash pin of the export to '${importer}' is not its current hash`,
      `set session_hash to the current hash of '${importer}' (a pin does not follow updates), or remove it`,
    ],
    untrusted: [
      `the export does not trust '${importer}': ${TRUST_RULE}`,
      `create '${importer}' with an identity '${exporter}' trusts, or pin it with session_hash: <its hash>`,
    ],
  };
}

/**
 * Whether an exporter releases `spec` to the importer, or why not. A pin releases exactly the version it
 * names — whoever created it, since the hash fixes its content (measurements, access policy, and the values
 * of its config-fragments, local and imported, which fill them; secret values only as present) — and does not
 * follow updates: the exporter reviews each new version. Without a pin the name alone would let anyone who
 * creates it first (a squatter) receive the secret, so the importer must be governed by identities the
 * exporter already trusts with its own export list.
 */
function releaseTo(spec: Secret, exporter: SessionRecord, importer: Importer): Refusal | undefined {
  const targets = (spec.export ?? []).filter((t) => targetMatches(t, exporter.name, importer.name));
  if (targets.length === 0) return 'not-exported';
  const pins = targets.flatMap((t) => ('session_hash' in t && t.session_hash !== undefined ? [t.session_hash] : []));
  if (pins.some((pin) => sameHash(pin, importer.hash))) return undefined;
  if (targets.length > pins.length && governedByTrusted(exporter, importer)) return undefined;
  return pins.length === targets.length ? 'pin' : 'untrusted';
}

export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a.toLowerCase());
  const y = Buffer.from(b.toLowerCase());
  return x.length === y.length && timingSafeEqual(x, y);
}

function governedByTrusted(exporter: SessionRecord, importer: Importer): boolean {
  const exporterCreator = identityFromPem(exporter.creator).keyHash;
  const trusted = (keyHash: string) =>
    sameKeyHash(exporterCreator, keyHash) || isAllowedOn(exporter, 'update', keyOnly(keyHash));
  if (!trusted(identityFromPem(importer.creator).keyHash)) return false;
  return entriesFor(importer.policy, 'update').every((entry) => entryTrusted(entry, trusted));
}

/**
 * Whether an update entry of the importer gives power only to identities the exporter trusts. Signers and
 * certificate secrets name no TLS identity the exporter's policy could name, so they are not trusted; a
 * require-all is trusted when one member is (every update needs it), a require-at-least-N when fewer than N of
 * its members are untrusted (they cannot update without a trusted one).
 */
function entryTrusted(entry: AccessEntry, trusted: (keyHash: string) => boolean): boolean {
  switch (entry.kind) {
    case 'none':
    case 'creator':
    case 'nobody':
      return true;
    case 'any':
    case 'signer':
    case 'secret':
      return false;
    case 'key':
      return trusted(entry.keyHash);
    case 'group': {
      const untrusted = entry.members.filter((m) => !entryTrusted(m, trusted)).length;
      return entry.label === 'require-all' ? untrusted < entry.members.length : untrusted < entry.need;
    }
  }
}

/** A TLS identity known only by its key hash: what access checks compare. */
function keyOnly(keyHash: string): ClientIdentity {
  return { certPem: '', keyHash, spki: Buffer.alloc(0) };
}

/** Certificates name their key and issuer inside the exporter; keep those references pointing there. */
function qualify(value: StoredSecret, session: string): StoredSecret {
  if (value.kind !== 'x509' && value.kind !== 'x509-ca') return value;
  const out = { ...value };
  if (value.privateKey) out.privateKey = `${session}${SEP}${value.privateKey}`;
  if (value.issuer) out.issuer = `${session}${SEP}${value.issuer}`;
  return out;
}

/**
 * A qualified name reaches into another session: certificates (public material, needed for chains) always,
 * private keys only when the exporter exports them to the importer — importing a certificate gives its key
 * only if that key was exported too.
 */
export function qualifiedLookup(
  store: SessionReader,
  importer: Importer,
  qualified: string,
  viewer?: ClientIdentity,
): StoredSecret | undefined {
  const [sessionName, secretName] = qualified.split(SEP) as [string, string];
  const record = store.current(sessionName);
  const value = record ? ownSecret(record, secretName) : undefined;
  if (!record || !value) return undefined;
  if (value.kind === 'x509' || value.kind === 'x509-ca') return qualify(value, sessionName);
  const spec = specOf(record, secretName);
  const refusal = spec ? releaseTo(spec, record, importer) : 'not-exported';
  if (refusal !== undefined) {
    const at = { importer: importer.name, exporter: sessionName, secret: secretName };
    throw importDenied(refusal, at, mayKnow(record, viewer));
  }
  return value;
}

function specOf(record: SessionRecord, secret: string): Secret | undefined {
  return sessionOf(record).secrets?.find((s) => s.name === secret);
}

/** A namespace target reaches the sessions below it (`ns/…`), never `ns` itself or a sibling like `ns-evil/…`. */
function targetMatches(target: ExportTarget, exporter: string, importer: string): boolean {
  // A target on another CAS never names a session of this one, whatever its name.
  if (isRemoteTarget(target)) return false;
  if ('namespace' in target && target.namespace !== undefined) {
    return importer.startsWith(`${resolveRelative(exporter, target.namespace)}/`);
  }
  return 'session' in target && resolveRelative(exporter, target.session) === importer;
}

export function isExportedTo(spec: Secret, exporter: string, importer: string): boolean {
  return (spec.export ?? []).some((target) => targetMatches(target, exporter, importer));
}

/** `./child` and `../sibling` are relative to the exporting session's path (session language ≥ 5.8). */
export function resolveRelative(base: string, name: string): string {
  if (!name.startsWith('./') && !name.startsWith('../')) return name;
  const parts = base.split('/');
  for (const part of name.split('/')) {
    if (part === '..') parts.pop();
    else if (part !== '.') parts.push(part);
  }
  return parts.join('/');
}
