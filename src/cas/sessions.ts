import {
  PolicyError,
  parseSession,
  serializeSession,
  sessionHash,
  sessionNamespace,
  type Session,
} from '../policy/index.js';
import { SecretsError, generateSecretSet, type StoredSecret } from '../secrets/index.js';
import { isAllowed } from './access.js';
import { CasError } from './errors.js';
import type { ClientIdentity } from './identity-of.js';
import { sessionOf } from './parsed.js';
import { importSecret, qualifiedLookup } from './secret-view.js';
import { checkCasRules } from './rules.js';
import type { SessionRecord, Store } from './store/index.js';

/** What the session operations need from their surroundings; a clock so tests can move time. */
export interface CasContext {
  store: Store;
  now: () => Date;
}

export interface WriteResult {
  hash: string;
  created: boolean;
}

/** POST /v1/sessions: create (no predecessor) or update (predecessor = the current hash). */
export function writeSession(ctx: CasContext, text: string, client: ClientIdentity): WriteResult {
  const session = parsePolicy(text);
  checkCasRules(session);
  const current = ctx.store.current(session.name);
  if (current) authorizeUpdate(ctx, session, current, client);
  else authorizeCreate(ctx, session, client);
  const record = buildRecord(ctx, session, text, current, client);
  const outcome = ctx.store.append(record, current?.hash ?? null);
  if (!outcome.ok) throw staleWrite(session.name, outcome.current);
  return { hash: record.hash, created: !current };
}

function parsePolicy(text: string): Session {
  try {
    return parseSession(text);
  } catch (err) {
    if (err instanceof PolicyError) {
      throw new CasError('CAS_POLICY_INVALID', err.message, { hint: err.hint, cause: err, issues: err.issues });
    }
    throw err;
  }
}

function authorizeCreate(ctx: CasContext, session: Session, client: ClientIdentity): void {
  if (session.predecessor) {
    throw new CasError('CAS_STALE_PREDECESSOR', `session '${session.name}' does not exist, but the upload names predecessor ${session.predecessor}`, {
      hint: 'remove predecessor to create the session',
    });
  }
  const parentName = sessionNamespace(session.name);
  if (parentName === undefined) return;
  const parent = ctx.store.current(parentName);
  if (!parent) {
    throw new CasError('CAS_NOT_FOUND', `namespace session '${parentName}' does not exist, so '${session.name}' cannot be created in it`, {
      hint: `create session '${parentName}' first (its access_policy.create_sessions decides who may add sessions to it)`,
    });
  }
  if (!isAllowed(sessionOf(parent).access_policy, 'create_sessions', client, parent.creator)) {
    throw new CasError('CAS_FORBIDDEN', `this client may not create sessions in namespace '${parentName}'`, {
      hint: `ask the owner of '${parentName}' to add your certificate or key hash to its access_policy.create_sessions`,
    });
  }
}

function authorizeUpdate(ctx: CasContext, session: Session, current: SessionRecord, client: ClientIdentity): void {
  if (!session.predecessor) {
    throw new CasError('CAS_SESSION_EXISTS', `session '${session.name}' already exists (current hash ${current.hash})`, {
      hint: `to update it, set 'predecessor: ${current.hash}' (veil session update does this for you)`,
    });
  }
  if (session.predecessor !== current.hash) throw staleWrite(session.name, current.hash);
  if (!isAllowed(sessionOf(current).access_policy, 'update', client, current.creator)) {
    throw new CasError('CAS_FORBIDDEN', `this client may not update session '${session.name}'`, {
      hint: "ask the session's owner to add your certificate or key hash to its access_policy.update",
    });
  }
  void ctx;
}

function staleWrite(name: string, current: string | null): CasError {
  return new CasError('CAS_STALE_PREDECESSOR', `the predecessor does not match session '${name}': its current hash is ${current ?? '(none)'}`, {
    hint: 'read the session again, apply your change to that version and upload it with the current hash as predecessor',
  });
}

function buildRecord(
  ctx: CasContext,
  session: Session,
  text: string,
  current: SessionRecord | undefined,
  client: ClientIdentity,
): SessionRecord {
  const secrets = generateSecrets(ctx, session, current);
  return {
    name: session.name,
    hash: sessionHash(session),
    predecessor: session.predecessor ?? null,
    text,
    creator: current?.creator ?? client.certPem,
    createdAt: ctx.now().getTime(),
    secrets: Object.fromEntries(secrets),
  };
}

function generateSecrets(ctx: CasContext, session: Session, current: SessionRecord | undefined): Map<string, StoredSecret> {
  const previous = current
    ? { specs: sessionOf(current).secrets ?? [], values: new Map(Object.entries(current.secrets) as [string, StoredSecret][]) }
    : undefined;
  // Qualified names (`session::key`) are the keys of imported CAs: given only when exported to this session.
  const resolveImport = (name: string): StoredSecret | undefined => {
    if (name.includes('::')) return qualifiedLookup(ctx.store, session.name, name);
    const spec = session.secrets?.find((s) => s.name === name);
    return spec?.import ? importSecret(ctx.store, session.name, spec) : undefined;
  };
  try {
    return generateSecretSet(session.secrets ?? [], previous, { now: ctx.now(), resolveImport });
  } catch (err) {
    if (err instanceof SecretsError) {
      throw new CasError('CAS_SECRET_GENERATION', err.message, { hint: err.hint, cause: err });
    }
    throw err;
  }
}

/** GET /v1/sessions/<name>[?hash=]: the session as stored, with `creator`, and no secret value in it. */
export function readSession(ctx: CasContext, name: string, hash: string | undefined, client: ClientIdentity | undefined): { session: string; hash: string } {
  const current = ctx.store.current(name);
  const record = hash === undefined ? current : ctx.store.version(name, hash);
  if (!current || !record) {
    throw new CasError('CAS_NOT_FOUND', hash ? `session '${name}' has no version ${hash}` : `session '${name}' does not exist`, {
      hint: 'check the name (and hash); sessions are never deleted, so a missing one was never created',
    });
  }
  // The current policy decides who may read any version: revoking read access must reach old versions too.
  if (!isAllowed(sessionOf(current).access_policy, 'read', client, current.creator)) {
    throw new CasError('CAS_FORBIDDEN', `this client may not read session '${name}'`, {
      hint: "ask the session's owner to add your certificate or key hash to its access_policy.read",
    });
  }
  return { session: serializeSession(redacted(sessionOf(record), record.creator)), hash: record.hash };
}

/**
 * Explicit `value:`s are secrets too, so a read-back leaves them out. Re-uploading it as an update keeps
 * ascii and binary values (update rules), so a read-modify-write cycle does not lose them.
 */
function redacted(session: Session, creator: string): Session {
  const secrets = session.secrets?.map(({ value: _value, ...rest }) => rest);
  return { ...session, ...(secrets ? { secrets } : {}), creator } as Session;
}

/**
 * GET /v1/sessions: the sessions this client may read, names and hashes only. The store's read index answers
 * it (kept with each head by append), so a listing decrypts and parses nothing however many sessions exist.
 */
export function listSessions(ctx: CasContext, client: ClientIdentity | undefined): Array<{ name: string; hash: string }> {
  return ctx.store.listReadable(client?.keyHash).map(({ name, hash }) => ({ name, hash }));
}
