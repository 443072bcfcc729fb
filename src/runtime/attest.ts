import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import type { Evidence } from '../attestation/index.js';
import { selfSignedIdentity } from '../secrets/index.js';
import { connectCas, type CasTrustAnchor } from './cas-identity.js';
import { RuntimeError } from './errors.js';
import type { EvidenceSource } from './evidence-source.js';

/** The configuration the CAS releases after attestation (injection file contents in base64). */
export interface RuntimeConfig {
  command: string[];
  environment: Record<string, string>;
  pwd: string;
  injectionFiles: Array<{ path: string; mode: number; content: string }>;
  fspf?: { path?: string; key?: string; tag?: string };
  /** What the CAS accepted (evidence kind, simulation or not, TCB status), for the runtime to say. */
  attestation?: { evidence: string; simulated: boolean; tcb_status?: string; tolerated?: string[] };
}

export interface CasTrust {
  fingerprint?: string | undefined;
  caFile?: string | undefined;
  trustAny?: boolean | undefined;
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
export async function obtainConfig(opts: { casAddr: string; configId: string; trust: CasTrust; evidence: EvidenceSource; now: () => Date }): Promise<RuntimeConfig> {
  const url = casUrl(opts.casAddr);
  const me = ephemeralIdentity(opts.now());
  const { socket } = await connectCas(url, trustAnchor(opts.trust), me);
  // node:https rather than undici on this path: undici alone costs ~70 ms to load, and launch time counts.
  // Both requests travel on the connection verified above, the one whose key the evidence binds.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  agent.createConnection = () => socket;
  try {
    const { nonce } = (await post(agent, url, '/v1/attest/nonce', '')) as { nonce: string };
    const evidence: Evidence = await opts.evidence.collect({ nonce: Buffer.from(nonce, 'hex'), spki: me.spki });
    return (await post(agent, url, '/v1/attest', JSON.stringify({ config_id: opts.configId, nonce, evidence }))) as RuntimeConfig;
  } finally {
    agent.destroy();
    socket.destroy();
  }
}

function trustAnchor(trust: CasTrust): CasTrustAnchor {
  if (trust.caFile) return { caPem: readCaFile(trust.caFile) };
  if (!trust.fingerprint && !trust.trustAny) {
    throw new RuntimeError('RUNTIME_CAS_UNTRUSTED', 'no way to verify the CAS: neither VEIL_CAS_FINGERPRINT nor VEIL_CAS_CA_FILE is set', {
      hint: "set VEIL_CAS_FINGERPRINT to the fingerprint 'veil cas serve' prints (or --only_for_testing-trust-any for throw-away tests)",
    });
  }
  return { fingerprint: trust.fingerprint, trustAny: trust.trustAny };
}

function readCaFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new RuntimeError('RUNTIME_CONFIG', `cannot read VEIL_CAS_CA_FILE ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`, { hint: "point it at the CA certificate 'veil cas show-certificate' prints", cause: err });
  }
}

/** A key that lives only as long as this connection: the one the evidence binds. */
function ephemeralIdentity(at: Date) {
  const now = at.getTime();
  return selfSignedIdentity({ commonName: 'veil runtime', endpoint: 'client', notBefore: new Date(now - 60_000), notAfter: new Date(now + 3_600_000) });
}

async function post(agent: Agent, url: string, path: string, body: string): Promise<unknown> {
  let res: { status: number; text: string };
  try {
    res = await send(agent, `${url}${path}`, body);
  } catch (err) {
    throw new RuntimeError('RUNTIME_CAS_UNREACHABLE', `cannot reach the CAS at ${url} (${(err as { code?: string }).code ?? (err as Error).message})`, { hint: 'check SCONE_CAS_ADDR and that the CAS runs', cause: err });
  }
  let json: { error?: { message?: string; hint?: string } };
  try {
    json = JSON.parse(res.text) as typeof json;
  } catch (err) {
    throw new RuntimeError('RUNTIME_ATTESTATION', `the CAS at ${url} answered ${path} with something that is not JSON (HTTP ${res.status})`, {
      hint: 'check SCONE_CAS_ADDR: it must name a Veil CAS', cause: err,
    });
  }
  if (res.status >= 400) {
    throw new RuntimeError('RUNTIME_ATTESTATION', json.error?.message ?? `CAS answered ${res.status}`, json.error?.hint ? { hint: json.error.hint } : {});
  }
  return json;
}

function send(agent: Agent, url: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.setTimeout(15_000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}
