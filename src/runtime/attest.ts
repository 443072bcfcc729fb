import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import type { Evidence } from '../attestation/index.js';
// Not the zod schemas: veil run checks the CAS's answers with their generated JSON Schema (see json-check.ts).
import { ATTEST_ANSWER, CAS_ERROR_BODY, NONCE_ANSWER } from '../contract/answer-schemas.js';
import { checkJson, type JsonSchema } from '../contract/json-check.js';
import { describeIssues } from '../contract/issues.js';
import type { AttestAnswer, AttestationOutcome, CasErrorBody, NonceAnswer, ReleasedConfig } from '../contract/index.js';
import { selfSignedIdentity } from '../secrets/index.js';
import { connectCas, type CasTrustAnchor } from './cas-identity.js';
import { RuntimeError } from './errors.js';
import type { EvidenceSource } from './evidence-source.js';

/**
 * The configuration the CAS releases after attestation (injection file contents in base64), as the wire
 * contract defines it, what the CAS accepted (evidence kind, simulation or not, TCB status) to say, and when
 * to attest again for renewed certificates.
 */
export type RuntimeConfig = ReleasedConfig & { attestation?: AttestationOutcome; renew_at?: number };

export interface CasTrust {
  fingerprint?: string | undefined;
  caFile?: string | undefined;
  /** The CA certificate itself, read once: wins over caFile (see pinnedAttestation). */
  caPem?: string | undefined;
  trustAny?: boolean | undefined;
}

type AttestOptions = Parameters<typeof obtainConfig>[0];

/**
 * Attestation again and again against the same CAS: the CA file is read at the first attestation and that CA
 * is used for every later one. A process with veil run's uid that swaps VEIL_CAS_CA_FILE later cannot make a
 * re-attestation trust another CAS, which would then hand the program certificates and secrets of its choice.
 */
export function pinnedAttestation(opts: AttestOptions): () => Promise<RuntimeConfig> {
  let trust: CasTrust | undefined;
  return () => {
    trust ??= opts.trust.caFile ? { ...opts.trust, caPem: readCaFile(opts.trust.caFile) } : opts.trust;
    return obtainConfig({ ...opts, trust });
  };
}

/** `host[:port]` → URL; the CAS answers attestation on its API port (8081 unless given). */
export function casUrl(addr: string): string {
  const withScheme = /^https:\/\//.test(addr) ? addr : `https://${addr}`;
  const url = new URL(withScheme);
  return `https://${url.hostname}:${url.port || '8081'}`;
}

/**
 * Verifies the CAS before sending anything, then proves what runs with evidence from `evidence` bound to a
 * fresh nonce and to this connection's ephemeral key, and receives the configuration on that connection.
 * `now` dates the ephemeral certificate.
 */
export async function obtainConfig(opts: {
  casAddr: string;
  configId: string;
  trust: CasTrust;
  evidence: EvidenceSource;
  now: () => Date;
}): Promise<RuntimeConfig> {
  const url = casUrl(opts.casAddr);
  const me = ephemeralIdentity(opts.now());
  const { socket } = await connectCas(url, trustAnchor(opts.trust), me);
  // node:https rather than undici on this path: undici alone costs ~70 ms to load, and launch time counts.
  // Both requests travel on the connection verified above, the one whose key the evidence binds.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  agent.createConnection = () => socket;
  try {
    const nonceAnswer = await post(agent, url, '/v1/attest/nonce', '');
    const { nonce } = checked<NonceAnswer>(NONCE_ANSWER, nonceAnswer, `${url}/v1/attest/nonce`);
    const evidence: Evidence = await opts.evidence.collect({ nonce: Buffer.from(nonce, 'hex'), spki: me.spki });
    const request = JSON.stringify({ config_id: opts.configId, nonce, evidence });
    return checked<AttestAnswer>(ATTEST_ANSWER, await post(agent, url, '/v1/attest', request), `${url}/v1/attest`);
  } finally {
    agent.destroy();
    socket.destroy();
  }
}

function trustAnchor(trust: CasTrust): CasTrustAnchor {
  if (trust.caPem) return { caPem: trust.caPem };
  if (trust.caFile) return { caPem: readCaFile(trust.caFile) };
  if (!trust.fingerprint && !trust.trustAny) {
    throw new RuntimeError(
      'RUNTIME_CAS_UNTRUSTED',
      'no way to verify the CAS: neither VEIL_CAS_FINGERPRINT nor VEIL_CAS_CA_FILE is set',
      {
        hint: "set VEIL_CAS_FINGERPRINT to the fingerprint 'veil cas serve' prints (or --only_for_testing-trust-any for throw-away tests)",
      },
    );
  }
  return { fingerprint: trust.fingerprint, trustAny: trust.trustAny };
}

function readCaFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new RuntimeError(
      'RUNTIME_CONFIG',
      `cannot read VEIL_CAS_CA_FILE ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`,
      { hint: "point it at the CA certificate 'veil cas show-certificate' prints", cause: err },
    );
  }
}

/** A key that lives only as long as this connection: the one the evidence binds. */
function ephemeralIdentity(at: Date) {
  const now = at.getTime();
  return selfSignedIdentity({
    commonName: 'veil runtime',
    endpoint: 'client',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3_600_000),
  });
}

/**
 * The CAS's answer as the contract says, or an error naming the fields that differ — never their values,
 * which may be secrets.
 */
function checked<T>(schema: JsonSchema, json: unknown, where: string): T {
  const found = checkJson(schema, json);
  if (found.length === 0) return json as T;
  const issues = describeIssues(found);
  const message = `the CAS's answer to ${where} is not what the protocol defines: ${issues}`;
  throw new RuntimeError('RUNTIME_ATTESTATION', message, {
    hint: 'veil run and the CAS must be compatible Veil versions; check that SCONE_CAS_ADDR names a Veil CAS',
  });
}

async function post(agent: Agent, url: string, path: string, body: string) {
  let res: { status: number; text: string };
  try {
    res = await send(agent, `${url}${path}`, body);
  } catch (err) {
    throw new RuntimeError(
      'RUNTIME_CAS_UNREACHABLE',
      `cannot reach the CAS at ${url} (${(err as { code?: string }).code ?? (err as Error).message})`,
      { hint: 'check SCONE_CAS_ADDR and that the CAS runs', cause: err },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(res.text);
  } catch (err) {
    throw new RuntimeError(
      'RUNTIME_ATTESTATION',
      `the CAS at ${url} answered ${path} with something that is not JSON (HTTP ${res.status})`,
      {
        hint: 'check SCONE_CAS_ADDR: it must name a Veil CAS',
        cause: err,
      },
    );
  }
  if (res.status >= 400) {
    const error = checkJson(CAS_ERROR_BODY, json).length === 0 ? (json as CasErrorBody) : undefined;
    throw refusal(error, res.status, `${url}${path}`);
  }
  return json;
}

function refusal(body: CasErrorBody | undefined, status: number, where: string): RuntimeError {
  if (!body) {
    const message = `the CAS answered ${where} with HTTP ${status} and no error in its format`;
    return new RuntimeError('RUNTIME_ATTESTATION', message, {
      hint: 'check that SCONE_CAS_ADDR names a Veil CAS',
    });
  }
  return new RuntimeError('RUNTIME_ATTESTATION', body.error.message, body.error.hint ? { hint: body.error.hint } : {});
}

function send(agent: Agent, url: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.setTimeout(15_000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}
