import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { exportAnswerSchema, type ExportedSecret, type ExportRequest } from '../contract/index.js';
import type { Secret, Session } from '../policy/index.js';
import { isRemoteImport, parseCasUrl, type ImportRef } from '../policy/remote.js';
import { connectCas } from '../runtime/cas-identity.js';
import { RuntimeError } from '../runtime/errors.js';
import type { StoredSecret } from '../secrets/index.js';
import { CasError } from './errors.js';
import type { CasIdentity } from './identity.js';
import { notAllowed, remoteCasList, type RemoteCasList, type RemoteSource } from './remote-allow.js';
import type { SessionRecord } from './store/index.js';

/**
 * The importing side of imports across CAS. Fetched when a verified service attests, so that the exporter's
 * policy of that moment decides each release (an export withdrawn there stops the next start here), and
 * never at upload. Whoever may create a session may name any cas_url in it, so only the CAS the operator lists
 * (RemoteCasList, `--remote-cas`) are ever dialled, checked at upload and again here; what an attesting service
 * learns of a failure is its kind (unreachable, timeout, wrong key), never socket errors or the peer's CA.
 */
export const REMOTE_LIMITS = {
  /** One fetch, from dialling to the last byte of the answer. */
  timeoutMs: 5000,
  /** Dialling and the TLS handshake: a silent port frees its slot well before the whole fetch would time out. */
  connectTimeoutMs: 2000,
  /** The answer's body; a certificate with its chain and key is a few KiB. */
  answerBytes: 256 * 1024,
  /** Fetches in flight from this CAS at once, over all attestations; more wait for none and are refused. */
  inFlight: 64,
  /** Fetches in flight for one importing session: one session (one creator) cannot take all inFlight slots. */
  inFlightPerSession: 8,
} as const;

export type RemoteLimits = { [K in keyof typeof REMOTE_LIMITS]: number };

export type { RemoteSource };

/** Fetches one secret from another CAS for a session of this one. */
export type RemoteFetch = (from: RemoteSource, request: ExportRequest) => Promise<ExportedSecret>;

/** What the importing session's remote imports resolved to, for the version whose hash it carries. */
export interface RemoteSecrets {
  hash: string;
  secrets: ReadonlyMap<string, StoredSecret>;
}

/** The fetcher a running CAS uses: mutual TLS with its own client certificate, the remote pinned by cas_key. */
export function remoteFetcher(
  identity: Pick<CasIdentity, 'clientCertPem' | 'clientKeyPem'>,
  overrides: Partial<RemoteLimits> = {},
  allowed: RemoteCasList = remoteCasList(),
): RemoteFetch {
  const client = { certPem: identity.clientCertPem, keyPem: identity.clientKeyPem };
  const limits = { ...REMOTE_LIMITS, ...overrides };
  const slots = inFlightSlots(limits);
  return async (from, request) => {
    // Sessions stored before the operator shortened the list are refused here too, never dialled.
    if (!allowed.has(from)) throw notAllowed(from, request.secret);
    const release = slots(request.importer.session);
    try {
      return await withDeadline(from, limits, (track) => fetchOnce(from, request, client, limits, track));
    } finally {
      release();
    }
  };
}

/** Takes a slot for one fetch of `session`, or refuses (CAS_BUSY): all slots taken, or that session's share. */
function inFlightSlots(limits: RemoteLimits): (session: string) => () => void {
  let inFlight = 0;
  const perSession = new Map<string, number>();
  return (session) => {
    const mine = perSession.get(session) ?? 0;
    if (inFlight >= limits.inFlight || mine >= limits.inFlightPerSession) {
      const which = mine >= limits.inFlightPerSession ? `${mine} for session '${session}'` : `${inFlight}`;
      throw new CasError('CAS_BUSY', `${which} imports from other CAS are being fetched already`, {
        hint: 'start the service again shortly (limits inFlight, inFlightPerSession: README "Policies on several CAS")',
      });
    }
    inFlight++;
    perSession.set(session, mine + 1);
    return () => {
      inFlight--;
      const left = (perSession.get(session) ?? 1) - 1;
      if (left === 0) perSession.delete(session);
      else perSession.set(session, left);
    };
  };
}

type Track = (socket: TLSSocket) => void;

/** Runs `work` with one deadline over all of it; the socket it tracks is destroyed when the deadline passes. */
async function withDeadline<T>(
  from: RemoteSource,
  limits: RemoteLimits,
  work: (track: Track) => Promise<T>,
): Promise<T> {
  let socket: TLSSocket | undefined;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      socket?.destroy();
      reject(unreachable(from, `no answer within ${limits.timeoutMs} ms`));
    }, limits.timeoutMs);
  });
  const running = work((s) => {
    socket = s;
  });
  running.catch(() => undefined);
  try {
    return await Promise.race([running, deadline]);
  } finally {
    clearTimeout(timer);
    socket?.destroy();
  }
}

async function fetchOnce(
  from: RemoteSource,
  request: ExportRequest,
  client: { certPem: string; keyPem: string },
  limits: RemoteLimits,
  track: Track,
): Promise<ExportedSecret> {
  const url = parseCasUrl(from.url);
  if (!url) throw unreachable(from, 'cas_url is not an address');
  const { socket } = await connectCas(url.href, { fingerprint: from.key }, client, limits.connectTimeoutMs).catch(
    (err: unknown) => Promise.reject(connectFailure(from, err, limits)),
  );
  track(socket);
  socket.setTimeout(0); // the connect timeout is done; the whole-fetch deadline bounds the rest
  const { status, body } = await post(socket, url, JSON.stringify(request), from, limits.answerBytes);
  return answerOf(from, request, status, body);
}

/** One HTTP request over the verified socket; the body is read up to answerBytes, then the socket is closed. */
function post(
  socket: TLSSocket,
  url: URL,
  body: string,
  from: RemoteSource,
  maxBytes: number,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        createConnection: () => socket,
        method: 'POST',
        path: '/v1/exports',
        headers: { host: url.host, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) =>
        readBounded(res, from, maxBytes).then((text) => resolve({ status: res.statusCode ?? 0, body: text }), reject),
    );
    req.once('error', () => reject(unreachable(from, LOST)));
    req.end(body);
  });
}

function readBounded(res: IncomingMessage, from: RemoteSource, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        res.destroy();
        reject(unreachable(from, `it answered more than ${maxBytes} bytes`));
      } else chunks.push(chunk);
    });
    res.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.once('error', () => reject(unreachable(from, LOST)));
  });
}

function answerOf(from: RemoteSource, request: ExportRequest, status: number, body: string): ExportedSecret {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw refused(from, request, `it answered ${status} without JSON`);
  }
  if (status !== 200) {
    const error = (json as { error?: { message?: unknown; hint?: unknown } } | null)?.error;
    const said = typeof error?.message === 'string' ? error.message.slice(0, 1024) : `status ${status}`;
    const hint = typeof error?.hint === 'string' ? error.hint.slice(0, 1024) : undefined;
    throw refused(from, request, said, hint);
  }
  const parsed = exportAnswerSchema.safeParse(json);
  if (!parsed.success) throw refused(from, request, 'its answer is not a Veil export answer');
  return parsed.data.secret;
}

const at = (from: RemoteSource) => `the CAS at ${from.url} (cas_key ${from.key})`;

const LOST = 'the connection failed before it answered';

/**
 * Only the kind of failure: the socket's error text and the CA the peer presented would tell whoever wrote
 * the session what answers at that address.
 */
function connectFailure(from: RemoteSource, err: unknown, limits: RemoteLimits): CasError {
  if (err instanceof RuntimeError && err.code === 'RUNTIME_CAS_UNTRUSTED') {
    return new CasError('CAS_REMOTE_UNTRUSTED', `${at(from)} is not the CAS that cas_key pins`, {
      hint: "check cas_key: it is the CA fingerprint that CAS's 'veil cas serve' prints (and cas_url)",
    });
  }
  const timedOut = err instanceof Error && (err.cause as Error | undefined)?.message === 'timed out';
  return unreachable(from, timedOut ? `no connection within ${limits.connectTimeoutMs} ms` : 'it could not be reached');
}

function unreachable(from: RemoteSource, why: string): CasError {
  return new CasError('CAS_REMOTE_UNREACHABLE', `cannot fetch an import from ${at(from)}: ${why}`, {
    hint: 'check that it runs and that cas_url is its address (README "Policies on several CAS": timeoutMs)',
  });
}

function refused(from: RemoteSource, request: ExportRequest, said: string, hint?: string): CasError {
  return new CasError('CAS_REMOTE_REFUSED', `${at(from)} refused secret '${request.secret}': ${said}`, {
    hint:
      hint ??
      `ask the owner of session '${request.session}' there to export '${request.secret}' to session ` +
        `'${request.importer.session}' of this CAS (cas_key: this CAS's fingerprint)`,
  });
}

type RemoteImport = Secret & { import: ImportRef & { cas_url: string; cas_key: string } };

export function remoteImportsOf(session: Session): RemoteImport[] {
  return (session.secrets ?? []).filter((s): s is RemoteImport => isRemoteImport(s.import));
}

/**
 * Every remote import of the session, fetched at once (their number is bounded by SESSION_LIMITS.remoteImports),
 * resolved to stored secrets under the local names; the first failure fails the attestation.
 */
export async function fetchRemoteImports(
  fetch: RemoteFetch | undefined,
  record: SessionRecord,
  session: Session,
): Promise<RemoteSecrets> {
  const imports = remoteImportsOf(session);
  const secrets = new Map<string, StoredSecret>();
  if (imports.length === 0) return { hash: record.hash, secrets };
  const fetched = await Promise.all(
    imports.map((spec) => {
      const from = { url: spec.import.cas_url, key: spec.import.cas_key };
      if (!fetch) return Promise.reject(unreachable(from, 'this CAS was started without a client identity'));
      const importer = { session: record.name, session_hash: record.hash };
      return fetch(from, { session: spec.import.session, secret: spec.import.secret, importer });
    }),
  );
  for (const [i, spec] of imports.entries()) addStored(secrets, spec.name, fetched[i]!);
  return { hash: record.hash, secrets };
}

/** Names of the key and issuers of a fetched certificate: `@` cannot start a session name, so none collides. */
const remoteName = (local: string, part: string) => `@remote:${local}::${part}`;

function addStored(out: Map<string, StoredSecret>, local: string, secret: ExportedSecret): void {
  if (secret.kind === 'ascii' || secret.kind === 'binary') out.set(local, { kind: secret.kind, value: secret.value });
  else if (secret.kind === 'private-key') {
    out.set(local, { kind: 'private-key', keyType: secret.key_type, value: secret.value });
  } else {
    const issuer = (i: number) => (i < secret.chain.length ? remoteName(local, `issuer${i}`) : undefined);
    const cert: StoredSecret = { kind: secret.kind, value: secret.value };
    if (secret.private_key) {
      cert.privateKey = remoteName(local, 'key');
      out.set(cert.privateKey, {
        kind: 'private-key',
        keyType: secret.private_key.key_type,
        value: secret.private_key.value,
      });
    }
    if (issuer(0)) cert.issuer = issuer(0);
    out.set(local, cert);
    secret.chain.forEach((der, i) => {
      const next = issuer(i + 1);
      out.set(issuer(i)!, { kind: 'x509-ca', value: der, ...(next ? { issuer: next } : {}) });
    });
  }
}
