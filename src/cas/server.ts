import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { SESSION_LIMITS } from '../policy/index.js';
import type { CollateralProvider, EvidenceVerifier } from '../attestation/types.js';
import type { AttestationContext } from './attest.js';
import { CasError } from './errors.js';
import {
  capConnections,
  checkingIntervalMs,
  connectionLimits,
  earlyWriteRefusal,
  limitWrites,
  type ConnectionLimits,
} from './limits.js';
import type { NonceLimits } from './nonces.js';
import { LocalLedger, type SlotLedger } from './ledger.js';
import { selfAttestation, type SelfEvidenceSource } from './self-attestation.js';
import { loadIdentity, type CasIdentity } from './identity.js';
import { loadSessionRecipient } from './session-key.js';
import type { SessionRecipient } from '../encryption/index.js';
import { CAS_VERSION, registerRoutes } from './routes.js';
import { randomBytes } from 'node:crypto';
import type { AuditLog } from '../audit/types.js';
import { auditProblemOf, openAuditLog } from './audit-log.js';
import type { CasAuditLog } from '../audit/types.js';
import { auditUnavailable } from './audit-events.js';
import { auditAdminSet, registerAuditRoute } from './audit-route.js';
import type { FollowLimits } from './audit-follow.js';
import { remoteFetcher, type RemoteLimits } from './remote-import.js';
import { remoteCasList, type RemoteSource } from './remote-allow.js';
import { zodValidatorCompiler } from './wire.js';
import type { CasContext } from './sessions.js';
import { StoreError, type PostgresLimits, type Store } from './store/index.js';
import { openStore, storeBusy, storeUnavailable } from './store-choice.js';
import { CasMetrics, registerMetrics, timedStore } from './metrics.js';
import { registerHealth } from './health.js';
import { LOG_SERIALIZERS, logRouted, requestIdOf } from './logging.js';

export interface CasServerOptions {
  host: string;
  port: number;
  dataDir: string;
  masterKeyFile?: string;
  masterKeyEnv?: string;
  /** postgres://USER@HOST:PORT/DB: the store shared by several replicas; the embedded SQLite in dataDir without. */
  store?: string | undefined;
  /** The database password when the URL has none (PGPASSWORD). */
  storePassword?: string | undefined;
  storeLimits?: Partial<PostgresLimits>;
  /** Extra DNS names or addresses the TLS certificate must cover (the listen host is always in it). */
  names?: string[];
  bodyLimit?: number;
  logLevel?: string;
  now?: () => Date;
  /** Judges hardware evidence; by default Veil's verifiers with `collateral`. */
  verifier?: EvidenceVerifier;
  /** TCB info, QE identities, CRLs, VCEKs: without them SGX/TDX evidence is refused (TCB status unknown). */
  collateral?: CollateralProvider | undefined;
  /** Evidence about the CAS itself, when it runs in a TEE (GET /v1/attestation). */
  selfEvidence?: SelfEvidenceSource;
  /** Timeouts and connection caps (README "Limits"); unset ones take the defaults. */
  limits?: Partial<ConnectionLimits>;
  /** Caps on spent attestation nonces, per client key and in all. */
  nonceLimits?: Partial<NonceLimits>;
  /** Deadline, answer size and fetches in flight for imports from other CAS (README "Policies on several CAS"). */
  remoteLimits?: Partial<RemoteLimits>;
  /** The other CAS imports may name (address and CA fingerprint both); none by default, so none is dialled. */
  remoteCas?: readonly RemoteSource[];
  /** Where the JSON log lines go (tests read them); stdout by default. */
  logStream?: { write(line: string): void };
  /** Client key hashes that see the whole audit log and may export it (README "Audit log"). */
  auditAdmins?: readonly string[];
  /** Caps on followers of GET /v1/audit. */
  followLimits?: Partial<FollowLimits>;
  /**
   * Where the caps per client address and per client key are counted: this process's own by default; with
   * `veil cas serve --workers N`, the primary's for every worker (IpcLedger).
   */
  ledger?: SlotLedger;
  /** This process's slot (1-based) among the workers of `veil cas serve --workers N`; /healthz names it. */
  worker?: number | undefined;
}

export interface RunningCas {
  url: string;
  host: string;
  port: number;
  identity: CasIdentity;
  close(): Promise<void>;
}

const DEFAULT_BODY_LIMIT = SESSION_LIMITS.bodyBytes;

export async function startCas(options: CasServerOptions): Promise<RunningCas> {
  const store = await openStore(options);
  const now = options.now ?? (() => new Date());
  const names = [...new Set([options.host, 'localhost', '127.0.0.1', '::1', 'cas', ...(options.names ?? [])])];
  const audit = await openAuditLog(store, now).catch(async (err: unknown) => {
    await store.close();
    throw err;
  });
  const shut = async () => {
    await audit.close();
    await store.close();
  };
  const { identity, sessionRecipient } = await keysOf(store, names, now(), audit).catch(async (err: unknown) => {
    await shut();
    throw err;
  });
  const verifier = options.verifier ?? lazyVerifier(options.collateral);
  const remoteCas = remoteCasList(options.remoteCas);
  const remote = remoteFetcher(identity, options.remoteLimits, remoteCas);
  const ctx = { store, now, audit, verifier, remote, remoteCas };
  const app = buildApp(ctx, identity, { ...options, sessionRecipient });
  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (err) {
    await shut();
    throw new CasError(
      'CAS_INTERNAL',
      `cannot listen on ${options.host}:${options.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      {
        hint: 'another process uses that address; pick another with --listen HOST:PORT (port 0 picks a free one)',
        cause: err,
      },
    );
  }
  const lifecycle = lifecycleOf(audit, identity.fingerprint);
  await lifecycle('cas.started').catch(async (err: unknown) => {
    await app.close();
    await shut();
    throw auditUnavailable('cas.started', err);
  });
  const port = portOf(app);
  return {
    url: `https://${urlHost(options.host)}:${port}`,
    host: options.host,
    port,
    identity,
    close: async () => {
      await app.close();
      // After the last request was answered, before the store goes: the log's last word from this process.
      await lifecycle('cas.stopped').catch((err: unknown) =>
        app.log.error({ err: (err as Error).message }, 'cas.stopped not recorded in the audit log'),
      );
      await shut();
    },
  };
}

/**
 * Veil's hardware verifiers, loaded at the first hardware evidence (that one waits for them): they bring pkijs
 * and every TEE's parsers, which a restart need not load before it is ready, and which a CAS attesting only
 * simulation evidence never needs. Every evidence is still judged by them, as createVerifier's are.
 */
function lazyVerifier(collateral: CollateralProvider | undefined): EvidenceVerifier {
  let loaded: Promise<EvidenceVerifier> | undefined;
  const load = () => (loaded ??= import('../attestation/hardware.js').then((m) => m.createVerifier({ collateral })));
  return { verify: async (evidence, now) => (await load()).verify(evidence, now) };
}

/** `cas.started` / `cas.stopped` of this process: a random replica ID tells the processes of one store apart. */
function lifecycleOf(audit: AuditLog, fingerprint: string) {
  const replica = randomBytes(8).toString('hex');
  return async (type: 'cas.started' | 'cas.stopped') =>
    void (await audit.record({ type, replica, version: CAS_VERSION, ca_fingerprint: fingerprint }));
}

/** The CA and the session-encryption key, shared by every replica of one store; their creation is recorded. */
async function keysOf(store: Store, names: string[], now: Date, audit: CasAuditLog) {
  const created = (key: 'ca' | 'session-encryption') => async (fingerprint: string) =>
    void (await audit.record({ type: 'key.created', key, fingerprint }));
  const identity = await loadIdentity(
    store,
    names.filter((n) => n !== '0.0.0.0' && n !== '::'),
    now,
    created('ca'),
  );
  const sessionRecipient = await loadSessionRecipient(store, identity.fingerprint, created('session-encryption'));
  return { identity, sessionRecipient };
}

type AppOptions = Pick<
  CasServerOptions,
  | 'bodyLimit'
  | 'logLevel'
  | 'logStream'
  | 'selfEvidence'
  | 'limits'
  | 'nonceLimits'
  | 'auditAdmins'
  | 'followLimits'
  | 'worker'
  | 'ledger'
> & {
  /** The session-encryption key: without it, no GET /v1/identity and no PUT /v1/encrypted_sessions. */
  sessionRecipient?: SessionRecipient;
};

export function buildApp(
  ctx: CasContext & AttestationContext,
  identity: CasIdentity,
  options: AppOptions,
): FastifyInstance {
  const limits = connectionLimits(options.limits);
  const metrics = new CasMetrics();
  const timed = { ...ctx, store: timedStore(ctx.store, metrics) };
  const app = Fastify({
    https: {
      key: identity.tlsKeyPem,
      cert: identity.tlsCertPem,
      requestCert: true,
      rejectUnauthorized: false,
      handshakeTimeout: limits.handshakeTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      connectionsCheckingInterval: checkingIntervalMs(limits),
    },
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs,
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // JSON lines; request lines carry method, path (no query), status and reqId — never bodies or other
    // headers, which may hold explicit secret values (README "Metrics, health and logs").
    logger: {
      level: options.logLevel ?? 'warn',
      serializers: LOG_SERIALIZERS,
      ...(options.logStream ? { stream: options.logStream } : {}),
    },
    genReqId: requestIdOf,
    // Errors the router and the HTTP parser find before any route runs answer in the CAS's format too.
    frameworkErrors: (error, _request, reply) => void sendError(reply as unknown as FastifyReply, toCasError(error)),
    clientErrorHandler: answerClientError(limits, metrics),
  });
  app.setValidatorCompiler(zodValidatorCompiler);
  // Sessions are YAML whatever the client labels them (curl --data-binary says form-urlencoded).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.setErrorHandler((error, request, reply) => {
    const casError = toCasError(error);
    metrics.noteError(request, casError);
    if (casError.status >= 500)
      request.log.error({ code: casError.code, err: (error as Error).message }, 'request failed');
    return sendError(reply, casError);
  });
  const routes: Array<{ method: string; url: string }> = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = allowedMethods(routes, path);
    if (allowed.length === 0) return sendError(reply, notFound(`${request.method} ${path}`));
    const err = new CasError('CAS_METHOD_NOT_ALLOWED', `${path} does not answer ${request.method}`, {
      hint: `use ${allowed.join(' or ')}`,
    });
    return sendError(reply.header('allow', allowed.join(', ')), err);
  });
  const ledger = options.ledger ?? new LocalLedger();
  capConnections(app.server, limits, ledger);
  app.addHook('onRequest', async (request, reply) => void reply.header('x-request-id', request.id));
  app.addHook('preHandler', logRouted);
  const writes = limitWrites(limits, ledger);
  app.addHook('onRequest', earlyWriteRefusal(writes));
  const self = selfAttestation(identity, options.selfEvidence);
  registerMetrics(app, metrics);
  const keysLoaded = () => Boolean(identity.tlsKeyPem && identity.caCertPem);
  registerHealth(app, timed.store, keysLoaded, () => auditProblemOf(ctx.audit), options.worker);
  const { nonces } = registerRoutes(app, timed, writes, self, options.nonceLimits, options.sessionRecipient);
  metrics.watchNonces(nonces);
  metrics.watchSessions(timed.store);
  app.addHook('onClose', async () => metrics.registry.clear());
  const admins = auditAdminSet(options.auditAdmins ?? []);
  registerAuditRoute(app, timed, identity, {
    admins,
    limits,
    ledger,
    ...(options.followLimits ? { follow: options.followLimits } : {}),
  });
  return app;
}

/** The methods some route answers at `path` (a 405 rather than a 404 when the path exists). */
function allowedMethods(routes: Array<{ method: string; url: string }>, path: string): string[] {
  const matches = routes.filter((r) => (r.url.endsWith('*') ? path.startsWith(r.url.slice(0, -1)) : path === r.url));
  return [...new Set(matches.map((r) => r.method))];
}

function notFound(what: string): CasError {
  return new CasError('CAS_NOT_FOUND', `no endpoint ${what}`, {
    hint: 'see GET /v1/version, POST /v1/sessions, GET /v1/sessions/<name>, GET /v1/values/session=<name>',
  });
}

function sendError(reply: FastifyReply, err: CasError): FastifyReply {
  if (err.retryAfterS !== undefined) reply.header('retry-after', String(err.retryAfterS));
  return reply.code(err.status).type('application/json').send(err.toJSON());
}

function toCasError(error: unknown): CasError {
  if (error instanceof CasError) return error;
  // The database's address stays in the CAS's log (without its password): clients learn only to retry.
  if (error instanceof StoreError && error.code === 'STORE_UNAVAILABLE') return storeUnavailable(error);
  if (error instanceof StoreError && error.code === 'STORE_BUSY') return storeBusy(error);
  const code = (error as FastifyError).code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new CasError('CAS_PAYLOAD_TOO_LARGE', 'the request body is larger than this CAS accepts', {
      hint: 'sessions are small; split large injection files or raise --body-limit',
    });
  }
  if (code === 'FST_ERR_BAD_URL') {
    return new CasError('CAS_BAD_REQUEST', 'the request path is not valid percent-encoding', {
      hint: 'encode each path part with encodeURIComponent',
    });
  }
  const status = (error as FastifyError).statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return new CasError('CAS_BAD_REQUEST', `bad request: ${(error as Error).message}`);
  }
  return new CasError('CAS_INTERNAL', 'internal error in the CAS (details are in its log)', { cause: error });
}

/**
 * What the HTTP parser refuses (headers too large, malformed requests, timeouts) never reaches fastify's
 * routes; the answer is still the CAS's JSON error, then the connection closes as Node's own handler does.
 */
/** What the HTTP parser and the timeouts refuse, answered in the CAS's error format on the raw socket. */
function answerClientError(limits: ConnectionLimits, metrics: CasMetrics) {
  return (err: NodeJS.ErrnoException, socket: Duplex): void => {
    const casError = clientError(err.code, limits);
    if (err.code !== 'ECONNRESET') metrics.clientError(casError.code);
    answerRaw(err, socket, casError);
  };
}

function answerRaw(err: NodeJS.ErrnoException, socket: Duplex, casError: CasError): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (socket.writable) {
    const body = JSON.stringify(casError.toJSON());
    const head = [
      `HTTP/1.1 ${casError.status} ${STATUS_CODES[casError.status] ?? 'Error'}`,
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      'Connection: close',
    ];
    socket.write(`${head.join('\r\n')}\r\n\r\n${body}`);
  }
  socket.destroy(err);
}

function clientError(code: string | undefined, limits: ConnectionLimits): CasError {
  if (code === 'HPE_HEADER_OVERFLOW') {
    return new CasError(
      'CAS_HEADERS_TOO_LARGE',
      'the request headers are larger than this CAS accepts (16 KiB in all)',
      {
        hint: 'send fewer or shorter headers',
      },
    );
  }
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new CasError('CAS_REQUEST_TIMEOUT', 'the request did not arrive in the time this CAS allows', {
      hint: `send the headers within ${limits.headersTimeoutMs} ms, the whole request within ${limits.requestTimeoutMs} ms`,
    });
  }
  return new CasError('CAS_BAD_REQUEST', `the request is not valid HTTP/1.1 (${code ?? 'unparseable'})`, {
    hint: 'use an HTTP client such as curl or veil',
  });
}

function portOf(app: FastifyInstance): number {
  const address = app.server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

export type { Store };
