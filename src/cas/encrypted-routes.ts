import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  SESSION_ENCRYPTION_SUITE,
  encryptedSessionSchema,
  identityAnswerSchema,
  noQuerySchema,
  sessionWrittenSchema,
  type EncryptedSession,
  type IdentityAnswer,
} from '../contract/index.js';
import {
  EncryptionError,
  openSession,
  plaintextBytes,
  type EncryptionErrorCode,
  type SessionRecipient,
} from '../encryption/index.js';
import { CasError, type CasErrorCode } from './errors.js';
import type { ClientIdentity } from './identity-of.js';
import type { WriteResult } from './sessions.js';
import { answer, jsonBody } from './wire.js';

/**
 * An upload as it reaches the one upload handler: the media type the body is in, and the body. `sealed`: it
 * arrived encrypted, so its refusals must not show its text to whoever carried it.
 */
export interface UploadBody {
  contentType: string;
  body: string;
  sealed?: boolean;
}

/** Runs `read` (here: decrypting, for the sending client) and the write inside the write gate. */
export type UploadHandler = (
  request: FastifyRequest,
  read: (client: ClientIdentity) => Promise<UploadBody>,
) => Promise<WriteResult>;

/**
 * Room for the envelope around a session of `bodyLimit` bytes: base64 grows it by 4/3, the JSON fields
 * around it are small. The session inside is then held to `bodyLimit` itself, as a plain upload is.
 */
export function envelopeLimit(bodyLimit: number): number {
  return Math.ceil(bodyLimit / 3) * 4 + 4096;
}

const ENCRYPTED_STATUS: Record<EncryptionErrorCode, CasErrorCode> = {
  ENCRYPTION_UNSUPPORTED: 'CAS_ENCRYPTION_UNSUPPORTED',
  ENCRYPTION_WRONG_RECIPIENT: 'CAS_WRONG_RECIPIENT',
  ENCRYPTION_WRONG_UPLOADER: 'CAS_WRONG_UPLOADER',
  ENCRYPTION_OPEN_FAILED: 'CAS_DECRYPTION_FAILED',
  ENCRYPTION_ENVELOPE_INVALID: 'CAS_DECRYPTION_FAILED',
  ENCRYPTION_KEY_INVALID: 'CAS_DECRYPTION_FAILED',
};

/**
 * `GET /v1/identity` (what `veil cas show-identification` prints) and `PUT /v1/encrypted_sessions`: the session
 * inside is decrypted and handed to the same handler as a plain upload, so it is created or updated by the same
 * rules (no predecessor: created, 201; predecessor: an update of that version, 200), for the same identity (the
 * TLS client certificate), which must be the uploader the envelope names and binds.
 */
export function registerEncryptedUploads(
  app: FastifyInstance,
  recipient: SessionRecipient,
  upload: UploadHandler,
  authenticated: { onRequest: (request: FastifyRequest) => Promise<void> },
): void {
  const identity: IdentityAnswer = {
    ca_fingerprint: recipient.casFingerprint,
    session_encryption_key: recipient.publicKey.toString('hex'),
    session_encryption_key_hash: recipient.keyHash,
    session_encryption_suite: SESSION_ENCRYPTION_SUITE,
  };
  const identityRoute = { schema: { querystring: noQuerySchema, response: { 200: answer(identityAnswerSchema) } } };
  app.get('/v1/identity', identityRoute, async () => identity);

  const bodyLimit = app.initialConfig.bodyLimit ?? 1024 * 1024;
  const route = {
    ...authenticated,
    bodyLimit: envelopeLimit(bodyLimit),
    schema: {
      querystring: noQuerySchema,
      body: jsonBody(encryptedSessionSchema),
      response: { '2xx': answer(sessionWrittenSchema) },
    },
  };
  app.put<{ Body: EncryptedSession }>('/v1/encrypted_sessions', route, async (request, reply) => {
    const result = await upload(request, (client) => decrypt(request.body, recipient, bodyLimit, client));
    return reply.code(result.created ? 201 : 200).send({ hash: result.hash });
  });
}

async function decrypt(
  envelope: EncryptedSession,
  recipient: SessionRecipient,
  bodyLimit: number,
  client: ClientIdentity,
): Promise<UploadBody> {
  if (plaintextBytes(envelope) > bodyLimit) {
    throw new CasError(
      'CAS_PAYLOAD_TOO_LARGE',
      `the session inside the encrypted upload is ${plaintextBytes(envelope)} bytes; this CAS accepts ${bodyLimit}`,
      { hint: 'sessions are small; split large injection files or raise --body-limit' },
    );
  }
  try {
    const { contentType, plaintext } = await openSession(envelope, recipient, client.keyHash);
    return { contentType, body: plaintext.toString('utf8'), sealed: true };
  } catch (err) {
    if (!(err instanceof EncryptionError)) throw err;
    throw new CasError(ENCRYPTED_STATUS[err.code], err.message, { ...(err.hint ? { hint: err.hint } : {}) });
  }
}
