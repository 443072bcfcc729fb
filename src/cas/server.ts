import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { createVerifier } from '../attestation/hardware.js';
import type { CollateralProvider, EvidenceVerifier } from '../attestation/types.js';
import type { AttestationContext } from './attest.js';
import { CasError } from './errors.js';
import {
  capConnections,
  checkingIntervalMs,
  clientErrorHandler,
  connectionLimits,
  limitWrites,
  type ConnectionLimits,
} from './limits.js';
import type { NonceLimits } from './nonces.js';
import { selfAttestation, type SelfEvidenceSource } from './self-attestation.js';
import { loadIdentity, type CasIdentity } from './identity.js';
import { registerRoutes } from './routes.js';
import type { CasContext } from './sessions.js';
import { loadMasterKey, openSqliteStore, type Store } from './store/index.js';

export interface CasServerOptions {
  host: string;
  port: number;
  dataDir: string;
  masterKeyFile?: string;
  masterKeyEnv?: string;
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
}

export interface RunningCas {
  url: string;
  host: string;
  port: number;
  identity: CasIdentity;
  close(): Promise<void>;
}

const DEFAULT_BODY_LIMIT = 1024 * 1024;

export async function startCas(options: CasServerOptions): Promise<RunningCas> {
  const masterKey = loadMasterKey({ dataDir: options.dataDir, file: options.masterKeyFile, env: options.masterKeyEnv });
  const store = openSqliteStore({ dataDir: options.dataDir, masterKey });
  const now = options.now ?? (() => new Date());
  const names = [...new Set([options.host, 'localhost', '127.0.0.1', '::1', 'cas', ...(options.names ?? [])])];
  const identity = loadIdentity(store, names.filter((n) => n !== '0.0.0.0' && n !== '::'), now());
  const verifier = options.verifier ?? createVerifier({ collateral: options.collateral });
  const app = buildApp({ store, now, verifier }, identity, options);
  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (err) {
    store.close();
    throw new CasError('CAS_INTERNAL', `cannot listen on ${options.host}:${options.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      hint: 'another process uses that address; pick another with --listen HOST:PORT (port 0 picks a free one)',
      cause: err,
    });
  }
  const port = portOf(app);
  return {
    url: `https://${urlHost(options.host)}:${port}`,
    host: options.host,
    port,
    identity,
    close: async () => {
      await app.close();
      store.close();
    },
  };
}

type AppOptions = Pick<CasServerOptions, 'bodyLimit' | 'logLevel' | 'selfEvidence' | 'limits' | 'nonceLimits'>;

export function buildApp(
  ctx: CasContext & AttestationContext,
  identity: CasIdentity,
  options: AppOptions,
): FastifyInstance {
  const limits = connectionLimits(options.limits);
  const app = Fastify({
    https: {
      key: identity.tlsKeyPem, cert: identity.tlsCertPem, requestCert: true, rejectUnauthorized: false,
      handshakeTimeout: limits.handshakeTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      connectionsCheckingInterval: checkingIntervalMs(limits),
    },
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs,
    clientErrorHandler: clientErrorHandler(limits),
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // Request logs (info) carry method and URL only — never bodies, which may hold explicit secret values.
    logger: { level: options.logLevel ?? 'warn' },
  });
  // Sessions are YAML whatever the client labels them (curl --data-binary says form-urlencoded).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.setErrorHandler((error, request, reply) => {
    const casError = toCasError(error);
    if (casError.status >= 500) request.log.error({ code: casError.code, err: (error as Error).message }, 'request failed');
    return reply.code(casError.status).type('application/json').send(casError.toJSON());
  });
  app.setNotFoundHandler((request, reply) => {
    const err = new CasError('CAS_NOT_FOUND', `no endpoint ${request.method} ${request.url.split('?')[0]}`, {
      hint: 'see GET /v1/version, POST /v1/sessions, GET /v1/sessions/<name>, GET /v1/values/session=<name>',
    });
    return reply.code(err.status).send(err.toJSON());
  });
  capConnections(app.server, limits);
  app.addHook('onRequest', limitWrites(limits));
  registerRoutes(app, ctx, selfAttestation(identity, options.selfEvidence), options.nonceLimits);
  return app;
}

function toCasError(error: unknown): CasError {
  if (error instanceof CasError) return error;
  const code = (error as FastifyError).code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new CasError('CAS_PAYLOAD_TOO_LARGE', 'the request body is larger than this CAS accepts', {
      hint: 'sessions are small; split large injection files or raise --body-limit',
    });
  }
  const status = (error as FastifyError).statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    return new CasError('CAS_BAD_REQUEST', `bad request: ${(error as Error).message}`);
  }
  return new CasError('CAS_INTERNAL', 'internal error in the CAS (details are in its log)', { cause: error });
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
