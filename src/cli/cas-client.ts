import { Agent, request } from 'undici';
import type { z } from 'zod';
import {
  auditPageSchema,
  type AuditPage,
  casErrorBodySchema,
  describeIssues,
  identityAnswerSchema,
  type CasErrorBody,
  type CertificateDates,
  type IdentityAnswer,
  issuesOf,
  publicValuesSchema,
  sessionReadSchema,
  sessionWrittenSchema,
  type SessionEnvelope,
  type UploadSignature,
} from '../contract/index.js';
import { CliError } from './errors.js';
import type { LocalIdentity, PinnedCas } from './home.js';

/**
 * A client of one attested CAS: TLS trusts only the pinned CA (so an impostor fails the handshake), and the
 * local identity's certificate authenticates us.
 */
export class CasClient {
  private readonly agent: Agent;
  /** Key hash of the TLS identity this client sends as: the uploader its encrypted uploads name. */
  readonly uploader: string;

  constructor(
    private readonly pin: PinnedCas,
    identity: LocalIdentity,
  ) {
    this.uploader = identity.keyHash;
    this.agent = new Agent({ connect: { ca: pin.caPem, cert: identity.certPem, key: identity.keyPem } });
  }

  /** Uploads a session; with signatures, as the JSON envelope `{session, signatures}`. */
  async postSession(text: string, signatures: UploadSignature[] = []): Promise<{ status: number; hash: string }> {
    const body =
      signatures.length === 0
        ? await this.call('POST', '/v1/sessions', sessionWrittenSchema, text)
        : await this.call('POST', '/v1/sessions', sessionWrittenSchema, envelopeBody(text, signatures), JSON_TYPE);
    return { status: body.status, hash: body.json.hash };
  }

  /** PUT /v1/encrypted_sessions: an envelope (JSON text) only the CAS can open; it creates or updates. */
  async putEncryptedSession(envelope: string): Promise<{ status: number; hash: string }> {
    const body = await this.call('PUT', '/v1/encrypted_sessions', sessionWrittenSchema, envelope, 'application/json');
    return { status: body.status, hash: body.json.hash };
  }

  /** GET /v1/identity, from the CAS this client pinned: its CA fingerprint must be the pin. */
  async identity(): Promise<IdentityAnswer> {
    const { json } = await this.call('GET', '/v1/identity', identityAnswerSchema);
    if (json.ca_fingerprint !== this.pin.fingerprint) {
      throw new CliError(
        'CLI_CAS_UNTRUSTED',
        `the CAS at ${this.pin.url} names CA fingerprint ${json.ca_fingerprint}, ` +
          `not the pinned ${this.pin.fingerprint}`,
        { hint: 'this may be an impostor; attest the CAS again with the fingerprint you expect' },
      );
    }
    return json;
  }

  async readSession(
    name: string,
    hash?: string,
    opts: { certificates?: boolean } = {},
  ): Promise<{ session: string; hash: string; certificates?: CertificateDates[] | undefined }> {
    const params = new URLSearchParams();
    if (hash) params.set('hash', hash);
    if (opts.certificates) params.set('certificates', 'true');
    const query = params.size > 0 ? `?${params}` : '';
    return (await this.call('GET', `/v1/sessions/${encodePath(name)}${query}`, sessionReadSchema)).json;
  }

  /** The current hash of a session, or undefined when the CAS has none of that name. */
  async currentHash(name: string): Promise<string | undefined> {
    const response = await this.send('GET', `/v1/sessions/${encodePath(name)}`);
    const raw = await response.body.text();
    if (response.statusCode === 404) return undefined;
    const json = this.parseJson(raw, response.statusCode);
    if (response.statusCode >= 400) throw casFailure(response.statusCode, json);
    return answerOf(sessionReadSchema, json, `GET /v1/sessions/${name}`).hash;
  }

  /** `export_public` secrets of a session (GET /v1/values, which needs no client identity). */
  async publicValues(session: string): Promise<Record<string, { kind: string; value: string }>> {
    const path = `/v1/values/session=${encodeURIComponent(session)}`;
    return (await this.call('GET', path, publicValuesSchema)).json.values;
  }

  /** GET /v1/audit: the entries after `after` this identity may see; with `wait`, held until one comes. */
  async auditPage(after: number, limit: number, wait = 0, signal?: AbortSignal): Promise<AuditPage> {
    const path = `/v1/audit?after=${after}&limit=${limit}${wait > 0 ? `&wait=${wait}` : ''}`;
    return (await this.call('GET', path, auditPageSchema, undefined, undefined, signal)).json;
  }

  /** GET /v1/audit?format=export: the export file's lines as they arrive (an administrator's identity only). */
  async auditExport(): Promise<AsyncIterable<Buffer>> {
    const response = await this.send('GET', '/v1/audit?format=export');
    if (response.statusCode >= 400) {
      throw casFailure(response.statusCode, this.parseJson(await response.body.text(), response.statusCode));
    }
    return response.body;
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async call<T>(
    method: Method,
    path: string,
    schema: z.ZodType<T>,
    text?: string,
    type?: string,
    signal?: AbortSignal,
  ) {
    const response = await this.send(method, path, text, type, signal);
    const raw = await response.body.text();
    const json = this.parseJson(raw, response.statusCode);
    if (response.statusCode >= 400) throw casFailure(response.statusCode, json);
    return { status: response.statusCode, json: answerOf(schema, json, `${method} ${path}`) };
  }

  /** The body is not echoed: whatever answered is not the CAS API, and its text may be anything. */
  private parseJson(raw: string, status: number): unknown {
    try {
      return JSON.parse(raw);
    } catch (err) {
      const what = `the CAS at ${this.pin.url} answered with something that is not JSON (HTTP ${status})`;
      throw new CliError('CLI_CAS_ERROR', what, {
        hint: 'check that the address is a Veil CAS and not a proxy in front of it',
        cause: err,
      });
    }
  }

  private async send(method: Method, path: string, text?: string, type = 'application/yaml', signal?: AbortSignal) {
    try {
      return await request(`${this.pin.url}${path}`, {
        method,
        dispatcher: this.agent,
        ...(signal ? { signal } : {}),
        ...(text === undefined ? {} : { body: text, headers: { 'content-type': type } }),
      });
    } catch (err) {
      throw unreachable(this.pin.url, err);
    }
  }
}

const JSON_TYPE = 'application/json';

function envelopeBody(text: string, signatures: UploadSignature[]): string {
  const envelope: SessionEnvelope = { session: text, signatures };
  return JSON.stringify(envelope);
}
type Method = 'GET' | 'POST' | 'PUT';

function encodePath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

/** The answer as the CAS API's contract defines it, or an error naming the fields that differ. */
function answerOf<T>(schema: z.ZodType<T>, json: unknown, what: string): T {
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issues = describeIssues(issuesOf(parsed.error, 'answer', json));
  throw new CliError('CLI_CAS_ERROR', `the CAS's answer to ${what} is not what its API defines: ${issues}`, {
    hint: 'the CLI and the CAS must be compatible Veil versions; check that the address names a Veil CAS',
  });
}

/** The CAS's own code and message pass through: they already say what failed and what to do. */
function casFailure(status: number, json: unknown): CliError {
  const error: Partial<CasErrorBody['error']> = casErrorBodySchema.safeParse(json).data?.error ?? {};
  return new CliError(
    'CLI_CAS_ERROR',
    `CAS refused (${status} ${error.code ?? 'unknown'}): ${error.message ?? 'no message'}`,
    {
      ...(error.hint ? { hint: error.hint } : {}),
    },
  );
}

function unreachable(url: string, err: unknown): CliError {
  const code = (err as { code?: string }).code ?? '';
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/i.test(code)) {
    return new CliError(
      'CLI_CAS_UNTRUSTED',
      `the CAS at ${url} did not prove the identity that was attested (${code})`,
      {
        hint: 'this may be an impostor; if the CAS was legitimately re-created, attest it again with its new fingerprint',
        cause: err,
      },
    );
  }
  return new CliError('CLI_CAS_UNREACHABLE', `cannot reach the CAS at ${url} (${code || (err as Error).message})`, {
    hint: 'check that it runs (veil cas serve) and that the address and port are right',
    cause: err,
  });
}
