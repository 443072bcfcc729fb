import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import { attest, type AttestationContext } from './attest.js';
import { CasError } from './errors.js';
import type { WriteGate } from './limits.js';
import { NonceStore, type NonceLimits } from './nonces.js';
import { identityOfSocket, peerCertificateOfSocket, type ClientIdentity } from './identity-of.js';
import { listSessions, readSession, writeUpload, type CasContext, type Upload } from './sessions.js';
import { publicValue, publicValues } from './values.js';
import { certificateDates } from './expiry.js';
import type { selfAttestation } from './self-attestation.js';
import { callerFingerprint, exportSecret, peerChain } from './remote-export.js';
import { answer, jsonBody, parsePart } from './wire.js';
import { sealedRefusal } from './sealed-errors.js';
import { registerEncryptedUploads, type UploadBody, type UploadHandler } from './encrypted-routes.js';
import type { SessionRecipient } from '../encryption/index.js';
import {
  attestAnswerOf,
  attestAnswerSchema,
  attestationQuerySchema,
  attestRequestSchema,
  emptyBodySchema,
  exportAnswerSchema,
  exportRequestSchema,
  type ExportRequest,
  noQuerySchema,
  nonceAnswerSchema,
  sessionBodySchema,
  sessionEnvelopeSchema,
  sessionListSchema,
  sessionParamsSchema,
  sessionQuerySchema,
  sessionReadSchema,
  sessionWrittenSchema,
  valuesParamsSchema,
  versionAnswerSchema,
  type AttestRequest,
} from '../contract/index.js';

export const CAS_VERSION = '0.1.0';

/** The client's identity from its TLS certificate, or undefined when it presented none. */
export function clientOf(request: FastifyRequest): ClientIdentity | undefined {
  return identityOfSocket(request.raw.socket as TLSSocket);
}

export function requireClient(request: FastifyRequest): ClientIdentity {
  const client = clientOf(request);
  if (!client) {
    throw new CasError('CAS_UNAUTHENTICATED', 'this request needs a TLS client certificate, and none was presented', {
      hint: 'pass one with curl --cert/--key (any self-signed certificate is an identity), or use veil session ...',
    });
  }
  return client;
}

/** For routes that act for a client: refused before the body is even parsed when no certificate came. */
const authenticated = { onRequest: async (request: FastifyRequest) => void requireClient(request) };

// GET bodies are never read by fastify; queries and paths are. Answers are serialized from the contract.
const ROUTES = {
  version: { schema: { querystring: noQuerySchema, response: { 200: answer(versionAnswerSchema) } } },
  selfAttestation: { schema: { querystring: attestationQuerySchema } },
  upload: { ...authenticated, schema: { querystring: noQuerySchema, body: sessionBodySchema } },
  list: { schema: { querystring: noQuerySchema, response: { 200: answer(sessionListSchema) } } },
  read: {
    ...authenticated,
    schema: {
      params: sessionParamsSchema,
      querystring: sessionQuerySchema,
      response: { 200: answer(sessionReadSchema) },
    },
  },
  values: { schema: { params: valuesParamsSchema, querystring: noQuerySchema } },
};
const WRITTEN = {
  ...ROUTES.upload,
  schema: { ...ROUTES.upload.schema, response: { '2xx': answer(sessionWrittenSchema) } },
};

type Self = ReturnType<typeof selfAttestation>;

export function registerRoutes(
  app: FastifyInstance,
  ctx: CasContext & AttestationContext,
  writes: WriteGate,
  self?: Self,
  nonceLimits?: Partial<NonceLimits>,
  recipient?: SessionRecipient,
): { nonces: NonceStore } {
  app.get('/v1/version', ROUTES.version, async () => ({ version: CAS_VERSION, implementation: 'veil', api: 'v1' }));

  if (self) {
    type Nonce = { Querystring: { nonce: string } };
    app.get<Nonce>('/v1/attestation', ROUTES.selfAttestation, async (request) => self(request.query.nonce));
  }

  // Every upload route ends here, whatever carried the body (plain, or decrypted from PUT /v1/encrypted_sessions).
  const accept = async (client: ClientIdentity, upload: UploadBody) => {
    try {
      return await writeUpload(ctx, uploadOf(upload), client);
    } catch (err) {
      throw upload.sealed ? sealedRefusal(err) : err;
    }
  };
  const gated: UploadHandler = (request, read) => {
    const client = requireClient(request);
    return writes(request.socket.remoteAddress, async () => accept(client, await read(client)));
  };
  const upload = (request: FastifyRequest<{ Body: string }>) =>
    gated(request, async () => ({
      contentType: request.headers['content-type'] ?? 'application/yaml',
      body: request.body,
    }));
  if (recipient) registerEncryptedUploads(app, recipient, gated, authenticated);
  app.post<{ Body: string }>('/v1/sessions', WRITTEN, async (request, reply) => {
    const result = await upload(request);
    return reply.code(result.created ? 201 : 200).send({ hash: result.hash });
  });

  // SCONE's first API, still used by scripts such as the flask example's create_image.sh.
  app.post<{ Body: string }>('/session', ROUTES.upload, async (request, reply) => {
    const result = await upload(request);
    reply.code(result.created ? 201 : 200).type('text/plain');
    return `Created Session[id=${result.hash}, name='not-supported', status='not-supported']`;
  });

  app.get('/v1/sessions', ROUTES.list, async (request) => ({ sessions: await listSessions(ctx, clientOf(request)) }));

  type Read = { Params: { '*': string }; Querystring: { hash?: string; certificates?: 'true' } };
  app.get<Read>('/v1/sessions/*', ROUTES.read, async (request) => {
    const read = await readSession(ctx, request.params['*'], request.query.hash, requireClient(request));
    if (request.query.certificates === undefined) return read;
    return { ...read, certificates: await certificateDates(ctx, request.params['*'], read.hash) };
  });

  const nonces = registerAttestation(app, ctx, nonceLimits);
  registerExports(app, ctx);

  app.get<{ Params: { '*': string } }>('/v1/values/*', ROUTES.values, async (request) => {
    const { session, secret } = parseValuesPath(request.params['*']);
    const actor = clientOf(request)?.keyHash ?? null;
    return secret === undefined ? publicValues(ctx, session, actor) : publicValue(ctx, session, secret, actor);
  });
  return { nonces };
}

/**
 * What a session upload carries: a JSON body (`content-type: application/json`) is the envelope `{session,
 * signatures}`; any other body is the session text itself, as SCONE's clients send it.
 */
function uploadOf(upload: UploadBody): Upload {
  const type = upload.contentType.split(';')[0]?.trim().toLowerCase();
  const sealed = upload.sealed ? { sealed: true } : {};
  if (type !== 'application/json') return { text: upload.body, signatures: [], ...sealed };
  const envelope = parsePart(jsonBody(sessionEnvelopeSchema), upload.body, 'body');
  return { text: envelope.session, signatures: envelope.signatures, ...sealed };
}

/** `session=<name>[,secret=<s>]`, the path form SCONE uses (a leading `/` is tolerated). */
export function parseValuesPath(path: string): { session: string; secret?: string } {
  const fields = new Map<string, string>();
  // The router decoded the path once already; decoding again would turn `%25` into a URIError.
  for (const part of path.replace(/^\/+/, '').split(',')) {
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

const NONCE_ROUTE = {
  ...authenticated,
  schema: { querystring: noQuerySchema, body: emptyBodySchema, response: { 200: answer(nonceAnswerSchema) } },
};
const ATTEST_ROUTE = {
  ...authenticated,
  schema: {
    querystring: noQuerySchema,
    body: jsonBody(attestRequestSchema),
    response: { 200: answer(attestAnswerSchema) },
  },
};

/**
 * The runtime's side: a nonce for this connection's key, then evidence in exchange for the configuration.
 * Both calls must come over TLS with the runtime's ephemeral certificate, the key its evidence binds.
 */
function registerAttestation(
  app: FastifyInstance,
  ctx: CasContext & AttestationContext,
  limits?: Partial<NonceLimits>,
): NonceStore {
  const nonces = new NonceStore(ctx.now, limits);
  app.post('/v1/attest/nonce', NONCE_ROUTE, async (request) => ({
    nonce: nonces.issue(requireClient(request).keyHash).toString('hex'),
  }));
  app.post<{ Body: AttestRequest }>('/v1/attest', ATTEST_ROUTE, async (request) => {
    const { config, outcome, renewAt } = await attest(ctx, nonces, request.body, requireClient(request));
    return { ...attestAnswerOf(config, outcome), ...(renewAt === undefined ? {} : { renew_at: renewAt }) };
  });
  return nonces;
}

const EXPORT_ROUTE = {
  ...authenticated,
  schema: {
    querystring: noQuerySchema,
    body: jsonBody(exportRequestSchema),
    response: { 200: answer(exportAnswerSchema) },
  },
};

/** Another CAS fetching a secret exported to one of its sessions; it is known by its verified CA chain only. */
function registerExports(app: FastifyInstance, ctx: CasContext): void {
  app.post<{ Body: ExportRequest }>('/v1/exports', EXPORT_ROUTE, async (request) => {
    const socket = request.raw.socket as TLSSocket;
    const { leaf, ca } = peerChain(peerCertificateOfSocket(socket));
    return exportSecret(ctx, request.body, callerFingerprint(leaf, ca, ctx.now()));
  });
}
