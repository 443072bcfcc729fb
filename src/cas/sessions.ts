import {
  REDACTED,
  parseWrittenSession,
  redactSession,
  resolveSession,
  restoreRedacted,
  serializeSession,
  sessionHash,
  sessionNamespace,
  type Session,
  type WrittenSession,
} from '../policy/index.js';
import { SecretsError, generateSecretSet, type StoredSecret } from '../secrets/index.js';
import { moreIssues, reportedIssues } from '../issues.js';
import type { UploadSignature } from '../contract/index.js';
import { entriesFor, isAllowedOn, ownerOf, type Permission } from './access.js';
import { namedSigners, shortfall } from './governance.js';
import { verifiedSigners } from './signatures.js';
import { CasError } from './errors.js';
import { identityFromPem, type ClientIdentity } from './identity-of.js';
import { asPolicyError, importFragments, importedValues, policyBeforeImports } from './fragment-imports.js';
import { importedFragmentOf, sessionOf, writtenOf } from './parsed.js';
import { auditReasonOf, importSecret, qualifiedLookup, type Importer } from './secret-view.js';
import { checkCasRules } from './rules.js';
import { checkRemoteCas, type RemoteCasList } from './remote-allow.js';
import type { SessionRecord, Store } from './store/index.js';
import { loadSessions, sessionsRead, type SessionReader } from './session-reader.js';
import type { AuditLog } from '../audit/types.js';
import { RECORDED_WRITE_REFUSALS, recordOrFail, recordRefusal } from './audit-events.js';
import { appendRecorded, judgedByMoved, signaturesMissing, staleWrite, updateForbidden } from './session-writes.js';

/** What the session operations need from their surroundings; a clock so tests can move time. */
export interface CasContext {
  store: Store;
  now: () => Date;
  /** Where every operation is recorded before it is answered (README "Audit log"). */
  audit: AuditLog;
  /** The other CAS remote imports may name; without it, a session with one is refused at upload. */
  remoteCas?: RemoteCasList;
}

export interface WriteResult {
  hash: string;
  created: boolean;
}

/** One upload: the session text exactly as received, and the signatures sent with it (governance). */
export interface Upload {
  text: string;
  signatures: readonly UploadSignature[];
  /** Decrypted from an encrypted upload: a refusal's entry keeps its code only, never words from the text. */
  sealed?: boolean;
}

/** writeUpload without signatures (a plain YAML body). */
export function writeSession(ctx: CasContext, text: string, client: ClientIdentity): Promise<WriteResult> {
  return writeUpload(ctx, { text, signatures: [] }, client);
}

/**
 * POST /v1/sessions: an upload from TLS identity `client` creates (no predecessor) or updates (predecessor = the
 * current hash) a session. Every way of uploading (YAML, the JSON envelope with signatures, decrypted uploads)
 * comes through here. Secrets are generated asynchronously, so another write may land meanwhile: the store's
 * append compares the predecessor again.
 */
export async function writeUpload(ctx: CasContext, upload: Upload, client: ClientIdentity): Promise<WriteResult> {
  const uploaded = parsePolicy(upload.text);
  checkCasRules(uploaded);
  const actor = client.keyHash;
  try {
    return await writeParsed(ctx, uploaded, upload, client);
  } catch (err) {
    if (err instanceof CasError && RECORDED_WRITE_REFUSALS.has(err.code)) {
      const refused = { type: 'session.refused', session: uploaded.name, actor, code: err.code } as const;
      const reason = upload.sealed ? `an encrypted upload refused (${err.code})` : auditReasonOf(err);
      await recordRefusal(ctx, actor, { ...refused, reason });
    }
    throw err;
  }
}

async function writeParsed(
  ctx: CasContext,
  uploaded: WrittenSession,
  upload: Upload,
  client: ClientIdentity,
): Promise<WriteResult> {
  const { text } = upload;
  const sessions = await loadSessions(ctx.store, sessionsRead(uploaded, parentNames(uploaded)));
  const current = sessions.current(uploaded.name);
  const decider = current ?? parentOf(sessions, uploaded);
  const creator = uploaded.predecessor ? undefined : client.keyHash;
  const signers = decider ? await signersFor(decider, permissionOn(current), uploaded.name, upload, creator) : [];
  if (current) authorizeUpdate(uploaded, current, client, signers);
  else authorizeCreate(uploaded, decider, client, signers);
  // After authorization, so that only those who may write the session learn which CAS are listed.
  checkRemoteCas(ctx.remoteCas, uploaded.secrets);
  const { session, stored } = keepRedacted(uploaded, text, current);
  const record = await buildRecord({ ...ctx, sessions }, session, stored, current, client);
  const old = current?.hash ?? null;
  const event = { type: current ? 'session.updated' : 'session.created', actor: client.keyHash } as const;
  // Judged by the sessions read above (namespace, import sources): the store compares their heads when it writes.
  const outcome = await appendRecorded(
    ctx,
    { ...event, session: record.name, old_hash: old, new_hash: record.hash },
    (make) => ctx.store.append(record, old, sessions.loaded(), make),
  );
  if (!outcome.ok && outcome.moved !== undefined) throw judgedByMoved(outcome.moved);
  if (!outcome.ok) throw await lostRace(ctx, session.name, client, signers);
  return { hash: record.hash, created: !current };
}

const permissionOn = (current: SessionRecord | undefined): Permission => (current ? 'update' : 'create_sessions');

/**
 * The signers, among those the deciding list names, whose signatures over this upload verify. A text without
 * predecessor (a create) is signed for its uploader, `creator`: the key hash of the client that becomes CREATOR.
 */
function signersFor(
  decider: SessionRecord,
  permission: Permission,
  name: string,
  upload: Upload,
  creator: string | undefined,
): Promise<string[]> {
  const named = namedSigners(entriesFor(sessionOf(decider).access_policy, permission));
  return verifiedSigners(name, upload.text, upload.signatures, named, creator);
}

/** The namespace session that decides whether `session` may be created, when it lives in one. */
function parentOf(sessions: SessionReader, session: { name: string }): SessionRecord | undefined {
  const parentName = sessionNamespace(session.name);
  return parentName === undefined ? undefined : sessions.current(parentName);
}

function parentNames(session: { name: string }): string[] {
  const parentName = sessionNamespace(session.name);
  return parentName === undefined ? [] : [parentName];
}

/**
 * A read-back shows REDACTED in every secret-bearing field; uploading it as an update keeps the stored
 * values there (read-modify-write). The stored text then carries them, since attestation renders from it.
 */
function keepRedacted(
  uploaded: WrittenSession,
  text: string,
  current: SessionRecord | undefined,
): { session: WrittenSession; stored: string } {
  const { session, kept, missing } = restoreRedacted(uploaded, current ? writtenOf(current) : undefined);
  if (missing.length > 0) {
    const where = current ? 'the current version' : 'a new session';
    // One message whether nothing is stored there or the kind changed: the refusal tells nothing of a value.
    const message = `is '${REDACTED}', but ${where} has no value of this kind, key_type and size there to keep`;
    const issues = missing.map((path) => ({ path, message }));
    const lines = [...reportedIssues(issues).map((x) => `${x.path}: ${x.message}`), ...moreIssues(issues)];
    throw new CasError('CAS_POLICY_INVALID', lines.join('\n'), {
      hint:
        `'${REDACTED}' (from a read-back) keeps the stored value on update if the secret's kind, key_type, size, ` +
        'private_key and import stay the same; give the value, or remove the field',
      issues,
    });
  }
  if (kept === 0) return { session, stored: text };
  const { creator: _creator, ...content } = session;
  return { session, stored: serializeSession(content as WrittenSession) };
}

function parsePolicy(text: string): WrittenSession {
  return asPolicyError(() => parseWrittenSession(text));
}

function authorizeCreate(
  session: WrittenSession,
  parent: SessionRecord | undefined,
  client: ClientIdentity,
  signers: readonly string[],
): void {
  if (session.predecessor) {
    throw new CasError(
      'CAS_STALE_PREDECESSOR',
      `session '${session.name}' does not exist, but the upload names predecessor ${session.predecessor}`,
      {
        hint: 'remove predecessor to create the session',
      },
    );
  }
  const parentName = sessionNamespace(session.name);
  if (parentName === undefined) return;
  if (!parent) {
    throw new CasError(
      'CAS_NOT_FOUND',
      `namespace session '${parentName}' does not exist, so '${session.name}' cannot be created in it`,
      {
        hint: `create session '${parentName}' first (its access_policy.create_sessions decides who may add sessions to it)`,
      },
    );
  }
  if (!isAllowedOn(parent, 'create_sessions', client, signers)) {
    const missing = governanceShortfall(parent, 'create_sessions', client, signers);
    if (missing) throw signaturesMissing(`creating '${session.name}' in namespace '${parentName}'`, missing);
    throw new CasError('CAS_FORBIDDEN', `this client may not create sessions in namespace '${parentName}'`, {
      hint: `ask the owner of '${parentName}' to add your certificate or key hash to its access_policy.create_sessions`,
    });
  }
}

/** Permission first: the current hash is told only to a client that may update the session. */
function authorizeUpdate(
  session: WrittenSession,
  current: SessionRecord,
  client: ClientIdentity,
  signers: readonly string[],
): void {
  if (!isAllowedOn(current, 'update', client, signers)) {
    const missing = governanceShortfall(current, 'update', client, signers);
    if (missing) throw signaturesMissing(`updating session '${session.name}'`, missing);
    throw updateForbidden(session.name);
  }
  if (!session.predecessor) {
    throw new CasError(
      'CAS_SESSION_EXISTS',
      `session '${session.name}' already exists (current hash ${current.hash})`,
      {
        hint: `to update it, set 'predecessor: ${current.hash}' (veil session update does this for you)`,
      },
    );
  }
  if (session.predecessor !== current.hash) throw staleWrite(session.name, current.hash);
}

function governanceShortfall(
  decider: SessionRecord,
  permission: Permission,
  client: ClientIdentity,
  signers: readonly string[],
): string | undefined {
  const entries = entriesFor(sessionOf(decider).access_policy, permission);
  return shortfall(entries, { client, signers }, ownerOf(decider.creator, decider.secrets));
}

function mayUpdate(current: SessionRecord, client: ClientIdentity, signers: readonly string[]): boolean {
  return isAllowedOn(current, 'update', client, signers);
}

/** Another write came first: its hash is news only for a client that may update what is there now. */
async function lostRace(
  ctx: CasContext,
  name: string,
  client: ClientIdentity,
  signers: readonly string[],
): Promise<CasError> {
  const now = await ctx.store.current(name);
  if (now && !mayUpdate(now, client, signers)) return updateForbidden(name);
  return staleWrite(name, now?.hash ?? null);
}

/** The context of one write: the sessions it reads, loaded before it is judged. */
type WriteContext = CasContext & { sessions: SessionReader };

async function buildRecord(
  ctx: WriteContext,
  written: WrittenSession,
  text: string,
  current: SessionRecord | undefined,
  client: ClientIdentity,
): Promise<SessionRecord> {
  const creator = current?.creator ?? client.certPem;
  const creatorKeyHash = current ? identityFromPem(current.creator).keyHash : client.keyHash;
  // Fragment imports are judged by the hash of the text (local fragments' values in it): the hash covering
  // imported values cannot exist before they are fetched, and a fragment export releases policy, not a secret.
  const textHash = sessionHash(written, creatorKeyHash);
  const unresolved: Importer = { name: written.name, hash: textHash, creator, policy: policyBeforeImports(written) };
  const fragments = importFragments(ctx, written, unresolved, client);
  const imported = (name: string) => importedFragmentOf(fragments, name);
  const session = asPolicyError(() => resolveSession(written, { unknownImports: 'refuse', imported }));
  // The stored hash covers the imported values too: a pin on it fixes what they fill, as it does local ones.
  const hash = sessionHash(written, creatorKeyHash, importedValues(written, imported));
  const importer: Importer = { ...unresolved, hash, policy: session.access_policy };
  const secrets = await generateSecrets(ctx, session, current, importer, client);
  return {
    name: session.name,
    hash,
    predecessor: session.predecessor ?? null,
    text,
    creator,
    createdAt: ctx.now().getTime(),
    secrets: { ...Object.fromEntries(secrets), ...fragments },
  };
}

async function generateSecrets(
  ctx: WriteContext,
  session: Session,
  current: SessionRecord | undefined,
  importer: Importer,
  client: ClientIdentity,
): Promise<Map<string, StoredSecret>> {
  const previous = current
    ? {
        specs: sessionOf(current).secrets ?? [],
        values: new Map(Object.entries(current.secrets) as [string, StoredSecret][]),
      }
    : undefined;
  // Qualified names (`session::key`) are the keys of imported CAs: given only when exported to this session.
  const resolveImport = (name: string): StoredSecret | undefined => {
    if (name.includes('::')) return qualifiedLookup(ctx.sessions, importer, name, client);
    const spec = session.secrets?.find((s) => s.name === name);
    return spec?.import ? importSecret(ctx.sessions, importer, spec, client) : undefined;
  };
  try {
    return await generateSecretSet(session.secrets ?? [], previous, { now: ctx.now(), resolveImport });
  } catch (err) {
    if (err instanceof SecretsError) {
      throw new CasError('CAS_SECRET_GENERATION', err.message, { hint: err.hint, cause: err });
    }
    throw err;
  }
}

/** GET /v1/sessions/<name>[?hash=]: the session as stored, with `creator`, and no secret value in it. */
export async function readSession(
  ctx: CasContext,
  name: string,
  hash: string | undefined,
  client: ClientIdentity | undefined,
): Promise<{ session: string; hash: string }> {
  const current = await ctx.store.current(name);
  if (!current) {
    throw new CasError('CAS_NOT_FOUND', `session '${name}' does not exist`, {
      hint: 'check the name; sessions are never deleted, so a missing one was never created',
    });
  }
  // The current policy decides who may read any version: revoking read access must reach old versions too.
  // It is checked before looking the version up, so which hashes exist is told to readers only.
  if (!isAllowedOn(current, 'read', client)) {
    throw new CasError('CAS_FORBIDDEN', `this client may not read session '${name}'`, {
      hint: "ask the session's owner to add your certificate or key hash to its access_policy.read",
    });
  }
  const record = hash === undefined ? current : await ctx.store.version(name, hash);
  if (!record) {
    throw new CasError('CAS_NOT_FOUND', `session '${name}' has no version ${hash}`, {
      hint: 'check the hash; every version stays readable, so a missing one never existed',
    });
  }
  const answer = { session: serializeSession(readBack(writtenOf(record), record.creator)), hash: record.hash };
  await recordOrFail(ctx.audit, {
    type: 'session.read',
    session: name,
    actor: client?.keyHash ?? null,
    hash: record.hash,
  });
  return answer;
}

/**
 * Every secret-bearing field the schema marks comes back as REDACTED; uploading the read-back as an update
 * keeps the stored values there (keepRedacted), so a read-modify-write cycle loses nothing.
 */
function readBack(session: WrittenSession, creator: string): WrittenSession {
  return { ...redactSession(session), creator };
}

/**
 * GET /v1/sessions: the sessions this client may read, names and hashes only. The store's read index answers
 * it (kept with each head by append), so a listing decrypts and parses nothing however many sessions exist.
 */
export async function listSessions(
  ctx: CasContext,
  client: ClientIdentity | undefined,
): Promise<Array<{ name: string; hash: string }>> {
  return (await ctx.store.listReadable(client?.keyHash)).map(({ name, hash }) => ({ name, hash }));
}
