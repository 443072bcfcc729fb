import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditEntry } from '../audit/types.js';
import { exportLines } from '../audit/export.js';
import { auditPageSchema, auditQuerySchema, type AuditPage, type AuditQuery } from '../contract/index.js';
import { isAllowedOn } from './access.js';
import { AuditFollowers, DEFAULT_FOLLOW_LIMITS, followWindowMs, type FollowLimits } from './audit-follow.js';
import { CasError } from './errors.js';
import type { ClientIdentity } from './identity-of.js';
import type { CasIdentity } from './identity.js';
import type { ConnectionLimits } from './limits.js';
import { requireClient } from './routes.js';
import type { CasContext } from './sessions.js';
import { answer } from './wire.js';

/**
 * Entries one request looks at, visible or not: a client who may see few entries of a long log gets a page
 * with `next` moved on, not a request that reads the whole log.
 */
export const AUDIT_SCAN_LIMIT = 10_000;
const READ_PAGE = 500;

export interface AuditRouteOptions {
  /** Key hashes (hex SHA-256 of the client certificate's public key) that see every entry and may export. */
  admins: ReadonlySet<string>;
  limits: ConnectionLimits;
  follow?: Partial<FollowLimits>;
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
  const followers = new AuditFollowers(ctx.audit, { ...DEFAULT_FOLLOW_LIMITS, ...options.follow });
  app.addHook('onClose', async () => followers.close());
  const windowMs = followWindowMs(options.limits);
  app.get<{ Querystring: AuditQuery }>('/v1/audit', ROUTE, async (request, reply) => {
    const client = requireClient(request);
    const admin = options.admins.has(client.keyHash);
    const query = request.query;
    if (query.format === 'export') return sendExport(reply, ctx, identity, admin);
    const visible = visibility(ctx, client, admin);
    if (query.wait === 0) return pageOf(ctx, visible, query.after, query.limit);
    const deadline = Date.now() + Math.min(query.wait * 1_000, windowMs);
    return followers.slot(client.keyHash, () =>
      follow(ctx, followers, { visible, deadline, query, signal: closedSignal(request, reply) }),
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

type Visible = (entry: AuditEntry) => Promise<boolean>;

/**
 * An administrator sees every entry; a client the entries about sessions whose current policy lets it read
 * them, and nothing CAS-wide (start, stop, keys, backups) nor about sessions that do not exist.
 */
function visibility(ctx: CasContext, client: ClientIdentity, admin: boolean): Visible {
  if (admin) return async () => true;
  const decided = new Map<string, Promise<boolean>>();
  const mayRead = (name: string) => {
    let known = decided.get(name);
    if (!known) {
      known = ctx.store.current(name).then((record) => record !== undefined && isAllowedOn(record, 'read', client));
      decided.set(name, known);
    }
    return known;
  };
  return async (entry) => {
    const session = 'session' in entry.event ? entry.event.session : undefined;
    return session === undefined ? false : mayRead(session);
  };
}

async function pageOf(ctx: CasContext, visible: Visible, after: number, limit: number): Promise<AuditPage> {
  const entries: AuditEntry[] = [];
  let next = after;
  for (let scanned = 0; entries.length < limit && scanned < AUDIT_SCAN_LIMIT; ) {
    const page = await ctx.audit.read(next, Math.min(READ_PAGE, AUDIT_SCAN_LIMIT - scanned));
    if (page.length === 0) break;
    for (const entry of page) {
      scanned++;
      next = entry.seq;
      if (await visible(entry)) entries.push(entry);
      if (entries.length === limit) break;
    }
  }
  return { entries, next };
}

interface Follow {
  visible: Visible;
  deadline: number;
  query: AuditQuery;
  signal: AbortSignal;
}

/** Answers as soon as a visible entry after `after` exists, or with none (and `next` moved on) at the deadline. */
async function follow(ctx: CasContext, followers: AuditFollowers, f: Follow): Promise<AuditPage> {
  let after = f.query.after;
  for (;;) {
    const page = await pageOf(ctx, f.visible, after, f.query.limit);
    if (page.entries.length > 0 || Date.now() >= f.deadline || f.signal.aborted) return page;
    // Entries scanned but not visible are not scanned again.
    after = page.next;
    if ((await ctx.audit.head()).seq > after) continue;
    await followers.until(after, f.deadline, f.signal);
  }
}

/** Aborts when the client's connection closes, so a gone follower frees its slot at once. */
function closedSignal(request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  const socket = request.raw.socket;
  const abort = () => controller.abort();
  socket.once('close', abort);
  reply.raw.once('finish', () => socket.off('close', abort));
  return controller.signal;
}
