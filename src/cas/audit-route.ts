import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditEntry } from '../audit/types.js';
import { exportLines } from '../audit/export.js';
import { auditPageSchema, auditQuerySchema, type AuditPage, type AuditQuery } from '../contract/index.js';
import { isAllowedOn } from './access.js';
import {
  AuditFollowers,
  DEFAULT_FOLLOW_LIMITS,
  followWindowMs,
  type FollowerKind,
  type FollowLimits,
} from './audit-follow.js';
import { CasError } from './errors.js';
import type { ClientIdentity } from './identity-of.js';
import type { CasIdentity } from './identity.js';
import type { ConnectionLimits } from './limits.js';
import type { SlotLedger } from './ledger.js';
import { requireClient } from './routes.js';
import type { CasContext } from './sessions.js';
import { answer } from './wire.js';

/**
 * Entries one request looks at, visible or not: a client who may see few entries of a long log gets a page
 * with `next` moved on, not a request that reads the whole log.
 */
export const AUDIT_SCAN_LIMIT = 10_000;
/**
 * Distinct sessions one request asks the store about (each one's current read policy decides): past it the
 * request answers with what it found and `next`, so entries naming many sessions cost a bounded amount.
 */
export const AUDIT_LOOKUP_LIMIT = 256;
const READ_PAGE = 500;

/** What one request has spent, across every pass of a follow: entries scanned and sessions looked up. */
export interface AuditBudget {
  scanned: number;
  lookups: number;
}

export interface AuditRouteOptions {
  /** Key hashes (hex SHA-256 of the client certificate's public key) that see every entry and may export. */
  admins: ReadonlySet<string>;
  limits: ConnectionLimits;
  follow?: Partial<FollowLimits>;
  /** Where the per-client follow slots are counted (cluster-wide with several workers). */
  ledger?: SlotLedger;
}

/** Administrators by key hash; anything else is refused at start, so a typo never silently admits nobody. */
export function auditAdminSet(keyHashes: readonly string[]): ReadonlySet<string> {
  for (const k of keyHashes) {
    if (!/^[0-9a-fA-F]{64}$/.test(k)) {
      throw new CasError('CAS_BAD_REQUEST', `audit administrator '${k.slice(0, 80)}' is not a key hash`, {
        hint: 'give the 64 hex digits `veil self show-key-hash` prints for the administrator',
      });
    }
  }
  return new Set(keyHashes.map((k) => k.toLowerCase()));
}

const ROUTE = { schema: { querystring: auditQuerySchema, response: { 200: answer(auditPageSchema) } } };

export function registerAuditRoute(
  app: FastifyInstance,
  ctx: CasContext,
  identity: Pick<CasIdentity, 'fingerprint' | 'caCertPem'>,
  options: AuditRouteOptions,
): void {
  const followers = new AuditFollowers(ctx.audit, { ...DEFAULT_FOLLOW_LIMITS, ...options.follow }, options.ledger);
  app.addHook('onClose', async () => followers.close());
  const windowMs = followWindowMs(options.limits);
  app.get<{ Querystring: AuditQuery }>('/v1/audit', ROUTE, async (request, reply) => {
    const client = requireClient(request);
    const admin = options.admins.has(client.keyHash);
    const query = request.query;
    if (query.format === 'export') return sendExport(reply, ctx, identity, admin);
    const budget = { scanned: 0, lookups: 0 };
    const visible = visibility(ctx, client, admin, budget);
    if (query.wait === 0) return (await pageOf(ctx, visible, query.after, query.limit, budget)).page;
    const deadline = Date.now() + Math.min(query.wait * 1_000, windowMs);
    // Before any await (the store read, the ledger's answer): a client that hangs up meanwhile must still be
    // seen, or its follow would hold its slot until the deadline.
    const signal = closedSignal(request, reply);
    const kind = admin ? 'admin' : await followerKind(ctx, client);
    return followers.slot(
      client.keyHash,
      () => follow(ctx, followers, { visible, budget, deadline, query, signal }),
      kind,
    );
  });
}

function sendExport(
  reply: FastifyReply,
  ctx: CasContext,
  identity: Pick<CasIdentity, 'fingerprint' | 'caCertPem'>,
  admin: boolean,
): FastifyReply {
  if (!admin) {
    throw new CasError('CAS_FORBIDDEN', 'only an audit administrator may export the whole audit log', {
      hint: "start the CAS with --audit-admin <key hash> (veil self show-key-hash prints yours), or omit 'format'",
    });
  }
  const signer = ctx.audit.signer;
  if (!signer) {
    throw new CasError('CAS_AUDIT_UNAVAILABLE', 'this audit log has no key to sign an export with', {
      hint: 'export from a CAS started with its store (veil cas serve)',
    });
  }
  const lines = exportLines(ctx.audit, { caFingerprint: identity.fingerprint, signer, now: ctx.now() });
  return reply.type('application/x-ndjson').send(Readable.from(lines));
}

/** A client that may read no session sees nothing: its followers share a few slots (FollowLimits.strangers). */
async function followerKind(ctx: CasContext, client: ClientIdentity): Promise<FollowerKind> {
  return (await ctx.store.listReadable(client.keyHash)).length > 0 ? 'reader' : 'stranger';
}

/** Whether a client sees an entry; undefined when deciding would take a lookup past AUDIT_LOOKUP_LIMIT. */
export type Visible = (entry: AuditEntry) => Promise<boolean | undefined>;

/**
 * An administrator sees every entry; a client the entries about sessions whose current policy lets it read
 * them, and nothing CAS-wide (start, stop, keys, backups) nor about sessions that do not exist.
 */
export function visibility(
  ctx: Pick<CasContext, 'store'>,
  client: ClientIdentity,
  admin: boolean,
  budget: AuditBudget,
): Visible {
  if (admin) return async () => true;
  const decided = new Map<string, Promise<boolean>>();
  return async (entry) => {
    const name = 'session' in entry.event ? entry.event.session : undefined;
    if (name === undefined) return false;
    let known = decided.get(name);
    if (!known) {
      if (budget.lookups >= AUDIT_LOOKUP_LIMIT) return undefined;
      budget.lookups++;
      known = ctx.store.current(name).then((record) => record !== undefined && isAllowedOn(record, 'read', client));
      decided.set(name, known);
    }
    return known;
  };
}

/** One page; `spent` when the request's budget ran out (the client asks again from `next`). */
export async function pageOf(
  ctx: Pick<CasContext, 'audit'>,
  visible: Visible,
  after: number,
  limit: number,
  budget: AuditBudget,
): Promise<{ page: AuditPage; spent: boolean }> {
  const entries: AuditEntry[] = [];
  let next = after;
  while (entries.length < limit) {
    if (budget.scanned >= AUDIT_SCAN_LIMIT) return { page: { entries, next }, spent: true };
    const read = await ctx.audit.read(next, Math.min(READ_PAGE, AUDIT_SCAN_LIMIT - budget.scanned));
    if (read.length === 0) break;
    for (const entry of read) {
      const seen = await visible(entry);
      if (seen === undefined) return { page: { entries, next }, spent: true };
      budget.scanned++;
      next = entry.seq;
      if (seen) entries.push(entry);
      if (entries.length === limit) break;
    }
    // A long scan lets other requests run between its pages.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { page: { entries, next }, spent: false };
}

export interface Follow {
  visible: Visible;
  budget: AuditBudget;
  deadline: number;
  query: AuditQuery;
  signal: AbortSignal;
}

/** Answers as soon as a visible entry after `after` exists, or with none (and `next` moved on) at the deadline. */
export async function follow(ctx: Pick<CasContext, 'audit'>, followers: AuditFollowers, f: Follow): Promise<AuditPage> {
  let after = f.query.after;
  for (;;) {
    const { page, spent } = await pageOf(ctx, f.visible, after, f.query.limit, f.budget);
    if (page.entries.length > 0 || spent || Date.now() >= f.deadline || f.signal.aborted) return page;
    // Entries scanned but not visible are not scanned again.
    after = page.next;
    if ((await ctx.audit.head()).seq > after) continue;
    await followers.until(after, f.deadline, f.signal);
  }
}

/** Aborts when the client's connection closes, so a gone follower frees its slot at once. */
export function closedSignal(request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  const socket = request.raw.socket;
  const abort = () => controller.abort();
  if (socket.destroyed) abort();
  socket.once('close', abort);
  reply.raw.once('finish', () => socket.off('close', abort));
  return controller.signal;
}
