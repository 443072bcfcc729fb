import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ATTESTATION_CATALOGUE, AttestationError } from '../attestation/errors.js';
import { CAS_CATALOGUE, CasError } from './errors.js';
import { noQuerySchema } from '../contract/index.js';
import type { NonceStore } from './nonces.js';
import type { Store } from './store/index.js';

/**
 * How long the session count is reused between scrapes: counting heads is a query on a shared database, one
 * that the database answers from its index (countSessions), never a listing of every session.
 */
export const SESSION_COUNT_TTL_MS = 5_000;
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);
const EVIDENCE_TYPES = new Set(['simulation', 'tdx', 'sgx-dcap', 'sev-snp']);
const ATTEST_ROUTE = '/v1/attest';
const NONCE_ROUTE = '/v1/attest/nonce';
const LINT_FAILING_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The CAS's Prometheus metrics, in a registry of its own (tests run many CAS in one process). Every label value
 * is a bounded enum chosen by the CAS — route patterns, methods, status codes, error codes, evidence types,
 * store operations — never a path, session name or other client input.
 */
export class CasMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'veil_cas_http_requests_total',
    help: 'HTTP requests answered, by route pattern, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: 'veil_cas_http_request_duration_seconds',
    help: 'Time from a request arriving to its answer being sent, by route pattern and method',
    labelNames: ['route', 'method'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly rawRefusals = new Counter({
    name: 'veil_cas_http_client_errors_total',
    help: 'Requests the HTTP parser or a timeout refused before any route ran, by error code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  private readonly attestations = new Counter({
    name: 'veil_cas_attestations_total',
    help: 'Attestations (POST /v1/attest) by result, refusal reason (its error code) and evidence type',
    labelNames: ['result', 'reason', 'evidence_type'] as const,
    registers: [this.registry],
  });
  private readonly storeLatency = new Histogram({
    name: 'veil_cas_store_operation_duration_seconds',
    help: 'Time the store took per operation, by operation and outcome',
    labelNames: ['operation', 'outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly noncesIssued = new Counter({
    name: 'veil_cas_attestation_nonces_issued_total',
    help: 'Attestation nonces issued (they occupy nothing until presented)',
    registers: [this.registry],
  });
  /** Failed requests' refusal reasons, for the attestation counter (the error handler sees the error). */
  private readonly reasons = new WeakMap<FastifyRequest, string>();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // Gauges named *_total break the exposition's naming rules (promtool check metrics refuses them).
    for (const name of LINT_FAILING_DEFAULTS) this.registry.removeSingleMetric(name);
  }

  /** Spent and burned nonces the CAS remembers now (nonces.ts). */
  watchNonces(nonces: NonceStore): void {
    new Gauge({
      name: 'veil_cas_attestation_nonces_remembered',
      help: 'Presented, unexpired attestation nonces remembered against replay: spent, or burned (wrong key)',
      labelNames: ['kind'] as const,
      registers: [this.registry],
      collect() {
        this.set({ kind: 'spent' }, nonces.size);
        this.set({ kind: 'burned' }, nonces.burnedSize);
      },
    });
  }

  /** Current sessions (heads), counted at most once per SESSION_COUNT_TTL_MS; a failed count keeps the last. */
  watchSessions(store: Store, now: () => number = Date.now): void {
    let cached: { at: number; count: number } | undefined;
    new Gauge({
      name: 'veil_cas_sessions',
      help: `Current sessions (heads) in the store, counted at most every ${SESSION_COUNT_TTL_MS / 1000} s`,
      registers: [this.registry],
      async collect() {
        if (!cached || now() - cached.at >= SESSION_COUNT_TTL_MS) {
          const count = await store.countSessions().then(
            (n) => n,
            () => cached?.count,
          );
          if (count !== undefined) cached = { at: now(), count };
        }
        if (cached) this.set(cached.count);
      },
    });
  }

  clientError(code: string): void {
    this.rawRefusals.inc({ code: knownCode(code) });
  }

  /** Called by the error handler: why a request failed, for the attestation counter. */
  noteError(request: FastifyRequest, error: unknown): void {
    this.reasons.set(request, reasonOf(error));
  }

  observeStore(operation: string, outcome: 'ok' | 'error', seconds: number): void {
    this.storeLatency.observe({ operation, outcome }, seconds);
  }

  /** The onResponse hook: one request answered. */
  observe(request: FastifyRequest, reply: FastifyReply): void {
    const route = request.routeOptions.url ?? 'unmatched';
    const method = METHODS.has(request.method) ? request.method : 'other';
    this.requests.inc({ route, method, status: String(reply.statusCode) });
    this.latency.observe({ route, method }, reply.elapsedTime / 1000);
    if (method !== 'POST') return;
    if (route === NONCE_ROUTE && reply.statusCode === 200) this.noncesIssued.inc();
    if (route === ATTEST_ROUTE) this.observeAttestation(request, reply);
  }

  private observeAttestation(request: FastifyRequest, reply: FastifyReply): void {
    // The body is the validated request only when validation passed; otherwise it may be anything.
    const claimed = (request.body as { evidence?: { type?: unknown } } | undefined)?.evidence?.type;
    const evidenceType = typeof claimed === 'string' && EVIDENCE_TYPES.has(claimed) ? claimed : 'none';
    if (reply.statusCode < 300) {
      this.attestations.inc({ result: 'accepted', reason: 'none', evidence_type: evidenceType });
      return;
    }
    const reason = this.reasons.get(request) ?? `HTTP_${reply.statusCode}`;
    this.attestations.inc({ result: 'refused', reason, evidence_type: evidenceType });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** The failed check: an attestation code when the evidence was judged, else the CAS's code. */
function reasonOf(error: unknown): string {
  const cause = error instanceof CasError ? error.cause : undefined;
  if (cause instanceof AttestationError) return knownCode(cause.code);
  if (error instanceof CasError) return knownCode(error.code);
  return 'CAS_INTERNAL';
}

/** A code from the closed catalogues, or `other`: a label value is never free text. */
function knownCode(code: string): string {
  return code in CAS_CATALOGUE || code in ATTESTATION_CATALOGUE ? code : 'other';
}

const UNTIMED = new Set(['dump', 'load', 'close']);

/**
 * The store with every asynchronous operation timed. A Proxy, so that operations other modules add to the
 * Store (the audit log's tables) are timed too; streams (dump, load) and close are passed through as they are.
 */
export function timedStore(store: Store, metrics: CasMetrics): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string' || UNTIMED.has(prop)) return value;
      return (...args: unknown[]) => {
        const start = process.hrtime.bigint();
        const seconds = () => Number(process.hrtime.bigint() - start) / 1e9;
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (!(result instanceof Promise)) return result;
        return result.then(
          (v) => {
            metrics.observeStore(prop, 'ok', seconds());
            return v;
          },
          (err: unknown) => {
            metrics.observeStore(prop, 'error', seconds());
            throw err;
          },
        );
      };
    },
  });
}

/** GET /metrics and the hook that counts every answered request. */
export function registerMetrics(app: FastifyInstance, metrics: CasMetrics): void {
  app.addHook('onResponse', async (request, reply) => metrics.observe(request, reply));
  app.get('/metrics', { schema: { querystring: noQuerySchema } }, async (_request, reply) => {
    reply.type(metrics.contentType);
    return metrics.text();
  });
}
