import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import { attest, type AttestationContext } from './attest.js';
import { CasError } from './errors.js';
import { NonceStore, type NonceLimits } from './nonces.js';
import { identityFromDer, type ClientIdentity } from './identity-of.js';
import { listSessions, readSession, writeSession, type CasContext } from './sessions.js';
import { publicValue, publicValues } from './values.js';
import type { selfAttestation } from './self-attestation.js';
import { parseAttestRequest } from './wire.js';

export const CAS_VERSION = '0.1.0';

/** The client's identity from its TLS certificate, or undefined when it presented none. */
export function clientOf(request: FastifyRequest): ClientIdentity | undefined {
  const socket = request.raw.socket as TLSSocket;
  const cert = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
  return cert?.raw ? identityFromDer(cert.raw) : undefined;
}

function requireClient(request: FastifyRequest): ClientIdentity {
  const client = clientOf(request);
  if (!client) {
    throw new CasError('CAS_UNAUTHENTICATED', 'this request needs a TLS client certificate, and none was presented', {
      hint: 'pass one with curl --cert/--key (any self-signed certificate is an identity), or use veil session ...',
    });
  }
  return client;
}

function bodyText(request: FastifyRequest): string {
  const body = request.body;
  if (typeof body !== 'string' || body.trim() === '') {
    throw new CasError('CAS_BAD_REQUEST', 'the request body is empty; it must be the session (YAML)', {
      hint: 'send the policy file as the body, e.g. curl --data-binary @session.yaml',
    });
  }
  return body;
}

export function registerRoutes(
  app: FastifyInstance,
  ctx: CasContext & AttestationContext,
  self?: ReturnType<typeof selfAttestation>,
  nonceLimits?: Partial<NonceLimits>,
): void {
  app.get('/v1/version', async () => ({ version: CAS_VERSION, implementation: 'veil', api: 'v1' }));

  if (self) app.get<{ Querystring: { nonce?: unknown } }>('/v1/attestation', async (request) => self(request.query.nonce));

  app.post('/v1/sessions', async (request, reply) => {
    const result = writeSession(ctx, bodyText(request), requireClient(request));
    return reply.code(result.created ? 201 : 200).send({ hash: result.hash });
  });

  // SCONE's first API, still used by scripts such as the flask example's create_image.sh.
  app.post('/session', async (request, reply) => {
    const result = writeSession(ctx, bodyText(request), requireClient(request));
    reply.code(result.created ? 201 : 200).type('text/plain');
    return `Created Session[id=${result.hash}, name='not-supported', status='not-supported']`;
  });

  app.get('/v1/sessions', async (request) => ({ sessions: listSessions(ctx, clientOf(request)) }));

  app.get<{ Params: { '*': string }; Querystring: { hash?: string } }>('/v1/sessions/*', async (request) => {
    const name = request.params['*'];
    return readSession(ctx, name, request.query.hash, requireClient(request));
  });

  registerAttestation(app, ctx, nonceLimits);

  app.get<{ Params: { '*': string } }>('/v1/values/*', async (request) => {
    const { session, secret } = parseValuesPath(request.params['*']);
    return secret === undefined ? publicValues(ctx, session) : publicValue(ctx, session, secret);
  });
}

/** `session=<name>[,secret=<s>]`, the path form SCONE uses (a leading `/` is tolerated). */
export function parseValuesPath(path: string): { session: string; secret?: string } {
  const fields = new Map<string, string>();
  for (const part of decodeURIComponent(path).replace(/^\/+/, '').split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const session = fields.get('session');
  if (!session) {
    throw new CasError('CAS_BAD_REQUEST', `'/v1/values/${path}' names no session`, {
      hint: 'use /v1/values/session=<name> or /v1/values/session=<name>,secret=<secret>',
    });
  }
  const secret = fields.get('secret');
  return secret === undefined ? { session } : { session, secret };
}

/**
 * The runtime's side: a nonce for this connection's key, then evidence in exchange for the configuration.
 * Both calls must come over TLS with the runtime's ephemeral certificate, the key its evidence binds.
 */
function registerAttestation(
  app: FastifyInstance,
  ctx: CasContext & AttestationContext,
  limits?: Partial<NonceLimits>,
): void {
  const nonces = new NonceStore(ctx.now, limits);
  app.post('/v1/attest/nonce', async (request) => ({ nonce: nonces.issue(requireClient(request).keyHash).toString('hex') }));
  app.post('/v1/attest', async (request) => {
    const client = requireClient(request);
    const { config, outcome } = await attest(ctx, nonces, parseAttestRequest(request.body), client);
    const injectionFiles = config.injectionFiles.map((f) => ({ path: f.path, mode: f.mode, content: f.content.toString('base64') }));
    return { ...config, injectionFiles, attestation: outcome };
  });
}
